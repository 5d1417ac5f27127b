#![doc = include_str!("../README.md")]

mod faults;
mod invariants;
mod ledger;
mod tally;
mod workload;

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context;
use aura_store::PgStore;
use aura_testkit::{FaultProxy, RestartCluster};
use clap::Parser;
use tokio::time::{Instant, timeout};

use crate::faults::Injector;
use crate::ledger::Ledger;
use crate::tally::Tally;
use crate::workload::Workload;

/// The pool's application_name (the injector kills backends by it).
const APP: &str = "aura-soak";
/// Time of the short mode (CI).
const SHORT: Duration = Duration::from_secs(25);
/// The longest the workload may take to finish its calls once the time is up.
const DRAIN: Duration = Duration::from_secs(120);
/// A restart at most this often (and one in the middle of a short run).
const RESTART_EVERY: Duration = Duration::from_secs(30);

/// Chaos soak: a mixed aura-store workload while backends are killed, connections cut and
/// the server restarted, then the invariants checked. Exits 1 when one fails.
#[derive(Debug, Parser)]
#[command(name = "aura-soak", version, about)]
struct Args {
    /// Seconds of workload and faults.
    #[arg(long, default_value_t = 120)]
    duration: u64,
    /// Short run for CI (25 s, one restart in the middle); overrides --duration.
    #[arg(long)]
    short: bool,
    /// Workload tasks.
    #[arg(long, default_value_t = 16)]
    tasks: usize,
    /// Connections in the store's pool.
    #[arg(long, default_value_t = 8)]
    pool: u32,
    /// Seed of the workload's and the injector's choices (default: from the clock).
    #[arg(long)]
    seed: Option<u64>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("aura-soak: cannot start a runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("aura-soak: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The soak; `Ok(false)` when an invariant failed.
async fn run(args: Args) -> anyhow::Result<bool> {
    let duration = if args.short {
        SHORT
    } else {
        Duration::from_secs(args.duration)
    };
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    });
    eprintln!(
        "aura-soak: {duration:?}, {} tasks on {} connections, seed {seed}",
        args.tasks, args.pool
    );
    let cluster = RestartCluster::lock().await;
    let db = cluster.test_db().await;
    let proxy = FaultProxy::for_db(&db).await;
    let config = proxy
        .config_builder(&db)
        .max_conns(args.pool)
        .application_name(APP)
        .build()
        .context("the soak's configuration")?;
    let store = Arc::new(PgStore::open(&config).await.context("open the store")?);
    let (ledger, tally) = (Arc::new(Ledger::default()), Arc::new(Tally::default()));
    let workload = Arc::new(Workload::new(store.clone(), ledger.clone(), tally.clone()));

    let started = Instant::now();
    let end = started + duration;
    let tasks: Vec<_> = (0..args.tasks)
        .map(|t| tokio::spawn(workload.clone().task(seed.wrapping_add(t as u64 + 1))))
        .collect();
    let every = RESTART_EVERY.min(duration / 2);
    let restarts: Vec<Instant> = (1..)
        .map(|k| started + every * k)
        .take_while(|at| *at + Duration::from_secs(3) < end)
        .collect();
    let injector = Injector {
        proxy: &proxy,
        cluster: &cluster,
        admin: db.superuser_url().clone(),
        app: APP,
        tally: &tally,
    };
    let injected = injector.run(seed, end, &restarts).await;
    proxy.clear_cut();
    workload.stop.store(true, Ordering::Relaxed);
    injected.context("the fault injector")?;
    for task in tasks {
        timeout(DRAIN, task)
            .await
            .context("a workload task did not finish its calls in time (hung)")?
            .context("a workload task panicked")?;
    }
    tally.fault(faults::CUT_APPEND, proxy.cuts() as u64);
    let ran = started.elapsed();

    let admin = aura_db::connect_raw(db.superuser_url())
        .await
        .context("connect to check the invariants")?;
    let checks = invariants::check(&admin, &ledger.snapshot(), store.pool().stats()).await?;
    let writes = ledger.snapshot();

    println!("aura-soak: ran {ran:.1?} (seed {seed})");
    print!("{}", tally.render());
    println!(
        "acknowledged writes: {} conversations, {} turns ({} appends of unknown outcome), {} runs, {} requests",
        writes.conversations.len(),
        writes.turns.len(),
        writes.maybe_turns.len(),
        writes.runs.len(),
        writes.requests.len()
    );
    println!("invariants");
    let mut ok = true;
    for c in &checks {
        if c.holds() {
            println!("  ok      {}", c.name);
        } else {
            ok = false;
            println!("  FAILED  {} ({} offences)", c.name, c.offences.len());
            for o in c.offences.iter().take(5) {
                println!("            {o}");
            }
        }
    }
    let (unexpected, examples) = tally.unexpected();
    if unexpected == 0 {
        println!("  ok      every failure is one an injected fault explains (none hung)");
    } else {
        ok = false;
        println!("  FAILED  {unexpected} failures no injected fault explains (or hung):");
        for e in examples.iter().take(5) {
            println!("            {e}");
        }
    }
    println!("{}", if ok { "soak: ok" } else { "soak: FAILED" });
    Ok(ok)
}
