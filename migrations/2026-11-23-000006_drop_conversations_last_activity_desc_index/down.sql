CREATE INDEX CONCURRENTLY conversations_last_activity_idx ON conversations (last_activity_at DESC, id DESC);
