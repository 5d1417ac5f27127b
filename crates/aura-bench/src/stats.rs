//! Numbers out of latencies: one round's throughput and percentiles, a side's medians over
//! its rounds, paired ratios between sides.

use std::time::Duration;

use serde::Serialize;

/// One measured run of one side.
#[derive(Debug, Clone, Serialize)]
pub struct RoundStats {
    /// Operations completed.
    pub ops: u64,
    /// Wall time from the first task's start to the last task's last completion, ns.
    pub elapsed_ns: u64,
    /// `ops / elapsed`.
    pub ops_per_sec: f64,
    /// Median latency, ns.
    pub p50_ns: u64,
    /// 99th percentile latency, ns.
    pub p99_ns: u64,
    /// Slowest operation, ns.
    pub max_ns: u64,
    /// Operations completed by each task.
    pub per_task: Vec<u64>,
    /// CPU time of the bench process per operation, ns (NaN: not measured).
    pub client_cpu_ns: f64,
    /// CPU time of the side's server backends per operation, ns (NaN: not measured).
    pub server_cpu_ns: f64,
}

impl RoundStats {
    /// Summarises one run from every latency (any order), each task's count and the CPU
    /// time (client, server) the run took.
    pub fn new(
        mut latencies_ns: Vec<u64>,
        elapsed: Duration,
        per_task: Vec<u64>,
        cpu_ns: (Option<u64>, Option<u64>),
    ) -> Self {
        latencies_ns.sort_unstable();
        let ops = latencies_ns.len() as u64;
        let elapsed_ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX).max(1);
        RoundStats {
            ops,
            elapsed_ns,
            ops_per_sec: ops as f64 * 1e9 / elapsed_ns as f64,
            p50_ns: percentile(&latencies_ns, 50.0),
            p99_ns: percentile(&latencies_ns, 99.0),
            max_ns: latencies_ns.last().copied().unwrap_or_default(),
            per_task,
            client_cpu_ns: cpu_ns.0.map_or(f64::NAN, |c| c as f64 / ops.max(1) as f64),
            server_cpu_ns: cpu_ns.1.map_or(f64::NAN, |c| c as f64 / ops.max(1) as f64),
        }
    }

    /// Most over least operations per task (`inf` when a task completed none).
    pub fn spread(&self) -> f64 {
        let min = self.per_task.iter().copied().min().unwrap_or_default();
        let max = self.per_task.iter().copied().max().unwrap_or_default();
        if min == 0 {
            f64::INFINITY
        } else {
            max as f64 / min as f64
        }
    }
}

/// Nearest-rank percentile of sorted values (0 when empty).
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Median of the values (mean of the middle two for an even count; NaN when empty).
pub fn median(values: impl IntoIterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.into_iter().collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// A side's rounds, summarised: medians of the per-round numbers, extremes over all rounds.
#[derive(Debug, Clone, Serialize)]
pub struct SideSummary {
    /// `aura`, `raw`, ….
    pub side: String,
    /// Median over rounds of ops/s.
    pub ops_per_sec: f64,
    /// Median over rounds of the per-round p50, ns.
    pub p50_ns: f64,
    /// Median over rounds of the per-round p99, ns.
    pub p99_ns: f64,
    /// Slowest operation of all rounds, ns.
    pub max_ns: u64,
    /// Fewest operations any task completed in any round.
    pub per_task_min: u64,
    /// Most operations any task completed in any round.
    pub per_task_max: u64,
    /// Worst round's most/least operations per task (1.0 with one task).
    pub worst_spread: f64,
    /// Median over rounds of client CPU per operation, ns.
    pub client_cpu_ns: f64,
    /// Median over rounds of server (backend) CPU per operation, ns.
    pub server_cpu_ns: f64,
    /// Every round, in order.
    pub rounds: Vec<RoundStats>,
}

impl SideSummary {
    /// Summarises the rounds of one side.
    pub fn new(side: &str, rounds: Vec<RoundStats>) -> Self {
        SideSummary {
            side: side.to_owned(),
            ops_per_sec: median(rounds.iter().map(|r| r.ops_per_sec)),
            p50_ns: median(rounds.iter().map(|r| r.p50_ns as f64)),
            p99_ns: median(rounds.iter().map(|r| r.p99_ns as f64)),
            max_ns: rounds.iter().map(|r| r.max_ns).max().unwrap_or_default(),
            per_task_min: rounds
                .iter()
                .flat_map(|r| r.per_task.iter().copied())
                .min()
                .unwrap_or_default(),
            per_task_max: rounds
                .iter()
                .flat_map(|r| r.per_task.iter().copied())
                .max()
                .unwrap_or_default(),
            worst_spread: rounds.iter().map(RoundStats::spread).fold(1.0, f64::max),
            client_cpu_ns: median(rounds.iter().map(|r| r.client_cpu_ns)),
            server_cpu_ns: median(rounds.iter().map(|r| r.server_cpu_ns)),
            rounds,
        }
    }
}

/// Median over rounds of `a`'s ops/s divided by `b`'s in the same round: pairing rounds
/// cancels drift that a ratio of medians would keep.
pub fn paired_ratio(a: &SideSummary, b: &SideSummary) -> f64 {
    median(
        a.rounds
            .iter()
            .zip(&b.rounds)
            .map(|(x, y)| x.ops_per_sec / y.ops_per_sec),
    )
}

/// Repeated timings of a one-shot operation.
#[derive(Debug, Clone, Serialize)]
pub struct Samples {
    /// How many.
    pub n: usize,
    /// Median, ns.
    pub median_ns: f64,
    /// Fastest, ns.
    pub min_ns: u64,
    /// Slowest, ns.
    pub max_ns: u64,
    /// Every timing in order, ns.
    pub all_ns: Vec<u64>,
}

impl Samples {
    /// Summarises the timings.
    pub fn new(all: &[Duration]) -> Self {
        let all_ns: Vec<u64> = all
            .iter()
            .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
            .collect();
        Samples {
            n: all_ns.len(),
            median_ns: median(all_ns.iter().map(|&n| n as f64)),
            min_ns: all_ns.iter().copied().min().unwrap_or_default(),
            max_ns: all_ns.iter().copied().max().unwrap_or_default(),
            all_ns,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), 50);
        assert_eq!(percentile(&v, 99.0), 99);
        assert_eq!(percentile(&v, 100.0), 100);
        assert_eq!(percentile(&[7], 99.0), 7);
        assert_eq!(percentile(&[], 50.0), 0);
    }

    #[test]
    fn medians() {
        assert_eq!(median([3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median([4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median([]).is_nan());
    }

    #[test]
    fn spread_is_infinite_when_a_task_starved() {
        let r = RoundStats::new(
            vec![1, 2, 3],
            Duration::from_secs(1),
            vec![3, 0],
            (None, None),
        );
        assert!(r.spread().is_infinite());
        let r = RoundStats::new(
            vec![1, 2, 3],
            Duration::from_secs(1),
            vec![2, 1],
            (None, None),
        );
        assert_eq!(r.spread(), 2.0);
    }
}
