//! Reads on a streaming read replica (`AURA_DB_READ_URL`), with the consistency each
//! handle asks for ([`Consistency`]).
//!
//! - **Which reads.** The read operations (`get_*`, `list_*`) run through
//!   [`PgStore::routed`]: it asks the [`Replica`] whether this read may go there, and runs
//!   the operation on a clone of the store whose [`PgStore::read_conn`] checks out from the
//!   read pool. Writes and transactions never use the read pool, whose sessions are
//!   read-only besides (`default_transaction_read_only`, [`aura_db::Config::for_reads`]).
//! - **Replica health**, cached: `pg_is_in_recovery()`, `pg_last_wal_replay_lsn()` and the
//!   replay lag (0 when everything received is replayed, else the age of the last replayed
//!   commit), checked on the replica at most every [`Replica::check_every`] (one task
//!   checks, the others use what is known), within the connect timeout. Lag past the bound,
//!   or a failed check, sends reads to the primary; a down replica is checked again after
//!   [`RETRY_DOWN`]. A read that fails on the replica because it is gone
//!   ([`StoreError::Unavailable`]) marks it down and runs again on the primary.
//! - **Read-your-writes.** Every write through a handle with a replica records the
//!   primary's `pg_current_wal_insert_lsn()` after it (one extra round trip on the primary,
//!   only when a replica is configured) into the handle's write position, shared by its
//!   clones ([`PgStore::session`] starts a new one). A read that must see it goes to the
//!   replica only once `pg_last_wal_replay_lsn()` has reached it.
//! - **Saying so once.** Unreachable, lagging past the bound, or a primary behind the read
//!   URL: one `tracing` warning when it starts (and an info line when it ends), never one
//!   per call.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use aura_db::{Config, Pool, PooledConn};
use diesel::sql_types::{Bool, Double, Nullable, Text};
use diesel_async::RunQueryDsl;

use super::{PgStore, settle};
use crate::consistency::{Consistency, WalLsn};
use crate::error::StoreError;

/// How long a replica found down is left alone before it is checked again.
const RETRY_DOWN: Duration = Duration::from_secs(5);
/// The longest a health check is trusted.
const CHECK_EVERY: Duration = Duration::from_secs(1);
/// A handle's write position before its first write.
const NO_WRITE: u64 = 0;
/// A handle's write position when recording the last write failed: primary reads until the
/// next write is recorded.
const UNKNOWN_WRITE: u64 = u64::MAX;

/// A boxed read operation on a store handle (see [`PgStore::routed`]).
pub(super) type ReadOp<T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send>>;

/// The read routing of one store handle: its replica (shared by all clones), what its
/// reads must see, and the position of its writes.
#[derive(Debug, Clone)]
pub(super) struct ReadRoute {
    replica: Option<Arc<Replica>>,
    consistency: Consistency,
    writes: Arc<AtomicU64>,
    /// Set on the per-call clone that reads from the replica: the read pool.
    serving: Option<Pool>,
}

impl ReadRoute {
    /// No replica: every read on the primary.
    pub(super) fn primary_only() -> Self {
        ReadRoute {
            replica: None,
            consistency: Consistency::default(),
            writes: Arc::new(AtomicU64::new(NO_WRITE)),
            serving: None,
        }
    }

    /// The read pool, when open.
    pub(super) fn pool(&self) -> Option<Pool> {
        self.replica.as_ref().and_then(|r| r.snapshot().pool)
    }
}

/// The replica of a store and what is known about it.
#[derive(Debug)]
struct Replica {
    /// How to (re)open the read pool; `None` when the caller gave the pool.
    config: Option<Config>,
    max_lag: Duration,
    check_timeout: Duration,
    /// The read URL, redacted.
    target: String,
    known: Mutex<Snapshot>,
    checking: tokio::sync::Mutex<()>,
    warned_down: AtomicBool,
    warned_lag: AtomicBool,
    warned_primary: AtomicBool,
}

