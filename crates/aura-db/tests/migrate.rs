//! Migrations on a real Postgres: applying once, status, failures rolled back whole and
//! named, checksums and unknown versions refused, reset with its guards, the tracking
//! tables closed to other roles, and diesel's harness agreeing with us. Every test runs on
//! the current-thread runtime `#[tokio::test]` gives.

mod migrate_support;

use std::time::{Duration, SystemTime};

use aura_db::{
    Applied, Error, MigrateError, MigrateOptions, MigrationState, Migrations, ResetGuards, migrate,
    migrate_with, reset_with, status, status_with,
};
use aura_testkit::TestDb;
use migrate_support::{
    MigDir, advisory_locks, catalog_snapshot, chain, checksum_rows, create_login_role,
    diesel_versions, drop_role, scalar, su_url, tables, unique_role,
};
use secrecy::{ExposeSecret, SecretString};

const NOTES: &str = "2024-01-01-000001_create_notes";
const FUNCS: &str = "2024-01-01-000002_add_functions";
const TAGS: &str = "20240101000003_create_tags";

/// Three migrations with what a statement splitter would trip on (quoted semicolons, a
/// plpgsql body, a BEGIN ATOMIC body, comments, an E'' string): Postgres parses them whole.
fn three(dir: &MigDir) -> &MigDir {
    dir.add(
        NOTES,
        "-- notes\nCREATE TABLE notes (id bigint PRIMARY KEY, body text NOT NULL);\n\
         COMMENT ON TABLE notes IS 'semi;colons; in ''quotes''';\n",
        Some("DROP TABLE notes;\n"),
    )
    .add(
        FUNCS,
        "CREATE FUNCTION note_count() RETURNS bigint LANGUAGE plpgsql AS $$\nBEGIN\n  \
         RETURN (SELECT count(*) FROM notes); -- a ; inside\nEND;\n$$;\n\
         CREATE FUNCTION twice(x int) RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  SELECT x * 2;\nEND;\n",
        Some("DROP FUNCTION twice(int);\nDROP FUNCTION note_count();\n"),
    )
    .add(
        TAGS,
        "/* tags; with a block comment */\n\
         CREATE TABLE tags (note_id bigint NOT NULL REFERENCES notes (id), tag text NOT NULL, \
         PRIMARY KEY (note_id, tag));\n\
         INSERT INTO tags SELECT 1, E'it\\'s;' WHERE false",
        Some("DROP TABLE tags;"),
    )
}

/// The runner's own tests keep their fixture tables in the session's current schema
/// (`public`, as the superuser), with no grants.
fn opts() -> MigrateOptions {
    MigrateOptions::default().in_search_path_schema()
}

async fn run(url: &SecretString, set: &Migrations) -> Result<Vec<Applied>, Error> {
    migrate_with(url, set, &opts(), |_| {}).await
}

#[tokio::test]
async fn applies_each_migration_once_and_status_shows_them() {
    let db = TestDb::empty().await;
    let url = su_url(&db);
    let dir = MigDir::new();
    let set = three(&dir).set();
    let before = SystemTime::now() - Duration::from_secs(5);

    let mut seen = Vec::new();
    let applied = migrate_with(&url, &set, &opts(), |a| seen.push(a.version.clone()))
        .await
        .expect("first run");
    let versions: Vec<&str> = applied.iter().map(|a| a.version.as_str()).collect();
    assert_eq!(
        versions,
        ["20240101000001", "20240101000002", "20240101000003"]
    );
    assert_eq!(seen, versions, "on_applied saw each migration in order");
    assert_eq!(applied[0].name, "create_notes");
    assert_eq!(
        tables(&db).await,
        [
            "__diesel_schema_migrations",
            "aura_migration_checksums",
            "notes",
            "tags"
        ]
    );
    assert_eq!(
        scalar(&db, "SELECT twice(21)::bigint").await,
        42,
        "BEGIN ATOMIC body kept whole"
    );
    assert_eq!(scalar(&db, "SELECT note_count()").await, 0);
    assert_eq!(diesel_versions(&db).await, versions);
    let sums: Vec<(String, String)> = set
        .iter()
        .map(|m| (m.version().to_owned(), m.checksum().to_owned()))
        .collect();
    assert_eq!(checksum_rows(&db).await, sums);

    assert!(
        run(&url, &set).await.expect("second run").is_empty(),
        "second run applies nothing"
    );
    assert_eq!(diesel_versions(&db).await.len(), 3);

    let rows = status_with(&url, &set, &opts()).await.expect("status");
    assert_eq!(rows.len(), 3);
    for (row, m) in rows.iter().zip(set.iter()) {
        assert_eq!(
            (row.version.as_str(), row.name.as_str()),
            (m.version(), m.name())
        );
        assert_eq!(row.state, MigrationState::Applied);
        let at = row.applied_at.expect("applied_at");
        assert!(
            at > before && at <= SystemTime::now() + Duration::from_secs(5),
            "{at:?}"
        );
    }

    // A new migration shows as pending, then applies alone.
    dir.add(
        "20240101000004_more",
        "ALTER TABLE notes ADD COLUMN flag bool",
        Some("ALTER TABLE notes DROP COLUMN flag"),
    );
    let set = dir.set();
    let rows = status_with(&url, &set, &opts()).await.expect("status");
    assert_eq!(
        rows.last().map(|r| (r.state, r.applied_at)),
        Some((MigrationState::Pending, None))
    );
    assert_eq!(
        migrate_with(&url, &set, &opts(), |_| {})
            .await
            .expect("third run")
            .len(),
        1
    );
    assert_eq!(advisory_locks(&db).await, 0, "the lock is released");
}

