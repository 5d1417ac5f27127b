//! Where the cluster keeps its files under its root directory.
//!
//! ```text
//! <root>/
//!   cluster.lock         inter-process lock (see lock.rs)
//!   port                 the cluster's TCP port, chosen at first initialization
//!   superuser.password   the `postgres` role's password, mode 0600
//!   server.log           the server's log (pg_ctl -l)
//!   data/                the data directory (owned by the `postgres` OS user when run as root)
//!   data.init/           initdb's work directory, renamed to data/ once complete
//!   relocated-from       for a relocated cluster, the root it was asked for (location.rs)
//! ```

use std::path::{Path, PathBuf};

/// The paths of one cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Layout {
    root: PathBuf,
}

impl Layout {
    pub(crate) fn new(root: PathBuf) -> Self {
        Self { root }
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    /// initdb runs here; the directory becomes `data/` only when complete, so a crash
    /// half-way leaves nothing that looks initialized.
    pub(crate) fn staging_dir(&self) -> PathBuf {
        self.root.join("data.init")
    }

    pub(crate) fn log_file(&self) -> PathBuf {
        self.root.join("server.log")
    }

    pub(crate) fn password_file(&self) -> PathBuf {
        self.root.join("superuser.password")
    }

    /// The copy of the password handed to initdb (readable by the server user), removed
    /// as soon as initdb returns.
    pub(crate) fn initdb_password_file(&self) -> PathBuf {
        self.root.join(".initdb-pwfile")
    }

    pub(crate) fn port_file(&self) -> PathBuf {
        self.root.join("port")
    }

    /// Written at initialization of a relocated cluster: whose cluster this is.
    pub(crate) fn origin_file(&self) -> PathBuf {
        self.root.join("relocated-from")
    }

    pub(crate) fn lock_file(&self) -> PathBuf {
        self.root.join("cluster.lock")
    }

    pub(crate) fn pid_file(&self) -> PathBuf {
        self.data_dir().join("postmaster.pid")
    }

    /// Present in every complete data directory.
    pub(crate) fn version_file(&self) -> PathBuf {
        self.data_dir().join("PG_VERSION")
    }

    pub(crate) fn is_initialized(&self) -> bool {
        self.version_file().is_file()
    }
}
