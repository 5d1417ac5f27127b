//! CPU time spent, from `/proc/<pid>/task/<tid>/schedstat` (nanoseconds on a CPU): the bench
//! process's own (every thread), and the server backends serving one side. Unlike latency,
//! CPU per operation barely moves with the machine's load, so it shows where a side spends
//! more work. `None` where /proc is not there (not Linux) or not readable.

use std::fs;

/// Nanoseconds on a CPU so far, summed over the threads of process `pid` (`"self"` for
/// this one).
fn process_ns(pid: &str) -> Option<u64> {
    let mut total = 0u64;
    for entry in fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let path = entry.ok()?.path().join("schedstat");
        // A thread that ended since the listing adds nothing.
        if let Ok(text) = fs::read_to_string(path) {
            total += text.split_whitespace().next()?.parse::<u64>().ok()?;
        }
    }
    Some(total)
}

/// This process's CPU time so far, ns.
pub fn own_ns() -> Option<u64> {
    process_ns("self")
}

/// The CPU time so far of the processes `pids` (server backends), ns.
pub fn pids_ns(pids: &[u32]) -> Option<u64> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().map(|p| process_ns(&p.to_string())).sum()
}
