//! The one error type of `aura-db`.
//!
//! Every variant says what failed and where; none carries a secret. DSNs appear only in
//! their redacted form (`postgres://aura_app:***@host:5432/aura`), and messages that come
//! from the server (which never echoes a password) are kept as text.

use std::time::Duration;

use diesel::result::{DatabaseErrorKind, Error as DieselError};

/// Errors of the Aura data layer's connection, transaction and migration code.
///
/// `Display` is one line starting with `aura-db: `. The type is `Clone` so the pool can hand
/// the same connect failure to every task that was waiting for a connection.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is missing or malformed. `var` names the variable (or builder
    /// field); `reason` never contains the value of a secret.
    #[error("aura-db: {var} {reason}")]
    Config {
        /// The environment variable or builder field at fault.
        var: String,
        /// What is wrong with it.
        reason: String,
    },

    /// `migrate` was called with an empty URL. The text is load-bearing: tests assert it.
    #[error("aura-db: migrate URL is empty (set AURA_DB_MIGRATE_URL or the POSTGRES_* variables)")]
    EmptyMigrateUrl,

    /// The server could not be reached: refused, unknown host, timed out, TLS, I/O.
    #[error("aura-db: cannot connect to {target}: {cause}")]
    Connect {
        /// The redacted DSN that was tried.
        target: String,
        /// Why, in one line (`connection refused`, `failed to lookup address`, …).
        cause: String,
    },

    /// The server rejected the credentials or the role (SQLSTATE class 28, or 3D000 for an
    /// unknown database).
    #[error("aura-db: authentication rejected by {target}: {message} (SQLSTATE {sqlstate})")]
    Auth {
        /// The redacted DSN that was tried.
        target: String,
        /// The server's SQLSTATE, e.g. `28P01`.
        sqlstate: String,
        /// The server's message (it never contains the password).
        message: String,
    },

    /// Every connection of the pool stayed checked out for the whole checkout timeout.
    #[error("aura-db: pool exhausted: all {max} connections in use, waited {}", fmt_duration(*.waited))]
    PoolExhausted {
        /// The pool's maximum size.
        max: u32,
        /// How long the caller waited.
        waited: Duration,
    },

    /// A statement failed on the server or on the wire.
    #[error("aura-db: query failed: {message}{}", fmt_sqlstate(.sqlstate.as_deref()))]
    Query {
        /// SQLSTATE where it is known (see [`Error::sqlstate`]).
        sqlstate: Option<String>,
        /// The server's message, or the client's when nothing reached the server.
        message: String,
        /// The constraint involved, when the server named one.
        constraint: Option<String>,
        /// True when the connection itself failed (closed, I/O): the operation may be retried
        /// on another connection.
        connection_lost: bool,
    },

    /// The transaction's body succeeded but `COMMIT` failed (e.g. a deferred constraint).
    /// Nothing was committed.
    #[error("aura-db: commit failed: {message}{}", fmt_sqlstate(.sqlstate.as_deref()))]
    Commit {
        /// SQLSTATE where it is known.
        sqlstate: Option<String>,
        /// The server's message.
        message: String,
        /// The constraint involved, when the server named one.
        constraint: Option<String>,
    },
}

impl Error {
    /// Builds a configuration error naming `var`.
    pub fn config(var: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Config {
            var: var.into(),
            reason: reason.into(),
        }
    }

    /// The SQLSTATE the database gave, where one is known.
    ///
    /// diesel-async maps only some SQLSTATEs to a [`DatabaseErrorKind`] and drops the code of
    /// the others; for those this is `None` and the message is all we have.
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            Error::Auth { sqlstate, .. } => Some(sqlstate),
            Error::Query { sqlstate, .. } | Error::Commit { sqlstate, .. } => sqlstate.as_deref(),
            _ => None,
        }
    }

    /// True for failures that another attempt (on another connection) may not repeat:
    /// pool exhaustion, unreachable server, a lost connection, serialization failures.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::PoolExhausted { .. } | Error::Connect { .. } => true,
            Error::Query {
                connection_lost, ..
            } => *connection_lost || self.sqlstate() == Some("40001"),
            Error::Commit { sqlstate, .. } => sqlstate.as_deref() == Some("40001"),
            _ => false,
        }
    }

    /// Turns a diesel error raised by `COMMIT` into [`Error::Commit`].
    pub(crate) fn commit(err: DieselError) -> Self {
        match Error::from(err) {
            Error::Query {
                sqlstate,
                message,
                constraint,
                ..
            } => Error::Commit {
                sqlstate,
                message,
                constraint,
            },
            other => other,
        }
    }
}

impl From<DieselError> for Error {
    fn from(err: DieselError) -> Self {
        match err {
            DieselError::DatabaseError(kind, info) => Error::Query {
                sqlstate: sqlstate_of_kind(&kind).map(str::to_owned),
                message: info.message().to_owned(),
                constraint: info.constraint_name().map(str::to_owned),
                connection_lost: matches!(
                    kind,
                    DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand
                ),
            },
            other => Error::Query {
                sqlstate: None,
                message: other.to_string(),
                constraint: None,
                connection_lost: false,
            },
        }
    }
}

impl From<tokio_postgres::Error> for Error {
    fn from(err: tokio_postgres::Error) -> Self {
        Error::from(&err)
    }
}

impl From<&tokio_postgres::Error> for Error {
    fn from(err: &tokio_postgres::Error) -> Self {
        match err.as_db_error() {
            Some(db) => Error::Query {
                sqlstate: Some(db.code().code().to_owned()),
                message: db.message().to_owned(),
                constraint: db.constraint().map(str::to_owned),
                connection_lost: false,
            },
            None => Error::Query {
                sqlstate: None,
                message: error_chain(err),
                constraint: None,
                connection_lost: err.is_closed() || is_io(err),
            },
        }
    }
}

/// The SQLSTATE behind the kinds diesel-async maps; `None` for `Unknown` and the rest.
fn sqlstate_of_kind(kind: &DatabaseErrorKind) -> Option<&'static str> {
    Some(match kind {
        DatabaseErrorKind::UniqueViolation => "23505",
        DatabaseErrorKind::ForeignKeyViolation => "23503",
        DatabaseErrorKind::RestrictViolation => "23001",
        DatabaseErrorKind::ExclusionViolation => "23P01",
        DatabaseErrorKind::NotNullViolation => "23502",
        DatabaseErrorKind::CheckViolation => "23514",
        DatabaseErrorKind::SerializationFailure => "40001",
        DatabaseErrorKind::ReadOnlyTransaction => "25006",
        _ => return None,
    })
}

fn is_io(err: &tokio_postgres::Error) -> bool {
    let mut source = std::error::Error::source(err);
    while let Some(e) = source {
        if e.is::<std::io::Error>() {
            return true;
        }
        source = e.source();
    }
    false
}

/// `err` and its sources joined with `: `, on one line.
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        let text = e.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = e.source();
    }
    out.replace('\n', " ")
}

fn fmt_sqlstate(code: Option<&str>) -> String {
    code.map(|c| format!(" (SQLSTATE {c})")).unwrap_or_default()
}

/// `5s`, `250ms`, `1.5s`: short and exact to the millisecond.
pub(crate) fn fmt_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else if ms < 1000 {
        format!("{ms}ms")
    } else {
        format!("{:.3}s", d.as_secs_f64())
    }
}
