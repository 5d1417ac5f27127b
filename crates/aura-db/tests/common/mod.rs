//! Shared set-up for aura-db's integration tests.
#![allow(dead_code)]

use aura_testkit::TestDb;

/// Creates `aura.<name>` (columns as given) as the superuser and lets the app role use it.
pub async fn app_table(db: &TestDb, name: &str, columns: &str) {
    db.superuser_client()
        .await
        .batch_execute(&format!(
            "CREATE TABLE aura.{name} ({columns}); GRANT SELECT, INSERT, UPDATE, DELETE ON aura.{name} TO aura_app"
        ))
        .await
        .expect("create test table");
}

/// Rows in `aura.<table>`, counted by the superuser.
pub async fn count(db: &TestDb, table: &str) -> i64 {
    db.superuser_client()
        .await
        .query_one(&format!("SELECT count(*) FROM aura.{table}"), &[])
        .await
        .expect("count")
        .get(0)
}

/// Sessions of the app role on this database that sit inside a transaction, waiting up to
/// 3 s for closed connections' backends to go away.
pub async fn idle_in_transaction(db: &TestDb) -> i64 {
    let client = db.superuser_client().await;
    let mut n = 0;
    for _ in 0..60 {
        n = client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE datname = current_database() AND usename = 'aura_app' \
                 AND state LIKE 'idle in transaction%'",
                &[],
            )
            .await
            .expect("pg_stat_activity")
            .get(0);
        if n == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    n
}