#[tokio::test]
async fn a_never_migrated_database_has_an_empty_status() {
    let db = TestDb::empty().await;
    let dir = MigDir::new();
    let rows = status_with(&su_url(&db), &three(&dir).set(), &opts())
        .await
        .expect("status");
    assert!(rows.is_empty(), "{rows:?}");
    assert!(tables(&db).await.is_empty(), "status created nothing");
}

#[tokio::test]
async fn status_without_permission_is_an_error_not_an_empty_list() {
    let db = TestDb::empty().await;
    let dir = MigDir::new();
    let set = three(&dir).set();
    run(&su_url(&db), &set).await.expect("migrate");

    let role = unique_role("aura_t_noperm");
    let url = create_login_role(&db, &role, "pw-noperm").await;
    // The role can use schema public but cannot read the tracking tables.
    let err = status_with(&url, &set, &opts())
        .await
        .expect_err("no SELECT on the tracking tables");
    assert!(
        matches!(&err, Error::Migrate(MigrateError::Step { .. }))
            && err.sqlstate() == Some("42501"),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("__diesel_schema_migrations"),
        "{err}"
    );

    // Without USAGE on any schema of its search_path, there is no schema to look in.
    db.superuser_client()
        .await
        .batch_execute("REVOKE USAGE ON SCHEMA public FROM PUBLIC")
        .await
        .expect("revoke usage");
    let err = status_with(&url, &set, &opts())
        .await
        .expect_err("no usable schema");
    assert!(err.to_string().contains("search_path"), "{err}");
    drop_role(&db, &role).await;
}

