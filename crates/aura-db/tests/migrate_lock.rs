//! The migration lock across tasks and processes: concurrent migrators apply each migration
//! once, a SIGKILLed migrator's lock is freed within seconds, and the wait limit names the
//! holder. Child processes are this test binary re-run on one test with
//! `AURA_MIGRATE_CHILD=1`: they migrate once, print `MIGRATOR_APPLIED=<n>` and exit.

mod migrate_support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use aura_db::{Error, MIGRATION_LOCK_KEY, MigrateError, MigrateOptions, Migrations, migrate_with};
use aura_testkit::TestDb;
use migrate_support::{MigDir, advisory_locks, diesel_versions, scalar, su_url};
use secrecy::SecretString;

const CHILD: &str = "AURA_MIGRATE_CHILD";
const CHILD_URL: &str = "AURA_MIGRATE_CHILD_URL";
const CHILD_DIR: &str = "AURA_MIGRATE_CHILD_DIR";

/// In a child process: migrates the parent's folder and reports. Returns false in the parent.
async fn act_as_child() -> bool {
    if std::env::var(CHILD).as_deref() != Ok("1") {
        return false;
    }
    let url = SecretString::from(std::env::var(CHILD_URL).expect("child URL"));
    let set = MigDir::open(std::env::var(CHILD_DIR).expect("child dir")).set();
    let opts = MigrateOptions::default()
        .in_search_path_schema()
        .with_lock_wait(Duration::from_secs(60));
    match migrate_with(&url, &set, &opts, |_| {}).await {
        Ok(applied) => println!("MIGRATOR_APPLIED={}", applied.len()),
        Err(e) => println!("MIGRATOR_FAILED={e}"),
    }
    true
}

/// Starts this test binary as a migrator child running `test`.
fn spawn_child(test: &str, url: &str, dir: &MigDir) -> tokio::process::Child {
    tokio::process::Command::new(std::env::current_exe().expect("current exe"))
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .env(CHILD_URL, url)
        .env(CHILD_DIR, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn child migrator")
}

/// The child's `MIGRATOR_APPLIED` count, or a panic with what it printed.
async fn child_result(child: tokio::process::Child) -> usize {
    let out = child.wait_with_output().await.expect("child output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    // The harness prints on the same line (`test … MIGRATOR_APPLIED=2`): search, not match.
    stdout
        .split("MIGRATOR_APPLIED=")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "child migrator failed ({}):\n{stdout}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
        })
}

/// Five migrations: a log table, then four that each log themselves once; one sleeps to
/// widen the race, one builds an index CONCURRENTLY (a blocking lock waiter would deadlock
/// against it; pollers must not).
fn racy_set(dir: &MigDir) {
    dir.add(
        "20240301000001_log",
        "CREATE TABLE run_log (migration text NOT NULL);",
        None,
    )
    .add(
        "20240301000002_slow",
        "CREATE TABLE slow_t (x int);\nSELECT pg_sleep(0.5);\nINSERT INTO run_log VALUES ('slow');",
        None,
    )
    .add(
        "20240301000003_cic",
        "CREATE INDEX CONCURRENTLY run_log_idx ON run_log (migration);",
        None,
    )
    .metadata("20240301000003_cic", "run_in_transaction = false\n")
    .add(
        "20240301000004_log_cic",
        "INSERT INTO run_log VALUES ('cic');",
        None,
    )
    .add(
        "20240301000005_last",
        "CREATE TABLE last_t (x int);\nINSERT INTO run_log VALUES ('last');",
        None,
    );
}

