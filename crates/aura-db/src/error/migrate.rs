//! [`MigrateError`]: why `migrate`, `status` or `reset` failed in a way of their own. Held
//! by the crate's [`Error::Migrate`](crate::Error::Migrate); imports nothing from
//! `crate::migrate` (the runner imports this).
//!
//! `Display` is one line starting with `aura-db: ` and says what the runner was doing; the
//! database's own words are the [`SqlError`] source, so a chain printer (`{e}: {source}…`)
//! shows both once.

use std::time::Duration;

use diesel::result::Error as DieselError;

/// A failed SQL statement as the server (or, when nothing reached it, the client) reported
/// it. diesel-async drops the SQLSTATE of most server errors: [`SqlError::sqlstate`] is the
/// code where diesel kept it or its `C`-locale message is recognised, else `None`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}{}{}", fmt_opt(" (", .detail.as_deref(), ")"), fmt_opt(" (SQLSTATE ", .sqlstate.as_deref(), ")"))]
pub struct SqlError {
    /// The server's message (one line), or the client's.
    pub message: String,
    /// The server's detail, when it gave one.
    pub detail: Option<String>,
    /// The SQLSTATE, where known.
    pub sqlstate: Option<String>,
    /// The server's error position: 1-based, in characters, into the SQL text sent.
    pub position: Option<usize>,
}

impl SqlError {
    pub(crate) fn from_diesel(err: &DieselError) -> Self {
        let sqlstate = crate::sqlstate::of_diesel(err).map(str::to_owned);
        match err {
            DieselError::DatabaseError(_, info) => SqlError {
                message: info.message().replace('\n', " "),
                detail: info.details().map(|d| d.replace('\n', " ")),
                sqlstate,
                position: info
                    .statement_position()
                    .and_then(|p| usize::try_from(p).ok()),
            },
            other => SqlError::client(other),
        }
    }

    /// An error that is not a server's (I/O, a harness failure): its text, no SQLSTATE.
    pub(crate) fn client(err: &dyn std::error::Error) -> Self {
        SqlError {
            message: err.to_string().replace('\n', " "),
            detail: None,
            sqlstate: None,
            position: None,
        }
    }
}

/// Where and why a migration failed (up or down): the payload of [`MigrateError::Failed`].
///
/// A migration that runs in a transaction (the default) was rolled back whole and is not
/// recorded; one with `run_in_transaction = false` kept what ran before the failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "aura-db: migration {version}_{name} ({direction}) failed{}, {}",
    fmt_at(*.line, *.column, .line_text.as_deref()),
    fmt_outcome(*.rolled_back, *.transaction_ended)
)]
pub struct MigrationFailure {
    /// The migration's version.
    pub version: String,
    /// The migration's name (the folder name after the version).
    pub name: String,
    /// `up` or `down`.
    pub direction: String,
    /// 1-based line in the file of the server's error position; `None` when the server gave
    /// no position (errors raised while executing rather than parsing a statement) or the
    /// failure was the runner's own step (BEGIN, recording, COMMIT).
    pub line: Option<usize>,
    /// 1-based column (characters) of that position.
    pub column: Option<usize>,
    /// That line's text, trimmed and shortened.
    pub line_text: Option<String>,
    /// Whether the migration's transaction was rolled back (false with
    /// `run_in_transaction = false`, or when its SQL ended the transaction).
    pub rolled_back: bool,
    /// The migration's SQL ended the runner's transaction (`COMMIT`, `ROLLBACK` or `BEGIN`
    /// in the file): what ran before that is committed, and diesel's table may list the
    /// migration (the next run then adopts it with its current checksum).
    pub transaction_ended: bool,
    /// The server's error.
    #[source]
    pub cause: SqlError,
}

