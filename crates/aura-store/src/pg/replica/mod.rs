//! Reads on a streaming read replica (`AURA_DB_READ_URL`), with the consistency each
//! handle asks for ([`Consistency`]).
//!
//! - **Which reads.** The read operations (`get_*`, `list_*`) run through
//!   [`PgStore::routed`]: it asks the replica (`health.rs`) whether this read may go there, and runs
//!   the operation on a clone of the store whose [`PgStore::read_conn`] checks out from the
//!   read pool. Writes and transactions never use the read pool, whose sessions are
//!   read-only besides (`default_transaction_read_only`, [`aura_db::Config::for_reads`]).
//! - **Replica health**, cached: `pg_is_in_recovery()`, `pg_last_wal_replay_lsn()` and the
//!   replay lag (0 when everything received is replayed, else the age of the last replayed
//!   commit), checked on the replica at most every `Replica::check_every` (one task
//!   checks, the others use what is known), within the connect timeout. Lag past the bound,
//!   or a failed check, sends reads to the primary; a down replica is checked again after
//!   `RETRY_DOWN`. A read that fails on the replica because it is gone
//!   ([`StoreError::Unavailable`]) marks it down and runs again on the primary.
//! - **Read-your-writes.** Every write through a handle with a replica records the
//!   primary's `pg_current_wal_insert_lsn()` after it (one extra round trip on the primary,
//!   only when a replica is configured) into the handle's write position, shared by its
//!   clones ([`PgStore::session`] starts a new one). A read that must see it goes to the
//!   replica only once `pg_last_wal_replay_lsn()` has reached it.
//! - **Saying so once.** Unreachable, lagging past the bound, or a primary behind the read
//!   URL: one `tracing` warning when it starts (and an info line when it ends), never one
//!   per call.

mod health;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aura_db::{Config, Pool, PooledConn};
use diesel::sql_types::Text;

use self::health::Replica;
use super::{PgStore, settle};
use crate::consistency::{Consistency, WalLsn};
use crate::error::StoreError;
use crate::pg::one_row::OneRowDsl;

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
        self.replica.as_ref().and_then(|r| r.pool())
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
        replica.refresh().await;
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
        // A closed store answers Closed (from the primary's pool), never from the replica.
        let Some(replica) = self.reads.replica.as_ref().filter(|_| !self.is_closed()) else {
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
        // Boxed: only stores with a replica route; the others do not carry its future.
        let Some(pool) = Box::pin(replica.route(required)).await else {
            return op(self.clone()).await;
        };
        let mut on_replica = self.clone();
        on_replica.reads.serving = Some(pool);
        match op(on_replica).await {
            Err(StoreError::Unavailable(e)) => {
                replica.mark_down(&e.to_string());
                op(self.clone()).await
            }
            other => other,
        }
    }

    /// Runs the write operation `start` makes; with a replica, then records the primary's WAL
    /// insert position as this handle's write position (also after an ambiguous failure,
    /// which may have committed).
    pub(super) async fn written<T, Fut>(&self, start: impl FnOnce() -> Fut) -> Result<T, StoreError>
    where
        Fut: Future<Output = Result<T, StoreError>>,
    {
        let result = start().await;
        if self.reads.replica.is_some() && matches!(result, Ok(_) | Err(StoreError::Unavailable(_)))
        {
            // Boxed: only stores with a replica wait for it; the others do not carry it.
            Box::pin(self.record_write()).await;
        }
        result
    }

    async fn record_write(&self) {
        let lsn = async {
            let mut conn = self.conn().await?;
            let lsn = diesel::dsl::sql::<Text>("SELECT pg_current_wal_insert_lsn()::text")
                .one_row::<String>(&mut *conn)
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
