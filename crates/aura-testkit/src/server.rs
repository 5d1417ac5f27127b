//! Which Postgres the tests use, found once per test process: AURA_TEST_DATABASE_URL (a
//! superuser DSN) when set, else the project's local cluster, started if needed.

use std::sync::OnceLock;

use aura_db::Dsn;
use secrecy::{ExposeSecret, SecretString};

use crate::template;

/// The environment variable naming a superuser DSN that overrides the local cluster.
pub const TEST_DATABASE_URL: &str = "AURA_TEST_DATABASE_URL";

/// What every test database of this process is made from.
#[derive(Clone)]
pub(crate) struct Server {
    /// Superuser DSN to the maintenance database (CREATE/DROP DATABASE run here).
    pub admin: Dsn,
    /// Password the app and migrate roles are given.
    pub role_password: SecretString,
    /// Name of the migrated template database.
    pub template: String,
    /// The local cluster's log file; `None` on AURA_TEST_DATABASE_URL.
    pub log: Option<std::path::PathBuf>,
}

/// The server of this process, set up on first use; a failure is remembered and repeated
/// to every test with the same instructions.
pub(crate) fn server() -> Result<&'static Server, String> {
    static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();
    SERVER
        .get_or_init(|| {
            // Runs on a thread of its own with its own runtime: the first caller's test
            // runtime may be single-threaded, and connections made here must not be tied to
            // a runtime that ends with one test.
            std::thread::spawn(setup)
                .join()
                .unwrap_or_else(|_| Err("test database setup panicked".to_owned()))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// The server of [`crate::TestDb::new_tls`]: the TLS-only cluster, reached with
/// `sslmode=verify-full`; its template is made over TLS.
pub(crate) fn tls_server() -> Result<&'static Server, String> {
    static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();
    SERVER
        .get_or_init(|| {
            std::thread::spawn(|| {
                let tls = crate::TlsCluster::shared();
                let admin = tls.verify_full_url("postgres");
                let password = tls.superuser_password().clone();
                build(admin, password, Some(tls.log_path()))
            })
            .join()
            .unwrap_or_else(|_| Err("TLS test database setup panicked".to_owned()))
        })
        .as_ref()
        .map_err(Clone::clone)
}

fn setup() -> Result<Server, String> {
    let (admin, role_password, log) = match std::env::var(TEST_DATABASE_URL) {
        Ok(url) if !url.is_empty() => {
            let admin = Dsn::parse(TEST_DATABASE_URL, SecretString::from(url))
                .map_err(|e| e.to_string())?;
            let password = admin
                .pg_config()
                .get_password()
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| "aura-test-role-password".to_owned());
            (admin, SecretString::from(password), None)
        }
        _ => local_cluster()?,
    };
    build(admin, role_password, log)
}

pub(crate) fn build(
    admin: Dsn,
    role_password: SecretString,
    log: Option<std::path::PathBuf>,
) -> Result<Server, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a runtime: {e}"))?;
    let template = rt
        .block_on(template::ensure(&admin, &role_password))
        .map_err(|e| how_to_get_postgres(&admin, &e))?;
    Ok(Server {
        admin,
        role_password,
        template,
        log,
    })
}

fn local_cluster() -> Result<(Dsn, SecretString, Option<std::path::PathBuf>), String> {
    let cluster = aura_localpg::LocalCluster::from_env().map_err(|e| local_failure(&e))?;
    cluster.ensure_running().map_err(|e| local_failure(&e))?;
    let password = cluster
        .superuser_password()
        .map_err(|e| local_failure(&e))?;
    let admin = Dsn::compose(
        cluster.superuser(),
        &password,
        cluster.host(),
        cluster.port(),
        "postgres",
    );
    // The local cluster is ours alone: the roles share the superuser's generated password,
    // as AURA_DB_PASSWORD defaults to POSTGRES_PASSWORD.
    let role_password = SecretString::from(password.expose_secret().to_owned());
    Ok((admin, role_password, Some(cluster.log_path())))
}

fn local_failure(err: &dyn std::fmt::Display) -> String {
    format!(
        "aura-testkit: the local Postgres cluster is not available: {err}. \
         Install the PostgreSQL server package (Debian: apt-get install postgresql) so the \
         tests can start their own cluster, or set {TEST_DATABASE_URL} to a superuser DSN."
    )
}

fn how_to_get_postgres(admin: &Dsn, err: &dyn std::fmt::Display) -> String {
    format!(
        "aura-testkit: cannot prepare test databases on {admin}: {err}. \
         Tests need a real Postgres: unset {TEST_DATABASE_URL} to use the project's local \
         cluster (`cargo run -p aura-cli -- dev up`), or point it at a reachable superuser DSN."
    )
}
