//! Helpers shared by the integration tests: throwaway clusters that are always stopped.

#![allow(dead_code, missing_docs)]

use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU16, Ordering};

use aura_localpg::LocalCluster;

/// A fresh root directory under the system temp dir (traversable by the `postgres` user).
pub fn fresh_root(name: &str) -> PathBuf {
    let root = std::env::temp_dir().join(format!("aura-localpg-{name}-{}", std::process::id()));
    if root.exists() {
        std::fs::remove_dir_all(&root).expect("remove leftover test root");
    }
    std::fs::DirBuilder::new()
        .mode(0o755)
        .create(&root)
        .expect("create test root");
    root
}

/// A port for one test cluster: in 30000..32767, above the range workspace clusters derive
/// their ports from (20000..=29999) and below the ephemeral range; distinct within this
/// process, spread across processes by pid, and free right now.
pub fn test_port() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let pid = u16::try_from(std::process::id() % 248).expect("small");
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 30000 + pid * 11 + n % 11;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
        assert!(n < 500, "no free test port");
    }
}

/// Owns a test cluster: stops it and removes its root when dropped, pass or fail.
pub struct TestCluster {
    pub cluster: LocalCluster,
    root: PathBuf,
}

impl TestCluster {
    /// A cluster at a fresh root with an explicit free port.
    pub fn new(name: &str) -> Self {
        let root = fresh_root(name);
        let cluster = LocalCluster::builder(&root)
            .port(test_port())
            .build()
            .expect("build cluster");
        Self { cluster, root }
    }

    /// Wraps an already built cluster whose root was made by [`fresh_root`].
    pub fn adopt(cluster: LocalCluster) -> Self {
        let root = cluster.root().to_path_buf();
        Self { cluster, root }
    }
}

impl std::ops::Deref for TestCluster {
    type Target = LocalCluster;
    fn deref(&self) -> &LocalCluster {
        &self.cluster
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        if let Err(e) = self.cluster.stop() {
            eprintln!(
                "could not stop test cluster at {}: {e}",
                self.root.display()
            );
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// How many times the server log says the server became ready (one per start).
pub fn ready_count(log: &Path) -> usize {
    std::fs::read_to_string(log)
        .expect("read server log")
        .matches("database system is ready to accept connections")
        .count()
}

/// Live (non-zombie) processes whose command line mentions `needle`.
pub fn live_processes_mentioning(needle: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("read /proc").flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if !is_live(pid) {
            continue;
        }
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        if String::from_utf8_lossy(&cmdline).contains(needle) && pid != std::process::id() {
            pids.push(pid);
        }
    }
    pids
}

/// The live children of `parent`.
pub fn children_of(parent: u32) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("read /proc").flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if stat_field(pid, 1).and_then(|p| p.parse::<u32>().ok()) == Some(parent) && is_live(pid) {
            pids.push(pid);
        }
    }
    pids
}

/// True when `pid` exists and is not a zombie.
pub fn is_live(pid: u32) -> bool {
    stat_field(pid, 0).is_some_and(|state| state != "Z" && state != "X")
}

/// Field `n` after the command name in /proc/<pid>/stat (0 = state, 1 = ppid).
fn stat_field(pid: u32, n: usize) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(n).map(str::to_owned)
}

/// The owner uid of `path`.
pub fn owner(path: &Path) -> u32 {
    std::fs::metadata(path).expect("metadata").uid()
}

/// The uid the server runs as: `postgres` when the tests run as root, else ourselves.
pub fn expected_server_uid() -> u32 {
    let me = std::fs::metadata("/proc/self").expect("proc self").uid();
    if me != 0 {
        return me;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").expect("read /etc/passwd");
    passwd
        .lines()
        .find_map(|l| {
            let mut f = l.split(':');
            (f.next() == Some("postgres")).then(|| f.nth(1)?.parse().ok())?
        })
        .expect("postgres user in /etc/passwd")
}
