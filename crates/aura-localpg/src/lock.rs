//! The inter-process lock that serializes initialization, start and stop of one cluster.
//!
//! An exclusive advisory lock (`flock`) on `<root>/cluster.lock`. Each acquisition opens
//! the file anew, so threads of one process exclude each other as processes do. The kernel
//! releases the lock when the holder exits, even when it is killed: no stale locks.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::Path;

use crate::Error;

/// Holds the cluster lock until dropped.
#[derive(Debug)]
pub(crate) struct ClusterLock {
    file: File,
}

impl ClusterLock {
    /// Blocks until the lock at `path` is ours. The holders only ever run bounded work
    /// (initdb, `pg_ctl -w -t …`), so waiting has an end.
    pub(crate) fn acquire(path: &Path) -> Result<Self, Error> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| Error::io("open lock file", path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                tracing::debug!(lock = %path.display(), "waiting for another process to finish with the cluster");
                file.lock().map_err(|e| Error::io("lock", path, e))?;
            }
            Err(TryLockError::Error(e)) => return Err(Error::io("lock", path, e)),
        }
        Ok(Self { file })
    }
}

impl Drop for ClusterLock {
    fn drop(&mut self) {
        // Closing the file releases the lock too; unlocking first makes it explicit.
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn a_second_holder_waits_for_the_first() {
        let dir = std::env::temp_dir().join(format!("aura-localpg-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let path = dir.join("cluster.lock");
        let first = ClusterLock::acquire(&path).expect("first");
        let (tx, rx) = mpsc::channel();
        let waiter = {
            let path = path.clone();
            std::thread::spawn(move || {
                let _second = ClusterLock::acquire(&path).expect("second");
                tx.send(()).expect("send");
            })
        };
        assert!(
            rx.recv_timeout(Duration::from_millis(300)).is_err(),
            "second holder got the lock while the first held it"
        );
        drop(first);
        rx.recv_timeout(Duration::from_secs(10))
            .expect("second holder gets the lock once the first lets go");
        waiter.join().expect("join");
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
