//! Closed-loop measurement: `tasks` tokio tasks each run one operation after the other for a
//! fixed time and record every latency. The sides of a comparison (aura, raw, …) run one
//! after the other, A B A B …, after a warm-up of each, so that drift (CPU frequency, other
//! load, table growth) hits every side alike.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Barrier;

use crate::cpu;
use crate::stats::RoundStats;

/// The future of one operation.
pub type OpFuture = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;

/// One operation, called as `op(task, i)`: `task` is the caller's index (0..tasks), `i`
/// counts that task's calls. Both sides of a row get the same `(task, i)` sequence, so they
/// touch the same rows.
pub type OpFn = Arc<dyn Fn(usize, u64) -> OpFuture + Send + Sync>;

/// One side of a comparison: a name (`aura`, `raw`, …) and its operation.
#[derive(Clone)]
pub struct Side {
    /// Shown in the table: `aura`, `raw`, `raw-3stmt`, ….
    pub name: &'static str,
    /// The operation.
    pub op: OpFn,
    /// Process ids of the server backends this side's connections talk to (for server CPU
    /// per operation; empty: not measured).
    pub backends: Arc<Vec<u32>>,
}

impl Side {
    /// The same side, with the backends its connections talk to.
    pub fn on(mut self, backends: &Arc<Vec<u32>>) -> Side {
        self.backends = backends.clone();
        self
    }
}

/// Wraps a closure returning a future as a [`Side`].
pub fn side<F, Fut>(name: &'static str, f: F) -> Side
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    Side {
        name,
        op: Arc::new(move |task, i| Box::pin(f(task, i))),
        backends: Arc::new(Vec::new()),
    }
}

/// How long and how often each side runs.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Unmeasured run of each side before the first round.
    pub warmup: Duration,
    /// Measured run of each side in each round.
    pub duration: Duration,
    /// Rounds; each runs every side once, in order.
    pub rounds: usize,
    /// Run only the side of this name (profiling: `perf record -p`, `strace -p`); the
    /// other sides get no rounds.
    pub solo: Option<&'static str>,
    /// Run only rows with this many tasks (profiling); the others get no rounds.
    pub only_tasks: Option<usize>,
}

/// Runs every side `plan.rounds` times, alternating, after one warm-up run each; returns
/// `[side][round]`.
pub async fn compare(
    sides: &[Side],
    tasks: usize,
    plan: Plan,
) -> anyhow::Result<Vec<Vec<RoundStats>>> {
    // A side named `aura@100` is the `aura` side of its row.
    let runs = |s: &Side| {
        plan.solo
            .is_none_or(|solo| s.name.split('@').next() == Some(solo))
            && plan.only_tasks.is_none_or(|t| t == tasks)
    };
    for s in sides.iter().filter(|s| runs(s)) {
        run_once(s, tasks, plan.warmup).await?;
    }
    let mut out: Vec<Vec<RoundStats>> = sides.iter().map(|_| Vec::new()).collect();
    // ABBA: odd rounds run the sides in reverse, so no side always runs first (after the
    // other side's run, or after a switch of rows).
    for round in 0..plan.rounds {
        let mut order: Vec<usize> = (0..sides.len()).filter(|&i| runs(&sides[i])).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            out[i].push(run_once(&sides[i], tasks, plan.duration).await?);
        }
    }
    Ok(out)
}

/// One task's record of a run.
struct TaskRun {
    started: Instant,
    ended: Instant,
    latencies_ns: Vec<u64>,
}

/// Runs the side's operation on `tasks` tasks for `duration` (each task starts no new call
/// after it).
pub async fn run_once(side: &Side, tasks: usize, duration: Duration) -> anyhow::Result<RoundStats> {
    let op = &side.op;
    let cpu_before = (cpu::own_ns(), cpu::pids_ns(&side.backends));
    let barrier = Arc::new(Barrier::new(tasks));
    // Enough room that pushing never reallocates while measuring, for any realistic rate.
    let capacity = (400_000 / tasks).max(4096);
    let handles: Vec<_> = (0..tasks)
        .map(|task| {
            let op = op.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                let mut latencies_ns = Vec::with_capacity(capacity);
                barrier.wait().await;
                let started = Instant::now();
                let deadline = started + duration;
                let mut t0 = started;
                let mut i = 0u64;
                loop {
                    op(task, i).await?;
                    let t1 = Instant::now();
                    latencies_ns.push(u64::try_from((t1 - t0).as_nanos()).unwrap_or(u64::MAX));
                    i += 1;
                    if t1 >= deadline {
                        return Ok::<_, anyhow::Error>(TaskRun {
                            started,
                            ended: t1,
                            latencies_ns,
                        });
                    }
                    t0 = t1;
                }
            })
        })
        .collect();
    let mut runs = Vec::with_capacity(tasks);
    for h in handles {
        runs.push(h.await??);
    }
    let cpu_after = (cpu::own_ns(), cpu::pids_ns(&side.backends));
    let started = runs
        .iter()
        .map(|r| r.started)
        .min()
        .unwrap_or_else(Instant::now);
    let ended = runs.iter().map(|r| r.ended).max().unwrap_or(started);
    let per_task: Vec<u64> = runs.iter().map(|r| r.latencies_ns.len() as u64).collect();
    let mut all: Vec<u64> = Vec::with_capacity(per_task.iter().sum::<u64>() as usize);
    for r in runs {
        all.extend(r.latencies_ns);
    }
    let delta = |a: Option<u64>, b: Option<u64>| Some(b?.saturating_sub(a?));
    let cpu = (
        delta(cpu_before.0, cpu_after.0),
        delta(cpu_before.1, cpu_after.1),
    );
    Ok(RoundStats::new(all, ended - started, per_task, cpu))
}

/// A cheap, stateless pseudo-random number from `(task, i)` (splitmix64): both sides of a
/// row pick the same rows in the same order.
pub fn mix(task: usize, i: u64) -> u64 {
    let mut z = (task as u64)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(i)
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