#[derive(Debug, Clone, Default)]
struct Snapshot {
    pool: Option<Pool>,
    checked_at: Option<Instant>,
    health: Health,
    down_until: Option<Instant>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
enum Health {
    #[default]
    Unknown,
    Down,
    /// In recovery, having replayed up to `replay`.
    Standby {
        replay: u64,
        lag_ok: bool,
    },
    /// Not in recovery: the read URL points at a primary (used read-only).
    Primary,
}

/// What a snapshot says about one read.
enum Verdict {
    Replica(Pool),
    Primary,
    /// Not known well enough: check.
    Check,
}

impl Replica {
    fn new(config: Option<Config>, pool: Option<Pool>, target: String, max_lag: Duration) -> Self {
        let check_timeout = config
            .as_ref()
            .map_or(Duration::from_secs(5), |c| c.pool().connect_timeout);
        Replica {
            config,
            max_lag,
            check_timeout,
            target,
            known: Mutex::new(Snapshot {
                pool,
                ..Snapshot::default()
            }),
            checking: tokio::sync::Mutex::new(()),
            warned_down: AtomicBool::new(false),
            warned_lag: AtomicBool::new(false),
            warned_primary: AtomicBool::new(false),
        }
    }

    fn snapshot(&self) -> Snapshot {
        self.known
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn update(&self, f: impl FnOnce(&mut Snapshot)) -> Snapshot {
        let mut known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut known);
        known.clone()
    }

    /// A check is trusted this long: a second, or half the lag bound when smaller.
    fn check_every(&self) -> Duration {
        CHECK_EVERY.min(self.max_lag / 2)
    }

    /// The read pool when a read needing `required` may go to the replica now.
    async fn route(&self, required: Option<u64>) -> Option<Pool> {
        let now = Instant::now();
        let known = self.snapshot();
        if known.down_until.is_some_and(|t| now < t) {
            return None;
        }
        let fresh = known
            .checked_at
            .is_some_and(|t| now.duration_since(t) < self.check_every());
        let verdict = verdict(&known, required);
        if fresh && !matches!(verdict, Verdict::Check) {
            return verdict.pool();
        }
        // One task checks; the others go by what is known meanwhile.
        let Ok(_checking) = self.checking.try_lock() else {
            return verdict.pool();
        };
        let known = self.check().await;
        verdict_after_check(&known, required)
    }

    /// Asks the replica how it is, within the check timeout, and records the answer.
    async fn check(&self) -> Snapshot {
        match tokio::time::timeout(self.check_timeout, self.probe()).await {
            Ok(Ok((pool, health, lag))) => self.healthy(pool, health, lag),
            Ok(Err(cause)) => self.down(&cause),
            Err(_) => self.down(&format!("no answer within {:?}", self.check_timeout)),
        }
    }

    async fn probe(&self) -> Result<(Pool, Health, Option<f64>), String> {
        let pool = match self.snapshot().pool {
            Some(pool) => pool,
            None => {
                let config = self.config.as_ref().ok_or("the read pool is closed")?;
                let pool = aura_db::open(config).await.map_err(|e| e.to_string())?;
                self.update(|k| k.pool = Some(pool.clone()));
                pool
            }
        };
        let mut conn = pool.get().await.map_err(|e| e.to_string())?;
        // Lag: 0 when everything received is replayed (an idle primary makes no lag),
        // else the age of the last replayed commit (NULL: none replayed yet).
        let row: QueryResultRow = diesel::dsl::sql::<(Bool, Nullable<Text>, Nullable<Double>)>(
            "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text, \
             CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0::float8 \
             ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 END",
        )
        .get_result(&mut *conn)
        .await
        .map_err(|e| {
            aura_db::mark_broken(&mut conn);
            StoreError::from(e).to_string()
        })?;
        let (in_recovery, replay, lag) = row;
        let health = match (in_recovery, replay.and_then(|r| r.parse::<WalLsn>().ok())) {
            (false, _) => Health::Primary,
            (true, replay) => Health::Standby {
                replay: replay.map_or(0, |r| r.0),
                lag_ok: lag.is_some_and(|l| l <= self.max_lag.as_secs_f64()),
            },
        };
        Ok((pool, health, lag))
    }

