//! Finding the PostgreSQL server binaries (`initdb`, `pg_ctl`, `postgres`).

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::Error;

/// Environment variable naming the directory that holds `initdb`, `pg_ctl` and `postgres`.
pub const BIN_DIR_ENV: &str = "AURA_PG_BIN_DIR";

/// Where Debian and Ubuntu install the server binaries, one directory per major version.
const SYSTEM_ROOT: &str = "/usr/lib/postgresql";

/// The programs that must all live in one directory.
const REQUIRED: [&str; 3] = ["initdb", "pg_ctl", "postgres"];

/// A directory holding the server binaries of one PostgreSQL installation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PgBinaries {
    dir: PathBuf,
}

impl PgBinaries {
    /// The directory, symlinks resolved: `pg_ctl` finds `postgres` next to its real path.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn initdb(&self) -> PathBuf {
        self.dir.join("initdb")
    }

    pub(crate) fn pg_basebackup(&self) -> PathBuf {
        self.dir.join("pg_basebackup")
    }

    pub(crate) fn pg_ctl(&self) -> PathBuf {
        self.dir.join("pg_ctl")
    }
}

/// Finds the binaries: `explicit` if given, else `$AURA_PG_BIN_DIR`, else the first `PATH`
/// directory that has them, else the highest version under `/usr/lib/postgresql/*/bin`.
pub(crate) fn find(explicit: Option<&Path>) -> Result<PgBinaries, Error> {
    let env_dir = std::env::var_os(BIN_DIR_ENV).filter(|v| !v.is_empty());
    let path_var = std::env::var_os("PATH");
    locate(
        explicit,
        env_dir.as_deref().map(Path::new),
        path_var.as_deref(),
        Path::new(SYSTEM_ROOT),
    )
}

/// [`find`] with its inputs made explicit (for tests).
fn locate(
    explicit: Option<&Path>,
    env_dir: Option<&Path>,
    path_var: Option<&OsStr>,
    system_root: &Path,
) -> Result<PgBinaries, Error> {
    // An explicit directory is taken at its word: no fallback that could pick another version.
    if let Some(dir) = explicit {
        return in_dir(dir).ok_or_else(|| Error::BinariesNotFound {
            searched: dir.display().to_string(),
        });
    }
    if let Some(dir) = env_dir {
        return in_dir(dir).ok_or_else(|| Error::BinariesNotFound {
            searched: format!("{BIN_DIR_ENV}={}", dir.display()),
        });
    }
    if let Some(found) = path_var
        .into_iter()
        .flat_map(std::env::split_paths)
        .filter(|dir| dir.is_absolute())
        .find_map(|dir| in_dir(&dir))
    {
        return Ok(found);
    }
    if let Some(found) = highest_version_under(system_root) {
        return Ok(found);
    }
    Err(Error::BinariesNotFound {
        searched: format!("PATH or {}/*/bin", system_root.display()),
    })
}

/// The binaries in `dir`, if all are there. `pg_ctl` is resolved through symlinks (as
/// `/usr/local/bin/pg_ctl -> /usr/lib/postgresql/15/bin/pg_ctl`) and the real directory must
/// hold all three: that is where `pg_ctl` and `initdb` look for `postgres`. A wrapper such as
/// Debian's `pg_wrapper` (a symlink to a script elsewhere) is thereby skipped.
fn in_dir(dir: &Path) -> Option<PgBinaries> {
    let pg_ctl = std::fs::canonicalize(dir.join("pg_ctl")).ok()?;
    let real = pg_ctl.parent()?;
    REQUIRED
        .iter()
        .all(|name| is_executable(&real.join(name)))
        .then(|| PgBinaries {
            dir: real.to_path_buf(),
        })
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `<root>/<version>/bin` with the highest version (compared numerically: 16 > 9.6).
fn highest_version_under(root: &Path) -> Option<PgBinaries> {
    let mut versions: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir(root)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name();
            let version = parse_version(name.to_str()?)?;
            Some((version, entry.path().join("bin")))
        })
        .collect();
    versions.sort();
    versions.iter().rev().find_map(|(_, bin)| in_dir(bin))
}

fn parse_version(name: &str) -> Option<Vec<u32>> {
    name.split('.').map(|part| part.parse().ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "aura-localpg-bin-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create temp dir");
        dir
    }

    fn fake_install(dir: &Path, names: &[&str]) {
        fs::create_dir_all(dir).expect("create bin dir");
        for name in names {
            let path = dir.join(name);
            fs::write(&path, "#!/bin/sh\n").expect("write fake binary");
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod");
        }
    }

    #[test]
    fn versions_compare_numerically() {
        assert_eq!(parse_version("15"), Some(vec![15]));
        assert_eq!(parse_version("9.6"), Some(vec![9, 6]));
        assert_eq!(parse_version("main"), None);
        assert!(parse_version("16").expect("v") > parse_version("9.6").expect("v"));
    }

    #[test]
    fn picks_highest_complete_version_under_system_root() {
        let root = temp_dir("system");
        fake_install(&root.join("9.6/bin"), &REQUIRED);
        fake_install(&root.join("16/bin"), &REQUIRED);
        // The highest version lacks `postgres`: it is not a usable installation.
        fake_install(&root.join("17/bin"), &["initdb", "pg_ctl"]);
        fake_install(&root.join("notaversion/bin"), &REQUIRED);
        let found = locate(None, None, Some(OsStr::new("")), &root).expect("found");
        assert_eq!(
            found.dir(),
            fs::canonicalize(root.join("16/bin")).expect("canon")
        );
        fs::remove_dir_all(&root).expect("cleanup");
    }

    #[test]
    fn path_wins_over_system_root_and_symlinks_are_resolved() {
        let root = temp_dir("path");
        fake_install(&root.join("real"), &REQUIRED);
        fs::create_dir_all(root.join("links")).expect("mkdir");
        for name in REQUIRED {
            std::os::unix::fs::symlink(root.join("real").join(name), root.join("links").join(name))
                .expect("symlink");
        }
        fake_install(&root.join("system/16/bin"), &REQUIRED);
        let path_var =
            std::env::join_paths([root.join("empty"), root.join("links")]).expect("join");
        let found = locate(None, None, Some(&path_var), &root.join("system")).expect("found");
        assert_eq!(
            found.dir(),
            fs::canonicalize(root.join("real")).expect("canon")
        );
        fs::remove_dir_all(&root).expect("cleanup");
    }

    #[test]
    fn explicit_dir_without_binaries_is_an_error_that_names_it() {
        let root = temp_dir("explicit");
        fake_install(&root.join("system/15/bin"), &REQUIRED);
        let err = locate(Some(&root), None, None, &root.join("system")).expect_err("no fallback");
        let msg = err.to_string();
        assert!(msg.contains(&root.display().to_string()), "{msg}");
        assert!(msg.contains("apt-get install postgresql"), "{msg}");
        let err = locate(None, Some(&root), None, &root.join("system")).expect_err("no fallback");
        assert!(err.to_string().contains("AURA_PG_BIN_DIR="), "{err}");
        fs::remove_dir_all(&root).expect("cleanup");
    }

    #[test]
    fn nothing_anywhere_is_the_install_hint() {
        let root = temp_dir("nothing");
        let err = locate(None, None, None, &root).expect_err("nothing installed");
        let msg = err.to_string();
        assert!(msg.contains("not found in PATH or"), "{msg}");
        assert!(msg.contains("set AURA_PG_BIN_DIR"), "{msg}");
        fs::remove_dir_all(&root).expect("cleanup");
    }
}