#[tokio::test]
async fn a_failing_statement_rolls_back_its_whole_migration() {
    let db = TestDb::empty().await;
    let url = su_url(&db);
    let dir = MigDir::new();
    dir.add("20240201000001_ok", "CREATE TABLE kept (x int);", None)
        .add(
            "20240201000002_breaks",
            "CREATE TABLE first_t (x int);\nCREATE TABLE second_t (x int);\n\n-- the third one fails\n\
             INSERT INTO missing_t VALUES (1);\nCREATE TABLE fourth_t (x int);\n",
            None,
        )
        .add("20240201000003_after", "CREATE TABLE after_t (x int);", None);
    let set = dir.set();

    let mut seen = Vec::new();
    let err = migrate_with(&url, &set, &opts(), |a| seen.push(a.version.clone()))
        .await
        .expect_err("migration 2 fails");
    match &err {
        Error::Migrate(MigrateError::Failed(f)) => {
            assert_eq!(
                (f.version.as_str(), f.name.as_str(), f.direction.as_str()),
                ("20240201000002", "breaks", "up")
            );
            assert_eq!((f.line, f.column), (Some(5), Some(13)));
            assert_eq!(f.cause.sqlstate.as_deref(), Some("42P01"));
            assert!(f.rolled_back);
        }
        other => panic!("expected MigrateError::Failed, got {other:?}"),
    }
    let text = chain(&err);
    assert!(
        text.contains("migration 20240201000002_breaks (up) failed at line 5, column 13 (INSERT INTO missing_t VALUES (1);), rolled back, not recorded: "),
        "{text}"
    );
    assert!(
        text.contains("\"missing_t\" does not exist") && text.contains("SQLSTATE 42P01"),
        "{text}"
    );
    assert!(!text.contains('\n'), "one line: {text}");

    assert_eq!(
        seen,
        ["20240201000001"],
        "only the first migration was applied"
    );
    assert_eq!(
        tables(&db).await,
        [
            "__diesel_schema_migrations",
            "aura_migration_checksums",
            "kept"
        ]
    );
    assert_eq!(diesel_versions(&db).await, ["20240201000001"]);
    assert_eq!(checksum_rows(&db).await.len(), 1);
    assert_eq!(
        advisory_locks(&db).await,
        0,
        "the lock is released on the error path"
    );
    let rows = status_with(&url, &set, &opts()).await.expect("status");
    let states: Vec<MigrationState> = rows.iter().map(|r| r.state).collect();
    assert_eq!(
        states,
        [
            MigrationState::Applied,
            MigrationState::Pending,
            MigrationState::Pending
        ]
    );

    // Fixed, it applies (nothing of the failed attempt is in the way).
    dir.add(
        "20240201000002_breaks",
        "CREATE TABLE first_t (x int);\nCREATE TABLE second_t (x int);\nCREATE TABLE fourth_t (x int);\n",
        None,
    );
    assert_eq!(run(&url, &dir.set()).await.expect("fixed").len(), 2);
}

#[tokio::test]
async fn an_edited_applied_migration_is_refused_and_reported() {
    let db = TestDb::empty().await;
    let url = su_url(&db);
    let dir = MigDir::new();
    three(&dir);
    run(&url, &dir.set()).await.expect("migrate");

    // Edit an applied migration and add a new one: nothing may run, the new one included.
    dir.add(
        FUNCS,
        "CREATE FUNCTION note_count() RETURNS bigint LANGUAGE sql AS 'SELECT 0::bigint';",
        None,
    )
    .add("20240101000004_new", "CREATE TABLE new_t (x int);", None);
    let edited = dir.set();
    let before = catalog_snapshot(&db).await;
    let err = run(&url, &edited).await.expect_err("edited");
    assert!(
        matches!(&err, Error::Migrate(MigrateError::ChecksumMismatch { version, name, .. }) if version == "20240101000002" && name == "add_functions"),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("migration 20240101000002_add_functions was edited"),
        "{err}"
    );
    assert_eq!(catalog_snapshot(&db).await, before, "nothing ran");
    assert_eq!(advisory_locks(&db).await, 0);
    let rows = status_with(&url, &edited, &opts()).await.expect("status");
    let states: Vec<(&str, MigrationState)> =
        rows.iter().map(|r| (r.version.as_str(), r.state)).collect();
    assert_eq!(
        states,
        [
            ("20240101000001", MigrationState::Applied),
            ("20240101000002", MigrationState::ChecksumMismatch),
            ("20240101000003", MigrationState::Applied),
            ("20240101000004", MigrationState::Pending),
        ]
    );
}

#[tokio::test]
async fn an_applied_version_unknown_to_the_set_is_refused_and_reported() {
    let db = TestDb::empty().await;
    let url = su_url(&db);
    let dir = MigDir::new();
    three(&dir);
    run(&url, &dir.set()).await.expect("migrate");

    // An older binary: it knows only the first two, and has a pending one of its own.
    let older = MigDir::new();
    three(&older).remove(TAGS);
    older.add("20231231000000_early", "CREATE TABLE early_t (x int)", None);
    let set = older.set();
    let before = catalog_snapshot(&db).await;
    let err = run(&url, &set).await.expect_err("unknown applied");
    assert!(
        matches!(&err, Error::Migrate(MigrateError::UnknownApplied { version }) if version == "20240101000003"),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("migration 20240101000003 applied, which this binary does not know"),
        "{err}"
    );
    assert_eq!(
        catalog_snapshot(&db).await,
        before,
        "nothing ran, not even the pending one"
    );
    let rows = status_with(&url, &set, &opts()).await.expect("status");
    let unknown = rows
        .iter()
        .find(|r| r.version == "20240101000003")
        .expect("row");
    assert_eq!(
        (unknown.state, unknown.name.as_str()),
        (MigrationState::Unknown, "create_tags")
    );
    assert!(unknown.applied_at.is_some());
    assert_eq!(
        rows.iter()
            .find(|r| r.version == "20231231000000")
            .map(|r| r.state),
        Some(MigrationState::Pending)
    );
}

