-- A conversation's runs newest first, keyset-paginated (aura-store's list_runs):
-- WHERE conversation_id = $1 AND (started_at, id) < ($at, $id)
-- ORDER BY started_at DESC, id DESC, read backward. Built without blocking writes.
CREATE INDEX CONCURRENTLY runs_started_idx ON runs (conversation_id, started_at, id);
