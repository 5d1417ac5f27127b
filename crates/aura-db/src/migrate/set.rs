//! [`Migrations`]: an ordered set of checked migrations, embedded in the binary or read from
//! a folder.

use std::borrow::Cow;
use std::fmt;
use std::path::Path;
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

use super::layout::{self, RawMigration};
use super::split::Stmt;
use crate::error::Error;

/// One file's SQL with its statements.
#[derive(Clone)]
pub(crate) struct Sql {
    pub(crate) text: Cow<'static, str>,
    pub(crate) statements: Vec<Stmt>,
}

/// One migration: `<version>_<name>/up.sql` (+ `down.sql`, `metadata.toml`).
#[derive(Clone)]
pub struct Migration {
    version: String,
    name: String,
    dir_name: String,
    run_in_transaction: bool,
    checksum: String,
    pub(crate) up: Sql,
    pub(crate) down: Option<Sql>,
}

impl Migration {
    /// diesel's version: the folder name before the first `_`, dashes removed. This is what
    /// `__diesel_schema_migrations.version` holds.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The folder name after the first `_` (`create_users`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The folder name as written (`2024-05-01-120000_create_users`).
    pub fn dir_name(&self) -> &str {
        &self.dir_name
    }

    /// False when `metadata.toml` says `run_in_transaction = false` (e.g. `CREATE INDEX
    /// CONCURRENTLY`); such a migration is not atomic.
    pub fn run_in_transaction(&self) -> bool {
        self.run_in_transaction
    }

    /// Lower-case hex sha256 of `up.sql` (CRLF line endings read as LF, so a Windows
    /// checkout does not look edited). Recorded when the migration is applied and compared
    /// on every later run.
    pub fn checksum(&self) -> &str {
        &self.checksum
    }

    /// True when `down.sql` exists and holds at least one statement: what `reset` needs.
    pub fn is_reversible(&self) -> bool {
        self.down.as_ref().is_some_and(|d| !d.statements.is_empty())
    }

    /// How many statements `up.sql` holds.
    pub fn statement_count(&self) -> usize {
        self.up.statements.len()
    }

    fn from_raw(
        raw: RawMigration,
        up: Cow<'static, str>,
        down: Option<Cow<'static, str>>,
    ) -> Result<Self, Error> {
        let checked = layout::check(&raw).map_err(|reason| Error::MigrationSource {
            path: raw.dir.display().to_string(),
            reason,
        })?;
        Ok(Migration {
            checksum: checksum(&up),
            version: checked.version,
            name: checked.name,
            dir_name: raw.dir_name,
            run_in_transaction: checked.run_in_transaction,
            up: Sql {
                text: up,
                statements: checked.up,
            },
            down: down
                .zip(checked.down)
                .map(|(text, statements)| Sql { text, statements }),
        })
    }
}

impl fmt::Debug for Migration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Migration")
            .field("version", &self.version)
            .field("name", &self.name)
            .field("run_in_transaction", &self.run_in_transaction)
            .field("statements", &self.up.statements.len())
            .field("reversible", &self.is_reversible())
            .field("checksum", &self.checksum)
            .finish()
    }
}

/// sha256 of `sql` with `\r\n` read as `\n`, as lower-case hex.
pub(crate) fn checksum(sql: &str) -> String {
    let digest = Sha256::digest(sql.replace("\r\n", "\n").as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// An ordered set of migrations (by version), each checked against the layout rules of
/// `migrations/README.md`.
#[derive(Clone, Debug, Default)]
pub struct Migrations {
    list: Vec<Migration>,
}

/// What `build.rs` embeds per migration folder.
struct Embedded {
    dir_name: &'static str,
    up: &'static str,
    down: Option<&'static str>,
    metadata: Option<&'static str>,
}

mod generated {
    include!(concat!(env!("OUT_DIR"), "/embedded_migrations.rs"));
}

impl Migrations {
    /// The migrations of the workspace's `migrations/` folder, embedded at build time
    /// (`build.rs` checked them with the same rules, so this cannot fail).
    pub fn embedded() -> &'static Migrations {
        static EMBEDDED: OnceLock<Migrations> = OnceLock::new();
        EMBEDDED.get_or_init(|| {
            let list = generated::EMBEDDED
                .iter()
                .map(|e| {
                    let raw = RawMigration {
                        dir_name: e.dir_name.to_owned(),
                        dir: Path::new("migrations").join(e.dir_name),
                        up: e.up.to_owned(),
                        down: e.down.map(str::to_owned),
                        metadata: e.metadata.map(str::to_owned),
                    };
                    Migration::from_raw(raw, Cow::Borrowed(e.up), e.down.map(Cow::Borrowed))
                })
                .collect::<Result<Vec<_>, _>>()
                .unwrap_or_else(|e| panic!("embedded migrations were checked by build.rs: {e}"));
            Migrations::from_list(list).unwrap_or_else(|e| panic!("embedded migrations: {e}"))
        })
    }

    /// Reads and checks the migrations of a folder laid out like `migrations/` (tests,
    /// tools). The error names the folder or file at fault and the rule it breaks.
    pub fn from_dir(path: impl AsRef<Path>) -> Result<Migrations, Error> {
        let path = path.as_ref();
        let raws = layout::scan(path).map_err(|reason| Error::MigrationSource {
            path: path.display().to_string(),
            reason,
        })?;
        let list = raws
            .into_iter()
            .map(|raw| {
                let up = Cow::Owned(raw.up.clone());
                let down = raw.down.clone().map(Cow::Owned);
                Migration::from_raw(raw, up, down)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Migrations::from_list(list)
    }

    fn from_list(mut list: Vec<Migration>) -> Result<Migrations, Error> {
        list.sort_by(|a, b| a.version.cmp(&b.version));
        if let Some(pair) = list.windows(2).find(|w| w[0].version == w[1].version) {
            return Err(Error::MigrationSource {
                path: pair[1].dir_name.clone(),
                reason: format!(
                    "version {} is also used by {}; versions must be unique",
                    pair[1].version, pair[0].dir_name
                ),
            });
        }
        Ok(Migrations { list })
    }

    /// The migrations, oldest version first.
    pub fn iter(&self) -> std::slice::Iter<'_, Migration> {
        self.list.iter()
    }

    /// The migration with this version.
    pub fn get(&self, version: &str) -> Option<&Migration> {
        self.list
            .binary_search_by(|m| m.version.as_str().cmp(version))
            .ok()
            .map(|i| &self.list[i])
    }

    /// How many migrations the set holds.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// True when the set holds no migration.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

impl<'a> IntoIterator for &'a Migrations {
    type Item = &'a Migration;
    type IntoIter = std::slice::Iter<'a, Migration>;

    fn into_iter(self) -> Self::IntoIter {
        self.list.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn embedded_set_loads() {
        // Whatever the workspace's migrations/ holds, it loads and is ordered.
        let set = Migrations::embedded();
        assert!(
            set.iter()
                .zip(set.iter().skip(1))
                .all(|(a, b)| a.version() < b.version())
        );
    }
}