#[tokio::test]
async fn reset_refuses_without_its_guards_or_a_down_and_changes_nothing() {
    let db = TestDb::empty().await;
    let url = su_url(&db);
    let dir = MigDir::new();
    let set = three(&dir).set();
    run(&url, &set).await.expect("migrate");
    db.superuser_client()
        .await
        .batch_execute("INSERT INTO notes VALUES (1, 'kept until reset')")
        .await
        .expect("insert");
    let before = catalog_snapshot(&db).await;

    for (yes_flag, env_yes, needs) in [
        (false, false, "it needs --yes and AURA_RESET_YES=1"),
        (true, false, "it needs AURA_RESET_YES=1"),
        (false, true, "it needs --yes"),
    ] {
        let err = reset_with(&url, &set, ResetGuards { yes_flag, env_yes }, &opts())
            .await
            .expect_err("refused");
        assert!(
            matches!(err, Error::Migrate(MigrateError::ResetRefused { .. })),
            "{err:?}"
        );
        assert!(err.to_string().contains(needs), "{err}");
        assert_eq!(catalog_snapshot(&db).await, before);
    }

    // The middle migration loses its down.sql: refused before the newest one is reverted.
    let no_down = MigDir::new();
    three(&no_down).add(
        FUNCS,
        &std::fs::read_to_string(dir.path().join(FUNCS).join("up.sql")).expect("read"),
        None,
    );
    let yes = ResetGuards {
        yes_flag: true,
        env_yes: true,
    };
    let err = reset_with(&url, &no_down.set(), yes, &opts())
        .await
        .expect_err("missing down");
    assert!(
        matches!(&err, Error::Migrate(MigrateError::MissingDown { version, name }) if version == "20240101000002" && name == "add_functions"),
        "{err:?}"
    );
    assert!(err.to_string().contains("nothing was changed"), "{err}");
    assert_eq!(catalog_snapshot(&db).await, before);
    assert_eq!(advisory_locks(&db).await, 0);

    // A down.sql with only comments counts as missing.
    let empty_down = MigDir::new();
    three(&empty_down).add(
        TAGS,
        &std::fs::read_to_string(dir.path().join(TAGS).join("up.sql")).expect("read"),
        Some("-- This file should undo anything in `up.sql`\n"),
    );
    let err = reset_with(&url, &empty_down.set(), yes, &opts())
        .await
        .expect_err("empty down");
    assert!(
        matches!(&err, Error::Migrate(MigrateError::MissingDown { version, .. }) if version == "20240101000003"),
        "{err:?}"
    );
    assert_eq!(catalog_snapshot(&db).await, before);
}

#[tokio::test]
async fn reset_with_both_guards_reverts_all_then_applies_all() {
    let db = TestDb::empty().await;
    let url = su_url(&db);
    let dir = MigDir::new();
    three(&dir);
    let set = dir.set();
    // Two applied, one pending: reset reverts the two, then applies all three.
    let older = MigDir::new();
    three(&older).remove(TAGS);
    run(&url, &older.set()).await.expect("migrate two");
    db.superuser_client()
        .await
        .batch_execute("INSERT INTO notes VALUES (1, 'gone after reset')")
        .await
        .expect("insert");
    let notes_oid = scalar(&db, "SELECT 'notes'::regclass::oid::bigint").await;

    let report = reset_with(
        &url,
        &set,
        ResetGuards {
            yes_flag: true,
            env_yes: true,
        },
        &opts(),
    )
    .await
    .expect("reset");
    let reverted: Vec<&str> = report.reverted.iter().map(|a| a.version.as_str()).collect();
    let applied: Vec<&str> = report.applied.iter().map(|a| a.version.as_str()).collect();
    assert_eq!(
        reverted,
        ["20240101000002", "20240101000001"],
        "newest first"
    );
    assert_eq!(
        applied,
        ["20240101000001", "20240101000002", "20240101000003"]
    );
    assert_eq!(
        scalar(&db, "SELECT count(*) FROM notes").await,
        0,
        "data dropped with the table"
    );
    assert_ne!(
        scalar(&db, "SELECT 'notes'::regclass::oid::bigint").await,
        notes_oid,
        "table re-created"
    );
    assert_eq!(diesel_versions(&db).await, applied);
    let rows = status_with(&url, &set, &opts()).await.expect("status");
    assert!(
        rows.iter().all(|r| r.state == MigrationState::Applied),
        "{rows:?}"
    );
    assert!(
        run(&url, &set)
            .await
            .expect("migrate after reset")
            .is_empty()
    );
    assert_eq!(advisory_locks(&db).await, 0);
}

