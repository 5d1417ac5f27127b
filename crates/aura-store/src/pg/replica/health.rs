//! What is known about a store's replica: reachable, in recovery, replayed up to which
//! position, lagging or not, checked at most every [`Replica::check_every`]; and the one
//! warning per episode (down, lagging, a primary behind the read URL).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use aura_db::{Config, Pool};
use diesel::sql_types::{Bool, Double, Nullable, Text};

use crate::consistency::WalLsn;
use crate::error::StoreError;
use crate::pg::one_row::OneRowDsl;

/// How long a replica found down is left alone before it is checked again.
const RETRY_DOWN: Duration = Duration::from_secs(5);
/// The longest a health check is trusted.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// The replica of a store and what is known about it.
#[derive(Debug)]
pub(super) struct Replica {
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
    pub(super) fn new(
        config: Option<Config>,
        pool: Option<Pool>,
        target: String,
        max_lag: Duration,
    ) -> Self {
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

    /// Checks the replica now (at start-up: its warnings come at once).
    pub(super) async fn refresh(&self) {
        self.check().await;
    }

    /// A read failed on the replica because it is gone: reads go to the primary for
    /// [`RETRY_DOWN`] (warned once).
    pub(super) fn mark_down(&self, cause: &str) {
        self.down(cause);
    }

    /// The read pool, when open.
    pub(super) fn pool(&self) -> Option<Pool> {
        self.snapshot().pool
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
    pub(super) async fn route(&self, required: Option<u64>) -> Option<Pool> {
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
        .one_row(&mut *conn)
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
