//! Role bootstrap: privileges, hostile passwords, idempotence, concurrency, and no plaintext
//! password on the server.

use std::time::Duration;

use aura_db::{Dsn, Error, RolesSpec, ensure_roles_with};
use aura_testkit::TestDb;
use rand::Rng;
use secrecy::SecretString;

const TIMEOUT: Duration = Duration::from_secs(5);

/// Role names of one test: cluster-wide objects, so unique per test and dropped after.
struct Names {
    app: String,
    migrate: String,
}

impl Names {
    fn new() -> Self {
        let n: u32 = rand::rng().random();
        Names {
            app: format!("t_app_{n:08x}"),
            migrate: format!("t_mig_{n:08x}"),
        }
    }

    fn spec(&self, password: &str) -> RolesSpec {
        RolesSpec::named(
            &self.app,
            &self.migrate,
            SecretString::from(password.to_owned()),
        )
    }

    /// Drops the roles once their database is gone.
    async fn drop_after(self, db: TestDb) {
        let admin = db.admin_url().clone();
        drop(db);
        let client = connect(&admin).await;
        for role in [&self.app, &self.migrate] {
            for _ in 0..20 {
                if client
                    .batch_execute(&format!("DROP ROLE IF EXISTS \"{role}\""))
                    .await
                    .is_ok()
                {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn connect(dsn: &Dsn) -> tokio_postgres::Client {
    aura_db::connect_raw(dsn).await.expect("connect")
}

/// Logs in over TCP (scram-sha-256 on the local cluster) as `role` with `password`.
async fn login(db: &TestDb, role: &str, password: &str) -> Result<tokio_postgres::Client, Error> {
    let dsn = db
        .superuser_url()
        .with_login(role, &SecretString::from(password.to_owned()));
    aura_db::connect_raw(&dsn).await
}

/// A duration setting of `client`'s session, in milliseconds.
async fn setting_ms(client: &tokio_postgres::Client, setting: &str) -> i64 {
    client
        .query_one(
            "SELECT (extract(epoch FROM current_setting($1)::interval) * 1000)::bigint",
            &[&setting],
        )
        .await
        .expect("read a duration setting")
        .get(0)
}

fn sqlstate(err: &tokio_postgres::Error) -> String {
    err.code().map(|c| c.code().to_owned()).unwrap_or_default()
}

#[tokio::test]
async fn the_app_role_has_dml_only() {
    let db = TestDb::new().await;
    let config = db.config();
    // A clone does not inherit its template's database-level grants: bootstrap this one.
    aura_db::ensure_roles(config).await.unwrap();
    let password = {
        use secrecy::ExposeSecret;
        config.role_password().expose_secret().to_owned()
    };
    // A table "a later migration creates", as the migrate role, identity column included.
    let migrate = login(&db, "aura_migrate", &password).await.unwrap();
    migrate
        .batch_execute(
            "CREATE TABLE later (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v text)",
        )
        .await
        .unwrap();

    let app = login(&db, "aura_app", &password).await.unwrap();

    // The per-role settings every session of the role starts with.
    let statement_ms = i64::try_from(config.pool().statement_timeout.as_millis()).unwrap();
    assert_eq!(setting_ms(&app, "statement_timeout").await, statement_ms);
    assert_eq!(
        setting_ms(&app, "idle_in_transaction_session_timeout").await,
        60_000
    );
    assert_eq!(setting_ms(&migrate, "lock_timeout").await, 5_000);
    for client in [&app, &migrate] {
        let path: String = client
            .query_one("SELECT current_setting('search_path')", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(path, "aura");
    }

    app.batch_execute("INSERT INTO later (v) VALUES ('a'), ('b')")
        .await
        .unwrap();
    app.batch_execute("UPDATE later SET v = 'c' WHERE id = 1")
        .await
        .unwrap();
    app.batch_execute("DELETE FROM later WHERE id = 2")
        .await
        .unwrap();
    let n: i64 = app
        .query_one("SELECT count(*) FROM later", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);

    for sql in [
        "CREATE TABLE mine (id int)",
        "CREATE TABLE public.mine (id int)",
        "ALTER TABLE later ADD COLUMN x int",
        "DROP TABLE later",
        "TRUNCATE later",
        "CREATE INDEX later_v ON later (v)",
        "SET ROLE aura_migrate",
        "CREATE SCHEMA other",
        "CREATE TEMP TABLE scratch (id int)",
        "INSERT INTO __diesel_schema_migrations (version) VALUES ('99999999999999')",
        "DELETE FROM __diesel_schema_migrations",
        "INSERT INTO aura_migration_checksums (version, name, checksum) VALUES ('1', 'x', 'y')",
        "DELETE FROM aura_migration_checksums",
    ] {
        let err = app.batch_execute(sql).await.expect_err(sql);
        assert_eq!(sqlstate(&err), "42501", "{sql}: {err:?}");
    }
}

#[tokio::test]
async fn hostile_passwords_round_trip_through_scram() {
    let long: String = "p".repeat(1024);
    for password in [
        "it's",
        "back\\slash",
        "qu'o\\'te\";--",
        "päss wörd ☃",
        long.as_str(),
    ] {
        let db = TestDb::empty().await;
        let names = Names::new();
        ensure_roles_with(db.superuser_url(), &names.spec(password), TIMEOUT)
            .await
            .unwrap_or_else(|e| panic!("{password:?}: {e}"));
        for role in [&names.app, &names.migrate] {
            let client = login(&db, role, password)
                .await
                .unwrap_or_else(|e| panic!("login {role} with {password:?}: {e:?}"));
            let who: String = client
                .query_one("SELECT current_user::text", &[])
                .await
                .unwrap()
                .get(0);
            assert_eq!(&who, role);
        }
        let Err(wrong) = login(&db, &names.app, "not-it").await else {
            panic!("a wrong password logged in");
        };
        assert!(
            matches!(&wrong, Error::Auth { sqlstate, .. } if sqlstate == "28P01"),
            "{wrong}"
        );
        names.drop_after(db).await;
    }
}

#[tokio::test]
async fn bad_passwords_are_rejected_before_anything_is_sent() {
    let db = TestDb::empty().await;
    let names = Names::new();
    let cases = [
        ("nul\0byte".to_owned(), "NUL"),
        ("bell\u{7}".to_owned(), "control"),
        ("new\nline".to_owned(), "control"),
        (String::new(), "empty"),
        ("q".repeat(1025), "longer than 1024 bytes"),
    ];
    for (password, rule) in cases {
        let err = ensure_roles_with(db.superuser_url(), &names.spec(&password), TIMEOUT)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidPassword { .. }), "{err:?}");
        assert!(err.to_string().contains(rule), "{err}");
        // Checked before connecting: the same verdict where no server listens.
        let nowhere = Dsn::parse(
            "test",
            SecretString::from("postgres://postgres:pw@127.0.0.1:1/none".to_owned()),
        )
        .unwrap();
        let err = ensure_roles_with(&nowhere, &names.spec(&password), TIMEOUT)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidPassword { .. }), "{err:?}");
    }
    let admin = db.superuser_client().await;
    let n: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_roles WHERE rolname IN ($1, $2)",
            &[&names.app, &names.migrate],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0, "a rejected bootstrap created roles");
    names.drop_after(db).await;
}

#[tokio::test]
async fn the_quote_trap_cannot_inject_with_standard_conforming_strings_off() {
    let db = TestDb::empty().await;
    let names = Names::new();
    let victim = format!("victim_{}", &names.app[6..]);
    let admin = db.superuser_client().await;
    admin
        .batch_execute(&format!("CREATE ROLE \"{victim}\" NOLOGIN"))
        .await
        .unwrap();
    db.set_database_default("standard_conforming_strings = off")
        .await;
    let password = format!("\\'; ALTER ROLE {victim} SUPERUSER; --");
    ensure_roles_with(db.superuser_url(), &names.spec(&password), TIMEOUT)
        .await
        .unwrap();
    let superuser: bool = admin
        .query_one(
            "SELECT rolsuper FROM pg_roles WHERE rolname = $1",
            &[&victim],
        )
        .await
        .unwrap()
        .get(0);
    assert!(!superuser, "the password was injected as SQL");
    login(&db, &names.app, &password)
        .await
        .expect("the password itself logs in");
    admin
        .batch_execute(&format!("DROP ROLE \"{victim}\""))
        .await
        .unwrap();
    names.drop_after(db).await;
}

/// `pg_authid.rolpassword` of `role`.
async fn stored_verifier(db: &TestDb, role: &str) -> String {
    db.superuser_client()
        .await
        .query_one(
            "SELECT rolpassword FROM pg_authid WHERE rolname = $1",
            &[&role],
        )
        .await
        .expect("the role's verifier")
        .get(0)
}

/// A bootstrap with the same password keeps each role's verifier (salt and keys), so a
/// PgBouncer `auth_file` copied from `pg_authid` keeps logging in; a new password writes a
/// new one.
#[tokio::test]
async fn an_unchanged_password_keeps_its_verifier() {
    let db = TestDb::empty().await;
    let names = Names::new();
    let spec = names.spec("kept-password");
    ensure_roles_with(db.superuser_url(), &spec, TIMEOUT)
        .await
        .unwrap();
    let app = stored_verifier(&db, &names.app).await;
    let migrate = stored_verifier(&db, &names.migrate).await;
    assert!(app.starts_with("SCRAM-SHA-256$"), "{app}");
    ensure_roles_with(db.superuser_url(), &spec, TIMEOUT)
        .await
        .unwrap();
    assert_eq!(stored_verifier(&db, &names.app).await, app);
    assert_eq!(stored_verifier(&db, &names.migrate).await, migrate);

    ensure_roles_with(db.superuser_url(), &names.spec("new-password"), TIMEOUT)
        .await
        .unwrap();
    assert_ne!(stored_verifier(&db, &names.app).await, app);
    assert_ne!(stored_verifier(&db, &names.migrate).await, migrate);
    login(&db, &names.app, "new-password")
        .await
        .expect("the new password");
    names.drop_after(db).await;
}

#[tokio::test]
async fn twice_and_twice_at_once_give_one_consistent_result() {
    let db = TestDb::empty().await;
    let names = Names::new();
    let spec = names.spec("first-password");
    let first = ensure_roles_with(db.superuser_url(), &spec, TIMEOUT)
        .await
        .unwrap();
    assert_eq!(first.created.len(), 2);
    assert!(first.schema_created);
    let again = ensure_roles_with(db.superuser_url(), &spec, TIMEOUT)
        .await
        .unwrap();
    assert!(again.created.is_empty() && again.updated.len() == 2 && !again.schema_created);

    let spec2 = names.spec("second-password");
    let (a, b) = tokio::join!(
        ensure_roles_with(db.superuser_url(), &spec2, TIMEOUT),
        ensure_roles_with(db.superuser_url(), &spec2, TIMEOUT),
    );
    a.unwrap();
    b.unwrap();
    login(&db, &names.app, "second-password")
        .await
        .expect("rotated password");
    assert!(login(&db, &names.app, "first-password").await.is_err());
    let admin = db.superuser_client().await;
    let row = admin
        .query_one(
            "SELECT pg_get_userbyid(nspowner)::text FROM pg_namespace WHERE nspname = 'aura'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), names.migrate);
    names.drop_after(db).await;
}

#[tokio::test]
async fn a_superuser_app_role_is_demoted() {
    let db = TestDb::empty().await;
    let names = Names::new();
    let admin = db.superuser_client().await;
    admin
        .batch_execute(&format!(
            "CREATE ROLE \"{}\" SUPERUSER CREATEDB CREATEROLE LOGIN",
            names.app
        ))
        .await
        .unwrap();
    let report = ensure_roles_with(db.superuser_url(), &names.spec("pw-demote"), TIMEOUT)
        .await
        .unwrap();
    assert!(report.updated.contains(&names.app));
    let row = admin
        .query_one(
            "SELECT rolsuper, rolcreatedb, rolcreaterole, rolcanlogin, rolreplication, rolbypassrls \
             FROM pg_roles WHERE rolname = $1",
            &[&names.app],
        )
        .await
        .unwrap();
    let flags: (bool, bool, bool, bool, bool, bool) = (
        row.get(0),
        row.get(1),
        row.get(2),
        row.get(3),
        row.get(4),
        row.get(5),
    );
    assert_eq!(flags, (false, false, false, true, false, false));
    names.drop_after(db).await;
}

#[tokio::test]
async fn a_schema_owned_by_another_role_is_an_error_naming_the_owner() {
    let db = TestDb::empty().await;
    let names = Names::new();
    let admin = db.superuser_client().await;
    admin.batch_execute("CREATE SCHEMA aura").await.unwrap();
    let err = ensure_roles_with(db.superuser_url(), &names.spec("pw-owner"), TIMEOUT)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::SchemaOwner { ref owner, .. } if owner == "postgres"),
        "{err:?}"
    );
    assert!(err.to_string().contains("owned by \"postgres\""), "{err}");
    // Nothing was half-applied: the roles were not created either.
    let n: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_roles WHERE rolname IN ($1, $2)",
            &[&names.app, &names.migrate],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
    names.drop_after(db).await;
}