#[tokio::test]
async fn an_empty_url_is_refused_with_the_documented_text() {
    const TEXT: &str =
        "aura-db: migrate URL is empty (set AURA_DB_MIGRATE_URL or the POSTGRES_* variables)";
    let empty = SecretString::from(String::new());
    let err = migrate(&empty).await.expect_err("empty");
    assert!(
        matches!(err, Error::Migrate(MigrateError::EmptyUrl)),
        "{err:?}"
    );
    assert_eq!(err.to_string(), TEXT);
    assert_eq!(
        MigrateError::EmptyUrl.to_string(),
        TEXT,
        "the same text as the migration error itself"
    );
    let blank = SecretString::from("  ".to_owned());
    let set = Migrations::default();
    assert_eq!(
        migrate_with(&blank, &set, &opts(), |_| {})
            .await
            .expect_err("blank")
            .to_string(),
        TEXT
    );
    assert_eq!(
        status_with(&empty, &set, &opts())
            .await
            .expect_err("status")
            .to_string(),
        TEXT
    );
}

/// A migration session that cannot connect fails with the connect error itself, matched
/// without a downcast, its driver error as the source; a migration's own failure is
/// `Error::Migrate`.
#[tokio::test]
async fn a_session_that_cannot_connect_is_the_connect_error_itself() {
    let db = TestDb::empty().await;
    let dir = MigDir::new();
    let set = three(&dir).set();
    let role = unique_role("aura_t_badpw");
    let good = create_login_role(&db, &role, "pw-right").await;
    let bad = SecretString::from(good.expose_secret().replacen("pw-right", "pw-wrong", 1));
    let err = run(&bad, &set).await.expect_err("wrong password");
    assert!(
        matches!(&err, Error::Auth { sqlstate, .. } if sqlstate == "28P01"),
        "{err:?}"
    );
    assert_eq!(err.sqlstate(), Some("28P01"));
    let source = std::error::Error::source(&err).expect("a source");
    assert!(source.is::<tokio_postgres::Error>(), "{source:?}");
    assert!(!chain(&err).contains("pw-wrong"), "{}", chain(&err));
    let err = status(&bad, &set).await.expect_err("wrong password");
    assert!(matches!(&err, Error::Auth { .. }), "{err:?}");
    drop_role(&db, &role).await;

    // Nothing listens on a port just released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let closed = SecretString::from(format!(
        "postgres://nobody:pw@127.0.0.1:{port}/x?sslmode=disable&connect_timeout=5"
    ));
    let err = run(&closed, &set).await.expect_err("refused");
    assert!(matches!(&err, Error::Connect { .. }), "{err:?}");
    assert!(err.is_retryable());
    let source = std::error::Error::source(&err).expect("a source");
    assert!(source.is::<tokio_postgres::Error>(), "{source:?}");
    assert!(
        chain(&err).to_lowercase().contains("refused"),
        "{}",
        chain(&err)
    );
}

