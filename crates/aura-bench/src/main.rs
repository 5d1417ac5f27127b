//! `aura-bench` (`just bench`): aura-store against hand-written tokio-postgres on the local
//! cluster (or `AURA_TEST_DATABASE_URL`), in fresh databases cloned from the migrated
//! template by aura-testkit.
//!
//! Each compared row runs its sides alternately (A B A B …) after a warm-up, for a fixed
//! time each, over several rounds, and reports median ops/s, p50, p99 and max latency,
//! per-task operation counts and the aura/raw ratio (paired by round). The same report is
//! written as JSON under `target/aura-bench/`. Only ratios from one run mean anything: the
//! absolute numbers move with the machine's load.

mod cpu;
mod harness;
mod proxied;
mod raw;
mod replica;
mod report;
mod seed;
mod spans;
mod stats;
mod turn_pages;
mod workloads;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;

use crate::harness::Plan;
use crate::report::{Machine, Report, Row};
use crate::workloads::{Bench, MainData, Sides};

/// Benchmarks of aura-store against raw tokio-postgres.
#[derive(Debug, Parser)]
#[command(name = "aura-bench", version, about)]
struct Args {
    /// Short run (under 2 minutes): fewer, shorter rounds; W4 at 10,000 conversations only.
    #[arg(long)]
    quick: bool,
    /// Only these workloads (comma-separated: W1,W2,…,W12).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Rounds per compared row (default 5, quick 3).
    #[arg(long)]
    rounds: Option<usize>,
    /// Seconds each side runs per round (default 2, quick 0.5).
    #[arg(long)]
    duration: Option<f64>,
    /// Seconds of warm-up per side (default 1, quick 0.3).
    #[arg(long)]
    warmup: Option<f64>,
    /// Skip W4 at 1,000,000 conversations (always skipped in quick mode).
    #[arg(long)]
    no_1m: bool,
    /// Profiling: run only the side of this name (`aura`, `raw`, `raw-3stmt`) of the selected
    /// rows, e.g. `--only W2 --solo aura --rounds 1 --duration 20` under `perf record`.
    #[arg(long)]
    solo: Option<String>,
    /// Profiling: only the compared rows with this many tasks.
    #[arg(long)]
    tasks: Option<usize>,
    /// Leave out the `raw-fifo` side of W1–W3 (a raw pool that rotates through its idle
    /// connections first-in first-out, as bb8's default queue does).
    #[arg(long)]
    no_raw_fifo: bool,
    /// Where to write the JSON report (default: `target/aura-bench/` of the workspace, or
    /// `$CARGO_TARGET_DIR/aura-bench/`).
    #[arg(long)]
    json_dir: Option<PathBuf>,
}

impl Args {
    fn wants(&self, id: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| o.eq_ignore_ascii_case(id))
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let quick = args.quick;
    let secs = |v: Option<f64>, full: f64, q: f64| {
        Duration::from_secs_f64(v.unwrap_or(if quick { q } else { full }))
    };
    let plan = Plan {
        warmup: secs(args.warmup, 1.0, 0.3),
        duration: secs(args.duration, 2.0, 0.5),
        rounds: args.rounds.unwrap_or(if quick { 3 } else { 5 }).max(1),
        solo: args.solo.clone().map(|s| &*Box::leak(s.into_boxed_str())),
        only_tasks: args.tasks,
    };
    let bench = Bench {
        plan,
        samples: if quick { 3 } else { 5 },
        raw_fifo: !args.no_raw_fifo,
    };
    let mode = if quick { "quick" } else { "full" };
    let started = std::time::Instant::now();
    let mut report = Report::new(mode, plan, Machine::probe());
    eprintln!("aura-bench ({mode}): preparing the main database");

    // The first TestDb starts the local cluster and builds the template if needed.
    let main_db = aura_testkit::TestDb::new().await;
    describe_server(&main_db, &mut report.machine).await?;
    eprintln!(
        "{} cores, {}; load {}",
        report.machine.cores, report.machine.postgres, report.machine.load_before
    );

