//! Reading `postmaster.pid` and telling whether the process it names is still the server.
//!
//! The file's lines (PostgreSQL 10+): pid, data directory, start time, port, socket
//! directory, listen address, shared memory key, status (`starting`, `ready`, `stopping`,
//! `standby`). The server removes it on a clean shutdown; after a crash it stays behind.

use std::path::Path;

use crate::Error;

/// What `postmaster.pid` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PidFile {
    /// The postmaster's process id.
    pub(crate) pid: u32,
    /// The port it listens on, once written.
    pub(crate) port: Option<u16>,
    /// The postmaster status line, once written (`ready` when it accepts connections).
    pub(crate) status: Option<String>,
}

impl PidFile {
    /// True once the server accepts connections.
    pub(crate) fn is_ready(&self) -> bool {
        self.status.as_deref() == Some("ready")
    }

    fn parse(text: &str) -> Option<Self> {
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        let pid = lines.first()?.parse::<u32>().ok().filter(|p| *p > 0)?;
        let port = lines.get(3).and_then(|l| l.parse().ok());
        let status = lines
            .get(7)
            .filter(|l| !l.is_empty())
            .map(|l| (*l).to_owned());
        Some(Self { pid, port, status })
    }
}

/// Reads the pid file; `None` when it is absent, or not (yet) holding a pid: the
/// postmaster creates it empty and fills it in right after.
pub(crate) fn read(path: &Path) -> Result<Option<PidFile>, Error> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(PidFile::parse(&text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read", path, e)),
    }
}

/// The state of the process a pid file names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Liveness {
    /// A live process that may be the postmaster.
    Running,
    /// Dead but not yet reaped: the server will still take it for alive and refuse to
    /// start until it is gone.
    Zombie,
    /// No such process: a stale pid file, which the server removes by itself.
    Gone,
    /// A live process that is certainly not a postgres server: the pid was reused (after
    /// a reboot, typically). The server would refuse to start; the pid file is stale.
    NotPostgres,
}

/// Tells what `pid` is now.
pub(crate) fn liveness(pid: u32) -> Liveness {
    let proc_dir = Path::new("/proc").join(pid.to_string());
    if Path::new("/proc/self/stat").exists() {
        return linux_liveness(&proc_dir);
    }
    // Without procfs: a signal-0 probe (what pg_ctl itself does).
    let Ok(raw) = i32::try_from(pid) else {
        return Liveness::Gone;
    };
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), None) {
        Ok(()) | Err(nix::errno::Errno::EPERM) => Liveness::Running,
        Err(_) => Liveness::Gone,
    }
}

fn linux_liveness(proc_dir: &Path) -> Liveness {
    let Ok(stat) = std::fs::read_to_string(proc_dir.join("stat")) else {
        return Liveness::Gone;
    };
    // `pid (comm) state …`: comm may hold spaces and parentheses, so split at the last ')'.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    if matches!(state, Some("Z" | "X" | "x")) {
        return Liveness::Zombie;
    }
    match std::fs::read(proc_dir.join("cmdline")) {
        // Kernel threads have an empty command line.
        Ok(cmdline) if cmdline.is_empty() => Liveness::NotPostgres,
        Ok(cmdline) => {
            let cmdline = String::from_utf8_lossy(&cmdline);
            if cmdline.contains("postgres") || cmdline.contains("postmaster") {
                Liveness::Running
            } else {
                Liveness::NotPostgres
            }
        }
        // Unreadable: assume it may be the server, let the server decide.
        Err(_) => Liveness::Running,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_ready_pid_file_with_empty_socket_dir() {
        let text =
            "7663\n/tmp/x/data\n1795460999\n24998\n\n127.0.0.1\n 10010670         9\nready   \n";
        let pid = PidFile::parse(text).expect("parsed");
        assert_eq!(pid.pid, 7663);
        assert_eq!(pid.port, Some(24998));
        assert!(pid.is_ready());
        let starting = PidFile::parse("7663\n/tmp/x/data\n1795460999\n").expect("parsed");
        assert_eq!(starting.port, None);
        assert!(!starting.is_ready());
        assert!(PidFile::parse("").is_none());
        assert!(PidFile::parse("garbage\n").is_none());
    }

    #[test]
    fn liveness_of_self_exited_and_unrelated_processes() {
        // This test binary is not a postgres server.
        assert_eq!(liveness(std::process::id()), Liveness::NotPostgres);
        let mut child = std::process::Command::new("true").spawn().expect("spawn");
        let pid = child.id();
        // Exited but not yet waited for: a zombie.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while liveness(pid) != Liveness::Zombie && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(liveness(pid), Liveness::Zombie);
        child.wait().expect("wait");
        assert_eq!(liveness(pid), Liveness::Gone);
    }
}