/// Why `migrate`, `status` or `reset` failed, beyond connecting (a session that cannot
/// connect is the crate's [`Error::Connect`](crate::Error::Connect),
/// [`Error::Auth`](crate::Error::Auth), … as any connection). Every text starts with
/// `aura-db: `.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MigrateError {
    /// Called with an empty URL. The text is load-bearing: tests assert it.
    #[error("aura-db: migrate URL is empty (set AURA_DB_MIGRATE_URL or the POSTGRES_* variables)")]
    EmptyUrl,

    /// No schema of the migrate role's search_path exists and is usable: there is nowhere
    /// to keep the tracking tables.
    #[error(
        "aura-db: migrations: no schema of search_path ({search_path}) exists and is usable by \
         this role on {target}; the migrate role's search_path should name its schema (role \
         bootstrap sets it)"
    )]
    NoSchema {
        /// The session's search_path.
        search_path: String,
        /// The redacted DSN.
        target: String,
    },

    /// Schema `aura` does not exist: an administrator creates it, owned by the migrate role.
    #[error(
        "aura-db: schema {schema} does not exist in database {database} ({target}): an \
         administrator runs CREATE SCHEMA {schema} AUTHORIZATION {role} (migrations never go \
         to another schema)"
    )]
    SchemaMissing {
        /// The schema (`aura`).
        schema: String,
        /// The database.
        database: String,
        /// The migrate role (the session's user).
        role: String,
        /// The redacted DSN.
        target: String,
    },

    /// Schema `aura` belongs to a role the migrate role cannot act as.
    #[error(
        "aura-db: schema {schema} is owned by {owner}, not by the migrate role {role} \
         ({target}): run ALTER SCHEMA {schema} OWNER TO {role}"
    )]
    SchemaNotOwned {
        /// The schema (`aura`).
        schema: String,
        /// Its owner.
        owner: String,
        /// The migrate role (the session's user).
        role: String,
        /// The redacted DSN.
        target: String,
    },

    /// The app role to grant to does not exist.
    #[error(
        "aura-db: the app role {role} does not exist ({target}): create it (CREATE ROLE \
         {role} LOGIN PASSWORD …), or name the right one (AURA_DB_APP_ROLE)"
    )]
    AppRoleMissing {
        /// The role.
        role: String,
        /// The redacted DSN.
        target: String,
    },

    /// A migration folder or file breaks a layout rule (see `migrations/README.md`):
    /// found when the set is loaded, before any database is touched.
    #[error("aura-db: invalid migrations at {path}: {reason}")]
    Source {
        /// The folder or file at fault.
        path: String,
        /// The rule it breaks.
        reason: String,
    },

    /// A migration's SQL failed (or its bookkeeping did): which one, where, and the
    /// server's error as the source.
    #[error(transparent)]
    Failed(Box<MigrationFailure>),

    /// An applied migration's `up.sql` changed since it was applied.
    #[error(
        "aura-db: migration {version}_{name} was edited after it was applied (sha256 of up.sql \
         is {actual:.12}…, {recorded:.12}… was applied); never edit an applied migration: \
         restore it and add a new one"
    )]
    ChecksumMismatch {
        /// The migration's version.
        version: String,
        /// The migration's name.
        name: String,
        /// The checksum recorded when it was applied.
        recorded: String,
        /// The checksum of the file now.
        actual: String,
    },

    /// The database has a migration applied that this binary does not know.
    #[error(
        "aura-db: the database has migration {version} applied, which this binary does not \
         know (migrated by a newer binary, or the migration was deleted or renumbered)"
    )]
    UnknownApplied {
        /// The unknown version.
        version: String,
    },

    /// `reset` needs a down.sql (with SQL in it) for every applied migration.
    #[error(
        "aura-db: cannot reset: migration {version}_{name} has no down.sql (or only comments \
         in it); nothing was changed"
    )]
    MissingDown {
        /// The migration's version.
        version: String,
        /// The migration's name.
        name: String,
    },

    /// `reset` was called without its guards.
    #[error("aura-db: reset refused: {reason}; nothing was changed")]
    ResetRefused {
        /// Which guard is missing.
        reason: String,
    },

    /// Another session held the migration lock for the whole wait.
    #[error(
        "aura-db: migration lock not acquired after {}: {}",
        humantime::format_duration(*.waited),
        fmt_holder(*.holder_pid, .holder_application.as_deref())
    )]
    LockTimeout {
        /// How long this migrator waited.
        waited: Duration,
        /// The backend pid of the session holding the lock, if it still held it.
        holder_pid: Option<i32>,
        /// Its `application_name`, when known.
        holder_application: Option<String>,
    },

    /// The migrate URL leads to a connection pooler that shares server sessions between
    /// client connections (PgBouncer's transaction or statement mode): the migration lock
    /// (a session advisory lock) and the session's settings would not hold there.
    #[error(
        "aura-db: migrations need a direct connection, but {target} shares server sessions \
         between client connections (two connections to it were served by one backend, pid \
         {pid}): a connection pooler in transaction or statement mode (PgBouncer \
         pool_mode=transaction), where the migration lock and the session settings do not \
         hold; point AURA_DB_MIGRATE_URL at the database server itself (its own host and \
         port), or at a pooler in session mode"
    )]
    SharedSession {
        /// The redacted DSN.
        target: String,
        /// The backend both connections were served by.
        pid: i32,
    },

    /// A step of the runner itself failed (session setup, lock, tracking tables).
    #[error("aura-db: migrations: {step} failed")]
    Step {
        /// What was being done (`reading the applied migrations from "aura".__diesel_schema_migrations`, …).
        step: String,
        /// The server's or the client's error.
        #[source]
        cause: SqlError,
    },
}

