-- Questions a run asks its user, and their answers.
-- Citus: distributed by conversation_id, colocated with conversations.

CREATE TABLE ask_user_requests (
    conversation_id uuid NOT NULL,
    id uuid NOT NULL,
    run_id uuid,
    question text NOT NULL,
    status text NOT NULL,
    answer text,
    created_at timestamptz NOT NULL DEFAULT now(),
    answered_at timestamptz,
    resumed_at timestamptz,
    resolved_at timestamptz,
    CONSTRAINT ask_user_requests_pkey PRIMARY KEY (conversation_id, id),
    CONSTRAINT ask_user_requests_conversation_id_fkey FOREIGN KEY (conversation_id)
        REFERENCES conversations (id) ON DELETE CASCADE,
    CONSTRAINT ask_user_requests_run_fkey FOREIGN KEY (conversation_id, run_id)
        REFERENCES runs (conversation_id, id) ON DELETE CASCADE,
    CONSTRAINT ask_user_requests_status_check
        CHECK (status IN ('pending', 'answered', 'resumed', 'cancelled')),
    CONSTRAINT ask_user_requests_answer_check
        CHECK ((answer IS NOT NULL) = (status IN ('answered', 'resumed')))
);
-- The foreign key on conversation_id is covered by ask_user_requests_pkey.

-- The foreign key to runs (and "requests of a run").
CREATE INDEX ask_user_requests_run_idx ON ask_user_requests (conversation_id, run_id);

-- Pending requests of a run, oldest first.
CREATE INDEX ask_user_requests_pending_idx ON ask_user_requests (conversation_id, run_id, created_at)
    WHERE status = 'pending';

COMMENT ON TABLE ask_user_requests IS 'A question a run asks its user, and the answer: pending, then answered, then resumed (the run went on with it), or cancelled.';
COMMENT ON COLUMN ask_user_requests.conversation_id IS 'The conversation the question is asked in.';
COMMENT ON COLUMN ask_user_requests.id IS 'Request id: a UUIDv7 made by the application, unique within its conversation.';
COMMENT ON COLUMN ask_user_requests.run_id IS 'The run that asked, in the same conversation; NULL when not asked by a run. Deleting the run deletes its requests.';
COMMENT ON COLUMN ask_user_requests.question IS 'The question shown to the user.';
COMMENT ON COLUMN ask_user_requests.status IS 'pending, answered, resumed or cancelled; answer is set exactly when answered or resumed.';
COMMENT ON COLUMN ask_user_requests.answer IS 'The user''s answer; set exactly when status is answered or resumed.';
COMMENT ON COLUMN ask_user_requests.created_at IS 'When the question was asked.';
COMMENT ON COLUMN ask_user_requests.answered_at IS 'When the user answered; NULL before.';
COMMENT ON COLUMN ask_user_requests.resumed_at IS 'When the run resumed with the answer; NULL before.';
COMMENT ON COLUMN ask_user_requests.resolved_at IS 'When the request stopped waiting (answered or cancelled); NULL while pending.';
