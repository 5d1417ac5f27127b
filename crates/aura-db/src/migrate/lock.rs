//! The migration lock: a session advisory lock on the migrator's own connection, taken by
//! polling `pg_try_advisory_lock` and released on every path.
//!
//! Polling, not `pg_advisory_lock`: a waiter blocked in `pg_advisory_lock` holds a snapshot
//! that `CREATE INDEX CONCURRENTLY` in the lock holder waits for, so both would wait forever.

use std::time::Instant;

use diesel::sql_types::{BigInt, Bool, Integer, Nullable, Text};
use diesel_async::RunQueryDsl;

use super::error::MigrateError;
use super::options::MigrateOptions;
use super::session::Session;

/// The migration lock's key: a session advisory lock on this bigint (`"auramigr"` in ASCII)
/// serializes migrators. Advisory locks are per database, so migrators of different
/// databases on one server do not contend. In `pg_locks` it shows as `locktype =
/// 'advisory'`, `classid = 1635086945`, `objid = 1835624306`, `objsubid = 1`.
pub const MIGRATION_LOCK_KEY: i64 = 0x6175_7261_6d69_6772;

/// Runs `body` holding the migration lock, then releases it, whatever `body` returned.
///
/// If this future is dropped (cancelled) or `body` panics, the running statement is
/// cancelled (see [`CancelOnDrop`](super::session::CancelOnDrop)), the session's connection
/// closes, and the server rolls back and releases the lock when the session ends.
pub(crate) async fn with_lock<T>(
    session: &mut Session,
    opts: &MigrateOptions,
    body: impl AsyncFnOnce(&mut Session) -> Result<T, MigrateError>,
) -> Result<T, MigrateError> {
    let guard = session.cancel_on_drop();
    let result = match acquire(session, opts).await {
        Ok(()) => {
            // Every step ends its own transaction (diesel's `transaction`), on error too.
            let result = body(session).await;
            let released = release(session).await;
            result.and_then(|v| released.map(|()| v))
        }
        Err(e) => Err(e),
    };
    guard.disarm();
    result
}

async fn acquire(session: &mut Session, opts: &MigrateOptions) -> Result<(), MigrateError> {
    let started = Instant::now();
    let mut announced = false;
    loop {
        if lock_call(session, "pg_try_advisory_lock", "taking the migration lock").await? {
            if announced {
                tracing::info!(waited = ?started.elapsed(), "migration lock acquired");
            }
            return Ok(());
        }
        let waited = started.elapsed();
        if waited >= opts.lock_wait {
            let (holder_pid, holder_application) = holder(session).await?;
            return Err(MigrateError::LockTimeout {
                waited,
                holder_pid,
                holder_application,
            });
        }
        if !announced {
            let (pid, app) = holder(session).await.unwrap_or((None, None));
            tracing::info!(
                holder_pid = ?pid,
                holder_application = ?app,
                "waiting for the migration lock held by another migrator"
            );
            announced = true;
        }
        tokio::time::sleep(opts.lock_poll.min(opts.lock_wait - waited)).await;
    }
}

/// `SELECT <function>(MIGRATION_LOCK_KEY)`.
async fn lock_call(
    session: &mut Session,
    function: &str,
    step: &str,
) -> Result<bool, MigrateError> {
    diesel::dsl::sql::<Bool>(&format!("SELECT {function}("))
        .bind::<BigInt, _>(MIGRATION_LOCK_KEY)
        .sql(")")
        .get_result(session.conn())
        .await
        .map_err(|e| MigrateError::step(step, &e))
}

async fn release(session: &mut Session) -> Result<(), MigrateError> {
    if !lock_call(
        session,
        "pg_advisory_unlock",
        "releasing the migration lock",
    )
    .await?
    {
        tracing::warn!("the migration lock was not held at release");
    }
    Ok(())
}

/// The backend pid and application_name of the session holding the lock in this database.
async fn holder(session: &mut Session) -> Result<(Option<i32>, Option<String>), MigrateError> {
    // A bigint key shows in pg_locks as classid = high 32 bits, objid = low 32 bits,
    // objsubid = 1.
    let hi = MIGRATION_LOCK_KEY >> 32;
    let lo = MIGRATION_LOCK_KEY & 0xffff_ffff;
    let rows: Vec<(i32, Option<String>)> = diesel::dsl::sql::<(Integer, Nullable<Text>)>(
        "SELECT l.pid, a.application_name::text \
             FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid \
             WHERE l.locktype = 'advisory' AND l.granted \
               AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
               AND l.classid::bigint = ",
    )
    .bind::<BigInt, _>(hi)
    .sql(" AND l.objid::bigint = ")
    .bind::<BigInt, _>(lo)
    .sql(" AND l.objsubid = 1 LIMIT 1")
    .load(session.conn())
    .await
    .map_err(|e| MigrateError::step("looking up the migration lock's holder", &e))?;
    Ok(match rows.into_iter().next() {
        Some((pid, app)) => (Some(pid), app),
        None => (None, None),
    })
}
