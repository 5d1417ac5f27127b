//! `aura dev up --replica`: a streaming standby of the local cluster, beside it
//! (`<root>-replica`, aura-localpg), streaming as the replication role [`ROLE`] with the
//! cluster's superuser password. The test suite's replica (aura-testkit) is the same one.

use aura_db::{Config, Dsn};
use aura_localpg::{LocalCluster, Status};

/// The replication role (the same as aura-testkit's `REPLICATION_ROLE`).
pub const ROLE: &str = "aura_replicator";

/// The standby of `primary` (running, with the replication role), and the app role's URL
/// of the configured database on it, for `AURA_DB_READ_URL`.
pub async fn start(primary: &LocalCluster, config: &Config) -> Result<(LocalCluster, Dsn), String> {
    let password = primary.superuser_password().map_err(|e| e.to_string())?;
    aura_db::ensure_replication_role(config.bootstrap_url(), ROLE, &password)
        .await
        .map_err(|e| e.to_string())?;
    let handle = primary.clone();
    let standby = tokio::task::spawn_blocking(move || {
        let standby = LocalCluster::at(handle.standby_root())?;
        standby.ensure_standby_of(&handle, ROLE, &password)?;
        Ok::<_, aura_localpg::Error>(standby)
    })
    .await
    .map_err(|e| format!("standby start-up panicked: {e}"))?
    .map_err(|e| e.to_string())?;
    let read_url = read_url(&standby, config);
    Ok((standby, read_url))
}

/// The standby of `primary`, when one runs.
pub fn running(primary: &LocalCluster) -> Option<LocalCluster> {
    let root = primary.standby_root();
    if !root.is_dir() {
        return None;
    }
    let standby = LocalCluster::at(root).ok()?;
    matches!(standby.status(), Ok(Status::Running { .. })).then_some(standby)
}

/// The app role's URL of the configured database on `standby`.
pub fn read_url(standby: &LocalCluster, config: &Config) -> Dsn {
    let dbname = config
        .app_url()
        .dbname()
        .unwrap_or_else(|| "aura".to_owned());
    Dsn::compose(
        config.app_role(),
        config.role_password(),
        standby.host(),
        standby.port(),
        &dbname,
    )
}

/// Stops the standby of `primary` if it has one; true when it was running.
pub fn stop(primary: &LocalCluster) -> Result<bool, aura_localpg::Error> {
    let root = primary.standby_root();
    if !root.is_dir() {
        return Ok(false);
    }
    LocalCluster::at(root)?.stop()
}
