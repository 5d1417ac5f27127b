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

/// pg_dump of the server's own major version (an older pg_dump refuses a newer server, a
/// newer one prints a different dump): on the local cluster, the one beside the server
/// binaries it runs (`AURA_PG_BIN_DIR`, PATH or `/usr/lib/postgresql/*/bin`, as aura-localpg
/// finds them); on `AURA_TEST_DATABASE_URL`, `$AURA_PG_BIN_DIR/pg_dump`, else
/// `/usr/lib/postgresql/<major>/bin/pg_dump`, else the one on PATH. Panics naming both
/// versions when they differ.
pub async fn pg_dump_path(client: &tokio_postgres::Client) -> PathBuf {
    let version_num: String = client
        .query_one("SELECT current_setting('server_version_num')", &[])
        .await
        .expect("server_version_num")
        .get(0);
    let major = version_num
        .get(..version_num.len().saturating_sub(4))
        .unwrap_or_default()
        .to_owned();
    let pg_dump = pg_dump_candidate(&major);
    let out = std::process::Command::new(&pg_dump)
        .arg("--version")
        .output()
        .unwrap_or_else(|e| panic!("run {} --version: {e}", pg_dump.display()));
    // "pg_dump (PostgreSQL) 18.6" or "pg_dump (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)".
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let dump_major = text
        .split_whitespace()
        .nth(2)
        .and_then(|v| v.split('.').next())
        .unwrap_or_default();
    assert_eq!(
        dump_major,
        major,
        "{} is `{}`, the server is major version {major}: set AURA_PG_BIN_DIR to the \
         server's bin directory",
        pg_dump.display(),
        text.trim()
    );
    pg_dump
}

fn pg_dump_candidate(major: &str) -> PathBuf {
    let test_url = std::env::var_os(aura_testkit::TEST_DATABASE_URL).filter(|v| !v.is_empty());
    if test_url.is_none() {
        let cluster = aura_localpg::LocalCluster::from_env().expect("the local cluster");
        return cluster.bin_dir().join("pg_dump");
    }
    if let Some(dir) = std::env::var_os(aura_localpg::BIN_DIR_ENV).filter(|v| !v.is_empty()) {
        return PathBuf::from(dir).join("pg_dump");
    }
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
