//! The rules a migration folder follows beyond what diesel checks: diesel's layout (one
//! folder per migration named `<version>_<name>`, holding `up.sql`, optionally `down.sql`
//! and `metadata.toml`), plus a strict `metadata.toml`, an `up.sql` with SQL in it, and
//! the sha256 that detects an edited applied migration.
//!
//! Std, sha2, serde and toml only: `build.rs` includes this file to check the embedded
//! folder at build time with exactly the rules `Migrations::from_dir` applies at run time.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The files of one migration folder, read but not yet checked.
#[derive(Debug, Clone)]
pub(crate) struct RawMigration {
    /// The folder's name, e.g. `2024-05-01-120000_create_conversations`.
    pub(crate) dir_name: String,
    /// `up.sql`.
    pub(crate) up: String,
    /// `down.sql`, when present.
    pub(crate) down: Option<String>,
    /// `metadata.toml`, when present.
    pub(crate) metadata: Option<String>,
}

/// What the checks found out about one migration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Checked {
    /// diesel's version: the part before the first `_`, dashes removed.
    pub(crate) version: String,
    /// The part after the first `_`.
    pub(crate) name: String,
    /// From metadata.toml; true when there is none.
    pub(crate) run_in_transaction: bool,
    /// sha256 of up.sql (see [`checksum`]).
    pub(crate) checksum: String,
    /// down.sql exists and holds more than comments and blanks.
    pub(crate) reversible: bool,
}

/// Lists the migration folders under `root` in name order, reading their files.
/// Files at the top level (a README) and dot-folders are ignored, as diesel does.
pub(crate) fn scan(root: &Path) -> Result<Vec<RawMigration>, String> {
    let list = |e: std::io::Error| format!("{}: cannot list the folder: {e}", root.display());
    let mut dirs: Vec<(String, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(root).map_err(list)? {
        let entry = entry.map_err(list)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') && entry.path().is_dir() {
            dirs.push((name, entry.path()));
        }
    }
    dirs.sort();
    dirs.into_iter()
        .map(|(dir_name, dir)| read_migration(&dir, dir_name))
        .collect()
}

