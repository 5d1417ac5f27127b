//! What callers hand the store to create rows: drafts of the rows, which the store
//! completes (`seq`, status, timestamps, and the id when the caller gives none).
//!
//! Named `*Draft` rather than `New*`: aura-schema's `NewConversation`, `NewTurn`, … are
//! the diesel `Insertable`s of the same tables, and a sibling crate importing both
//! crates' names should never get the wrong one. A draft is a noun (data, not a command),
//! and does not read like the operation that takes it (`append_turn(…, TurnDraft)`).
//!
//! **Caller-supplied ids.** Every draft has an optional `id`. `None`: the store makes a new
//! UUIDv7. `Some(id)`: the id must be a UUIDv7 (InvalidInput `id` otherwise), and it is the
//! row's idempotency key: the same call made again with the same id (a retry after an
//! ambiguous failure) returns the row that was stored, never a second row; the same id
//! with different content is a [`ConflictKind::IdempotencyMismatch`].
//!
//! [`ConflictKind::IdempotencyMismatch`]: crate::ConflictKind::IdempotencyMismatch

use aura_schema::{ConversationId, RequestId, RunId, TurnId, TurnRole};

/// A conversation to create (see
/// [`ConversationStore::create_conversation`](crate::ConversationStore::create_conversation)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConversationDraft<'a> {
    /// Its id (a UUIDv7, the idempotency key; see the module docs); `None`: a new one.
    pub id: Option<ConversationId>,
    /// Title shown in lists, at most 500 characters; `None` until one is known.
    pub title: Option<&'a str>,
    /// The model the conversation talks to, at most 500 characters; `""` when not chosen.
    pub model: &'a str,
}

impl<'a> ConversationDraft<'a> {
    /// A conversation without title, talking to `model`.
    pub const fn new(model: &'a str) -> Self {
        ConversationDraft {
            id: None,
            title: None,
            model,
        }
    }

    /// The same draft with a title.
    pub const fn titled(mut self, title: &'a str) -> Self {
        self.title = Some(title);
        self
    }

    /// The same draft with a caller-supplied id (its idempotency key).
    pub const fn with_id(mut self, id: ConversationId) -> Self {
        self.id = Some(id);
        self
    }
}

/// A turn to append (see [`TurnStore::append_turn`](crate::TurnStore::append_turn)); its
/// `seq` is given by the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TurnDraft<'a> {
    /// Its id (a UUIDv7, the idempotency key; see the module docs); `None`: a new one.
    pub id: Option<TurnId>,
    /// Who spoke.
    pub role: TurnRole,
    /// The message text: not empty, at most 1 MiB, no NUL character.
    pub content: &'a str,
    /// Input (prompt) tokens spent on the turn, `>= 0`.
    pub input_tokens: i32,
    /// Output (completion) tokens spent on the turn, `>= 0`.
    pub output_tokens: i32,
    /// Structured data (tool calls and results, finish reason, the producing model), or
    /// `None`: at most 1 MiB as JSON, nested at most 64 deep, no NUL in a string or key,
    /// no whole-number float near `f64::MAX`; read back as exactly this value (see
    /// [`limits`](crate::limits) and the crate docs).
    pub data: Option<&'a serde_json::Value>,
}

impl<'a> TurnDraft<'a> {
    /// A turn by `role` saying `content`, no tokens metered.
    pub const fn new(role: TurnRole, content: &'a str) -> Self {
        TurnDraft {
            id: None,
            role,
            content,
            input_tokens: 0,
            output_tokens: 0,
            data: None,
        }
    }

    /// The same draft with its token counts.
    pub const fn tokens(mut self, input_tokens: i32, output_tokens: i32) -> Self {
        self.input_tokens = input_tokens;
        self.output_tokens = output_tokens;
        self
    }

    /// The same draft with a caller-supplied id (its idempotency key).
    pub const fn with_id(mut self, id: TurnId) -> Self {
        self.id = Some(id);
        self
    }

    /// The same draft with structured data.
    pub const fn with_data(mut self, data: &'a serde_json::Value) -> Self {
        self.data = Some(data);
        self
    }
}

/// A run to start (see [`RunStore::start_run`](crate::RunStore::start_run)); it starts
/// running.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunDraft {
    /// Its id (a UUIDv7, the idempotency key; see the module docs); `None`: a new one.
    pub id: Option<RunId>,
}

impl RunDraft {
    /// A run with a caller-supplied id (its idempotency key).
    pub const fn with_id(id: RunId) -> Self {
        RunDraft { id: Some(id) }
    }
}

/// An ask-user request to create (see
/// [`RequestStore::create_request`](crate::RequestStore::create_request)); it starts
/// pending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestDraft<'a> {
    /// Its id (a UUIDv7, the idempotency key; see the module docs); `None`: a new one.
    pub id: Option<RequestId>,
    /// The run that asks (it must be running), or `None` when no run asks.
    pub run_id: Option<RunId>,
    /// The question: not empty, at most 1 MiB, no NUL character.
    pub question: &'a str,
}

impl<'a> RequestDraft<'a> {
    /// A question asked by run `run_id` (or by no run).
    pub const fn new(run_id: Option<RunId>, question: &'a str) -> Self {
        RequestDraft {
            id: None,
            run_id,
            question,
        }
    }

    /// The same draft with a caller-supplied id (its idempotency key).
    pub const fn with_id(mut self, id: RequestId) -> Self {
        self.id = Some(id);
        self
    }
}

/// How a run that finished on its own ended (see [`RunStore::finish_run`]).
///
/// [`RunStore::finish_run`]: crate::RunStore::finish_run
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunEnd {
    /// It ended normally.
    Completed,
    /// It ended with an error.
    Failed,
}

impl RunEnd {
    /// The run status it leaves the run in.
    pub const fn status(self) -> aura_schema::RunStatus {
        match self {
            RunEnd::Completed => aura_schema::RunStatus::Completed,
            RunEnd::Failed => aura_schema::RunStatus::Failed,
        }
    }
}