    fn healthy(&self, pool: Pool, health: Health, lag: Option<f64>) -> Snapshot {
        if self.warned_down.swap(false, Ordering::Relaxed) {
            tracing::info!(replica = %self.target, "read replica reachable again: reads go there");
        }
        match health {
            Health::Primary if !self.warned_primary.swap(true, Ordering::Relaxed) => {
                tracing::warn!(
                    replica = %self.target,
                    "AURA_DB_READ_URL points at a primary (pg_is_in_recovery() is false), not a \
                     replica: reads go there in read-only sessions, as fresh as that server is"
                );
            }
            Health::Standby { lag_ok: false, .. }
                if !self.warned_lag.swap(true, Ordering::Relaxed) =>
            {
                tracing::warn!(
                    replica = %self.target,
                    lag_seconds = ?lag,
                    max_lag = ?self.max_lag,
                    "read replica lags past AURA_DB_READ_MAX_LAG: reads go to the primary until \
                     it catches up"
                );
            }
            Health::Standby { lag_ok: true, .. }
                if self.warned_lag.swap(false, Ordering::Relaxed) =>
            {
                tracing::info!(replica = %self.target, "read replica caught up: reads go there");
            }
            _ => {}
        }
        self.update(|k| {
            k.pool = Some(pool);
            k.health = health;
            k.checked_at = Some(Instant::now());
            k.down_until = None;
        })
    }

    /// Records the replica as down (reads go to the primary for [`RETRY_DOWN`]), warning
    /// when it was not already.
    fn down(&self, cause: &str) -> Snapshot {
        if !self.warned_down.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                replica = %self.target,
                error = %cause,
                retry_in = ?RETRY_DOWN,
                "read replica unavailable: reads go to the primary until it is back"
            );
        }
        self.update(|k| {
            k.health = Health::Down;
            k.checked_at = Some(Instant::now());
            k.down_until = Some(Instant::now() + RETRY_DOWN);
        })
    }
}

type QueryResultRow = (bool, Option<String>, Option<f64>);

fn verdict(known: &Snapshot, required: Option<u64>) -> Verdict {
    let Some(pool) = known.pool.clone() else {
        return Verdict::Check;
    };
    match known.health {
        Health::Unknown => Verdict::Check,
        Health::Down | Health::Standby { lag_ok: false, .. } => Verdict::Primary,
        Health::Standby { replay, .. } if required.is_some_and(|r| r > replay) => Verdict::Check,
        Health::Standby { .. } | Health::Primary => Verdict::Replica(pool),
    }
}

/// After a check, a read the replica cannot serve yet goes to the primary.
fn verdict_after_check(known: &Snapshot, required: Option<u64>) -> Option<Pool> {
    verdict(known, required).pool()
}

impl Verdict {
    fn pool(self) -> Option<Pool> {
        match self {
            Verdict::Replica(pool) => Some(pool),
            Verdict::Primary | Verdict::Check => None,
        }
    }
}

/// Read replicas and consistency.
impl PgStore {
    /// Reads through a replica: `read_pool` is a pool on a streaming standby (open it with
    /// [`aura_db::open`] on [`Config::for_reads`], so its sessions are read-only), `max_lag`
    /// the replay lag past which reads go to the primary. [`PgStore::open`] does this by
    /// itself when the configuration has a read URL.
    pub fn with_read_pool(mut self, read_pool: Pool, max_lag: Duration) -> Self {
        let target = read_pool.target().to_owned();
        self.reads.replica = Some(Arc::new(Replica::new(
            None,
            Some(read_pool),
            target,
            max_lag,
        )));
        self
    }

    /// `PgStore::open`'s replica: the read pool of `config` (with a read URL), opened and
    /// checked now, so a replica that cannot be reached, or a read URL that points at a
    /// primary, is reported at start-up (once); the store opens anyway, reading from the
    /// primary until the replica answers.
    pub(super) async fn with_read_config(mut self, config: &Config) -> Self {
        let Some(reads) = config.for_reads() else {
            return self;
        };
        let target = reads.app_url().redacted().to_owned();
        let replica = Arc::new(Replica::new(
            Some(reads),
            None,
            target,
            config.read_max_lag(),
        ));
        replica.check().await;
        self.reads.replica = Some(replica);
        self
    }

    /// This handle with another [`Consistency`] for its reads (a cheap clone sharing the
    /// pools and the write position): `store.with_consistency(Consistency::Primary)` for
    /// one call, or once for a handle to give out as `Arc<dyn Store>`.
    pub fn with_consistency(&self, consistency: Consistency) -> Self {
        let mut store = self.clone();
        store.reads.consistency = consistency;
        store
    }

