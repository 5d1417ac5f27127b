-- Replaced by conversations_activity_idx (previous migration).
DROP INDEX CONCURRENTLY conversations_last_activity_idx;
