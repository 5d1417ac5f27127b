//! The one public error type of `aura-db`, [`Error`]; migrations have their own
//! ([`MigrateError`], in `migrate.rs`), held by [`Error::Migrate`]. This module imports
//! nothing from `crate::migrate` (the migration runner imports it).
//!
//! Every variant says what failed and where; none carries a secret. DSNs appear only in
//! their redacted form (`postgres://aura_app:***@host:5432/aura`), and messages that come
//! from the server (which never echoes a password) are kept as text.
//!
//! Variants made from another error keep it as their `source()`: the driver's error
//! (tokio-postgres, diesel, diesel's `ConnectionError`), whose own sources reach the
//! `std::io::Error` or `rustls::Error` underneath. `Display` stays the one line callers rely
//! on (for a connect failure it already names the cause); [`error_chain`] prints an error
//! and its sources, skipping a source whose text is already shown.
//!
//! `Error` is not `Clone`. Where one failure reaches several callers (a pool's connect
//! failure, every caller waiting for a connection; a connection string's unusable TLS
//! settings, every connect of that spec) the original is kept in an `Arc` and each caller
//! gets its own error of the same variant and fields whose source is the shared original
//! (`Error::shared`).

pub(crate) mod migrate;

use std::sync::Arc;
use std::time::Duration;

use diesel::result::{DatabaseErrorKind, Error as DieselError};

pub use migrate::{MigrateError, MigrationFailure, SqlError};

use crate::sqlstate;

/// The error a variant was made from, when it may be one of several types: a
/// `tokio_postgres::Error`, a `diesel::result::Error`, a `diesel::ConnectionError`, a
/// `std::io::Error`, a `rustls::Error`, or (for an error shared by several callers) an
/// `Arc<Error>` holding the original. Downcast it, or walk `source()`.
pub type Source = Box<dyn std::error::Error + Send + Sync>;

