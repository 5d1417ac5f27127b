DROP INDEX CONCURRENTLY runs_started_idx;
