//! What a run found: the machine, every row with its checks against the targets; printed
//! as a table and written as JSON under `target/aura-bench/`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::harness::Plan;
use crate::stats::{Samples, SideSummary};

/// One target checked against a measured value.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// The target, with the measured value: `aura/raw 0.97x >= 0.95x`.
    pub what: String,
    /// Met.
    pub ok: bool,
}

impl Check {
    /// A check that `value >= limit` (a ratio).
    pub fn at_least(label: &str, value: f64, limit: f64) -> Check {
        Check {
            what: format!("{label} {value:.2}x >= {limit:.2}x"),
            ok: value >= limit,
        }
    }

    /// A check that `value <= limit` (a ratio).
    pub fn at_most(label: &str, value: f64, limit: f64) -> Check {
        Check {
            what: format!("{label} {value:.2}x <= {limit:.2}x"),
            ok: value <= limit,
        }
    }

    /// A check that a time in ns stays under `limit_ns`.
    pub fn under(label: &str, value_ns: f64, limit_ns: f64) -> Check {
        Check {
            what: format!("{label} {} < {}", fmt_ns(value_ns), fmt_ns(limit_ns)),
            ok: value_ns < limit_ns,
        }
    }
}

/// Sides of one workload measured against each other.
#[derive(Debug, Clone, Serialize)]
pub struct CompareRow {
    /// `W1` … `W5`.
    pub id: String,
    /// What runs.
    pub name: String,
    /// Concurrent tasks.
    pub tasks: usize,
    /// Connections in each side's pool.
    pub pool: usize,
    /// Sides, the first being aura's.
    pub sides: Vec<SideSummary>,
    /// Paired ratios of ops/s: `("aura/raw", 0.97)`, …
    pub ratios: Vec<(String, f64)>,
    /// Targets.
    pub checks: Vec<Check>,
}

/// A one-shot operation timed repeatedly.
#[derive(Debug, Clone, Serialize)]
pub struct SamplesRow {
    /// `W6`, `W7`.
    pub id: String,
    /// What runs.
    pub name: String,
    /// The timings.
    pub samples: Samples,
    /// Targets.
    pub checks: Vec<Check>,
}

/// A number computed from other rows (page latency growth).
#[derive(Debug, Clone, Serialize)]
pub struct DerivedRow {
    /// `W4`.
    pub id: String,
    /// What it is.
    pub name: String,
    /// The value (a ratio).
    pub value: f64,
    /// Targets.
    pub checks: Vec<Check>,
}

/// One line (or group of lines) of the report.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Row {
    /// aura against raw.
    Compare(CompareRow),
    /// Repeated one-shot timings.
    Samples(SamplesRow),
    /// Computed from other rows.
    Derived(DerivedRow),
}

impl Row {
    fn checks(&self) -> &[Check] {
        match self {
            Row::Compare(r) => &r.checks,
            Row::Samples(r) => &r.checks,
            Row::Derived(r) => &r.checks,
        }
    }

    fn label(&self) -> String {
        match self {
            Row::Compare(r) => format!("{} {} ({} task{})", r.id, r.name, r.tasks, plural(r.tasks)),
            Row::Samples(r) => format!("{} {}", r.id, r.name),
            Row::Derived(r) => format!("{} {}", r.id, r.name),
        }
    }
}

/// Where and when the run happened.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// Logical CPUs this process may use.
    pub cores: usize,
    /// `model name` of /proc/cpuinfo.
    pub cpu: String,
    /// Kernel release.
    pub kernel: String,
    /// /proc/loadavg when the run started.
    pub load_before: String,
    /// /proc/loadavg when it ended.
    pub load_after: String,
    /// `SELECT version()`.
    pub postgres: String,
    /// Server settings that move the numbers.
    pub settings: Vec<(String, String)>,
    /// Where (redacted superuser DSN of the maintenance database).
    pub server: String,
    /// Start of the run, UTC, RFC 3339.
    pub date: String,
}