/// Errors of the Aura data layer's connection, transaction and migration code.
///
/// `Display` is one line starting with `aura-db: `; `source()` is the error it was made
/// from (see the module docs); `aura_db::error_chain` prints both.
#[derive(Debug, thiserror::Error)]
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
        /// The error behind it, when there is one (a file that cannot be read: the
        /// `std::io::Error`; a certificate or key rustls refused: the `rustls::Error`).
        #[source]
        source: Option<Source>,
    },

    /// The server could not be reached: refused, unknown host, timed out, I/O, or a
    /// connection that failed while it was being set up.
    #[error("aura-db: cannot connect to {target}: {cause}")]
    Connect {
        /// The redacted DSN that was tried.
        target: String,
        /// Why, in one line (`connection refused`, `no answer within 5s`, …).
        cause: String,
        /// The driver's error (`tokio_postgres::Error`, `diesel::ConnectionError`); `None`
        /// for a timeout.
        #[source]
        source: Option<Source>,
    },

    /// TLS could not be set up with the server: an untrusted or expired certificate, a host
    /// name mismatch, a server without TLS under a mode that requires it.
    #[error("aura-db: TLS with {target} failed: {failure}")]
    Tls {
        /// The redacted DSN that was tried.
        target: String,
        /// What failed.
        failure: crate::tls::TlsFailure,
        /// The driver's error (a `tokio_postgres::Error`, whose sources reach the
        /// `rustls::Error`).
        #[source]
        source: Source,
    },

    /// The server rejected the credentials or the role (SQLSTATE class 28, or 3D000 for an
    /// unknown database).
    #[error("aura-db: {target} refused the login: {message} (SQLSTATE {sqlstate})")]
    Auth {
        /// The redacted DSN that was tried.
        target: String,
        /// The server's SQLSTATE, e.g. `28P01`.
        sqlstate: String,
        /// The server's message (it never contains the password).
        message: String,
        /// The driver's error (a `tokio_postgres::Error`).
        #[source]
        source: Source,
    },

    /// The credential source of the connection (see [`crate::CredentialSource`]; a password
    /// file of `AURA_DB_PASSWORD_FILE` / `POSTGRES_PASSWORD_FILE`) gave no password: its own
    /// error, or none within the connect timeout. Nothing was sent to the server.
    ///
    /// `Display` ends with the source's message, which is also the `source()` (so a caller
    /// can downcast it); [`error_chain`] prints it once.
    /// [`Error::is_retryable`] says no: only the source knows whether its failure passes.
    #[error("aura-db: no password for {target}: the credential source failed: {source}")]
    Credentials {
        /// The redacted DSN a connection was being made to.
        target: String,
        /// The source's error, in an `Arc`: a pool hands one failure to every caller
        /// waiting for a connection, each an `Error::Credentials` sharing this source.
        #[source]
        source: std::sync::Arc<dyn std::error::Error + Send + Sync>,
    },

    /// Every connection of the pool stayed checked out for the whole checkout timeout.
    #[error("aura-db: pool exhausted: all {max} connections in use, waited {}", fmt_duration(*.waited))]
    PoolExhausted {
        /// The pool's maximum size.
        max: u32,
        /// How long the caller waited.
        waited: Duration,
    },

    /// [`crate::Pool::close`] was called: the pool hands out no more connections. Not
    /// retryable.
    #[error("aura-db: the pool of {target} is closed")]
    PoolClosed {
        /// The redacted DSN of the pool.
        target: String,
    },

    /// The operation (a store call, a [`crate::with_tx`] transaction) got no answer within
    /// the pool's operation deadline ([`crate::PoolSettings::operation_deadline`]): the
    /// server or the network path stopped answering (a blackholed or dead host, where TCP
    /// keepalives cannot tell), or the work ran longer than the deadline allows. Its
    /// connection was discarded and its statement cancelled; a write may have been applied
    /// (as after a lost connection). Retryable.
    #[error("aura-db: no answer from {target} within {} (the operation deadline): the connection was discarded", fmt_duration(*.after))]
    Timeout {
        /// The redacted DSN of the pool.
        target: String,
        /// The deadline that ran out.
        after: Duration,
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
        /// True when the connection itself failed (closed, I/O, or the server ended the
        /// session: class 08, 57P01/02/03/05): the operation may be retried on another
        /// connection, and this one must not be reused (see [`crate::mark_broken`]).
        connection_lost: bool,
        /// The driver's error (`diesel::result::Error` or `tokio_postgres::Error`).
        #[source]
        source: Source,
    },

    /// The transaction's body succeeded but `COMMIT` failed. Refused by the server (e.g. a
    /// deferred constraint, 40001): nothing was committed. The connection lost while
    /// `COMMIT` was on its way (`connection_lost`): the outcome is unknown, the transaction
    /// may have committed ([`Transient::Ambiguous`](crate::Transient::Ambiguous)).
    #[error(
        "aura-db: commit failed: {message}{}{}",
        fmt_sqlstate(.sqlstate.as_deref()),
        if *.connection_lost { " (the connection was lost: the transaction may have committed)" } else { "" }
    )]
    Commit {
        /// SQLSTATE where it is known.
        sqlstate: Option<String>,
        /// The connection failed while `COMMIT` was sent or its answer awaited: whether
        /// the transaction committed is unknown.
        connection_lost: bool,
        /// The server's message.
        message: String,
        /// The constraint involved, when the server named one.
        constraint: Option<String>,
        /// diesel's error.
        #[source]
        source: DieselError,
    },
    /// A role password broke a rule; checked before any SQL is sent.
    #[error("aura-db: {var} rejected: {rule}")]
    InvalidPassword {
        /// Which password (variable or field).
        var: String,
        /// The rule that failed (never the password).
        rule: String,
    },

    /// The schema exists but belongs to a role other than the migrate role.
    #[error(
        "aura-db: schema {schema:?} is owned by {owner:?}, not by the migrate role {expected:?}"
    )]
    SchemaOwner {
        /// The schema.
        schema: String,
        /// Its current owner.
        owner: String,
        /// The migrate role that should own it.
        expected: String,
    },

    /// Role bootstrap failed at one step.
    #[error("aura-db: role bootstrap failed at {step}: {message}{}", fmt_sqlstate(.sqlstate.as_deref()))]
    Bootstrap {
        /// What was being done (`create role "aura_app"`, …), never the SQL with a password.
        step: String,
        /// The server's message.
        message: String,
        /// SQLSTATE where the server gave one.
        sqlstate: Option<String>,
        /// The driver's error (a `tokio_postgres::Error`; its text never holds the SQL
        /// sent).
        #[source]
        source: Source,
    },

    /// Migrations (`migrate`, `status`, `reset`) failed in a way of their own: see
    /// [`MigrateError`]. (A migration session that cannot connect is [`Error::Connect`],
    /// [`Error::Auth`], [`Error::Tls`] or [`Error::Config`], as any connection.) The text is
    /// the migration error's own, which starts with `aura-db: ` too.
    #[error(transparent)]
    Migrate(#[from] MigrateError),
}