/// With `log_statement = 'all'` for the database, neither a bootstrap nor a bootstrap whose
/// CREATE ROLE fails leaves the plaintext password in the server log.
#[tokio::test]
async fn no_plaintext_password_in_the_server_log() {
    let db = TestDb::empty().await;
    let names = Names::new();
    let admin = db.superuser_client().await;
    db.set_database_default("log_statement = 'all'").await;
    let planted = format!("Pl4nted-{}", names.app);
    ensure_roles_with(db.superuser_url(), &names.spec(&planted), TIMEOUT)
        .await
        .unwrap();

    // A bootstrap role that may not create roles: its CREATE ROLE fails, and it cannot
    // turn statement logging off for its session either.
    let weak = format!("weak_{}", &names.app[6..]);
    admin
        .batch_execute(&format!("CREATE ROLE \"{weak}\" LOGIN PASSWORD 'weak-pw'"))
        .await
        .unwrap();
    let mut weak_url = db.superuser_url().pg_config();
    weak_url.user(&weak).password("weak-pw");
    let weak_dsn = Dsn::parse(
        "test",
        SecretString::from(format!(
            "host=127.0.0.1 port={} user={weak} password=weak-pw dbname={}",
            weak_url.get_ports()[0],
            db.name()
        )),
    )
    .unwrap();
    let other = Names::new();
    let err = ensure_roles_with(&weak_dsn, &other.spec(&planted), TIMEOUT)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Bootstrap { ref sqlstate, .. } if sqlstate.as_deref() == Some("42501")),
        "{err:?}"
    );
    assert!(!format!("{err} {err:?}").contains(&planted));

    let text = db.server_log().await;
    assert!(
        text.contains(&weak),
        "the failing statement was not logged at all"
    );
    assert!(
        !text.contains(&planted),
        "the plaintext password reached the server log"
    );
    admin
        .batch_execute(&format!("DROP ROLE \"{weak}\""))
        .await
        .unwrap();
    names.drop_after(db).await;
}