#[tokio::test]
async fn eight_concurrent_migrators_apply_each_migration_once() {
    if act_as_child().await {
        return;
    }
    let db = TestDb::empty().await;
    let url = su_url(&db);
    let dir = MigDir::new();
    racy_set(&dir);
    let set = dir.set();

    // A gate holds the migration lock until all 8 migrators are connected and polling, so
    // they really race for it; the winner then builds an index CONCURRENTLY while 7 poll.
    let gate = db.superuser_client().await;
    gate.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK_KEY])
        .await
        .expect("gate takes the lock");

    let children: Vec<_> = (0..4)
        .map(|_| {
            spawn_child(
                "eight_concurrent_migrators_apply_each_migration_once",
                db.superuser_url().expose(),
                &dir,
            )
        })
        .collect();
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let (url, set) = (url.clone(), set.clone());
            tokio::spawn(async move {
                migrate_with(
                    &url,
                    &set,
                    &MigrateOptions::default().in_search_path_schema(),
                    |_| {},
                )
                .await
            })
        })
        .collect();

    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let waiting: i64 = gate
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                 AND application_name = 'aura-migrate'",
                &[],
            )
            .await
            .expect("pg_stat_activity")
            .get(0);
        if waiting == 8 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {waiting} of 8 migrators connected"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await; // each has polled at least once
    gate.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK_KEY])
        .await
        .expect("gate releases the lock");

    let mut counts = Vec::new();
    for t in tasks {
        counts.push(
            t.await
                .expect("task")
                .expect("task migrator succeeds")
                .len(),
        );
    }
    for c in children {
        counts.push(child_result(c).await);
    }
    eprintln!("applied per migrator (4 tasks, then 4 processes): {counts:?}");
    let total: usize = counts.iter().sum();
    assert_eq!(
        total, 5,
        "each migration applied by exactly one of the 8 migrators"
    );
    assert_eq!(diesel_versions(&db).await.len(), 5);
    assert_eq!(scalar(&db, "SELECT count(*) FROM run_log").await, 3);
    assert_eq!(
        scalar(&db, "SELECT count(DISTINCT migration) FROM run_log").await,
        3,
        "no migration ran twice"
    );
    assert_eq!(scalar(&db, "SELECT count(*) FROM pg_index WHERE indexrelid = 'run_log_idx'::regclass AND indisvalid").await, 1);
    assert_eq!(advisory_locks(&db).await, 0, "no advisory lock left behind");
}

#[tokio::test]
async fn a_sigkilled_migrator_frees_the_lock_within_seconds() {
    if act_as_child().await {
        return;
    }
    let db = TestDb::empty().await;
    let dir = MigDir::new();
    // The victim (recognised by its application_name) sleeps 30 s inside migration 2.
    dir.add("20240401000001_first", "CREATE TABLE first_t (x int);", None)
        .add(
            "20240401000002_sleepy",
            "CREATE TABLE sleepy_t (x int);\n\
             SELECT pg_sleep(CASE WHEN current_setting('application_name') = 'aura-test-victim' THEN 30 ELSE 0 END);",
            None,
        )
        .add("20240401000003_third", "CREATE TABLE third_t (x int);", None);
    let victim_url = format!(
        "{}?application_name=aura-test-victim",
        db.superuser_url().expose()
    );
    let mut victim = spawn_child(
        "a_sigkilled_migrator_frees_the_lock_within_seconds",
        &victim_url,
        &dir,
    );

    // Wait until the victim holds the lock and sleeps.
    let su = db.superuser_client().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let victim_pid: i32 = loop {
        let row = su
            .query_opt(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() \
                 AND application_name = 'aura-test-victim' AND state = 'active' AND query LIKE '%pg_sleep%'",
                &[],
            )
            .await
            .expect("pg_stat_activity");
        if let Some(r) = row {
            break r.get(0);
        }
        assert!(
            Instant::now() < deadline,
            "the victim never reached its pg_sleep"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(advisory_locks(&db).await, 1, "the victim holds the lock");

    // A second migrator waits for it...
    let set = dir.set();
    let url = su_url(&db);
    let waiter = tokio::spawn(async move {
        let opts = MigrateOptions::default()
            .in_search_path_schema()
            .with_lock_wait(Duration::from_secs(25));
        migrate_with(&url, &set, &opts, |_| {}).await
    });
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        !waiter.is_finished(),
        "the lock holder is still alive: the waiter must wait"
    );

    // ...and gets the lock soon after the victim is SIGKILLed (mid-statement, mid-transaction).
    victim.start_kill().expect("SIGKILL the victim");
    let killed_at = Instant::now();
    let _ = victim.wait().await;
    let applied = tokio::time::timeout(Duration::from_secs(20), waiter)
        .await
        .expect("the waiter finishes")
        .expect("task")
        .expect("the waiter migrates");
    let took = killed_at.elapsed();
    assert!(
        took < Duration::from_secs(6),
        "lock freed {took:?} after the kill"
    );
    let versions: Vec<&str> = applied.iter().map(|a| a.version.as_str()).collect();
    assert_eq!(
        versions,
        ["20240401000002", "20240401000003"],
        "the killed migration was not recorded"
    );
    let victim_left: i64 = su
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = $1",
            &[&victim_pid],
        )
        .await
        .expect("pg_stat_activity")
        .get(0);
    assert_eq!(victim_left, 0, "the victim's backend ended");
    assert_eq!(advisory_locks(&db).await, 0);
}