impl Machine {
    /// What the OS says; Postgres fields are filled in by the caller.
    pub fn probe() -> Machine {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let cpu = read("/proc/cpuinfo")
            .lines()
            .find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
            })
            .unwrap_or_else(|| "unknown".to_owned());
        Machine {
            cores: std::thread::available_parallelism().map_or(1, usize::from),
            cpu,
            kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
            load_before: loadavg(),
            load_after: String::new(),
            postgres: String::new(),
            settings: Vec::new(),
            server: String::new(),
            date: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        }
    }
}

/// The first three fields of /proc/loadavg.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Everything a run produced.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `quick` or `full`.
    pub mode: String,
    /// Warm-up, duration and rounds of the compared rows.
    pub warmup_ms: u128,
    /// Measured time of each side in each round.
    pub duration_ms: u128,
    /// Rounds.
    pub rounds: usize,
    /// The machine.
    pub machine: Machine,
    /// The rows, in the order they ran.
    pub rows: Vec<Row>,
    /// Wall time of the whole run (seeding included), in seconds.
    pub elapsed_s: f64,
}

impl Report {
    /// An empty report for a run with `plan`.
    pub fn new(mode: &str, plan: Plan, machine: Machine) -> Report {
        Report {
            mode: mode.to_owned(),
            warmup_ms: plan.warmup.as_millis(),
            duration_ms: plan.duration.as_millis(),
            rounds: plan.rounds,
            machine,
            rows: Vec::new(),
            elapsed_s: 0.0,
        }
    }

    /// The report as text: header, table, targets.
    pub fn render(&self) -> String {
        let m = &self.machine;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "aura-bench ({} mode): {} rounds of {:.1} s per side after a {:.1} s warm-up, sides alternating (ABBA); medians over rounds, ratios paired by round",
            self.mode,
            self.rounds,
            self.duration_ms as f64 / 1000.0,
            self.warmup_ms as f64 / 1000.0,
        );
        let _ = writeln!(out, "date:     {}", m.date);
        let _ = writeln!(
            out,
            "machine:  {} cores ({}), Linux {}",
            m.cores, m.cpu, m.kernel
        );
        let _ = writeln!(
            out,
            "load:     {} at start, {} at end (1/5/15 min)",
            m.load_before, m.load_after
        );
        let _ = writeln!(out, "postgres: {}", m.postgres);
        let settings: Vec<String> = m.settings.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(out, "          {} on {}", settings.join(" "), m.server);
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "p50/p99/max: latency of one operation, pool wait included; per-task ops: fewest..most \
             completed by one task in any round; cpu/op, srv/op: CPU time per operation of the \
             bench process and of the side's server backends; ratio: ops/s over the raw side's"
        );
        let _ = writeln!(
            out,
            "{:<44} {:<10} {:>12} {:>9} {:>9} {:>9} {:>13} {:>9} {:>9} {:>7}  check",
            "workload",
            "side",
            "ops/s",
            "p50",
            "p99",
            "max",
            "per-task ops",
            "cpu/op",
            "srv/op",
            "ratio"
        );
        for row in &self.rows {
            render_row(&mut out, row);
        }
        let _ = writeln!(out);
        let checks: Vec<(String, &Check)> = self
            .rows
            .iter()
            .flat_map(|r| r.checks().iter().map(move |c| (r.label(), c)))
            .collect();
        let _ = writeln!(out, "run time: {:.0} s, seeding included", self.elapsed_s);
        let met = checks.iter().filter(|(_, c)| c.ok).count();
        let _ = writeln!(out, "targets: {met} met, {} missed", checks.len() - met);
        for (label, c) in &checks {
            let _ = writeln!(
                out,
                "  {} {label}: {}",
                if c.ok { "met   " } else { "MISSED" },
                c.what
            );
        }
        out
    }

    /// Writes the JSON to `dir/aura-bench-<date>.json` and `dir/latest.json`; returns the
    /// first path.
    pub fn write_json(&self, dir: &Path) -> anyhow::Result<PathBuf> {
        std::fs::create_dir_all(dir)?;
        let text = serde_json::to_string_pretty(self)?;
        let stamp = self.machine.date.replace(':', "");
        let path = dir.join(format!("aura-bench-{}-{stamp}.json", self.mode));
        std::fs::write(&path, &text)?;
        std::fs::write(dir.join("latest.json"), &text)?;
        Ok(path)
    }
}

