//! Shared set-up for aura-schema's integration tests: connections, the migration files,
//! pg_dump, temp dirs, and the schema rule checker ([`rules`]).
#![allow(dead_code, reason = "each test binary uses a part of these helpers")]

pub mod rules;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use aura_db::Dsn;
use aura_testkit::TestDb;

/// The workspace root (holds `migrations/`, `diesel.toml`, `scripts/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A plain client for `dsn`; its connection runs on the current runtime.
pub async fn connect(dsn: &Dsn) -> tokio_postgres::Client {
    aura_db::connect_raw(dsn)
        .await
        .unwrap_or_else(|e| panic!("connect to {dsn}: {e}"))
}

/// A client as the migrate role of `db` (search_path `aura`, owns the schema).
pub async fn migrate_client(db: &TestDb) -> tokio_postgres::Client {
    connect(
        db.config()
            .migrate_url()
            .expect("test config has a migrate URL"),
    )
    .await
}

/// One migration folder of the repository.
#[derive(Debug, Clone)]
pub struct MigrationFiles {
    /// `<version>_<name>`.
    pub dir_name: String,
    /// up.sql.
    pub up: String,
    /// down.sql.
    pub down: String,
    /// False when metadata.toml says `run_in_transaction = false`.
    pub in_transaction: bool,
}

/// The repository's migrations, oldest first (as aura-db reads and checks them, metadata.toml
/// included); every one must have a down.sql.
pub fn repo_migrations() -> Vec<MigrationFiles> {
    let dir = repo_root().join("migrations");
    let set =
        aura_db::Migrations::from_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    assert!(!set.is_empty(), "no migrations in {}", dir.display());
    set.iter()
        .map(|m| {
            let read = |file: &str| {
                std::fs::read_to_string(dir.join(m.dir_name()).join(file))
                    .unwrap_or_else(|e| panic!("{}/{file}: {e}", m.dir_name()))
            };
            MigrationFiles {
                up: read("up.sql"),
                down: read("down.sql"),
                dir_name: m.dir_name().to_owned(),
                in_transaction: m.run_in_transaction(),
            }
        })
        .collect()
}

/// Runs one file of `migration` as the runner does: in one transaction unless its
/// metadata.toml says otherwise (then its one statement alone).
pub async fn apply_file(
    client: &tokio_postgres::Client,
    migration: &MigrationFiles,
    sql: &str,
) -> Result<(), String> {
    if migration.in_transaction {
        apply(client, sql).await
    } else {
        client.batch_execute(sql).await.map_err(|e| pg_error(&e))
    }
}

/// Runs `sql` (one migration file: no transaction control) in one transaction, as the
/// runner does; the error is the server's message and SQLSTATE.
pub async fn apply(client: &tokio_postgres::Client, sql: &str) -> Result<(), String> {
    client
        .batch_execute("BEGIN")
        .await
        .map_err(|e| pg_error(&e))?;
    match client.batch_execute(sql).await {
        Ok(()) => client
            .batch_execute("COMMIT")
            .await
            .map_err(|e| pg_error(&e)),
        Err(e) => {
            let _ = client.batch_execute("ROLLBACK").await;
            Err(pg_error(&e))
        }
    }
}

/// The server's message and SQLSTATE, or the client error.
pub fn pg_error(err: &tokio_postgres::Error) -> String {
    match err.as_db_error() {
        Some(db) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
        None => err.to_string(),
    }
}

/// The SQLSTATE of a failed statement (panics when it did not fail on the server).
pub fn sqlstate<T: std::fmt::Debug>(result: Result<T, tokio_postgres::Error>) -> String {
    match result {
        Ok(v) => panic!("expected the statement to fail, it returned {v:?}"),
        Err(e) => match e.code() {
            Some(code) => code.code().to_owned(),
            None => panic!("not a server error: {e}"),
        },
    }
}

/// pg_dump of the server's own version (`/usr/lib/postgresql/<major>/bin/pg_dump` when it
/// exists, else the one on PATH).
pub async fn pg_dump_path(client: &tokio_postgres::Client) -> PathBuf {
    let major: String = client
        .query_one("SELECT current_setting('server_version_num')", &[])
        .await
        .expect("server_version_num")
        .get(0);
    let major = major.get(..major.len().saturating_sub(4)).unwrap_or("15");
    let versioned = PathBuf::from(format!("/usr/lib/postgresql/{major}/bin/pg_dump"));
    if versioned.exists() {
        versioned
    } else {
        PathBuf::from("pg_dump")
    }
}

/// `pg_dump --schema-only --schema=aura` of the database `dsn` points at, without the
/// `\restrict <random key>` / `\unrestrict` lines pg_dump 15.14+ wraps around its output
/// (the key changes every run).
pub fn dump_schema(pg_dump: &Path, dsn: &Dsn) -> String {
    let out = std::process::Command::new(pg_dump)
        .args(["--schema-only", "--schema=aura", "--no-password"])
        .arg(format!("--dbname={}", dsn.expose()))
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", pg_dump.display()));
    assert!(
        out.status.success(),
        "pg_dump failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("pg_dump output is UTF-8");
    text.lines()
        .filter(|l| !l.starts_with("\\restrict ") && !l.starts_with("\\unrestrict "))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// A new empty directory whose name starts with `prefix`.
    pub fn new(prefix: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "{prefix}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Copies the directory tree `from` to `to` (files and folders only).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create copy dir");
    for entry in std::fs::read_dir(from).expect("list dir") {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}
