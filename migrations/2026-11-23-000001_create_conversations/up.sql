-- Conversations: the root of everything Aura stores, and the distribution key of every
-- table (Citus: create_distributed_table('aura.conversations', 'id'); see docs/scale-out.md).
-- Runs as the migrate role, whose search_path is the aura schema: names are unqualified.

CREATE TABLE conversations (
    id uuid NOT NULL,
    title text,
    model text NOT NULL DEFAULT '',
    started_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    turn_count integer NOT NULL DEFAULT 0,
    input_tokens bigint NOT NULL DEFAULT 0,
    output_tokens bigint NOT NULL DEFAULT 0,
    last_turn_at timestamptz,
    -- Last in the column list: Citus has had bugs with generated columns elsewhere.
    last_activity_at timestamptz NOT NULL
        GENERATED ALWAYS AS (COALESCE(last_turn_at, started_at)) STORED,
    CONSTRAINT conversations_pkey PRIMARY KEY (id),
    CONSTRAINT conversations_turn_count_check CHECK (turn_count >= 0),
    CONSTRAINT conversations_input_tokens_check CHECK (input_tokens >= 0),
    CONSTRAINT conversations_output_tokens_check CHECK (output_tokens >= 0)
);

-- Keyset listing: ORDER BY last_activity_at DESC, id DESC
-- WHERE (last_activity_at, id) < ($cursor_at, $cursor_id).
CREATE INDEX conversations_last_activity_idx ON conversations (last_activity_at DESC, id DESC);

COMMENT ON TABLE conversations IS 'A conversation between a user and the assistant: the root every other table hangs off (and the distribution key when sharded).';
COMMENT ON COLUMN conversations.id IS 'Conversation id: a UUIDv7 made by the application.';
COMMENT ON COLUMN conversations.title IS 'Title shown in lists; NULL until one is set or generated.';
COMMENT ON COLUMN conversations.model IS 'Model the conversation talks to; empty when not chosen yet.';
COMMENT ON COLUMN conversations.started_at IS 'When the conversation was created.';
COMMENT ON COLUMN conversations.updated_at IS 'When the conversation row last changed (title, model, counters).';
COMMENT ON COLUMN conversations.turn_count IS 'Number of turns; the seq of the latest turn (turns are numbered 1, 2, ... without gaps).';
COMMENT ON COLUMN conversations.input_tokens IS 'Sum of input_tokens over the conversation''s turns.';
COMMENT ON COLUMN conversations.output_tokens IS 'Sum of output_tokens over the conversation''s turns.';
COMMENT ON COLUMN conversations.last_turn_at IS 'created_at of the latest turn; NULL while there is none.';
COMMENT ON COLUMN conversations.last_activity_at IS 'Generated: COALESCE(last_turn_at, started_at), the key of the by-activity listing. Never written by the application.';
