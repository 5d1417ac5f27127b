//! The migration lock: a session advisory lock on the migrator's own connection, taken by
//! polling `pg_try_advisory_lock` and released on every path.
//!
//! Polling, not `pg_advisory_lock`: a waiter blocked in `pg_advisory_lock` holds a snapshot
//! that `CREATE INDEX CONCURRENTLY` in the lock holder waits for, so both would wait forever.

use std::time::Instant;

use super::options::MigrateOptions;
use super::session::Session;
use crate::error::Error;

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
    session: &Session,
    opts: &MigrateOptions,
    body: impl AsyncFnOnce(&Session) -> Result<T, Error>,
) -> Result<T, Error> {
    let guard = session.cancel_on_drop();
    let result = match acquire(session, opts).await {
        Ok(()) => {
            let result = body(session).await;
            if result.is_err() {
                session.rollback_quietly().await;
            }
            let released = release(session).await;
            result.and_then(|v| released.map(|()| v))
        }
        Err(e) => Err(e),
    };
    guard.disarm();
    result
}

async fn acquire(session: &Session, opts: &MigrateOptions) -> Result<(), Error> {
    let started = Instant::now();
    let mut announced = false;
    loop {
        if try_lock(session).await? {
            if announced {
                tracing::info!(waited = ?started.elapsed(), "migration lock acquired");
            }
            return Ok(());
        }
        let waited = started.elapsed();
        if waited >= opts.lock_wait {
            let (holder_pid, holder_application) = holder(session).await?;
            return Err(Error::LockTimeout {
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

async fn try_lock(session: &Session) -> Result<bool, Error> {
    let row = session
        .client
        .query_one("SELECT pg_try_advisory_lock($1)", &[&MIGRATION_LOCK_KEY])
        .await
        .map_err(|e| Error::migrate_step("taking the migration lock", &e))?;
    Ok(row.get(0))
}

async fn release(session: &Session) -> Result<(), Error> {
    let row = session
        .client
        .query_one("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK_KEY])
        .await
        .map_err(|e| Error::migrate_step("releasing the migration lock", &e))?;
    let released: bool = row.get(0);
    if !released {
        tracing::warn!("the migration lock was not held at release");
    }
    Ok(())
}

/// The backend pid and application_name of the session holding the lock in this database.
async fn holder(session: &Session) -> Result<(Option<i32>, Option<String>), Error> {
    // A bigint key shows in pg_locks as classid = high 32 bits, objid = low 32 bits,
    // objsubid = 1.
    let hi = MIGRATION_LOCK_KEY >> 32;
    let lo = MIGRATION_LOCK_KEY & 0xffff_ffff;
    let row = session
        .client
        .query_opt(
            "SELECT l.pid, a.application_name::text \
             FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid \
             WHERE l.locktype = 'advisory' AND l.granted \
               AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
               AND l.classid::bigint = $1 AND l.objid::bigint = $2 AND l.objsubid = 1 \
             LIMIT 1",
            &[&hi, &lo],
        )
        .await
        .map_err(|e| Error::migrate_step("looking up the migration lock's holder", &e))?;
    Ok(match row {
        Some(r) => (r.get(0), r.get(1)),
        None => (None, None),
    })
}
