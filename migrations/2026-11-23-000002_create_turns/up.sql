-- Turns: the messages of a conversation, numbered 1, 2, ... by seq.
-- Citus: distributed by conversation_id, colocated with conversations.

CREATE TABLE turns (
    conversation_id uuid NOT NULL,
    id uuid NOT NULL,
    seq integer NOT NULL,
    role text NOT NULL,
    content text NOT NULL,
    input_tokens integer NOT NULL DEFAULT 0,
    output_tokens integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT turns_pkey PRIMARY KEY (conversation_id, id),
    CONSTRAINT turns_conversation_id_seq_key UNIQUE (conversation_id, seq),
    CONSTRAINT turns_conversation_id_fkey FOREIGN KEY (conversation_id)
        REFERENCES conversations (id) ON DELETE CASCADE,
    CONSTRAINT turns_seq_check CHECK (seq >= 1),
    CONSTRAINT turns_role_check CHECK (role IN ('user', 'assistant', 'system', 'tool')),
    CONSTRAINT turns_input_tokens_check CHECK (input_tokens >= 0),
    CONSTRAINT turns_output_tokens_check CHECK (output_tokens >= 0)
);
-- The foreign key on conversation_id is covered by both turns_pkey and
-- turns_conversation_id_seq_key (leading column); the latter also serves
-- "turns of a conversation in order" (WHERE conversation_id = $1 ORDER BY seq).

COMMENT ON TABLE turns IS 'One message of a conversation, in order: by the user, the assistant, the system or a tool.';
COMMENT ON COLUMN turns.conversation_id IS 'The conversation this turn belongs to.';
COMMENT ON COLUMN turns.id IS 'Turn id: a UUIDv7 made by the application, unique within its conversation.';
COMMENT ON COLUMN turns.seq IS 'Position in the conversation: 1 for the first turn, then without gaps.';
COMMENT ON COLUMN turns.role IS 'Who spoke: user, assistant, system or tool.';
COMMENT ON COLUMN turns.content IS 'The message text.';
COMMENT ON COLUMN turns.input_tokens IS 'Input (prompt) tokens spent on this turn; 0 when not metered.';
COMMENT ON COLUMN turns.output_tokens IS 'Output (completion) tokens spent on this turn; 0 when not metered.';
COMMENT ON COLUMN turns.created_at IS 'When the turn was stored.';
