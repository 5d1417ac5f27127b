//! Shared set-up for the migration tests: migration folders written to temp dirs, and
//! catalog queries run as the superuser.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use aura_db::{Migrations, error_chain};
use aura_testkit::TestDb;
use secrecy::SecretString;

/// A migrations folder in a temp dir, removed on drop (unless opened with [`MigDir::open`]).
pub struct MigDir {
    path: PathBuf,
    owned: bool,
}

impl MigDir {
    /// A new empty folder.
    pub fn new() -> MigDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let path = std::env::temp_dir().join(format!(
            "aura-migrate-test-{}-{nanos}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).expect("create temp migrations dir");
        // A file at the top level is ignored, as in the real migrations/ folder.
        std::fs::write(path.join("README.md"), "test migrations\n").expect("write README");
        MigDir { path, owned: true }
    }

    /// An existing folder (a child process's view of its parent's folder); not removed.
    pub fn open(path: impl Into<PathBuf>) -> MigDir {
        MigDir {
            path: path.into(),
            owned: false,
        }
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `<dir_name>/up.sql` and, when given, `down.sql`.
    pub fn add(&self, dir_name: &str, up: &str, down: Option<&str>) -> &Self {
        let dir = self.path.join(dir_name);
        std::fs::create_dir_all(&dir).expect("create migration dir");
        std::fs::write(dir.join("up.sql"), up).expect("write up.sql");
        match down {
            Some(down) => std::fs::write(dir.join("down.sql"), down).expect("write down.sql"),
            None => {
                let _ = std::fs::remove_file(dir.join("down.sql"));
            }
        }
        self
    }

    /// Writes `<dir_name>/metadata.toml`.
    pub fn metadata(&self, dir_name: &str, text: &str) -> &Self {
        std::fs::write(self.path.join(dir_name).join("metadata.toml"), text)
            .expect("write metadata.toml");
        self
    }

    /// Removes one migration folder.
    pub fn remove(&self, dir_name: &str) -> &Self {
        std::fs::remove_dir_all(self.path.join(dir_name)).expect("remove migration dir");
        self
    }

    /// Loads the folder as a set.
    pub fn set(&self) -> Migrations {
        Migrations::from_dir(&self.path).expect("valid migrations folder")
    }
}

impl Drop for MigDir {
    fn drop(&mut self) {
        if self.owned {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// The superuser DSN of `db`, as the secret `migrate` takes.
pub fn su_url(db: &TestDb) -> SecretString {
    SecretString::from(db.superuser_url().expose().to_owned())
}

/// One `bigint` from a query run by the superuser.
pub async fn scalar(db: &TestDb, sql: &str) -> i64 {
    db.superuser_client()
        .await
        .query_one(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get(0)
}

/// The relations of schema public, names only, sorted.
pub async fn tables(db: &TestDb) -> Vec<String> {
    db.superuser_client()
        .await
        .query(
            "SELECT relname::text FROM pg_class WHERE relnamespace = 'public'::regnamespace \
             AND relkind = 'r' ORDER BY 1",
            &[],
        )
        .await
        .expect("list tables")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Versions recorded in diesel's table (empty when it does not exist).
pub async fn diesel_versions(db: &TestDb) -> Vec<String> {
    let client = db.superuser_client().await;
    let exists: bool = client
        .query_one(
            "SELECT to_regclass('public.__diesel_schema_migrations') IS NOT NULL",
            &[],
        )
        .await
        .expect("to_regclass")
        .get(0);
    if !exists {
        return Vec::new();
    }
    client
        .query(
            "SELECT version::text FROM public.__diesel_schema_migrations ORDER BY 1",
            &[],
        )
        .await
        .expect("read diesel table")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// (version, checksum) rows of our checksum table, by version.
pub async fn checksum_rows(db: &TestDb) -> Vec<(String, String)> {
    db.superuser_client()
        .await
        .query(
            "SELECT version::text, checksum FROM public.aura_migration_checksums ORDER BY 1",
            &[],
        )
        .await
        .expect("read checksum table")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// Advisory locks held in `db`'s database right now.
pub async fn advisory_locks(db: &TestDb) -> i64 {
    scalar(
        db,
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .await
}

/// Everything a migration or a reset could change in schema public, as text: every relation
/// with its OID (a dropped and re-created table gets a new one), kind and columns, the
/// tracking tables' rows with their timestamps, and the rows of table `notes` if it exists.
pub async fn catalog_snapshot(db: &TestDb) -> String {
    let client = db.superuser_client().await;
    let mut out = String::new();
    let rels = client
        .query(
            "SELECT format('%s %s %s %s', c.relname, c.oid, c.relkind, coalesce(( \
                 SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attnum) \
                 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '')) \
             FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace ORDER BY c.relname",
            &[],
        )
        .await
        .expect("snapshot relations");
    for r in rels {
        out.push_str(r.get::<_, &str>(0));
        out.push('\n');
    }
    for sql in [
        "SELECT string_agg(version || ' ' || run_on, ', ' ORDER BY version) FROM public.__diesel_schema_migrations",
        "SELECT string_agg(version || ' ' || checksum || ' ' || applied_at, ', ' ORDER BY version) FROM public.aura_migration_checksums",
        "SELECT string_agg(body, ', ' ORDER BY body) FROM public.notes",
    ] {
        let text = client
            .query_one(sql, &[])
            .await
            .map(|r| r.get::<_, Option<String>>(0).unwrap_or_default())
            .unwrap_or_else(|e| format!("({e})"));
        out.push_str(&text);
        out.push('\n');
    }
    out
}

/// Creates a login role with a password on the test server; returns its DSN to `db`.
pub async fn create_login_role(db: &TestDb, role: &str, password: &str) -> SecretString {
    db.superuser_client()
        .await
        .batch_execute(&format!("CREATE ROLE {role} LOGIN PASSWORD '{password}'"))
        .await
        .expect("create role");
    let cfg = db.superuser_url().pg_config();
    let host = match cfg.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        _ => "127.0.0.1".to_owned(),
    };
    let port = cfg.get_ports().first().copied().unwrap_or(5432);
    let dsn = aura_db::Dsn::compose(
        role,
        &SecretString::from(password.to_owned()),
        &host,
        port,
        db.name(),
    );
    SecretString::from(dsn.expose().to_owned())
}

/// Drops a role made by [`create_login_role`], first removing what it owns or was granted
/// in `db` (default privileges included).
pub async fn drop_role(db: &TestDb, role: &str) {
    let client = db.superuser_client().await;
    client
        .batch_execute(&format!("DROP OWNED BY {role}"))
        .await
        .expect("drop owned");
    // Its sessions may still be closing.
    for _ in 0..50 {
        if client
            .batch_execute(&format!("DROP ROLE {role}"))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("could not drop role {role}");
}

/// A role name unique to this process and call.
pub fn unique_role(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The error and its sources on one line, as the CLI prints them.
pub fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    error_chain(err)
}