fn render_row(out: &mut String, row: &Row) {
    match row {
        Row::Compare(r) => {
            let label = format!("{} {} ({} task{})", r.id, r.name, r.tasks, plural(r.tasks));
            let verdict = verdict(&r.checks);
            for (i, s) in r.sides.iter().enumerate() {
                let per_task = if r.tasks > 1 {
                    format!("{}..{}", s.per_task_min, s.per_task_max)
                } else {
                    String::new()
                };
                let ratio = if i == 0 {
                    r.ratios
                        .first()
                        .map(|(_, v)| format!("{v:.2}x"))
                        .unwrap_or_default()
                } else {
                    r.ratios
                        .iter()
                        .find(|(name, _)| name.starts_with(&format!("{}/", s.side)))
                        .map(|(_, v)| format!("{v:.2}x"))
                        .unwrap_or_default()
                };
                let _ = writeln!(
                    out,
                    "{:<44} {:<10} {:>12} {:>9} {:>9} {:>9} {:>13} {:>9} {:>9} {:>7}  {}",
                    if i == 0 { label.as_str() } else { "" },
                    s.side,
                    fmt_rate(s.ops_per_sec),
                    fmt_ns(s.p50_ns),
                    fmt_ns(s.p99_ns),
                    fmt_ns(s.max_ns as f64),
                    per_task,
                    fmt_ns(s.client_cpu_ns),
                    fmt_ns(s.server_cpu_ns),
                    ratio,
                    if i == 0 { verdict.as_str() } else { "" },
                );
            }
        }
        Row::Samples(r) => {
            let s = &r.samples;
            let _ = writeln!(
                out,
                "{:<44} {:<10} {:>12} {:>9} {:>9} {:>9} {:>13} {:>9} {:>9} {:>7}  {}",
                format!("{} {}", r.id, r.name),
                format!("n={}", s.n),
                "",
                fmt_ns(s.median_ns),
                "",
                fmt_ns(s.max_ns as f64),
                format!("min {}", fmt_ns(s.min_ns as f64)),
                "",
                "",
                "",
                verdict(&r.checks),
            );
        }
        Row::Derived(r) => {
            let _ = writeln!(
                out,
                "{:<44} {:<10} {:>12} {:>9} {:>9} {:>9} {:>13} {:>9} {:>9} {:>7}  {}",
                format!("{} {}", r.id, r.name),
                "",
                "",
                "",
                "",
                "",
                "",
                "",
                "",
                format!("{:.2}x", r.value),
                verdict(&r.checks),
            );
        }
    }
}

fn verdict(checks: &[Check]) -> String {
    if checks.is_empty() {
        return String::new();
    }
    let missed: Vec<&str> = checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| c.what.as_str())
        .collect();
    if missed.is_empty() {
        "ok".to_owned()
    } else {
        format!("MISSED: {}", missed.join("; "))
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// `812ns`, `81.2µs`, `1.23ms`, `1.20s`.
pub fn fmt_ns(ns: f64) -> String {
    if !ns.is_finite() {
        return "-".to_owned();
    }
    if ns < 1e3 {
        format!("{ns:.0}ns")
    } else if ns < 1e6 {
        format!("{:.1}µs", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.2}ms", ns / 1e6)
    } else {
        format!("{:.2}s", ns / 1e9)
    }
}

/// Ops/s with thousands separators.
pub fn fmt_rate(v: f64) -> String {
    if !v.is_finite() {
        return "-".to_owned();
    }
    let n = v.round() as u64;
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(fmt_ns(812.0), "812ns");
        assert_eq!(fmt_ns(81_234.0), "81.2µs");
        assert_eq!(fmt_ns(1_234_567.0), "1.23ms");
        assert_eq!(fmt_ns(1_200_000_000.0), "1.20s");
        assert_eq!(fmt_rate(1_234_567.4), "1,234,567");
        assert_eq!(fmt_rate(999.0), "999");
    }
}