    if ["W1", "W2", "W3", "W5", "W9", "W10", "W12"]
        .iter()
        .any(|w| args.wants(w))
    {
        let data = MainData::seed(&main_db).await?;
        let sides = Sides::open(&main_db, bench.raw_fifo).await?;
        if args.wants("W1") {
            report
                .rows
                .extend(workloads::w1(&bench, &sides, &data).await?);
        }
        if args.wants("W2") {
            report
                .rows
                .extend(workloads::w2(&bench, &sides, &data).await?);
        }
        if args.wants("W3") {
            report
                .rows
                .extend(workloads::w3(&bench, &sides, &data).await?);
        }
        if args.wants("W5") {
            report.rows.push(workloads::w5(&bench, &sides).await?);
        }
        if args.wants("W9") {
            report
                .rows
                .extend(spans::w9(&bench, &main_db, &sides, &data).await?);
        }
        if args.wants("W10") {
            report
                .rows
                .extend(proxied::w10(&bench, &main_db, &data).await?);
        }
        if args.wants("W12") {
            report
                .rows
                .extend(replica::w12(&bench, &main_db, &data).await?);
        }
    }
    drop(main_db);

    if args.wants("W4") {
        let mut dbs = vec![workloads::ListDb::new(10_000, "10k").await?];
        if !quick && !args.no_1m {
            dbs.push(workloads::ListDb::new(1_000_000, "1M").await?);
        }
        report.rows.extend(workloads::w4(&bench, &dbs).await?);
    }
    if args.wants("W11") {
        eprintln!("aura-bench: preparing the turn pages database");
        report.rows.extend(turn_pages::w11(&bench).await?);
    }
    if args.wants("W6") {
        report.rows.extend(workloads::w6(&bench).await?);
    }
    if args.wants("W7") {
        report.rows.push(workloads::w7(&bench).await?);
    }
    if args.wants("W8") {
        eprintln!("aura-bench: preparing the TLS database");
        let tls_db = aura_testkit::TestDb::new_tls().await;
        let data = MainData::seed(&tls_db).await?;
        let sides = Sides::open(&tls_db, false).await?;
        report
            .rows
            .extend(workloads::w8(&bench, &sides, &data).await?);
    }

    report.machine.load_after = report::loadavg();
    report.elapsed_s = started.elapsed().as_secs_f64();
    println!("{}", report.render());
    let dir = args.json_dir.clone().unwrap_or_else(default_json_dir);
    let path = report.write_json(&dir)?;
    println!("JSON: {}", path.display());
    let missed = report
        .rows
        .iter()
        .filter(|r| match r {
            Row::Compare(c) => c.checks.iter().any(|c| !c.ok),
            Row::Samples(s) => s.checks.iter().any(|c| !c.ok),
            Row::Derived(d) => d.checks.iter().any(|c| !c.ok),
        })
        .count();
    if missed > 0 {
        println!(
            "{missed} row(s) missed a target (see above); absolute numbers on a busy machine move 2-3x, ratios less."
        );
    }
    Ok(())
}

/// Fills in the Postgres part of the machine description.
async fn describe_server(db: &aura_testkit::TestDb, m: &mut Machine) -> anyhow::Result<()> {
    let su = db.superuser_client().await;
    m.postgres = su.query_one("SELECT version()", &[]).await?.try_get(0)?;
    for name in [
        "server_version",
        "shared_buffers",
        "fsync",
        "synchronous_commit",
        "max_connections",
    ] {
        let value: String = su
            .query_one("SELECT current_setting($1)", &[&name])
            .await?
            .try_get(0)?;
        m.settings.push((name.to_owned(), value));
    }
    m.server = db.admin_url().redacted().to_owned();
    Ok(())
}

/// `$CARGO_TARGET_DIR/aura-bench`, else `<workspace>/target/aura-bench`.
fn default_json_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
            manifest
                .parent()
                .and_then(std::path::Path::parent)
                .unwrap_or(manifest)
                .join("target")
        });
    target.join("aura-bench")
}
