//! The migration folder layout (diesel's): one folder per migration named
//! `<version>_<name>`, holding `up.sql`, optionally `down.sql` and `metadata.toml`.
//!
//! Std only: `build.rs` includes this file (and `split.rs`) to check the embedded folder
//! at build time with exactly the rules `Migrations::from_dir` applies at run time.

use std::path::{Path, PathBuf};

use super::split::{Stmt, split};

/// The files of one migration folder, read but not yet checked.
#[derive(Debug, Clone)]
pub(crate) struct RawMigration {
    /// The folder's name, e.g. `2024-05-01-120000_create_conversations`.
    pub(crate) dir_name: String,
    /// The folder (for messages and `include_str!`).
    pub(crate) dir: PathBuf,
    /// `up.sql`.
    pub(crate) up: String,
    /// `down.sql`, when present.
    pub(crate) down: Option<String>,
    /// `metadata.toml`, when present.
    pub(crate) metadata: Option<String>,
}

/// A migration that passed every layout rule.
#[derive(Debug, Clone)]
pub(crate) struct Checked {
    /// diesel's version: the part before the first `_`, dashes removed.
    pub(crate) version: String,
    /// The part after the first `_`.
    pub(crate) name: String,
    /// From metadata.toml; true when there is none.
    pub(crate) run_in_transaction: bool,
    /// The statements of up.sql (at least one).
    pub(crate) up: Vec<Stmt>,
    /// The statements of down.sql, when it exists (possibly none).
    pub(crate) down: Option<Vec<Stmt>>,
}

/// Lists the migration folders under `root` in name order, reading their files.
/// Files at the top level (a README) and dot-folders are ignored, as diesel does.
pub(crate) fn scan(root: &Path) -> Result<Vec<RawMigration>, String> {
    let entries = std::fs::read_dir(root)
        .map_err(|e| format!("{}: cannot list the folder: {e}", root.display()))?;
    let mut dirs = Vec::new();
    for entry in entries {
        let entry =
            entry.map_err(|e| format!("{}: cannot list the folder: {e}", root.display()))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !path.is_dir() {
            continue;
        }
        dirs.push((name, path));
    }
    dirs.sort();
    dirs.into_iter()
        .map(|(dir_name, dir)| {
            Ok(RawMigration {
                up: read(&dir.join("up.sql"))?
                    .ok_or_else(|| format!("{}: has no up.sql", dir.display()))?,
                down: read(&dir.join("down.sql"))?,
                metadata: read(&dir.join("metadata.toml"))?,
                dir_name,
                dir,
            })
        })
        .collect()
}

/// The file's text; `None` when it does not exist.
fn read(path: &Path) -> Result<Option<String>, String> {
    match std::fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| format!("{}: is not UTF-8", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: cannot read: {e}", path.display())),
    }
}

/// Applies every layout rule to one migration; the error names the folder and the rule.
pub(crate) fn check(raw: &RawMigration) -> Result<Checked, String> {
    let at = |what: &str| format!("migration {}: {what}", raw.dir_name);
    let (version, name) = parse_dir_name(&raw.dir_name).map_err(|e| at(&e))?;
    let run_in_transaction = match &raw.metadata {
        Some(text) => parse_metadata(text).map_err(|e| at(&format!("metadata.toml: {e}")))?,
        None => true,
    };
    let up = statements(&raw.up).map_err(|e| at(&format!("up.sql: {e}")))?;
    if up.is_empty() {
        return Err(at("up.sql has no statement"));
    }
    let down = match &raw.down {
        Some(text) => Some(statements(text).map_err(|e| at(&format!("down.sql: {e}")))?),
        None => None,
    };
    Ok(Checked {
        version,
        name,
        run_in_transaction,
        up,
        down,
    })
}

/// Splits a file and refuses transaction control: the runner owns the transaction (each
/// migration is one, unless `run_in_transaction = false`).
fn statements(sql: &str) -> Result<Vec<Stmt>, String> {
    let stmts = split(sql).map_err(|e| e.to_string())?;
    for (n, s) in stmts.iter().enumerate() {
        if let Some(kw) = s.first_keyword(sql)
            && matches!(
                kw.as_str(),
                "BEGIN"
                    | "START"
                    | "COMMIT"
                    | "END"
                    | "ROLLBACK"
                    | "ABORT"
                    | "SAVEPOINT"
                    | "RELEASE"
            )
        {
            return Err(format!(
                "statement {} (line {}) is transaction control ({kw}); the runner wraps each \
                 migration in a transaction (or none, with run_in_transaction = false in \
                 metadata.toml)",
                n + 1,
                s.line
            ));
        }
    }
    Ok(stmts)
}