#[tokio::test]
async fn other_roles_cannot_write_the_tracking_tables() {
    let db = TestDb::empty().await;
    let url = su_url(&db);
    let app = unique_role("aura_t_app");
    let _ = create_login_role(&db, &app, "pw-app").await;
    let su = db.superuser_client().await;
    // As role bootstrap does for the migrate role: every new table is the app role's to write.
    su.batch_execute(&format!(
        "ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON TABLES TO {app}"
    ))
    .await
    .expect("default privileges");
    let dir = MigDir::new();
    run(&url, &three(&dir).set()).await.expect("migrate");

    let privilege = |table: &str, what: &str| {
        format!("SELECT has_table_privilege('{app}', 'public.{table}', '{what}')::int::bigint")
    };
    for table in ["__diesel_schema_migrations", "aura_migration_checksums"] {
        for what in ["INSERT", "UPDATE", "DELETE", "TRUNCATE"] {
            assert_eq!(
                scalar(&db, &privilege(table, what)).await,
                0,
                "{app} has {what} on {table}"
            );
        }
        assert_eq!(
            scalar(&db, &privilege(table, "SELECT")).await,
            1,
            "{app} keeps SELECT on {table}"
        );
    }
    assert_eq!(
        scalar(&db, &privilege("notes", "INSERT")).await,
        1,
        "domain tables are untouched"
    );

    // A grant made later (to PUBLIC, here) is taken back by the next run.
    su.batch_execute("GRANT INSERT ON public.__diesel_schema_migrations TO PUBLIC")
        .await
        .expect("grant");
    run(&url, &dir.set()).await.expect("migrate again");
    assert_eq!(
        scalar(&db, "SELECT count(*) FROM pg_class c, aclexplode(c.relacl) a WHERE c.relname = '__diesel_schema_migrations' AND a.grantee = 0").await,
        0
    );
    drop(su);
    drop_role(&db, &app).await;
}

#[tokio::test]
async fn create_index_concurrently_runs_outside_a_transaction() {
    let db = TestDb::empty().await;
    let url = su_url(&db);
    let dir = MigDir::new();
    three(&dir)
        .add(
            "20240101000004_notes_body_idx",
            "CREATE INDEX CONCURRENTLY notes_body_idx ON notes (body);\n",
            Some("DROP INDEX CONCURRENTLY notes_body_idx;"),
        )
        .metadata(
            "20240101000004_notes_body_idx",
            "# CIC cannot run in a transaction\nrun_in_transaction = false\n",
        );
    let set = dir.set();
    assert!(
        !set.get("20240101000004")
            .expect("present")
            .run_in_transaction()
    );
    assert_eq!(run(&url, &set).await.expect("migrate").len(), 4);
    assert_eq!(scalar(&db, "SELECT count(*) FROM pg_index WHERE indexrelid = 'notes_body_idx'::regclass AND indisvalid").await, 1);

    // In a transactional migration the server refuses it, and the error says what to do.
    dir.add(
        "20240101000005_tx_cic",
        "CREATE INDEX CONCURRENTLY notes_id_body ON notes (id, body);",
        None,
    );
    let err = run(&url, &dir.set())
        .await
        .expect_err("CIC in a transaction");
    let text = chain(&err);
    assert!(
        text.contains("SQLSTATE 25001") && text.contains("run_in_transaction = false"),
        "{text}"
    );

    // reset handles both kinds.
    dir.remove("20240101000005_tx_cic");
    let report = reset_with(
        &url,
        &dir.set(),
        ResetGuards {
            yes_flag: true,
            env_yes: true,
        },
        &opts(),
    )
    .await
    .expect("reset");
    assert_eq!((report.reverted.len(), report.applied.len()), (4, 4));
}

#[tokio::test]
async fn invalid_folders_are_refused_before_any_database_work() {
    let dir = MigDir::new();
    dir.add(
        "20240101000001_a",
        "-- nothing yet\n/* still nothing */\n",
        None,
    );
    let err = Migrations::from_dir(dir.path()).expect_err("no SQL");
    assert!(
        err.to_string()
            .contains("migration 20240101000001_a: up.sql has no statement"),
        "{err}"
    );

    let dir = MigDir::new();
    dir.add("20240101000001_a", "SELECT 1", None)
        .add("2024-01-01-000001_b", "SELECT 2", None);
    let err = Migrations::from_dir(dir.path()).expect_err("duplicate version");
    assert!(
        err.to_string()
            .contains("version 20240101000001 is also used by"),
        "{err}"
    );

    let dir = MigDir::new();
    dir.add("20240101000001_a", "SELECT 1", None)
        .metadata("20240101000001_a", "");
    let err = Migrations::from_dir(dir.path()).expect_err("metadata without the key");
    assert!(
        err.to_string().contains("run_in_transaction is not set"),
        "{err}"
    );

    let dir = MigDir::new();
    std::fs::create_dir_all(dir.path().join("20240101000001_a")).expect("mkdir");
    let err = Migrations::from_dir(dir.path()).expect_err("no up.sql");
    assert!(err.to_string().contains("has no up.sql"), "{err}");
}

