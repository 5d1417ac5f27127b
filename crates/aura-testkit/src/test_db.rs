//! [`TestDb`]: a database of one's own for one test, dropped afterwards.

use std::time::Duration;

use aura_db::{Config, Dsn, Pool};
use secrecy::SecretString;

use crate::admin::{builder_for, connect, pg_error};
use crate::server::{Server, server, tls_server};
use crate::stale::new_name;

/// A database cloned from the migrated template for one test; dropped (with any
/// sessions still on it) when this value is dropped.
///
/// A test that cannot reach Postgres panics with a message saying how to get one; it
/// never skips.
pub struct TestDb {
    name: String,
    server: &'static Server,
    superuser_url: Dsn,
    config: Config,
}

impl TestDb {
    /// Clones the template into a new database (`CREATE DATABASE … TEMPLATE`): schema,
    /// tables and their privileges, but not the template's database-level grants (Postgres
    /// does not copy them); a test about those runs `aura_db::ensure_roles` on its clone.
    pub async fn new() -> TestDb {
        let server = server().unwrap_or_else(|e| panic!("{e}"));
        let template = server.template.clone();
        Self::create(server, &format!("TEMPLATE \"{template}\"")).await
    }

    /// Like [`TestDb::new`], on the TLS-only test cluster (see [`crate::TlsCluster`]): every
    /// URL of [`TestDb::config`] says `sslmode=verify-full` with the cluster's CA, so the
    /// pool, migrations, bootstrap and the superuser's admin connections all use TLS.
    pub async fn new_tls() -> TestDb {
        let server = tls_server().unwrap_or_else(|e| panic!("{e}"));
        let template = server.template.clone();
        Self::create(server, &format!("TEMPLATE \"{template}\"")).await
    }

    /// Like [`TestDb::empty`], on the TLS-only test cluster.
    pub async fn empty_tls() -> TestDb {
        let server = tls_server().unwrap_or_else(|e| panic!("{e}"));
        Self::create(server, "TEMPLATE template0").await
    }

    /// A new, empty database (from `template0`): nothing migrated, for tests of migrations
    /// and bootstrap themselves.
    pub async fn empty() -> TestDb {
        let server = server().unwrap_or_else(|e| panic!("{e}"));
        Self::create(server, "TEMPLATE template0").await
    }

    pub(crate) async fn create(server: &'static Server, template_clause: &str) -> TestDb {
        let name = new_name();
        let admin = connect(&server.admin)
            .await
            .unwrap_or_else(|e| panic!("aura-testkit: {e}"));
        admin
            .batch_execute(&format!("CREATE DATABASE \"{name}\" {template_clause}"))
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "aura-testkit: cannot create test database {name}: {}",
                    pg_error(&e)
                )
            });
        let superuser_url = server.admin.with_dbname(&name);
        let config = config_for(&superuser_url, &server.role_password);
        TestDb {
            name,
            server,
            superuser_url,
            config,
        }
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A superuser DSN to this database (for assertions and set-up the roles may not do).
    pub fn superuser_url(&self) -> &Dsn {
        &self.superuser_url
    }

    /// A superuser DSN to the server's maintenance database.
    pub fn admin_url(&self) -> &Dsn {
        &self.server.admin
    }

    /// The data layer's configuration for this database: app and migrate roles with the
    /// test password, this database's superuser for bootstrap.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// A configuration builder pre-filled for this database, to change pool settings.
    pub fn config_builder(&self) -> aura_db::ConfigBuilder {
        builder_for(&self.superuser_url, &self.server.role_password)
    }

    /// A pool as the app role, with the default settings.
    pub async fn pool(&self) -> Pool {
        aura_db::open(&self.config)
            .await
            .unwrap_or_else(|e| panic!("aura-testkit: cannot open a pool on {}: {e}", self.name))
    }

    /// A plain tokio-postgres client as the superuser, connected to this database.
    pub async fn superuser_client(&self) -> tokio_postgres::Client {
        connect(&self.superuser_url)
            .await
            .unwrap_or_else(|e| panic!("aura-testkit: {e}"))
    }

    /// Sets a default for this database as the superuser (`ALTER DATABASE … SET
    /// <assignment>`, e.g. `log_statement = 'all'`): sessions opened afterwards start with
    /// it, as an operator's database-level setting would have them.
    pub async fn set_database_default(&self, assignment: &str) {
        let sql = format!("ALTER DATABASE \"{}\" SET {assignment}", self.name);
        self.superuser_client()
            .await
            .batch_execute(&sql)
            .await
            .unwrap_or_else(|e| panic!("aura-testkit: {sql}: {e}"));
    }

    /// The server's log so far, for tests asserting what never reaches it: the local
    /// cluster's log file, or on AURA_TEST_DATABASE_URL the file `pg_current_logfile()`
    /// names, read with `pg_read_file` (that server needs `logging_collector = on`).
    ///
    /// Panics (failing the test) when the log cannot be read, saying why.
    pub async fn server_log(&self) -> String {
        if let Some(path) = &self.server.log {
            return std::fs::read_to_string(path).unwrap_or_else(|e| {
                panic!(
                    "aura-testkit: cannot read the server log {}: {e}",
                    path.display()
                )
            });
        }
        let row = self
            .superuser_client()
            .await
            .query_one("SELECT pg_read_file(pg_current_logfile())", &[])
            .await
            .unwrap_or_else(|e| panic!("aura-testkit: cannot read the server log: {e}"));
        row.get::<_, Option<String>>(0).unwrap_or_else(|| {
            panic!(
                "aura-testkit: the server of AURA_TEST_DATABASE_URL keeps no log file SQL can \
                 read; set logging_collector = on there"
            )
        })
    }

    /// A plain tokio-postgres client as the app role (`config().app_url()`), connected to
    /// this database; on [`TestDb::empty`], once the roles exist.
    pub async fn app_client(&self) -> tokio_postgres::Client {
        connect(self.config.app_url())
            .await
            .unwrap_or_else(|e| panic!("aura-testkit: {e}"))
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let admin = self.server.admin.clone();
        let name = std::mem::take(&mut self.name);
        // Drop cannot await, and the test's runtime may be single-threaded: the database is
        // dropped from a thread of its own. We wait for it, but not forever: DROP DATABASE
        // waits for every backend of the cluster to accept a barrier, and a backend still
        // authenticating a connection that this very runtime was making (a pool topping up
        // its idle connections) only moves on once the runtime runs again. Past the limit
        // the thread finishes on its own, and a database it could not drop is swept up by
        // age at the next start (see `sweep_stale`).
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let dropped = drop_database(&admin, &name);
            let _ = done_tx.send(dropped);
        });
        match done_rx.recv_timeout(DROP_WAIT) {
            Ok(Ok(())) | Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Ok(Err(e)) => {
                if !std::thread::panicking() {
                    eprintln!("aura-testkit: could not drop a test database: {e}");
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {}
        }
    }
}

/// How long a dropped [`TestDb`] waits for its `DROP DATABASE` before letting it finish in
/// the background.
const DROP_WAIT: Duration = Duration::from_secs(2);

fn drop_database(admin: &Dsn, name: &str) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let client = connect(admin).await?;
        client
            .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .await
            .map_err(|e| pg_error(&e))
    })
}

fn config_for(superuser_url: &Dsn, role_password: &SecretString) -> Config {
    builder_for(superuser_url, role_password)
        .build()
        .unwrap_or_else(|e| panic!("aura-testkit: {e}"))
}
