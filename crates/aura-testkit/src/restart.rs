//! [`RestartCluster`]: a test cluster of its own that tests may restart, beside the
//! workspace cluster (`<cluster root>-restart`), so a restart never touches the cluster
//! other tests use in parallel. Started on first use and left running, like the others.
//!
//! Whoever restarts it must hold it alone: [`RestartCluster::lock`] takes an exclusive
//! file lock (`<its root>/restart.lock`, across threads and processes) for as long as the
//! returned [`RestartLock`] lives, so two tests that restart it never overlap.

use std::fs::{File, OpenOptions};
use std::sync::OnceLock;

use aura_db::Dsn;
use aura_localpg::LocalCluster;
use secrecy::{ExposeSecret, SecretString};

use crate::TestDb;
use crate::server::{Server, build};

/// The restartable test cluster (see the module docs); reach it through
/// [`RestartCluster::lock`].
pub struct RestartCluster {
    cluster: LocalCluster,
}

/// Exclusive use of the [`RestartCluster`] (its server started, its template made) until
/// dropped.
pub struct RestartLock {
    cluster: &'static RestartCluster,
    server: &'static Server,
    _file: File,
}

impl RestartCluster {
    /// Waits until no other holder (thread or process) has the cluster, then starts it if
    /// needed and makes its template on first use.
    ///
    /// Panics, failing the test, when the cluster cannot be started, saying why.
    pub async fn lock() -> RestartLock {
        tokio::task::spawn_blocking(lock_blocking)
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
            .unwrap_or_else(|e| panic!("{e}"))
    }
}

impl RestartLock {
    /// A database of its own on this cluster, cloned from its migrated template (as
    /// [`TestDb::new`] on the workspace cluster).
    pub async fn test_db(&self) -> TestDb {
        TestDb::create(
            self.server,
            &format!("TEMPLATE \"{}\"", self.server.template),
        )
        .await
    }

    /// Restarts the server (`pg_ctl restart -m fast -w`, as the `postgres` OS user when
    /// run as root): every session ends, and this returns once the server accepts
    /// connections again (a blocking command, run on tokio's blocking pool).
    ///
    /// # Errors
    /// What aura-localpg reports when `pg_ctl restart` fails (with the end of the log).
    pub async fn restart(&self) -> Result<(), aura_localpg::Error> {
        let cluster = self.cluster.cluster.clone();
        tokio::task::spawn_blocking(move || cluster.restart())
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
    }

    /// The port the cluster listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.cluster.cluster.port()
    }

    /// A superuser DSN to the cluster's maintenance database.
    pub fn admin_url(&self) -> &Dsn {
        &self.server.admin
    }
}

fn lock_blocking() -> Result<RestartLock, String> {
    static CLUSTER: OnceLock<Result<RestartCluster, String>> = OnceLock::new();
    static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();
    let cluster = CLUSTER
        .get_or_init(|| {
            crate::sibling::cluster("restart")
                .map(|cluster| RestartCluster { cluster })
                .map_err(|e| unavailable(&e))
        })
        .as_ref()
        .map_err(Clone::clone)?;
    let root = cluster.cluster.root();
    std::fs::create_dir_all(root).map_err(|e| unavailable(&e))?;
    let path = root.join("restart.lock");
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .and_then(|f| f.lock().map(|()| f))
        .map_err(|e| unavailable(&format!("cannot lock {}: {e}", path.display())))?;
    // Under the lock: nobody restarts the server while it is started or its template made.
    cluster
        .cluster
        .ensure_running()
        .map_err(|e| unavailable(&e))?;
    let server = SERVER
        .get_or_init(|| {
            let c = &cluster.cluster;
            let password = c.superuser_password().map_err(|e| unavailable(&e))?;
            let admin = Dsn::compose(c.superuser(), &password, c.host(), c.port(), "postgres");
            let role_password = SecretString::from(password.expose_secret().to_owned());
            build(admin, role_password, Some(c.log_path()))
        })
        .as_ref()
        .map_err(Clone::clone)?;
    Ok(RestartLock {
        cluster,
        server,
        _file: file,
    })
}

fn unavailable(err: &dyn std::fmt::Display) -> String {
    format!(
        "aura-testkit: the restartable test cluster is not available: {err}. Install the \
         PostgreSQL server package (Debian: apt-get install postgresql)."
    )
}
