//! `aura dev …`: the local development cluster.

use std::process::ExitCode;

use aura_localpg::{LocalCluster, Status, TlsOptions};
use secrecy::ExposeSecret;

use crate::cli::DevCommand;
use crate::local_default;

use super::replica;

pub async fn run(cmd: DevCommand) -> Result<ExitCode, String> {
    match cmd {
        DevCommand::Up {
            tls,
            tls_only,
            replica,
        } => up(tls || tls_only, tls_only, replica).await,
        DevCommand::Down => down().await,
        DevCommand::Status => status().await,
        DevCommand::Env => env().await,
    }
}

async fn up(tls: bool, tls_only: bool, with_replica: bool) -> Result<ExitCode, String> {
    let cluster = local_default::start_cluster().await?;
    if tls {
        let handle = cluster.clone();
        let files =
            blocking(move || handle.enable_tls(&TlsOptions::new().tls_only(tls_only))).await?;
        println!(
            "TLS on{} (CA certificate: {}); verify it with PGSSLMODE=verify-full \
             PGSSLROOTCERT={} (`aura dev env` prints both)",
            if tls_only { ", plaintext refused" } else { "" },
            files.ca_cert().display(),
            files.ca_cert().display()
        );
    }
    let config = local_default::local_config(&cluster)?;
    local_default::prepare_database(&config).await?;
    println!(
        "local cluster running on {}:{} (data in {}); database ready: {}",
        cluster.host(),
        cluster.port(),
        cluster.root().display(),
        config.app_url().redacted()
    );
    if with_replica {
        let (standby, read_url) = replica::start(&cluster, &config).await?;
        println!(
            "read replica streaming on {}:{} (data in {}): AURA_DB_READ_URL={}",
            standby.host(),
            standby.port(),
            standby.root().display(),
            read_url.redacted()
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn down() -> Result<ExitCode, String> {
    let (stopped, replica_stopped) = blocking(|| {
        let cluster = LocalCluster::from_env()?;
        // The replica first: it would otherwise keep retrying its vanished primary.
        let replica_stopped = replica::stop(&cluster)?;
        Ok((cluster.stop()?, replica_stopped))
    })
    .await?;
    if replica_stopped {
        println!("read replica stopped");
    }
    println!(
        "{}",
        if stopped {
            "local cluster stopped"
        } else {
            "local cluster was not running"
        }
    );
    Ok(ExitCode::SUCCESS)
}

async fn status() -> Result<ExitCode, String> {
    let (status, cluster) = blocking(|| {
        let cluster = LocalCluster::from_env()?;
        Ok((cluster.status()?, cluster))
    })
    .await?;
    match status {
        Status::Running { pid } => {
            println!(
                "running: pid {pid}, {}:{}, data in {}",
                cluster.host(),
                cluster.port(),
                cluster.root().display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Status::Stopped => {
            println!("stopped (data in {})", cluster.root().display());
            Ok(ExitCode::from(3))
        }
        Status::NotInitialized => {
            println!(
                "not initialised (run `aura dev up`; data in {})",
                cluster.root().display()
            );
            Ok(ExitCode::from(3))
        }
    }
}

/// Prints `export` lines; the values are single-quoted for the shell. The cluster is brought
/// up and its database prepared first, so every printed URL works at once.
async fn env() -> Result<ExitCode, String> {
    let cluster = local_default::start_cluster().await?;
    let config = local_default::local_config(&cluster)?;
    local_default::prepare_database(&config).await?;
    let password = cluster.superuser_password().map_err(|e| e.to_string())?;
    let dbname = config
        .bootstrap_url()
        .dbname()
        .unwrap_or_else(|| "aura".to_owned());
    let migrate = config
        .migrate_url()
        .map(|d| d.expose().to_owned())
        .unwrap_or_default();
    let lines = [
        ("POSTGRES_HOST", cluster.host().to_owned()),
        ("POSTGRES_PORT", cluster.port().to_string()),
        ("POSTGRES_DB", dbname),
        ("POSTGRES_USER", cluster.superuser().to_owned()),
        ("POSTGRES_PASSWORD", password.expose_secret().to_owned()),
        ("AURA_DB_URL", config.app_url().expose().to_owned()),
        ("AURA_DB_MIGRATE_URL", migrate),
        (
            "AURA_DB_BOOTSTRAP_URL",
            config.bootstrap_url().expose().to_owned(),
        ),
    ];
    for (name, value) in lines {
        println!("export {name}={}", shell_quote(&value));
    }
    if let Some(standby) = replica::running(&cluster) {
        let url = replica::read_url(&standby, &config);
        println!("export AURA_DB_READ_URL={}", shell_quote(url.expose()));
    }
    // A cluster that serves TLS (`aura dev up --tls`): verify it, as libpq and aura read.
    if let Some(files) = cluster.tls_files() {
        println!("export PGSSLMODE='verify-full'");
        println!(
            "export PGSSLROOTCERT={}",
            shell_quote(&files.ca_cert().display().to_string())
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, aura_localpg::Error> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| format!("panicked: {e}"))?
        .map_err(|e| e.to_string())
}
