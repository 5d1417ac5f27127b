//! Several replicas starting at once each run the main job: the migrations are applied
//! exactly once, every process succeeds, and the later ones find nothing to do.

use aura_e2e::{AuraEnv, applied_count, text};
use aura_testkit::TestDb;

#[tokio::test]
async fn concurrent_migrate_processes_apply_each_migration_once() {
    const PROCESSES: usize = 4;
    let db = TestDb::empty().await;
    let env = AuraEnv::for_db(&db);
    let children: Vec<_> = (0..PROCESSES)
        .map(|_| {
            env.aura(&["db", "migrate"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("start aura db migrate")
        })
        .collect();
    let mut applied = 0;
    for child in children {
        let out = child.wait_with_output().expect("wait for aura db migrate");
        assert!(
            out.status.success(),
            "a concurrent migrate failed: {}",
            text(&out.stderr)
        );
        applied += applied_count(&out.stdout);
    }
    let embedded = aura_db::Migrations::embedded().len();
    assert_eq!(
        applied, embedded,
        "migrations applied more or less than once"
    );

    let recorded: i64 = db
        .superuser_client()
        .await
        .query_one("SELECT count(*) FROM aura.__diesel_schema_migrations", &[])
        .await
        .expect("count recorded migrations")
        .get(0);
    assert_eq!(recorded as usize, embedded);
    let out = env.run(&["db", "status"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
}
