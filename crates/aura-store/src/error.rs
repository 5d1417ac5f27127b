//! [`StoreError`]: what a store operation can fail with, classified once.
//!
//! Errors from the pool and from diesel are classified at one boundary (`classify`). A
//! constraint violation becomes a [`StoreError::NotFound`] or [`StoreError::Conflict`] only
//! where the statement's ids are at hand ([`Subject`]), so every such error names its row
//! when it is made; without them it stays [`StoreError::Database`] (naming the constraint).

use std::fmt;

use aura_schema::{RequestId, RequestStatus, RunStatus};

/// The kinds of rows the store keeps; named by [`StoreError::NotFound`] and
/// [`StoreError::Conflict`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Entity {
    /// A row of `aura.conversations`.
    Conversation,
    /// A row of `aura.turns`.
    Turn,
    /// A row of `aura.runs`.
    Run,
    /// A row of `aura.ask_user_requests`.
    Request,
}

impl Entity {
    /// `conversation`, `turn`, `run`, `ask-user request`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Entity::Conversation => "conversation",
            Entity::Turn => "turn",
            Entity::Run => "run",
            Entity::Request => "ask-user request",
        }
    }
}

impl fmt::Display for Entity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What is in the way of an operation that found its rows in the wrong state: the
/// meaning of a [`StoreError::Conflict`], for callers to match on.
///
/// `Display` is a predicate of the conflict's row (`is stopped, not running`), so the
/// error reads `conflict: run <key> is stopped, not running`.
///
/// ```
/// use aura_store::{ConflictKind, Entity, RunStatus, StoreError};
///
/// // What a test double in a sibling crate returns, and how callers tell conflicts apart.
/// let err = StoreError::Conflict {
///     kind: ConflictKind::RunNotRunning { status: RunStatus::Stopped },
///     entity: Entity::Run,
///     id: "c/r".to_owned(),
/// };
/// assert_eq!(err.to_string(), "aura-store: conflict: run c/r is stopped, not running");
/// assert!(matches!(err.conflict_kind(), Some(ConflictKind::RunNotRunning { .. })));
/// assert!(!err.is_retryable());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConflictKind {
    /// The conversation already has a running run (`start_run`); at most one runs at a
    /// time. The conflict's row is the conversation.
    RunAlreadyRunning,
    /// The run has ended (`stop_run`, `finish_run`, or `create_request` from that run).
    RunNotRunning {
        /// The status it ended with.
        status: RunStatus,
    },
    /// The request is not pending any more (`answer_request`).
    RequestNotPending {
        /// Its status now.
        status: RequestStatus,
    },
    /// Some requests of a `mark_requests_resumed` batch are not answered; none was
    /// resumed. The conflict's row is the conversation.
    RequestsNotAnswered {
        /// Every offending request with its status (`None`: it does not exist), by id.
        offending: Vec<(RequestId, Option<RequestStatus>)>,
    },
    /// A caller-supplied id is already stored with different content: an id is its row's
    /// idempotency key, and a retry must send what the first attempt sent.
    IdempotencyMismatch,
    /// The conversation already has a turn with this `seq` (the store numbers turns under
    /// the conversation's row lock, so only a writer bypassing it meets this).
    TurnSeqTaken,
    /// The conversation changed after the version the caller expected
    /// ([`ConversationEdit::if_unchanged_since`](crate::ConversationEdit::if_unchanged_since)):
    /// another edit, or a new turn. Nothing was changed; read it again and decide.
    ConversationChanged {
        /// Its `updated_at` now.
        updated_at: chrono::DateTime<chrono::Utc>,
    },
}

impl fmt::Display for ConflictKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConflictKind::RunAlreadyRunning => f.write_str("already has a running run"),
            ConflictKind::RunNotRunning { status } => write!(f, "is {status}, not running"),
            ConflictKind::RequestNotPending { status } => write!(f, "is {status}, not pending"),
            ConflictKind::RequestsNotAnswered { offending } => {
                f.write_str("has requests that are not answered, none resumed: ")?;
                for (i, (id, status)) in offending.iter().enumerate() {
                    let sep = if i == 0 { "" } else { ", " };
                    match status {
                        Some(status) => write!(f, "{sep}{id} ({status})")?,
                        None => write!(f, "{sep}{id} (missing)")?,
                    }
                }
                Ok(())
            }
            ConflictKind::IdempotencyMismatch => f.write_str(
                "already exists with different content (the id is an idempotency key: a retry \
                 must send the same content)",
            ),
            ConflictKind::TurnSeqTaken => f.write_str("already has a turn with this seq"),
            ConflictKind::ConversationChanged { updated_at } => write!(
                f,
                "has changed since the expected version (updated_at is now {updated_at})"
            ),
        }
    }
}