/// diesel's harness (what `diesel migration run/list` use), over diesel-async's blocking
/// wrapper, on the same database and folder.
fn diesel_harness<T: Send + 'static>(
    url: String,
    dir: std::path::PathBuf,
    f: impl FnOnce(
        &mut diesel_async::async_connection_wrapper::AsyncConnectionWrapper<
            aura_db::AsyncPgConnection,
        >,
        diesel_migrations::FileBasedMigrations,
    ) -> T
    + Send
    + 'static,
) -> tokio::task::JoinHandle<T> {
    tokio::task::spawn_blocking(move || {
        use diesel::Connection;
        let mut conn = diesel_async::async_connection_wrapper::AsyncConnectionWrapper::<
            aura_db::AsyncPgConnection,
        >::establish(&url)
        .expect("diesel connects");
        let source = diesel_migrations::FileBasedMigrations::from_path(&dir)
            .expect("diesel reads the folder");
        f(&mut conn, source)
    })
}

#[tokio::test]
async fn diesel_agrees_with_what_we_applied_and_we_adopt_what_diesel_applied() {
    use diesel_migrations::MigrationHarness;

    // We migrate; diesel sees the same versions applied and nothing pending.
    let db = TestDb::empty().await;
    let dir = MigDir::new();
    three(&dir);
    run(&su_url(&db), &dir.set()).await.expect("migrate");
    let (applied, pending) = diesel_harness(
        db.superuser_url().expose().to_owned(),
        dir.path().to_owned(),
        |conn, source| {
            let applied: Vec<String> = conn
                .applied_migrations()
                .expect("applied")
                .iter()
                .map(|v| v.to_string())
                .collect();
            (
                applied,
                conn.has_pending_migration(source).expect("pending"),
            )
        },
    )
    .await
    .expect("harness");
    assert_eq!(
        applied,
        ["20240101000003", "20240101000002", "20240101000001"]
    );
    assert!(!pending, "diesel sees nothing pending");

    // diesel migrates a fresh database; we then apply nothing and record the checksums.
    let db = TestDb::empty().await;
    let ran = diesel_harness(
        db.superuser_url().expose().to_owned(),
        dir.path().to_owned(),
        |conn, source| {
            conn.run_pending_migrations(source)
                .expect("diesel runs")
                .len()
        },
    )
    .await
    .expect("harness");
    assert_eq!(ran, 3);
    let url = su_url(&db);
    let set = dir.set();
    assert!(
        status_with(&url, &set, &opts())
            .await
            .expect("status")
            .iter()
            .all(|r| r.state == MigrationState::Applied)
    );
    assert!(run(&url, &set).await.expect("migrate").is_empty());
    let sums: Vec<(String, String)> = set
        .iter()
        .map(|m| (m.version().to_owned(), m.checksum().to_owned()))
        .collect();
    assert_eq!(
        checksum_rows(&db).await,
        sums,
        "adopted with the current checksums"
    );
}

#[tokio::test]
async fn as_the_migrate_role_everything_lands_in_aura_and_the_app_role_cannot_write_tracking() {
    let db = TestDb::empty().await;
    aura_db::ensure_roles(db.config())
        .await
        .expect("role bootstrap");
    let migrate_url = SecretString::from(
        db.config()
            .migrate_url()
            .expect("migrate URL")
            .expose()
            .to_owned(),
    );
    let dir = MigDir::new();
    let set = three(&dir).set();
    assert_eq!(run(&migrate_url, &set).await.expect("migrate").len(), 3);

    let owners = db
        .superuser_client()
        .await
        .query(
            "SELECT c.relname::text, pg_get_userbyid(c.relowner)::text FROM pg_class c \
             WHERE c.relnamespace = 'aura'::regnamespace AND c.relkind = 'r' ORDER BY 1",
            &[],
        )
        .await
        .expect("aura tables");
    let owners: Vec<(String, String)> = owners.iter().map(|r| (r.get(0), r.get(1))).collect();
    let expected: Vec<(String, String)> = [
        "__diesel_schema_migrations",
        "aura_migration_checksums",
        "notes",
        "tags",
    ]
    .iter()
    .map(|t| (t.to_string(), "aura_migrate".to_owned()))
    .collect();
    assert_eq!(
        owners, expected,
        "unqualified DDL lands in aura, owned by the migrate role"
    );

    let app = db.app_client().await;
    for sql in [
        "INSERT INTO aura.__diesel_schema_migrations (version) VALUES ('99990101000000')",
        "DELETE FROM aura.__diesel_schema_migrations",
        "UPDATE aura.aura_migration_checksums SET checksum = repeat('0', 64)",
        "TRUNCATE aura.aura_migration_checksums",
    ] {
        let err = app.batch_execute(sql).await.expect_err(sql);
        assert_eq!(err.code().map(|c| c.code()), Some("42501"), "{sql}: {err}");
    }
    let n: i64 = app
        .query_one("SELECT count(*) FROM aura.__diesel_schema_migrations", &[])
        .await
        .expect("the app role may read")
        .get(0);
    assert_eq!(n, 3);
    app.batch_execute("INSERT INTO notes VALUES (1, 'the app role writes domain tables')")
        .await
        .expect("default privileges still give DML on domain tables");
    let rows = status(&migrate_url, &set).await.expect("status");
    assert!(
        rows.iter().all(|r| r.state == MigrationState::Applied),
        "{rows:?}"
    );
}