/// Reads the files of the migration folder `dir`, named `dir_name`.
pub(crate) fn read_migration(dir: &Path, dir_name: String) -> Result<RawMigration, String> {
    Ok(RawMigration {
        up: read(&dir.join("up.sql"))?
            .ok_or_else(|| format!("{}: has no up.sql", dir.display()))?,
        down: read(&dir.join("down.sql"))?,
        metadata: read(&dir.join("metadata.toml"))?,
        dir_name,
    })
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

/// Applies every rule to one migration; the error names the folder and the rule.
pub(crate) fn check(raw: &RawMigration) -> Result<Checked, String> {
    let at = |what: &str| format!("migration {}: {what}", raw.dir_name);
    let (version, name) = parse_dir_name(&raw.dir_name).map_err(|e| at(&e))?;
    let run_in_transaction = match &raw.metadata {
        Some(text) => parse_metadata(text).map_err(|e| at(&format!("metadata.toml: {e}")))?,
        None => true,
    };
    if !has_sql(&raw.up) {
        return Err(at("up.sql has no statement (only comments or blanks)"));
    }
    Ok(Checked {
        version,
        name,
        run_in_transaction,
        checksum: checksum(&raw.up),
        reversible: raw.down.as_deref().is_some_and(has_sql),
    })
}

/// Lower-case hex sha256 of `sql` with `\r\n` read as `\n` (a Windows checkout does not
/// look edited). The same function the earlier runner used: recorded checksums still match.
pub(crate) fn checksum(sql: &str) -> String {
    let digest = Sha256::digest(sql.replace("\r\n", "\n").as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// True when `sql` holds anything but whitespace, `-- line` and (nested) `/* block */`
/// comments. Exact without a lexer: a file's first token that starts with `--` or `/*`
/// is a comment, and so is the first token after it.
pub(crate) fn has_sql(sql: &str) -> bool {
    let mut rest = sql.trim_start();
    loop {
        if let Some(after) = rest.strip_prefix("--") {
            rest = after.split_once('\n').map_or("", |(_, r)| r).trim_start();
        } else if rest.starts_with("/*") {
            let mut depth = 0usize;
            let mut i = 0;
            let b = rest.as_bytes();
            while i < b.len() {
                match (b[i], b.get(i + 1)) {
                    (b'/', Some(b'*')) => (depth, i) = (depth + 1, i + 2),
                    (b'*', Some(b'/')) => {
                        (depth, i) = (depth - 1, i + 2);
                        if depth == 0 {
                            break;
                        }
                    }
                    _ => i += 1,
                }
            }
            // An unterminated comment is all comment: the server would say so.
            rest = rest.get(i..).unwrap_or("").trim_start();
        } else {
            return !rest.is_empty();
        }
    }
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

/// A `metadata.toml`: only `run_in_transaction` is understood.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Metadata {
    /// Required, but an `Option` so that its absence gets the message below.
    run_in_transaction: Option<bool>,
}

/// Reads `run_in_transaction = true|false` from a metadata.toml (TOML, by the `toml` crate
/// diesel reads it with). Only that key is understood, and it must be present: diesel
/// reads a metadata.toml without it as `false`, which nobody means by accident.
pub(crate) fn parse_metadata(text: &str) -> Result<bool, String> {
    let metadata: Metadata = toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map_or(1, |at| text[..at.start].matches('\n').count() + 1);
        format!(
            "line {line}: {} (only `run_in_transaction = true` or `run_in_transaction = false` \
             is understood)",
            e.message().trim_end()
        )
    })?;
    metadata.run_in_transaction.ok_or_else(|| {
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
            up: up.to_owned(),
            down: down.map(str::to_owned),
            metadata: metadata.map(str::to_owned),
        }
    }

    #[test]
    fn folder_names_and_metadata_are_strict() {
        assert_eq!(
            parse_dir_name("2024-05-01-120000_create_users"),
            Ok(("20240501120000".to_owned(), "create_users".to_owned()))
        );
        for bad in [
            "create_users",
            "2024",
            "2024_",
            "_x",
            "v1_x",
            "12a_x",
            &format!("{}_x", "1".repeat(51)),
        ] {
            assert!(parse_dir_name(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_metadata("# why\nrun_in_transaction=false # ok\n"),
            Ok(false)
        );
        for bad in [
            "",
            "# nothing",
            "run_in_transaction = \"false\"",
            "other = 1",
        ] {
            assert!(parse_metadata(bad).is_err(), "{bad:?}");
        }
        let twice = parse_metadata("run_in_transaction = false\nrun_in_transaction = true");
        assert!(
            twice.as_ref().is_err_and(|e| e.starts_with("line 2: ")),
            "{twice:?}"
        );
        let unknown = parse_metadata("run_in_transaction = true\nother = 1");
        assert!(
            unknown.as_ref().is_err_and(|e| e.contains("other")),
            "{unknown:?}"
        );
    }

    #[test]
    fn comments_and_blanks_are_not_sql() {
        for empty in [
            "",
            " \n",
            "-- x\n",
            "-- x",
            "/* a /* nested */ b */\n-- y\n",
            "/* open",
        ] {
            assert!(!has_sql(empty), "{empty:?}");
        }
        for sql in [
            "SELECT 1",
            "-- c\nDROP TABLE t;",
            "/* c */ x",
            "/**/x",
            "--\n;",
        ] {
            assert!(has_sql(sql), "{sql:?}");
        }
    }

    #[test]
    fn checksum_is_sha256_hex_and_ignores_crlf() {
        assert_eq!(
            checksum("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(checksum("a;\r\nb;\r\n"), checksum("a;\nb;\n"));
        assert_ne!(checksum("a;\nb;\n"), checksum("a;\nb; \n"));
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
        assert!(ok.run_in_transaction && !ok.reversible);
        let no_tx = check(&raw(
            "2_b",
            "CREATE INDEX CONCURRENTLY i ON a (x)",
            Some("DROP INDEX i"),
            Some("run_in_transaction = false"),
        ))
        .expect("valid");
        assert!(!no_tx.run_in_transaction && no_tx.reversible);
        let empty = check(&raw("3_c", "-- todo\n", None, None)).expect_err("empty up");
        assert!(
            empty.contains("3_c") && empty.contains("no statement"),
            "{empty}"
        );
    }
}
