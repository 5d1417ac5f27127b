//! The fault injector: at random intervals (seeded) it kills backends of the store's pool
//! (`pg_terminate_backend`), cuts every connection through the fault proxy, or arms the
//! proxy to cut a connection right after an append statement reached the server; on a
//! schedule it restarts the private cluster (`pg_ctl restart -m fast`).

use std::time::Duration;

use aura_db::Dsn;
use aura_testkit::{FaultProxy, RestartLock};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::time::{Instant, sleep, timeout};

use crate::tally::Tally;

/// Fault kinds as printed.
pub const KILLED: &str = "backends killed (pg_terminate_backend)";
/// Proxy cuts of every connection at once.
pub const CUT_ALL: &str = "cut all connections (events)";
/// Connections those cuts closed.
pub const CUT_CONNS: &str = "connections closed by those cuts";
/// Appends cut after reaching the server (counted from the proxy at the end).
pub const CUT_APPEND: &str = "append cut after reaching the server";
/// Server restarts.
pub const RESTARTS: &str = "server restarts (pg_ctl restart -m fast)";

/// Injects faults into the pool of application `app` on the database `admin` reaches.
pub struct Injector<'a> {
    /// The proxy the store's pool goes through.
    pub proxy: &'a FaultProxy,
    /// The private cluster, held alone.
    pub cluster: &'a RestartLock,
    /// Superuser DSN to the soak's database.
    pub admin: Dsn,
    /// The pool's application_name.
    pub app: &'static str,
    /// Counters.
    pub tally: &'a Tally,
}

impl Injector<'_> {
    /// Injects faults until `end`; restarts the server at each of `restarts`.
    pub async fn run(&self, seed: u64, end: Instant, restarts: &[Instant]) -> anyhow::Result<()> {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut restarts = restarts.iter().copied().peekable();
        loop {
            let pause = Duration::from_millis(rng.random_range(150..900));
            let now = Instant::now();
            if now + pause >= end {
                sleep(end.saturating_duration_since(now)).await;
                return Ok(());
            }
            sleep(pause).await;
            if restarts.next_if(|at| *at <= Instant::now()).is_some() {
                self.cluster.restart().await?;
                self.tally.fault(RESTARTS, 1);
                continue;
            }
            match rng.random_range(0..100) {
                0..55 => {
                    let n = self.kill(rng.random_range(1..=3)).await;
                    self.tally.fault(KILLED, n);
                }
                55..80 => {
                    let open = self.proxy.open_connections() as u64;
                    self.proxy.cut_all();
                    self.tally.fault(CUT_ALL, 1);
                    self.tally.fault(CUT_CONNS, open);
                }
                _ => self
                    .proxy
                    .cut_after_query_containing("INSERT INTO aura.turns"),
            }
        }
    }

    /// Terminates up to `n` of the pool's backends; how many were.
    async fn kill(&self, n: i64) -> u64 {
        let killed = async {
            let client = aura_db::connect_raw(&self.admin).await.ok()?;
            let row = client
                .query_one(
                    "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM \
                     (SELECT pid FROM pg_stat_activity WHERE datname = current_database() \
                      AND application_name = $1 ORDER BY random() LIMIT $2) s",
                    &[&self.app, &n],
                )
                .await
                .ok()?;
            u64::try_from(row.get::<_, i64>(0)).ok()
        };
        // During a restart no connection is made: nothing killed.
        timeout(Duration::from_secs(10), killed)
            .await
            .ok()
            .flatten()
            .unwrap_or(0)
    }
}