/// Roles belong to the cluster, not to a database: bootstraps of several databases at once
/// (replicas of different deployments, parallel test databases) must not collide on them.
/// Postgres fails the loser of two concurrent updates of one role's catalog row with
/// "tuple concurrently updated" (XX000) unless the bootstraps are serialized cluster-wide.
#[tokio::test]
async fn bootstraps_of_different_databases_at_once_all_succeed() {
    const DATABASES: usize = 6;
    const ROUNDS: usize = 3;
    let names = Names::new();
    let spec = names.spec("shared-password");
    let mut dbs = Vec::new();
    for _ in 0..DATABASES {
        dbs.push(TestDb::empty().await);
    }
    let mut tasks = tokio::task::JoinSet::new();
    for db in &dbs {
        let url = db.superuser_url().clone();
        let spec = spec.clone();
        tasks.spawn(async move {
            for _ in 0..ROUNDS {
                ensure_roles_with(&url, &spec, TIMEOUT).await?;
            }
            Ok::<_, Error>(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("bootstrap task")
            .expect("a concurrent bootstrap failed");
    }
    for db in &dbs {
        login(db, &names.migrate, "shared-password")
            .await
            .expect("the migrate role logs in to every database");
    }
    let last = dbs.pop().unwrap();
    drop(dbs);
    names.drop_after(last).await;
}