#[tokio::test]
async fn the_embedded_migrations_apply_as_the_migrate_role() {
    let db = TestDb::empty().await;
    aura_db::ensure_roles(db.config())
        .await
        .expect("role bootstrap");
    let migrate_url = SecretString::from(
        db.config()
            .migrate_url()
            .expect("migrate URL")
            .expose()
            .to_owned(),
    );
    let embedded = Migrations::embedded();
    assert_eq!(
        migrate(&migrate_url).await.expect("migrate"),
        embedded.len()
    );
    assert_eq!(migrate(&migrate_url).await.expect("again"), 0);
    let rows = status(&migrate_url, embedded).await.expect("status");
    assert_eq!(rows.len(), embedded.len());
    assert!(
        rows.iter().all(|r| r.state == MigrationState::Applied),
        "{rows:?}"
    );
}

#[tokio::test]
async fn transaction_control_in_up_sql_is_reported_as_not_rolled_back() {
    // No splitter looks for it before running: the runner notices that the migration's SQL
    // ended its transaction, and says what that means instead of "rolled back".
    let db = TestDb::empty().await;
    let url = su_url(&db);
    let dir = MigDir::new();
    dir.add(
        "20240101000001_a",
        "CREATE TABLE ctl_t (x int);\nCOMMIT;\n",
        None,
    )
    .add("20240101000002_b", "CREATE TABLE after_t (x int);", None);
    let err = run(&url, &dir.set()).await.expect_err("COMMIT in up.sql");
    match &err {
        Error::Migrate(MigrateError::Failed(f)) => {
            assert!(f.transaction_ended && !f.rolled_back, "{f:?}")
        }
        other => panic!("expected MigrateError::Failed, got {other:?}"),
    }
    let text = chain(&err);
    assert!(
        text.contains("migration 20240101000001_a (up) failed, NOT rolled back: its SQL ended the runner's transaction"),
        "{text}"
    );
    assert!(
        tables(&db).await.contains(&"ctl_t".to_owned()),
        "committed, as the error says"
    );
    assert_eq!(advisory_locks(&db).await, 0);
}

#[tokio::test]
async fn an_error_without_a_position_names_the_migration_but_no_line() {
    // Errors raised while executing (not parsing) carry no position: no line is invented.
    let db = TestDb::empty().await;
    let url = su_url(&db);
    let dir = MigDir::new();
    dir.add(
        "20240101000001_dup",
        "CREATE TABLE dup_t (x int PRIMARY KEY);\nINSERT INTO dup_t VALUES (1);\nINSERT INTO dup_t VALUES (1);\n",
        None,
    );
    let err = run(&url, &dir.set()).await.expect_err("duplicate key");
    match &err {
        Error::Migrate(MigrateError::Failed(f)) => {
            assert_eq!((f.line, f.cause.sqlstate.as_deref()), (None, Some("23505")));
            assert!(f.rolled_back);
        }
        other => panic!("expected MigrateError::Failed, got {other:?}"),
    }
    let text = chain(&err);
    assert!(
        text.starts_with("aura-db: migration 20240101000001_dup (up) failed, rolled back, not recorded: duplicate key value violates unique constraint \"dup_t_pkey\" (Key (x)=(1) already exists.) (SQLSTATE 23505)"),
        "{text}"
    );
    assert!(tables(&db).await.iter().all(|t| t != "dup_t"));
}