#[tokio::test]
async fn the_lock_wait_limit_names_the_holder() {
    let db = TestDb::empty().await;
    let holder = db.superuser_client().await;
    let holder_pid: i32 = holder
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .expect("pid")
        .get(0);
    holder
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK_KEY])
        .await
        .expect("take the migration lock");

    let dir = MigDir::new();
    dir.add("20240501000001_a", "CREATE TABLE a_t (x int);", None);
    let set = dir.set();
    let url = su_url(&db);
    let opts = MigrateOptions::default()
        .in_search_path_schema()
        .with_lock_wait(Duration::from_secs(1));
    let started = Instant::now();
    let err = migrate_with(&url, &set, &opts, |_| {})
        .await
        .expect_err("lock held");
    let waited = started.elapsed();
    assert!(
        matches!(&err, Error::Migrate(MigrateError::LockTimeout { holder_pid: Some(pid), .. }) if *pid == holder_pid),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains(&format!("held by backend pid {holder_pid}")),
        "{err}"
    );
    assert!(
        waited >= Duration::from_secs(1) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
    assert!(
        diesel_versions(&db).await.is_empty(),
        "nothing done without the lock"
    );
    assert_eq!(advisory_locks(&db).await, 1, "only the holder's lock");

    holder
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK_KEY])
        .await
        .expect("unlock");
    assert_eq!(
        migrate_with(&url, &set, &opts, |_| {})
            .await
            .expect("migrates")
            .len(),
        1
    );
}

#[test]
fn works_on_a_current_thread_runtime_without_block_in_place() {
    // diesel's AsyncMigrationHarness panics here (block_in_place); this runner must not.
    if std::env::var(CHILD).is_ok() {
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let db = TestDb::empty().await;
        let dir = MigDir::new();
        dir.add("20240601000001_a", "CREATE TABLE a_t (x int);", None);
        let set: Migrations = dir.set();
        let applied = migrate_with(
            &su_url(&db),
            &set,
            &MigrateOptions::default().in_search_path_schema(),
            |_| {},
        )
        .await
        .expect("migrates");
        assert_eq!(applied.len(), 1);
    });
}

#[tokio::test]
async fn a_cancelled_migrate_frees_the_lock_at_once() {
    if act_as_child().await {
        return;
    }
    let db = TestDb::empty().await;
    let dir = MigDir::new();
    dir.add("20240701000001_first", "CREATE TABLE first_t (x int);", None)
        .add(
            "20240701000002_sleepy",
            "CREATE TABLE sleepy_t (x int);\n\
             SELECT pg_sleep(CASE WHEN current_setting('application_name') = 'aura-test-cancelled' THEN 30 ELSE 0 END);",
            None,
        );
    let set = dir.set();
    let cancelled_url = SecretString::from(format!(
        "{}?application_name=aura-test-cancelled",
        db.superuser_url().expose()
    ));
    // The caller gives up (a timeout drops the future) while migration 2 sleeps.
    let gave_up = tokio::time::timeout(
        Duration::from_secs(1),
        migrate_with(
            &cancelled_url,
            &set,
            &MigrateOptions::default().in_search_path_schema(),
            |_| {},
        ),
    )
    .await;
    assert!(gave_up.is_err(), "the migration was still running");
    let dropped_at = Instant::now();

    let opts = MigrateOptions::default()
        .in_search_path_schema()
        .with_lock_wait(Duration::from_secs(10));
    let applied = migrate_with(&su_url(&db), &set, &opts, |_| {})
        .await
        .expect("the lock was freed");
    assert!(
        dropped_at.elapsed() < Duration::from_secs(3),
        "lock freed {:?} after the cancel",
        dropped_at.elapsed()
    );
    let versions: Vec<&str> = applied.iter().map(|a| a.version.as_str()).collect();
    assert_eq!(
        versions,
        ["20240701000002"],
        "the cancelled migration was rolled back"
    );
    assert_eq!(advisory_locks(&db).await, 0);
}
