//! Running one migration up or down through diesel's `MigrationHarness`, whole (one
//! batch, as `diesel migration run` sends it), with its bookkeeping:
//!
//! - `run_in_transaction = true` (the default): we open the transaction, the harness's own
//!   becomes a savepoint inside it, and the checksum row is written before our COMMIT, so
//!   the migration, diesel's row and ours commit or roll back together.
//! - `run_in_transaction = false`: the harness runs it without a transaction and writes
//!   diesel's row; the checksum row follows. A failure keeps what ran before it.

use std::cell::{Cell, RefCell};
use std::time::{Duration, Instant};

use diesel::Connection;
use diesel::connection::BoxableConnection;
use diesel::migration::{Migration as DieselMigration, MigrationMetadata, MigrationName};
use diesel::pg::Pg;
use diesel::result::Error as DieselError;
use diesel::sql_types::{BigInt, Nullable};
use diesel_migrations::MigrationHarness;

use super::error::{MigrateError, MigrationFailure, SqlError, locate};
use super::session::{FailedSql, Session, Wrapper};
use super::set::{Migration, Migrations};
use super::tracking::{self, CHECKSUM_TABLE};

/// A migration that ran (up or down).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// Its version.
    pub version: String,
    /// Its name.
    pub name: String,
    /// How long its SQL took.
    pub duration: Duration,
}

/// Which file runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    Up,
    Down,
}

/// Why a run failed, as seen on the blocking thread: something failed (the migration's
/// SQL, which [`Watched`] notes with its text, or BEGIN, diesel's row, our row, COMMIT).
struct Fail(SqlError);

impl From<DieselError> for Fail {
    fn from(e: DieselError) -> Self {
        Fail(SqlError::from_diesel(&e))
    }
}

/// Runs `m` of `set` in `direction` and records it; the caller holds the migration lock.
pub(crate) async fn run(
    s: &mut Session,
    set: &Migrations,
    m: &Migration,
    direction: Direction,
) -> Result<Applied, MigrateError> {
    let (source, owned, table) = (set.source.clone(), m.clone(), s.qualified(CHECKSUM_TABLE));
    let failed = s.failed_sql.clone();
    let duration = s
        .blocking(move |conn| {
            let inner = source.find(&owned)?;
            let watched = Watched {
                inner,
                failed,
                failure: RefCell::new(None),
                tx_ended: Cell::new(false),
            };
            let result = apply(conn, &watched, &owned, direction, &table);
            let (sent, cause) = match (result, watched.failure.into_inner()) {
                (Ok(duration), _) => return Ok(duration),
                (Err(_), Some((sent, cause))) => (sent, cause),
                (Err(Fail(cause)), None) => (None, cause),
            };
            let ended = watched.tx_ended.get();
            Err(failure(&owned, direction, sent.as_deref(), cause, ended))
        })
        .await?;
    Ok(Applied {
        version: m.version().to_owned(),
        name: m.name().to_owned(),
        duration,
    })
}

/// The harness's run (or revert) and our checksum row, in one transaction unless the
/// migration opts out. Returns how long the harness took.
fn apply(
    conn: &mut Wrapper,
    watched: &Watched,
    m: &Migration,
    direction: Direction,
    checksum_table: &str,
) -> Result<Duration, Fail> {
    let in_tx = m.run_in_transaction();
    let body = |conn: &mut Wrapper| {
        // Our transaction's id: if the migration's SQL ends it (COMMIT, ROLLBACK or BEGIN
        // in the file), what ran is not rolled back with it, and the error must say so.
        let xid = if in_tx {
            tx_id(conn, "txid_current")?
        } else {
            None
        };
        let started = Instant::now();
        let ran = match direction {
            Direction::Up => conn.run_migration(watched),
            Direction::Down => conn.revert_migration(watched),
        };
        let took = started.elapsed();
        if let Err(e) = ran {
            if xid.is_some() && tx_id(conn, "txid_current_if_assigned").ok().flatten() != xid {
                watched.tx_ended.set(true);
            }
            return Err(Fail(SqlError::client(&*e)));
        }
        let applied = (direction == Direction::Up).then_some(took);
        tracking::record(conn, checksum_table, m, applied)?;
        Ok(took)
    };
    if in_tx {
        conn.transaction(body)
    } else {
        body(conn)
    }
}

/// `SELECT <function>()`: our transaction's id (`txid_current`), or the current one's if
/// it has one (`txid_current_if_assigned`: NULL outside a transaction block).
fn tx_id(conn: &mut Wrapper, function: &str) -> Result<Option<i64>, DieselError> {
    use diesel::RunQueryDsl as Sync;
    Sync::get_result(
        diesel::dsl::sql::<Nullable<BigInt>>(&format!("SELECT {function}()")),
        conn,
    )
}

/// diesel's migration, noting the failure of its own SQL (text as sent and error, from
/// the session's instrumentation) at the moment it happens.
struct Watched {
    inner: Box<dyn DieselMigration<Pg>>,
    failed: FailedSql,
    failure: RefCell<Option<(Option<String>, SqlError)>>,
    /// The migration's SQL ended the runner's transaction.
    tx_ended: Cell<bool>,
}

impl Watched {
    fn watch(&self, result: diesel::migration::Result<()>) -> diesel::migration::Result<()> {
        if let Err(e) = &result {
            let captured = self.failed.take();
            let cause = captured
                .as_ref()
                .map_or_else(|| SqlError::client(&**e), |(_, cause)| cause.clone());
            *self.failure.borrow_mut() = Some((captured.map(|(sql, _)| sql), cause));
        }
        result
    }
}

impl DieselMigration<Pg> for Watched {
    fn run(&self, conn: &mut dyn BoxableConnection<Pg>) -> diesel::migration::Result<()> {
        self.failed.take();
        self.watch(self.inner.run(conn))
    }

    fn revert(&self, conn: &mut dyn BoxableConnection<Pg>) -> diesel::migration::Result<()> {
        self.failed.take();
        self.watch(self.inner.revert(conn))
    }

    fn metadata(&self) -> &dyn MigrationMetadata {
        self.inner.metadata()
    }

    fn name(&self) -> &dyn MigrationName {
        self.inner.name()
    }
}

/// The error of a failed run: the migration, the line of the server's error position in
/// the text sent (when it gave one), and the server's error as the source.
fn failure(
    m: &Migration,
    direction: Direction,
    sent: Option<&str>,
    mut cause: SqlError,
    tx_ended: bool,
) -> MigrateError {
    let in_tx = m.run_in_transaction();
    if cause.sqlstate.as_deref() == Some("25001") && in_tx {
        cause.message.push_str(
            " (this statement needs its own migration with run_in_transaction = false in \
             metadata.toml)",
        );
    }
    let at = sent.zip(cause.position).map(|(sql, p)| locate(sql, p));
    MigrateError::Failed(Box::new(MigrationFailure {
        version: m.version().to_owned(),
        name: m.name().to_owned(),
        direction: match direction {
            Direction::Up => "up",
            Direction::Down => "down",
        }
        .to_owned(),
        line: at.as_ref().map(|a| a.0),
        column: at.as_ref().map(|a| a.1),
        line_text: at.map(|a| a.2),
        rolled_back: in_tx && !tx_ended,
        transaction_ended: tx_ended,
        cause,
    }))
}