    /// What this handle's reads must see.
    pub fn consistency(&self) -> Consistency {
        self.reads.consistency
    }

    /// A handle with a write position of its own, starting empty, reading with
    /// [`Consistency::ReadYourWrites`]: one per user session or request, so that one
    /// caller's writes keep only that caller's reads on the primary until the replica has
    /// them (clones of a store share their write position).
    pub fn session(&self) -> Self {
        let mut store = self.clone();
        store.reads.writes = Arc::new(AtomicU64::new(NO_WRITE));
        store.reads.consistency = Consistency::ReadYourWrites;
        store
    }

    /// The position of this handle's last write (see [`Consistency::After`]): `None`
    /// before the first write, or without a replica (nothing is recorded then).
    pub fn last_write(&self) -> Option<WalLsn> {
        match AtomicU64::load(&self.reads.writes, Ordering::Relaxed) {
            NO_WRITE | UNKNOWN_WRITE => None,
            lsn => Some(WalLsn(lsn)),
        }
    }

    /// The read pool, when a replica is configured and its pool is open.
    pub fn read_pool(&self) -> Option<Pool> {
        self.reads.pool()
    }

    /// A connection for one read operation: from the read pool on the per-call clone
    /// [`PgStore::routed`] made for the replica, else as [`PgStore::conn`].
    pub(super) async fn read_conn(&self) -> Result<PooledConn, StoreError> {
        match &self.reads.serving {
            Some(pool) => {
                let mut conn = pool.get().await?;
                conn.arm();
                Ok(conn)
            }
            None => self.conn().await,
        }
    }

    /// Runs the read operation `op` on the replica when this handle's consistency allows
    /// it now, else on the primary; a replica that fails it for being gone is marked down
    /// and `op` runs again on the primary.
    pub(super) async fn routed<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        F: Fn(PgStore) -> ReadOp<T>,
    {
        let Some(replica) = &self.reads.replica else {
            return op(self.clone()).await;
        };
        let required = match self.reads.consistency {
            Consistency::Primary => return op(self.clone()).await,
            Consistency::Replica => None,
            Consistency::ReadYourWrites => {
                match AtomicU64::load(&self.reads.writes, Ordering::Relaxed) {
                    UNKNOWN_WRITE => return op(self.clone()).await,
                    NO_WRITE => None,
                    lsn => Some(lsn),
                }
            }
            Consistency::After(lsn) => Some(lsn.0),
        };
        let Some(pool) = replica.route(required).await else {
            return op(self.clone()).await;
        };
        let mut on_replica = self.clone();
        on_replica.reads.serving = Some(pool);
        match op(on_replica).await {
            Err(StoreError::Unavailable(e)) => {
                replica.down(&e.to_string());
                op(self.clone()).await
            }
            other => other,
        }
    }

    /// Runs the write operation `op`; with a replica, then records the primary's WAL
    /// insert position as this handle's write position (also after an ambiguous failure,
    /// which may have committed).
    pub(super) async fn written<T>(
        &self,
        op: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let result = op.await;
        if self.reads.replica.is_some() && matches!(result, Ok(_) | Err(StoreError::Unavailable(_)))
        {
            self.record_write().await;
        }
        result
    }

    async fn record_write(&self) {
        let lsn = async {
            let mut conn = self.conn().await?;
            let lsn = diesel::dsl::sql::<Text>("SELECT pg_current_wal_insert_lsn()::text")
                .get_result::<String>(&mut *conn)
                .await
                .map_err(StoreError::from);
            settle(&mut conn, lsn)
        }
        .await;
        let writes = &self.reads.writes;
        match lsn.map(|text| text.parse::<WalLsn>()) {
            Ok(Ok(lsn)) => {
                let _ = writes.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |seen| {
                    Some(if seen == UNKNOWN_WRITE {
                        lsn.0
                    } else {
                        seen.max(lsn.0)
                    })
                });
            }
            failed => {
                tracing::debug!(
                    ?failed,
                    "could not read the write's WAL position: this handle reads from the \
                     primary until its next write"
                );
                writes.store(UNKNOWN_WRITE, Ordering::Relaxed);
            }
        }
    }
}