/// The server's message (with its detail) and SQLSTATE, or the client's error chain.
pub(crate) fn pg_message(err: &tokio_postgres::Error) -> (String, Option<String>) {
    match err.as_db_error() {
        Some(db) => {
            let mut message = db.message().to_owned();
            if let Some(detail) = db.detail() {
                message.push_str(" (");
                message.push_str(detail);
                message.push(')');
            }
            (
                message.replace('\n', " "),
                Some(db.code().code().to_owned()),
            )
        }
        None => (error_chain(err), None),
    }
}

impl Error {
    /// Builds a configuration error naming `var`.
    pub fn config(var: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Config {
            var: var.into(),
            reason: reason.into(),
            source: None,
        }
    }

    /// A configuration error naming `var`, made from `source` (an unreadable file, a
    /// certificate rustls refused); `reason` may repeat its words: [`error_chain`] prints
    /// them once.
    pub(crate) fn config_from(
        var: impl Into<String>,
        reason: impl Into<String>,
        source: impl Into<Source>,
    ) -> Self {
        Error::Config {
            var: var.into(),
            reason: reason.into(),
            source: Some(source.into()),
        }
    }

    /// The SQLSTATE the database gave, where one is known.
    ///
    /// diesel-async maps only some SQLSTATEs to a [`DatabaseErrorKind`] and drops the code of
    /// the others; of those, the ones callers branch on (deadlock, statement and lock
    /// timeouts, missing privilege, aborted transaction, bad input) are recognised by their
    /// English message (see `sqlstate.rs`; role bootstrap pins `lc_messages = 'C'`); for the
    /// rest this is `None` and the message is all we have.
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            Error::Auth { sqlstate, .. } => Some(sqlstate),
            Error::Query { sqlstate, .. }
            | Error::Commit { sqlstate, .. }
            | Error::Bootstrap { sqlstate, .. } => sqlstate.as_deref(),
            Error::Migrate(e) => e.sqlstate(),
            _ => None,
        }
    }

    /// True for failures that another attempt (on another connection) may not repeat:
    /// pool exhaustion, unreachable server, a lost connection, an operation that ran out of
    /// its deadline, serialization failures (40001) and deadlocks (40P01), after which the
    /// whole transaction is to be retried. A closed pool ([`Error::PoolClosed`]) is not: it
    /// stays closed. Whether retrying is also *safe* (a lost connection may leave a write
    /// applied) is [`Error::transient`]'s answer.
    pub fn is_retryable(&self) -> bool {
        self.transient().is_some()
    }

    /// Why another attempt may succeed, and whether this one may have been applied (see
    /// [`Transient`](crate::Transient)); `None` for failures another attempt would repeat.
    ///
    /// A `COMMIT` that failed is [`Transient::SerializationFailure`](crate::Transient) or
    /// `Deadlock` when the server refused it, and `None` otherwise: when its answer was lost
    /// the transaction's outcome is unknown, which no retry may paper over.
    pub fn transient(&self) -> Option<crate::Transient> {
        use crate::Transient;
        let refused = || match self.sqlstate() {
            Some("40001") => Some(Transient::SerializationFailure),
            Some("40P01") => Some(Transient::Deadlock),
            _ => None,
        };
        match self {
            Error::PoolExhausted { .. } | Error::Connect { .. } => Some(Transient::NotSent),
            Error::Timeout { .. } => Some(Transient::Ambiguous),
            Error::Query {
                connection_lost, ..
            }
            | Error::Commit {
                connection_lost, ..
            } => refused().or(connection_lost.then_some(Transient::Ambiguous)),
            _ => None,
        }
    }

    /// Turns a diesel error raised by `COMMIT` into [`Error::Commit`].
    pub(crate) fn commit(err: DieselError) -> Self {
        let f = Fields::of_diesel(&err);
        Error::Commit {
            sqlstate: f.sqlstate,
            connection_lost: f.connection_lost,
            message: f.message,
            constraint: f.constraint,
            source: err,
        }
    }

    /// One caller's copy of a failure that reaches several (see the module docs): the same
    /// variant and fields, with the shared original as its source. The variants a connect
    /// can fail with are copied; any other is reported as an [`Error::Connect`] to `target`
    /// naming it.
    pub(crate) fn shared(err: &Arc<Error>, target: &str) -> Error {
        let source = || -> Source { Box::new(Arc::clone(err)) };
        match &**err {
            Error::Config { var, reason, .. } => Error::Config {
                var: var.clone(),
                reason: reason.clone(),
                source: Some(source()),
            },
            Error::Connect { target, cause, .. } => Error::Connect {
                target: target.clone(),
                cause: cause.clone(),
                source: Some(source()),
            },
            Error::Tls {
                target, failure, ..
            } => Error::Tls {
                target: target.clone(),
                failure: failure.clone(),
                source: source(),
            },
            Error::Auth {
                target,
                sqlstate,
                message,
                ..
            } => Error::Auth {
                target: target.clone(),
                sqlstate: sqlstate.clone(),
                message: message.clone(),
                source: source(),
            },
            Error::Query {
                sqlstate,
                message,
                constraint,
                connection_lost,
                ..
            } => Error::Query {
                sqlstate: sqlstate.clone(),
                message: message.clone(),
                constraint: constraint.clone(),
                connection_lost: *connection_lost,
                source: source(),
            },
            Error::Credentials { target, source } => Error::Credentials {
                target: target.clone(),
                source: Arc::clone(source),
            },
            Error::PoolExhausted { max, waited } => Error::PoolExhausted {
                max: *max,
                waited: *waited,
            },
            Error::PoolClosed { target } => Error::PoolClosed {
                target: target.clone(),
            },
            Error::Timeout { target, after } => Error::Timeout {
                target: target.clone(),
                after: *after,
            },
            other => Error::Connect {
                target: target.to_owned(),
                cause: error_chain(other),
                source: Some(source()),
            },
        }
    }
}

