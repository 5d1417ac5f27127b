-- Runs: one execution of the assistant on a conversation; at most one is running at a time.
-- Citus: distributed by conversation_id, colocated with conversations.

CREATE TABLE runs (
    conversation_id uuid NOT NULL,
    id uuid NOT NULL,
    status text NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    ended_at timestamptz,
    stop_reason text,
    CONSTRAINT runs_pkey PRIMARY KEY (conversation_id, id),
    CONSTRAINT runs_conversation_id_fkey FOREIGN KEY (conversation_id)
        REFERENCES conversations (id) ON DELETE CASCADE,
    CONSTRAINT runs_status_check CHECK (status IN ('running', 'stopped', 'completed', 'failed'))
);
-- The foreign key on conversation_id is covered by runs_pkey (leading column).

-- At most one running run per conversation (and the index that finds it).
CREATE UNIQUE INDEX runs_one_running_idx ON runs (conversation_id) WHERE status = 'running';

COMMENT ON TABLE runs IS 'One execution of the assistant on a conversation, from start to its end (stopped, completed or failed).';
COMMENT ON COLUMN runs.conversation_id IS 'The conversation this run works on.';
COMMENT ON COLUMN runs.id IS 'Run id: a UUIDv7 made by the application, unique within its conversation.';
COMMENT ON COLUMN runs.status IS 'running, stopped, completed or failed; at most one run per conversation is running.';
COMMENT ON COLUMN runs.started_at IS 'When the run started.';
COMMENT ON COLUMN runs.ended_at IS 'When the run left running; NULL while it runs.';
COMMENT ON COLUMN runs.stop_reason IS 'Why the run ended (a stop request, an error message, a finish reason); NULL when not given.';
