//! The streaming read replica of the local test cluster: `<cluster root>-replica`, a hot
//! standby made with `pg_basebackup -R -w` (aura-localpg) by the replication role
//! [`REPLICATION_ROLE`] (SCRAM password, the primary's `host replication` line of
//! `pg_hba.conf`). Started on first use and, like the workspace cluster, left running for
//! the next test process (`aura dev down`, `.ci/run` and `scripts/test-pg18.sh` stop it; a
//! stopped one is made again, see aura-localpg's `ensure_standby_of`).
//!
//! Every database a test creates on the primary appears on the replica once replayed:
//! [`Replica::read_url`] waits for that. Replay is paused and resumed cluster-wide, so the
//! tests that use the replica hold [`Replica::exclusive`] for their duration.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aura_db::Dsn;
use aura_localpg::LocalCluster;
use secrecy::SecretString;
use tokio::sync::{Mutex, MutexGuard};

use crate::admin::{connect, pg_error};
use crate::server::{TEST_DATABASE_URL, server};
use crate::test_db::TestDb;

/// The role the replica streams as: LOGIN REPLICATION, the primary superuser's password
/// (sent as a SCRAM verifier).
pub const REPLICATION_ROLE: &str = "aura_replicator";

/// How long [`Replica::read_url`] waits for a new database to reach the replica.
const APPEAR_WAIT: Duration = Duration::from_secs(60);

/// The standby of the local test cluster.
pub struct Replica {
    cluster: LocalCluster,
    password: SecretString,
    role_password: SecretString,
    exclusive: Mutex<()>,
}

impl Replica {
    /// The replica, made and started on first use.
    ///
    /// Panics, failing the test, when it cannot be: on `AURA_TEST_DATABASE_URL` (the replica
    /// is a standby of the local cluster), or when `pg_basebackup` fails, saying why.
    pub fn shared() -> &'static Replica {
        static SHARED: OnceLock<Result<Replica, String>> = OnceLock::new();
        SHARED
            .get_or_init(|| {
                std::thread::spawn(start)
                    .join()
                    .unwrap_or_else(|_| Err("replica setup panicked".to_owned()))
            })
            .as_ref()
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Taken by every test that pauses replay or needs the replica to follow: one such
    /// test at a time in this process.
    pub async fn exclusive(&self) -> MutexGuard<'_, ()> {
        self.exclusive.lock().await
    }

    /// The port the replica listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.cluster.port()
    }

    /// The replica's root directory (`<cluster root>-replica`).
    pub fn root(&self) -> PathBuf {
        self.cluster.root().to_path_buf()
    }

    /// A superuser DSN to `dbname` on the replica.
    pub fn superuser_url(&self, dbname: &str) -> Dsn {
        Dsn::compose(
            self.cluster.superuser(),
            &self.password,
            self.cluster.host(),
            self.port(),
            dbname,
        )
    }

    /// The app role's URL of `db` on the replica (for `ConfigBuilder::read_url`), once the
    /// database has reached the replica (waits up to a minute, then panics saying so).
    pub async fn read_url(&self, db: &TestDb) -> SecretString {
        self.wait_for(db).await;
        let dsn = Dsn::compose(
            "aura_app",
            &self.role_password,
            self.cluster.host(),
            self.port(),
            db.name(),
        );
        SecretString::from(dsn.expose().to_owned())
    }

    /// A superuser client on `db`'s database on the replica, once it is there.
    pub async fn client(&self, db: &TestDb) -> tokio_postgres::Client {
        self.wait_for(db).await;
        connect(&self.superuser_url(db.name()))
            .await
            .unwrap_or_else(|e| panic!("aura-testkit: the replica: {e}"))
    }

    /// Stops replaying WAL (`pg_wal_replay_pause()`) until the guard is dropped (then
    /// `pg_wal_replay_resume()`): the replica keeps receiving WAL but shows nothing new.
    pub async fn pause_replay(&self, db: &TestDb) -> ReplayPaused {
        let client = self.client(db).await;
        client
            .batch_execute("SELECT pg_wal_replay_pause()")
            .await
            .unwrap_or_else(|e| panic!("aura-testkit: pg_wal_replay_pause: {}", pg_error(&e)));
        ReplayPaused {
            url: Some(self.superuser_url("postgres")),
        }
    }

    async fn wait_for(&self, db: &TestDb) {
        let deadline = Instant::now() + APPEAR_WAIT;
        let url = self.superuser_url(db.name());
        loop {
            match connect(&url).await {
                Ok(_) => return,
                Err(e) if Instant::now() >= deadline => panic!(
                    "aura-testkit: database {} did not reach the replica (port {}) within \
                     {APPEAR_WAIT:?}: {e}",
                    db.name(),
                    self.port()
                ),
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }
}

/// Resumes replay on the replica when dropped (see [`Replica::pause_replay`]).
pub struct ReplayPaused {
    url: Option<Dsn>,
}

impl ReplayPaused {
    /// Resumes now.
    pub async fn resume(mut self) {
        if let Some(url) = self.url.take() {
            resume(&url).await.unwrap_or_else(|e| panic!("{e}"));
        }
    }
}

impl Drop for ReplayPaused {
    fn drop(&mut self) {
        let Some(url) = self.url.take() else { return };
        // Drop cannot await; a thread of its own with its own runtime resumes it.
        let resumed = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?
                .block_on(resume(&url))
        })
        .join();
        if let Ok(Err(e)) = resumed {
            eprintln!("{e}");
        }
    }
}

async fn resume(url: &Dsn) -> Result<(), String> {
    let client = connect(url).await?;
    client
        .batch_execute("SELECT pg_wal_replay_resume()")
        .await
        .map_err(|e| format!("aura-testkit: pg_wal_replay_resume: {}", pg_error(&e)))
}

fn start() -> Result<Replica, String> {
    let fail = |e: &dyn std::fmt::Display| {
        format!(
            "aura-testkit: the read replica of the local test cluster is not available: {e}. \
             It needs the PostgreSQL server package (Debian: apt-get install postgresql)."
        )
    };
    if std::env::var(TEST_DATABASE_URL).is_ok_and(|v| !v.is_empty()) {
        return Err(format!(
            "aura-testkit: the replica tests need the local cluster (the replica is its \
             streaming standby): unset {TEST_DATABASE_URL}"
        ));
    }
    let server = server()?;
    let primary = LocalCluster::from_env().map_err(|e| fail(&e))?;
    primary.ensure_running().map_err(|e| fail(&e))?;
    let password = primary.superuser_password().map_err(|e| fail(&e))?;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| fail(&e))?
        .block_on(aura_db::ensure_replication_role(
            &server.admin,
            REPLICATION_ROLE,
            &password,
        ))
        .map_err(|e| fail(&e))?;
    let cluster = LocalCluster::at(primary.standby_root()).map_err(|e| fail(&e))?;
    cluster
        .ensure_standby_of(&primary, REPLICATION_ROLE, &password)
        .map_err(|e| fail(&e))?;
    Ok(Replica {
        cluster,
        password: password.clone(),
        role_password: server.role_password.clone(),
        exclusive: Mutex::new(()),
    })
}
