//! Test database names and the sweep of those a killed test process left behind.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::Rng;

use crate::admin::pg_error;

/// Test databases older than this are leftovers of killed test processes.
const STALE_AFTER: Duration = Duration::from_secs(3600);

/// `aura_test_<unix seconds>_<random>`: the creation time in the name lets a later run
/// sweep up databases a killed test process left behind.
pub(crate) fn new_name() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let suffix: u32 = rand::rng().random();
    format!("aura_test_{secs}_{suffix:08x}")
}

/// Drops test databases created more than an hour ago (by a test process that was killed
/// before its `TestDb`s were dropped).
pub(crate) async fn sweep_stale(client: &tokio_postgres::Client) -> Result<(), String> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let rows = client
        .query(
            "SELECT datname::text FROM pg_database WHERE datname LIKE 'aura\\_test\\_%'",
            &[],
        )
        .await
        .map_err(|e| pg_error(&e))?;
    for row in rows {
        let name: String = row.get(0);
        let created = name
            .strip_prefix("aura_test_")
            .and_then(|rest| rest.split('_').next())
            .and_then(|secs| secs.parse::<u64>().ok());
        if created.is_some_and(|c| now.saturating_sub(c) > STALE_AFTER.as_secs()) {
            let _ = client
                .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .await;
        }
    }
    Ok(())
}
