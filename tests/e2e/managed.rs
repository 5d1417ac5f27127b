//! Managed Postgres: no superuser for Aura. An administrator with CREATEROLE and CREATEDB
//! (not a superuser) runs the SQL `aura db bootstrap --print-sql` prints, or does only what
//! every managed-Postgres guide says; then `aura db migrate` with nothing but AURA_DB_URL
//! and AURA_DB_MIGRATE_URL either works, store included, or says in one line what is
//! missing. Never tables in `public`.
//!
//! Roles are cluster-wide: each test makes its own, with unique names, and drops them.

use std::sync::atomic::{AtomicU32, Ordering};

use aura_db::{Dsn, MigrateOptions, Migrations, vars};
use aura_e2e::{AuraEnv, applied_count, text};
use aura_store::{ConversationDraft, ConversationStore, PgStore, TurnDraft, TurnRole, TurnStore};
use aura_testkit::TestDb;
use secrecy::SecretString;

/// The roles of one test: an administrator (NOSUPERUSER CREATEROLE CREATEDB), the app role
/// and the migrate role, with their passwords.
struct Roles {
    admin: String,
    app: String,
    migrate: String,
}

impl Roles {
    fn new() -> Roles {
        static N: AtomicU32 = AtomicU32::new(0);
        let tag = format!(
            "{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        Roles {
            admin: format!("mt_admin_{tag}"),
            app: format!("mt_app_{tag}"),
            migrate: format!("mt_ddl_{tag}"),
        }
    }

    /// A DSN to `db` as `role` with `password`.
    fn url(db: &TestDb, role: &str, password: &str) -> Dsn {
        let pg = db.superuser_url().pg_config();
        let host = match &pg.get_hosts()[0] {
            tokio_postgres::config::Host::Tcp(h) => h.clone(),
            other => panic!("the test cluster listens on TCP, not {other:?}"),
        };
        Dsn::compose(
            role,
            &SecretString::from(password.to_owned()),
            &host,
            pg.get_ports()[0],
            db.name(),
        )
    }

    /// The deployment's environment: the two URLs, nothing else.
    fn env(&self, db: &TestDb) -> AuraEnv {
        AuraEnv::only(&[
            (
                vars::AURA_DB_URL,
                Self::url(db, &self.app, APP_PW).expose().to_owned(),
            ),
            (
                vars::AURA_DB_MIGRATE_URL,
                Self::url(db, &self.migrate, MIGRATE_PW).expose().to_owned(),
            ),
        ])
    }

