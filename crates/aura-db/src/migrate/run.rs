//! Running one migration up or down: statement by statement, in one transaction with its
//! bookkeeping (unless `run_in_transaction = false`), so a failure leaves nothing of it and
//! names the statement.

use std::time::{Duration, Instant};

use super::session::Session;
use super::set::{Migration, Sql};
use super::tracking;
use crate::error::{Error, pg_message};

/// A migration that ran (up or down).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// Its version.
    pub version: String,
    /// Its name.
    pub name: String,
    /// How long its statements took.
    pub duration: Duration,
}

/// Where and why a migration failed: the payload of [`Error::Migration`].
///
/// A migration that runs in a transaction (the default) was rolled back whole and is not
/// recorded; one with `run_in_transaction = false` kept what ran before the failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationFailure {
    /// The migration's version.
    pub version: String,
    /// The migration's name (the folder name after the version).
    pub name: String,
    /// `up` or `down`.
    pub direction: String,
    /// 1-based number of the failing statement in its file; `None` when the failure was the
    /// runner's own step (BEGIN, recording, COMMIT).
    pub statement: Option<usize>,
    /// Where, for people: `statement 3 (line 7: CREATE TABLE c (…)`, `COMMIT`, ….
    pub at: String,
    /// The server's SQLSTATE, when it gave one.
    pub sqlstate: Option<String>,
    /// The server's message (with its detail), or the client's.
    pub message: String,
    /// Whether the migration's transaction was rolled back (false only with
    /// `run_in_transaction = false`).
    pub rolled_back: bool,
}

impl std::fmt::Display for MigrationFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "migration {}_{} ({}) failed at {}: {}",
            self.version, self.name, self.direction, self.at, self.message
        )?;
        if let Some(code) = &self.sqlstate {
            write!(f, " (SQLSTATE {code})")?;
        }
        f.write_str(if self.rolled_back {
            "; rolled back, not recorded"
        } else {
            "; not rolled back (run_in_transaction = false): what ran before the failure \
             stayed applied; not recorded"
        })
    }
}

/// Which file runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    Up,
    Down,
}

impl Direction {
    fn as_str(self) -> &'static str {
        match self {
            Direction::Up => "up",
            Direction::Down => "down",
        }
    }
}

/// Longest first line shown in an error.
const FIRST_LINE_MAX: usize = 80;

/// Runs `m` in `direction` and records it; the caller holds the migration lock.
pub(crate) async fn run(
    s: &Session,
    m: &Migration,
    direction: Direction,
) -> Result<Applied, Error> {
    let sql = match direction {
        Direction::Up => &m.up,
        // reset checked `is_reversible` for every migration it reverts.
        Direction::Down => m.down.as_ref().ok_or_else(|| Error::MissingDown {
            version: m.version().to_owned(),
            name: m.name().to_owned(),
        })?,
    };
    let in_tx = m.run_in_transaction();
    let fail = |at: String, statement: Option<usize>, err: &tokio_postgres::Error| {
        let (mut message, sqlstate) = pg_message(err);
        if sqlstate.as_deref() == Some("25001") && in_tx {
            message.push_str(
                " (this statement needs its own migration with run_in_transaction = false in \
                 metadata.toml)",
            );
        }
        Error::Migration(Box::new(MigrationFailure {
            version: m.version().to_owned(),
            name: m.name().to_owned(),
            direction: direction.as_str().to_owned(),
            statement,
            at,
            sqlstate,
            message,
            rolled_back: in_tx,
        }))
    };

    let started = Instant::now();
    if in_tx {
        s.client
            .batch_execute("BEGIN")
            .await
            .map_err(|e| fail("BEGIN".to_owned(), None, &e))?;
    }
    if let Err((n, e)) = statements(s, sql).await {
        if in_tx {
            s.rollback_quietly().await;
        }
        let st = sql.statements[n];
        let at = format!(
            "statement {} (line {}: {})",
            n + 1,
            st.line,
            st.first_line(&sql.text, FIRST_LINE_MAX)
        );
        return Err(fail(at, Some(n + 1), &e));
    }
    let took = started.elapsed();

    // The bookkeeping: inside the migration's transaction, or in one of its own.
    let record = async || {
        if !in_tx {
            s.client.batch_execute("BEGIN").await?;
        }
        match direction {
            Direction::Up => tracking::record_applied(s, m, took).await?,
            Direction::Down => tracking::record_reverted(s, m).await?,
        }
        Ok::<(), tokio_postgres::Error>(())
    };
    if let Err(e) = record().await {
        s.rollback_quietly().await;
        return Err(fail(
            format!("recording it in schema {:?}", s.schema_name),
            None,
            &e,
        ));
    }
    if let Err(e) = s.client.batch_execute("COMMIT").await {
        s.rollback_quietly().await;
        return Err(fail("COMMIT".to_owned(), None, &e));
    }
    Ok(Applied {
        version: m.version().to_owned(),
        name: m.name().to_owned(),
        duration: took,
    })
}

/// Sends each statement on its own (simple query protocol: any statement, no parameters).
/// On failure, the index of the failing statement and the error.
async fn statements(s: &Session, sql: &Sql) -> Result<(), (usize, tokio_postgres::Error)> {
    for (n, st) in sql.statements.iter().enumerate() {
        s.client
            .batch_execute(st.text(&sql.text))
            .await
            .map_err(|e| (n, e))?;
    }
    Ok(())
}
