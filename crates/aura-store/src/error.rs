//! [`StoreError`]: what a store operation can fail with, classified once.
//!
//! Errors from the pool and from diesel are classified at one boundary
//! ([`From<aura_db::Error>`], [`From<diesel::result::Error>`], see `classify`); an operation
//! only adds which ids it was about (`StoreError::about`), so a foreign-key violation says
//! which conversation or run is missing.

use std::fmt;

/// The kinds of rows the store keeps; named by [`StoreError::NotFound`].
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

/// Why a store operation failed.
///
/// `Display` is one line starting with `aura-store: `. Match on the variant, not the text.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The row the operation addresses (or a row it refers to) does not exist.
    #[error("aura-store: {entity} {id} not found")]
    NotFound {
        /// What kind of row.
        entity: Entity,
        /// Its id (for a batch: the missing ids, comma-separated; for a turn, run or
        /// request: `<conversation id>/<id>`).
        id: String,
    },

    /// The row exists but is not in a state that allows the operation (a run that is not
    /// running, a request that is not pending, a second running run, …). Nothing changed.
    #[error("aura-store: conflict: {what}")]
    Conflict {
        /// What is in the way, with the ids involved.
        what: String,
    },

    /// An argument broke an input rule; found before any SQL was sent.
    #[error("aura-store: invalid {field}: {reason}")]
    InvalidInput {
        /// The argument or field at fault (`content`, `limit`, `after`, …).
        field: &'static str,
        /// The rule it broke.
        reason: String,
    },

    /// The database could not be reached or the connection was lost (pool exhausted,
    /// connect failure, connection closed or terminated mid-statement). Retryable: another
    /// attempt gets another connection. A write whose connection dropped while its
    /// `COMMIT` was in flight may have been applied; see the crate docs.
    ///
    /// The field is the underlying error; `Display` includes it (one line), so it is not
    /// also reported as the `source`.
    #[error("aura-store: database unavailable: {0}")]
    Unavailable(aura_db::Error),

    /// Any other database failure; the SQLSTATE is kept (see [`StoreError::sqlstate`]).
    #[error("aura-store: database error: {0}")]
    Database(aura_db::Error),
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

    /// A [`StoreError::NotFound`] for one id.
    pub(crate) fn not_found(entity: Entity, id: impl fmt::Display) -> Self {
        StoreError::NotFound {
            entity,
            id: id.to_string(),
        }
    }

    /// A [`StoreError::Conflict`].
    pub(crate) fn conflict(what: impl Into<String>) -> Self {
        StoreError::Conflict { what: what.into() }
    }

    /// A [`StoreError::InvalidInput`].
    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        StoreError::InvalidInput {
            field,
            reason: reason.into(),
        }
    }

    /// Adds the ids a failed statement used to an error classified from a constraint
    /// violation (the server names the constraint, not the key): the id of a
    /// [`StoreError::NotFound`] from a foreign key, the conversation of a
    /// [`StoreError::Conflict`] from a unique key. Other errors pass through.
    pub(crate) fn about(self, subject: &Subject) -> Self {
        match self {
            StoreError::NotFound { entity, id } if id.is_empty() => {
                let id = subject
                    .id_of(entity)
                    .unwrap_or_else(|| "(unknown)".to_owned());
                StoreError::NotFound { entity, id }
            }
            StoreError::Conflict { what } => match &subject.conversation {
                Some(conversation) => StoreError::Conflict {
                    what: format!("{what} (conversation {conversation})"),
                },
                None => StoreError::Conflict { what },
            },
            other => other,
        }
    }
}

/// The ids a statement was about, to name the missing one in a [`StoreError::NotFound`]
/// raised by a foreign-key violation.
#[derive(Debug, Clone, Default)]
pub(crate) struct Subject {
    pub(crate) conversation: Option<String>,
    pub(crate) run: Option<String>,
}

impl Subject {
    /// A statement on one conversation.
    pub(crate) fn conversation(id: impl fmt::Display) -> Self {
        Subject {
            conversation: Some(id.to_string()),
            run: None,
        }
    }

    /// A statement on one conversation and, when given, one of its runs.
    pub(crate) fn run(conversation: impl fmt::Display, run: Option<impl fmt::Display>) -> Self {
        let conversation = conversation.to_string();
        Subject {
            run: run.map(|run| format!("{conversation}/{run}")),
            conversation: Some(conversation),
        }
    }

    fn id_of(&self, entity: Entity) -> Option<String> {
        match entity {
            Entity::Conversation => self.conversation.clone(),
            Entity::Run => self.run.clone(),
            Entity::Turn | Entity::Request => None,
        }
    }
}