impl MigrateError {
    /// The SQLSTATE of the failed statement, where known (see [`SqlError::sqlstate`]).
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            MigrateError::Failed(f) => f.cause.sqlstate.as_deref(),
            MigrateError::Step { cause, .. } => cause.sqlstate.as_deref(),
            _ => None,
        }
    }

    /// A runner step's failure.
    pub(crate) fn step(step: impl Into<String>, err: &DieselError) -> Self {
        MigrateError::Step {
            step: step.into(),
            cause: SqlError::from_diesel(err),
        }
    }
}

/// `prefix value suffix`, or nothing.
fn fmt_opt(prefix: &str, value: Option<&str>, suffix: &str) -> String {
    value.map_or_else(String::new, |v| format!("{prefix}{v}{suffix}"))
}

/// ` at line 5, column 13 (INSERT INTO t …)`, or nothing.
fn fmt_at(line: Option<usize>, column: Option<usize>, text: Option<&str>) -> String {
    let Some(line) = line else {
        return String::new();
    };
    let mut out = format!(" at line {line}");
    if let Some(column) = column {
        out.push_str(&format!(", column {column}"));
    }
    if let Some(text) = text {
        out.push_str(&format!(" ({text})"));
    }
    out
}

fn fmt_outcome(rolled_back: bool, transaction_ended: bool) -> &'static str {
    match (rolled_back, transaction_ended) {
        (true, _) => "rolled back, not recorded",
        (false, true) => {
            "NOT rolled back: its SQL ended the runner's transaction (COMMIT, ROLLBACK or BEGIN \
             in the file?), so what ran before that stayed committed and diesel's table may list \
             it; remove the transaction control and check `aura db status`"
        }
        (false, false) => {
            "not rolled back (run_in_transaction = false): what ran before the failure stayed \
             applied, not recorded"
        }
    }
}

fn fmt_holder(pid: Option<i32>, application: Option<&str>) -> String {
    let who = match (pid, application) {
        (Some(pid), Some(app)) if !app.is_empty() => {
            format!("held by backend pid {pid} (application_name {app:?})")
        }
        (Some(pid), _) => format!("held by backend pid {pid}"),
        (None, _) => {
            return "held by another session, which released it just now; try again".into();
        }
    };
    format!(
        "{who}; another migrator is running, or SELECT pg_terminate_backend({}) ends a stuck one",
        pid.unwrap_or_default()
    )
}

/// Longest line text shown in an error.
const LINE_TEXT_MAX: usize = 80;

/// Line, column and text of a 1-based character `position` in `sql` (the text as sent:
/// Postgres counts characters of the whole string, `\r` included).
pub(crate) fn locate(sql: &str, position: usize) -> (usize, usize, String) {
    let before: String = sql.chars().take(position.saturating_sub(1)).collect();
    let line = before.matches('\n').count() + 1;
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[start..].chars().count() + 1;
    let text = sql[start..].lines().next().unwrap_or("").trim();
    let mut shown: String = text.chars().take(LINE_TEXT_MAX).collect();
    if shown.len() < text.len() {
        shown.push('…');
    }
    (line, column, shown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_become_lines_and_columns() {
        let sql = "CREATE TABLE a (x int);\r\n\r\n-- c\nINSERT INTO missing_t VALUES (1);\n";
        let p = sql.find("missing_t").expect("in sql") + 1;
        assert_eq!(
            locate(sql, p),
            (4, 13, "INSERT INTO missing_t VALUES (1);".to_owned())
        );
        assert_eq!(locate("é;\nSELECT x", 4).0, 2, "characters, not bytes");
        assert_eq!(locate("SELECT 1", 1), (1, 1, "SELECT 1".to_owned()));
    }
}
