-- Structured turn data beside the text: tool calls and their results, a finish reason, the
-- model that produced the turn. Expand step (migrations/README.md, rule 4): a nullable
-- column without a default is a catalog change only, no rewrite and no scan of existing
-- rows (they read as NULL); its ACCESS EXCLUSIVE lock is held for that catalog change and
-- waited for at most the migrate role's lock_timeout. Size and shape are checked by the
-- application (aura-store's limits), as for content.
ALTER TABLE turns ADD COLUMN data jsonb;

COMMENT ON COLUMN turns.data IS 'Structured data of the turn (tool calls and results, finish reason, producing model), as JSON; NULL when the turn has none.';