/// `<version>_<name>` -> (version without dashes, name). The version is digits (dashes
/// allowed, as diesel's `2024-05-01-120000`), at most 50 characters once the dashes are
/// removed (diesel's `varchar(50)`); the name is not empty.
pub(crate) fn parse_dir_name(dir_name: &str) -> Result<(String, String), String> {
    let bad = || {
        format!(
            "folder name {dir_name:?} is not <version>_<name> (e.g. 2024-05-01-120000_create_users \
             or 20240501120000_create_users)"
        )
    };
    let (raw_version, name) = dir_name.split_once('_').ok_or_else(bad)?;
    let version: String = raw_version.chars().filter(|c| *c != '-').collect();
    if version.is_empty()
        || name.is_empty()
        || !raw_version.chars().all(|c| c.is_ascii_digit() || c == '-')
    {
        return Err(bad());
    }
    if version.len() > 50 {
        return Err(format!("version {version:?} is longer than 50 characters"));
    }
    Ok((version, name.to_owned()))
}

/// Reads `run_in_transaction = true|false` from a metadata.toml. Only that key is
/// understood, and it must be present: diesel reads a metadata.toml without it as `false`,
/// which nobody means by accident.
pub(crate) fn parse_metadata(text: &str) -> Result<bool, String> {
    let mut value = None;
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let parsed = line
            .split_once('=')
            .map(|(k, v)| (k.trim(), v.trim()))
            .and_then(|(k, v)| match (k, v) {
                ("run_in_transaction", "true") => Some(true),
                ("run_in_transaction", "false") => Some(false),
                _ => None,
            });
        match (parsed, value) {
            (Some(v), None) => value = Some(v),
            (Some(_), Some(_)) => {
                return Err(format!("line {}: run_in_transaction is set twice", n + 1));
            }
            (None, _) => {
                return Err(format!(
                    "line {}: {line:?} is not understood (only `run_in_transaction = true` or \
                     `run_in_transaction = false`)",
                    n + 1
                ));
            }
        }
    }
    value.ok_or_else(|| {
        "run_in_transaction is not set (write `run_in_transaction = false`, or delete the file)"
            .to_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(dir_name: &str, up: &str, down: Option<&str>, metadata: Option<&str>) -> RawMigration {
        RawMigration {
            dir_name: dir_name.to_owned(),
            dir: PathBuf::from(dir_name),
            up: up.to_owned(),
            down: down.map(str::to_owned),
            metadata: metadata.map(str::to_owned),
        }
    }

    #[test]
    fn folder_names_follow_diesel() {
        assert_eq!(
            parse_dir_name("2024-05-01-120000_create_users"),
            Ok(("20240501120000".to_owned(), "create_users".to_owned()))
        );
        assert_eq!(
            parse_dir_name("00000000000000_diesel_initial_setup"),
            Ok((
                "00000000000000".to_owned(),
                "diesel_initial_setup".to_owned()
            ))
        );
        for bad in ["create_users", "2024", "2024_", "_x", "v1_x", "12a_x"] {
            assert!(parse_dir_name(bad).is_err(), "{bad}");
        }
        assert!(parse_dir_name(&format!("{}_x", "1".repeat(51))).is_err());
    }

    #[test]
    fn metadata_is_strict() {
        assert_eq!(parse_metadata("run_in_transaction = false\n"), Ok(false));
        assert_eq!(
            parse_metadata("# why\nrun_in_transaction=true # ok\n"),
            Ok(true)
        );
        for bad in [
            "",
            "# nothing",
            "run_in_transaction = \"false\"",
            "other = 1",
            "run_in_transaction = false\nrun_in_transaction = true",
        ] {
            assert!(parse_metadata(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn check_applies_every_rule() {
        let ok = check(&raw(
            "1_a",
            "CREATE TABLE a (x int);",
            Some("-- nothing"),
            None,
        ))
        .expect("valid");
        assert_eq!((ok.version.as_str(), ok.name.as_str()), ("1", "a"));
        assert!(ok.run_in_transaction);
        assert_eq!(ok.down.as_ref().map(Vec::len), Some(0));

        let no_tx = check(&raw(
            "2_b",
            "CREATE INDEX CONCURRENTLY i ON a (x)",
            None,
            Some("run_in_transaction = false"),
        ))
        .expect("valid");
        assert!(!no_tx.run_in_transaction && no_tx.down.is_none());

        let empty = check(&raw("3_c", "-- todo\n", None, None)).expect_err("empty up");
        assert!(
            empty.contains("3_c") && empty.contains("no statement"),
            "{empty}"
        );
        let tx = check(&raw("4_d", "SELECT 1;\nCOMMIT;", None, None)).expect_err("commit");
        assert!(
            tx.contains("statement 2 (line 2)") && tx.contains("COMMIT"),
            "{tx}"
        );
        let quote = check(&raw("5_e", "SELECT 1;", Some("SELECT 'x"), None)).expect_err("quote");
        assert!(
            quote.contains("down.sql: unterminated string literal"),
            "{quote}"
        );
    }
}