/// What [`Error::Query`] and [`Error::Commit`] keep of a driver error.
struct Fields {
    sqlstate: Option<String>,
    message: String,
    constraint: Option<String>,
    connection_lost: bool,
}

impl Fields {
    fn of_diesel(err: &DieselError) -> Self {
        match err {
            DieselError::DatabaseError(kind, info) => Fields {
                sqlstate: sqlstate::of_diesel(err).map(str::to_owned),
                connection_lost: matches!(
                    kind,
                    DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand
                ) || (matches!(kind, DatabaseErrorKind::Unknown)
                    && sqlstate::session_ended(info.message())),
                message: info.message().to_owned(),
                constraint: info.constraint_name().map(str::to_owned),
            },
            other => Fields {
                sqlstate: None,
                message: other.to_string(),
                constraint: None,
                connection_lost: false,
            },
        }
    }

    fn of_pg(err: &tokio_postgres::Error) -> Self {
        match err.as_db_error() {
            Some(db) => Fields {
                sqlstate: Some(db.code().code().to_owned()),
                message: db.message().to_owned(),
                constraint: db.constraint().map(str::to_owned),
                connection_lost: sqlstate::session_sqlstate(db.code().code()),
            },
            None => Fields {
                sqlstate: None,
                message: error_chain(err),
                constraint: None,
                connection_lost: err.is_closed() || is_io(err),
            },
        }
    }

    fn query(self, source: Source) -> Error {
        Error::Query {
            sqlstate: self.sqlstate,
            message: self.message,
            constraint: self.constraint,
            connection_lost: self.connection_lost,
            source,
        }
    }
}

impl From<DieselError> for Error {
    fn from(err: DieselError) -> Self {
        Fields::of_diesel(&err).query(Box::new(err))
    }
}

impl From<tokio_postgres::Error> for Error {
    fn from(err: tokio_postgres::Error) -> Self {
        Fields::of_pg(&err).query(Box::new(err))
    }
}

fn is_io(err: &tokio_postgres::Error) -> bool {
    sources(err).any(|e| e.is::<std::io::Error>())
}

/// The sources of `err`, nearest first.
fn sources<'a>(
    err: &'a dyn std::error::Error,
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(err.source(), |e| e.source())
}

/// `err` and its sources joined with `: `, on one line (a source whose text is already
/// shown is skipped): how to print an [`Error`] whole, its cause included (a
/// [`MigrateError`]'s `Display` leaves the server's words to its source).
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    for text in sources(err).map(ToString::to_string) {
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
    }
    out.replace('\n', " ")
}

fn fmt_sqlstate(code: Option<&str>) -> String {
    code.map(|c| format!(" (SQLSTATE {c})")).unwrap_or_default()
}

/// `5s`, `250ms`, `1.5s`: short and exact to the millisecond.
pub(crate) fn fmt_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else if ms < 1000 {
        format!("{ms}ms")
    } else {
        format!("{:.3}s", d.as_secs_f64())
    }
}
