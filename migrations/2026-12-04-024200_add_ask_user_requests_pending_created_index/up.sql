-- Pending requests across all conversations, oldest first, keyset-paginated (what a
-- notifier polls; aura-store's list_all_pending_requests):
-- WHERE status = 'pending' AND (created_at, conversation_id, id) > ($at, $c, $id)
-- ORDER BY created_at, conversation_id, id. Partial: only pending rows are in it, so it
-- stays as small as the backlog. Not unique, so it need not lead with conversation_id
-- (on Citus the listing is a multi-shard query merged by the coordinator).
CREATE INDEX CONCURRENTLY ask_user_requests_pending_created_idx
    ON ask_user_requests (created_at, conversation_id, id) WHERE status = 'pending';