    /// Drops the test database, then the roles.
    async fn drop_after(self, db: TestDb) {
        let admin = db.admin_url().clone();
        drop(db);
        let su = connect(&admin).await;
        for role in [&self.app, &self.migrate, &self.admin] {
            for _ in 0..50 {
                if su
                    .batch_execute(&format!("DROP ROLE IF EXISTS \"{role}\""))
                    .await
                    .is_ok()
                {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

/// Passwords with characters that need care in URLs and SQL.
const APP_PW: &str = "app pw ' \\ $ ü";
const MIGRATE_PW: &str = "ddl-pw:@/?";
const ADMIN_PW: &str = "admin-pw";

async fn connect(dsn: &Dsn) -> tokio_postgres::Client {
    let (client, conn) = dsn
        .pg_config()
        .connect(tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect to {dsn}: {e}"));
    tokio::spawn(conn);
    client
}

/// The relations in schema `public` of `db`.
async fn public_relations(db: &TestDb) -> i64 {
    db.superuser_client()
        .await
        .query_one(
            "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace",
            &[],
        )
        .await
        .expect("count public relations")
        .get(0)
}

/// The store works as the app role: a conversation and a turn.
async fn store_works(env: &AuraEnv) {
    let config = env.config();
    let store = PgStore::open(&config)
        .await
        .expect("store opens as the app role");
    let c = store
        .create_conversation(ConversationDraft::new("m").titled("managed"))
        .await
        .expect("create conversation");
    let turn = store
        .append_turn(c.id, TurnDraft::new(TurnRole::User, "hello").tokens(1, 2))
        .await
        .expect("append turn");
    assert_eq!(turn.seq, 1);
}

#[tokio::test]
async fn the_printed_sql_run_by_a_createrole_admin_gives_a_working_deployment() {
    let db = TestDb::empty().await;
    let roles = Roles::new();
    let su = db.superuser_client().await;
    // The managed service's administrator, owning the database it created.
    su.batch_execute(&format!(
        "CREATE ROLE \"{a}\" LOGIN NOSUPERUSER CREATEROLE CREATEDB PASSWORD '{ADMIN_PW}'; \
         ALTER DATABASE \"{db}\" OWNER TO \"{a}\"",
        a = roles.admin,
        db = db.name()
    ))
    .await
    .expect("create the administrator");
    let env = roles.env(&db);

    let out = env.run(&["db", "bootstrap", "--print-sql"]);
    assert!(out.status.success(), "print-sql: {}", text(&out.stderr));
    let sql = text(&out.stdout);
    for password in [APP_PW, MIGRATE_PW] {
        assert!(
            !sql.contains(password),
            "a plaintext password in the script"
        );
    }
    assert_eq!(sql.matches("PASSWORD E'SCRAM-SHA-256$").count(), 2);
    assert!(!sql.contains("pg_authid"));

    // The administrator runs it (a raw client: the script needs no psql meta-command), twice.
    let admin = connect(&Roles::url(&db, &roles.admin, ADMIN_PW)).await;
    admin
        .batch_execute(&sql)
        .await
        .expect("the script runs as the administrator");
    admin.batch_execute(&sql).await.expect("and runs again");

    let out = env.run(&["db", "migrate"]);
    assert!(out.status.success(), "migrate: {}", text(&out.stderr));
    assert_eq!(applied_count(&out.stdout), Migrations::embedded().len());
    let out = env.run(&["db", "status"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "status: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let out = env.run(&["db", "ping"]);
    assert!(out.status.success(), "ping: {}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("ok: "),
        "{}",
        text(&out.stdout)
    );
    store_works(&env).await;

    // The role settings of the script, as the roles see them.
    let app = connect(&Roles::url(&db, &roles.app, APP_PW)).await;
    let setting = async |name: &str| -> String {
        app.query_one(&format!("SELECT current_setting('{name}')"), &[])
            .await
            .expect("setting")
            .get(0)
    };
    assert_eq!(setting("search_path").await, "aura");
    assert_eq!(setting("idle_in_transaction_session_timeout").await, "1min");
    let err = app
        .batch_execute("CREATE TEMPORARY TABLE t (x int)")
        .await
        .expect_err("the app role has no temporary tables");
    assert_eq!(err.code().map(|c| c.code()), Some("42501"), "{err}");

    // A later migration set (the embedded migrations and one more), applied by the
    // library as the migrate role: the app role may use the new table at once.
    let dir = later_set();
    let set = Migrations::from_dir(dir.path()).expect("later set");
    let migrate_url = SecretString::from(
        Roles::url(&db, &roles.migrate, MIGRATE_PW)
            .expose()
            .to_owned(),
    );
    let applied = aura_db::migrate_with(&migrate_url, &set, &MigrateOptions::default(), |_| {})
        .await
        .expect("the later migration applies");
    assert_eq!(applied.len(), 1);
    app.batch_execute(
        "INSERT INTO aura.later_notes (id, body) VALUES (1, 'x'); \
         UPDATE aura.later_notes SET body = 'y'; DELETE FROM aura.later_notes",
    )
    .await
    .expect("the app role has DML on a table of a later migration");
    let err = app
        .batch_execute("ALTER TABLE aura.later_notes ADD COLUMN sneaky int")
        .await
        .expect_err("no DDL for the app role");
    assert_eq!(err.code().map(|c| c.code()), Some("42501"), "{err}");
    // The administrator is a member of the migrate role (the script granted it): a run
    // with its URL migrates as the schema's owner, so the new table is the migrate role's.
    let newer = later_set();
    std::fs::create_dir_all(newer.path().join("2999-01-02-000000_admin_notes")).expect("mkdir");
    std::fs::write(
        newer.path().join("2999-01-02-000000_admin_notes/up.sql"),
        "CREATE TABLE admin_notes (id bigint PRIMARY KEY);\n",
    )
    .expect("up.sql");
    let set = Migrations::from_dir(newer.path()).expect("newer set");
    let admin_url = SecretString::from(Roles::url(&db, &roles.admin, ADMIN_PW).expose().to_owned());
    let opts = MigrateOptions::default().with_app_role(&roles.app);
    let applied = aura_db::migrate_with(&admin_url, &set, &opts, |_| {})
        .await
        .expect("a member of the owner role migrates");
    assert_eq!(applied.len(), 1);
    let owner: String = su
        .query_one(
            "SELECT pg_get_userbyid(relowner)::text FROM pg_class WHERE oid = 'aura.admin_notes'::regclass",
            &[],
        )
        .await
        .expect("owner")
        .get(0);
    assert_eq!(owner, roles.migrate, "created as the schema's owner");
    app.batch_execute("INSERT INTO aura.admin_notes VALUES (1)")
        .await
        .expect("the app role has DML on it");
    assert_eq!(public_relations(&db).await, 0, "nothing in public");
    drop((app, admin, su));
    roles.drop_after(db).await;
}

/// The workspace's migrations plus `29990101000000_later_notes`, in a temp folder.
fn later_set() -> TempDir {
    let dir = TempDir::new();
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations");
    for entry in std::fs::read_dir(&src).expect("read migrations/") {
        let entry = entry.expect("entry");
        if entry.path().is_dir() {
            let to = dir.path().join(entry.file_name());
            std::fs::create_dir_all(&to).expect("mkdir");
            for file in std::fs::read_dir(entry.path()).expect("read migration") {
                let file = file.expect("file");
                std::fs::copy(file.path(), to.join(file.file_name())).expect("copy");
            }
        }
    }
    let later = dir.path().join("2999-01-01-000000_later_notes");
    std::fs::create_dir_all(&later).expect("mkdir");
    std::fs::write(
        later.join("up.sql"),
        "CREATE TABLE later_notes (id bigint PRIMARY KEY, body text NOT NULL);\n",
    )
    .expect("up.sql");
    std::fs::write(later.join("down.sql"), "DROP TABLE later_notes;\n").expect("down.sql");
    dir
}

/// A temp folder, removed on drop.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "aura-e2e-managed-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).expect("temp dir");
        TempDir(path)
    }

    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What the guides say: the two login roles, CONNECT, the schema owned by the migrate
/// role, USAGE for the app role. No search_path, no default privileges, no grants on
/// tables. `schema`: whether the schema is made, and by whom.
async fn guide_setup(db: &TestDb, roles: &Roles, schema: Option<&str>) {
    let su = db.superuser_client().await;
    let lit = |s: &str| s.replace('\'', "''");
    su.batch_execute(&format!(
        "CREATE ROLE \"{app}\" LOGIN PASSWORD '{app_pw}'; \
         CREATE ROLE \"{ddl}\" LOGIN PASSWORD '{ddl_pw}'; \
         CREATE ROLE \"{admin}\" LOGIN NOSUPERUSER CREATEROLE CREATEDB PASSWORD '{ADMIN_PW}'; \
         GRANT CONNECT ON DATABASE \"{db}\" TO \"{app}\", \"{ddl}\"",
        app = roles.app,
        ddl = roles.migrate,
        admin = roles.admin,
        app_pw = lit(APP_PW),
        ddl_pw = lit(MIGRATE_PW),
        db = db.name()
    ))
    .await
    .expect("roles");
    if let Some(owner) = schema {
        su.batch_execute(&format!(
            "CREATE SCHEMA aura AUTHORIZATION \"{owner}\"; \
             GRANT USAGE ON SCHEMA aura TO \"{app}\", \"{ddl}\"",
            app = roles.app,
            ddl = roles.migrate,
        ))
        .await
        .expect("schema");
    }
}

#[tokio::test]
async fn the_guides_steps_alone_give_a_working_deployment() {
    let db = TestDb::empty().await;
    let roles = Roles::new();
    guide_setup(&db, &roles, Some(&roles.migrate.clone())).await;
    // A typo in a setting is named, once, on stderr.
    let env = roles.env(&db).with("AURA_DB_MAX_CONN", "5");

    let out = env.run(&["db", "migrate"]);
    assert!(out.status.success(), "migrate: {}", text(&out.stderr));
    assert_eq!(applied_count(&out.stdout), Migrations::embedded().len());
    let warning = "warning: unknown variable AURA_DB_MAX_CONN (did you mean AURA_DB_MAX_CONNS?)";
    assert_eq!(
        text(&out.stderr).lines().filter(|l| *l == warning).count(),
        1,
        "{}",
        text(&out.stderr)
    );
    let out = env.run(&["db", "status"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "status: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let out = env.run(&["db", "ping"]);
    assert!(out.status.success(), "ping: {}", text(&out.stderr));
    store_works(&env).await;
    assert_eq!(public_relations(&db).await, 0, "nothing in public");
    // Again: nothing to do, and still fine.
    let out = env.run(&["db", "migrate"]);
    assert!(out.status.success(), "again: {}", text(&out.stderr));
    assert_eq!(applied_count(&out.stdout), 0);
    roles.drop_after(db).await;
}

#[tokio::test]
async fn without_the_schema_migrate_names_the_missing_step_and_creates_nothing() {
    let db = TestDb::empty().await;
    let roles = Roles::new();
    guide_setup(&db, &roles, None).await;
    // Even a migrate role that owns the database (and so could create tables in public)
    // stops: the tables belong in schema aura.
    db.superuser_client()
        .await
        .batch_execute(&format!(
            "ALTER DATABASE \"{}\" OWNER TO \"{}\"",
            db.name(),
            roles.migrate
        ))
        .await
        .expect("owner");
    let env = roles.env(&db);
    for command in ["migrate", "status"] {
        let out = env.run(&["db", command]);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{command}: {}",
            text(&out.stdout)
        );
        let stderr = text(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains(&format!(
                "schema aura does not exist in database {}",
                db.name()
            )) && stderr.contains(&format!(
                "CREATE SCHEMA aura AUTHORIZATION {}",
                roles.migrate
            )),
            "{stderr}"
        );
    }
    assert_eq!(public_relations(&db).await, 0, "nothing in public");
    roles.drop_after(db).await;
}

#[tokio::test]
async fn a_schema_owned_by_another_role_is_one_line_naming_the_fix() {
    let db = TestDb::empty().await;
    let roles = Roles::new();
    guide_setup(&db, &roles, Some(&roles.admin.clone())).await;
    let env = roles.env(&db);
    let out = env.run(&["db", "migrate"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "schema aura is owned by {}, not by the migrate role {}",
            roles.admin, roles.migrate
        )) && stderr.contains(&format!("run ALTER SCHEMA aura OWNER TO {}", roles.migrate)),
        "{stderr}"
    );
    let tables: i64 = db
        .superuser_client()
        .await
        .query_one(
            "SELECT count(*) FROM pg_class WHERE relnamespace IN ('public'::regnamespace, 'aura'::regnamespace)",
            &[],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(tables, 0, "nothing created anywhere");
    roles.drop_after(db).await;
}
