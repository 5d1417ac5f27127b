//! The embedded default: with nothing configured, `aura db …` works on the project's local
//! cluster, brought up (and its `aura` database and roles bootstrapped) when needed.

use std::collections::HashMap;

use aura_db::{Config, Dsn, vars};
use aura_localpg::{LocalCluster, Status};
use secrecy::{ExposeSecret, SecretString};

/// Variables whose presence means "a database is configured: do not use the local cluster".
const CONFIGURING: &[&str] = &[
    vars::POSTGRES_HOST,
    vars::POSTGRES_PORT,
    vars::AURA_DB_URL,
    vars::AURA_DB_MIGRATE_URL,
    vars::AURA_DB_BOOTSTRAP_URL,
];

/// True when the environment names a database of its own.
pub fn is_configured() -> bool {
    CONFIGURING
        .iter()
        .any(|v| std::env::var(v).is_ok_and(|s| !s.is_empty()))
}

/// The configuration `aura db …` uses and, when it is the local cluster's, a note saying so
/// (the caller prints it once the command succeeded, so that an error stays one line).
pub async fn config() -> Result<(Config, Option<String>), String> {
    if is_configured() {
        return Ok((Config::from_env().map_err(|e| e.to_string())?, None));
    }
    let cluster = start_cluster().await?;
    let config = local_config(&cluster)?;
    prepare_database(&config).await?;
    let note = format!(
        "aura: no database configured: used the local cluster at {}:{} (data in {})",
        cluster.host(),
        cluster.port(),
        cluster.root().display()
    );
    Ok((config, Some(note)))
}

/// The local cluster, started (and initialised on first use) if it is not running. The
/// configuration is checked first, so a bad setting fails before any file or process is
/// made. A cluster initialised away from its checkout says where, once, on stderr.
pub async fn start_cluster() -> Result<LocalCluster, String> {
    tokio::task::spawn_blocking(|| {
        // Builds the handle only: no file or process yet.
        let cluster = LocalCluster::from_env().map_err(|e| e.to_string())?;
        config_for(&cluster, SecretString::from("unused-until-the-cluster-exists"))?;
        let first_use = cluster.status().map_err(|e| e.to_string())? == Status::NotInitialized;
        cluster.ensure_running().map_err(|e| e.to_string())?;
        if let (true, Some(wanted)) = (first_use, cluster.relocated_from()) {
            eprintln!(
                "aura: the `postgres` OS user cannot reach {}: this checkout's local cluster lives in {}",
                wanted.display(),
                cluster.root().display()
            );
        }
        Ok(cluster)
    })
    .await
    .map_err(|e| format!("local cluster start-up panicked: {e}"))?
}

/// The configuration for the local cluster: its address and superuser, the `aura`
/// database (or POSTGRES_DB), and every other AURA_DB_* variable as set.
pub fn local_config(cluster: &LocalCluster) -> Result<Config, String> {
    let password = cluster.superuser_password().map_err(|e| e.to_string())?;
    config_for(cluster, password)
}

/// [`local_config`] with the given superuser password.
fn config_for(cluster: &LocalCluster, password: SecretString) -> Result<Config, String> {
    let overlay: HashMap<&str, String> = HashMap::from([
        (vars::POSTGRES_HOST, cluster.host().to_owned()),
        (vars::POSTGRES_PORT, cluster.port().to_string()),
        (vars::POSTGRES_USER, cluster.superuser().to_owned()),
        (vars::POSTGRES_PASSWORD, password.expose_secret().to_owned()),
        // The cluster's own password replaces any superuser password file (empty: unset).
        (vars::POSTGRES_PASSWORD_FILE, String::new()),
    ]);
    Config::from_lookup(|name| {
        overlay
            .get(name)
            .cloned()
            .or_else(|| std::env::var(name).ok())
    })
    .map_err(|e| e.to_string())
}

/// Creates the configured database if missing and bootstraps its roles.
pub async fn prepare_database(config: &Config) -> Result<(), String> {
    let dbname = config
        .bootstrap_url()
        .dbname()
        .unwrap_or_else(|| "aura".to_owned());
    let maintenance = config.bootstrap_url().with_dbname("postgres");
    create_database(&maintenance, &dbname).await?;
    aura_db::ensure_roles(config)
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

async fn create_database(maintenance: &Dsn, dbname: &str) -> Result<(), String> {
    let client = aura_db::connect_raw(maintenance)
        .await
        .map_err(|e| e.to_string())?;
    let exists = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&dbname])
        .await
        .map_err(|e| e.to_string())?
        .is_some();
    if !exists {
        let sql = format!("CREATE DATABASE \"{}\"", dbname.replace('"', "\"\""));
        match client.batch_execute(&sql).await {
            Ok(()) => tracing::info!(database = dbname, "created the database"),
            // Another `aura` created it at the same moment.
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::DUPLICATE_DATABASE) => {}
            Err(e) => return Err(format!("cannot create database {dbname:?}: {e}")),
        }
    }
    Ok(())
}