/// Why a store operation failed.
///
/// `Display` is one line starting with `aura-store: `. Match on the variant (and a
/// conflict's [`ConflictKind`]), not the text.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The row the operation addresses (or a row it refers to) does not exist.
    #[error("aura-store: {entity} {id} not found")]
    NotFound {
        /// What kind of row.
        entity: Entity,
        /// Its id (for a turn, run or request: `<conversation id>/<id>`; for a batch: the
        /// missing ones, comma-separated).
        id: String,
    },

    /// The row exists but is not in a state that allows the operation; nothing changed.
    #[error("aura-store: conflict: {entity} {id} {kind}")]
    Conflict {
        /// What is in the way.
        kind: ConflictKind,
        /// The kind of row in the way (a conversation for
        /// [`ConflictKind::RunAlreadyRunning`] and [`ConflictKind::RequestsNotAnswered`]).
        entity: Entity,
        /// Its id, as in [`StoreError::NotFound`].
        id: String,
    },

    /// An argument broke an input rule; found before any SQL was sent.
    #[error("aura-store: invalid {field}: {reason}")]
    InvalidInput {
        /// The argument or field at fault (`content`, `limit`, `after`, `id`, …).
        field: &'static str,
        /// The rule it broke.
        reason: String,
    },

    /// The database could not be reached or the connection was lost (pool exhausted,
    /// connect failure, connection closed or terminated mid-statement, no answer within the
    /// operation deadline: [`aura_db::Error::Timeout`]). Retryable: another
    /// attempt gets another connection. A write whose connection dropped while its
    /// `COMMIT` was in flight may have been applied; see the crate docs.
    ///
    /// The field is the underlying error, and the `source` (whose own sources reach the
    /// driver's and the OS's errors); `Display` includes its one line, which
    /// `aura_db::error_chain` does not repeat.
    #[error("aura-store: database unavailable: {0}")]
    Unavailable(#[source] aura_db::Error),

    /// [`PgStore::close`](crate::PgStore::close) was called: the store hands out no more
    /// connections. Not retryable.
    #[error("aura-store: the store is closed")]
    Closed,

    /// Any other database failure; the SQLSTATE is kept (see [`StoreError::sqlstate`]).
    ///
    /// The field is the `source` too, as for [`StoreError::Unavailable`].
    #[error("aura-store: database error: {0}")]
    Database(#[source] aura_db::Error),
}

impl StoreError {
    /// True when the same call may succeed if made again: [`StoreError::Unavailable`], and
    /// database errors the server calls transient (serialization failure 40001, deadlock
    /// 40P01).
    pub fn is_retryable(&self) -> bool {
        match self {
            StoreError::Unavailable(_) => true,
            StoreError::Database(err) => err.is_retryable(),
            _ => false,
        }
    }

    /// The SQLSTATE of a [`StoreError::Database`] or [`StoreError::Unavailable`] error, where
    /// the driver reported one.
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            StoreError::Unavailable(err) | StoreError::Database(err) => err.sqlstate(),
            _ => None,
        }
    }

    /// The conflict's kind, for a [`StoreError::Conflict`].
    pub fn conflict_kind(&self) -> Option<&ConflictKind> {
        match self {
            StoreError::Conflict { kind, .. } => Some(kind),
            _ => None,
        }
    }

    /// A [`StoreError::NotFound`] for one id.
    pub(crate) fn not_found(entity: Entity, id: impl fmt::Display) -> Self {
        StoreError::NotFound {
            entity,
            id: id.to_string(),
        }
    }

    /// A [`StoreError::Conflict`] about one row.
    pub(crate) fn conflict(kind: ConflictKind, entity: Entity, id: impl fmt::Display) -> Self {
        StoreError::Conflict {
            kind,
            entity,
            id: id.to_string(),
        }
    }

    /// A [`StoreError::InvalidInput`].
    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        StoreError::InvalidInput {
            field,
            reason: reason.into(),
        }
    }
}

/// [`aura_db::with_tx_retry`] sees why a body that returns `StoreError` failed.
impl aura_db::AsDbError for StoreError {
    fn as_db_error(&self) -> Option<&aura_db::Error> {
        match self {
            StoreError::Unavailable(err) | StoreError::Database(err) => Some(err),
            _ => None,
        }
    }
}

/// The ids a statement wrote with, so that a constraint violation (the server names the
/// constraint, not the key) becomes an error naming its row (see `classify`).
#[derive(Debug, Clone, Default)]
pub(crate) struct Subject {
    /// The conversation.
    pub(crate) conversation: Option<String>,
    /// The run it refers to, as `<conversation>/<run>`.
    pub(crate) run: Option<String>,
    /// The row it writes, as its key (`<conversation>/<id>`, or the conversation id).
    pub(crate) row: Option<String>,
}

impl Subject {
    /// A statement on one conversation (or creating it).
    pub(crate) fn conversation(id: impl fmt::Display) -> Self {
        let id = id.to_string();
        Subject {
            row: Some(id.clone()),
            conversation: Some(id),
            run: None,
        }
    }

    /// A statement writing row `key` of `conversation`, referring to `run` when given.
    pub(crate) fn row(
        conversation: impl fmt::Display,
        key: impl fmt::Display,
        run: Option<impl fmt::Display>,
    ) -> Self {
        let conversation = conversation.to_string();
        Subject {
            run: run.map(|run| format!("{conversation}/{run}")),
            row: Some(key.to_string()),
            conversation: Some(conversation),
        }
    }
}
