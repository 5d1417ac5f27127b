//! [`Migrations`]: an ordered set of checked migrations, from `embed_migrations!` (the
//! workspace's `migrations/`) or from a folder (diesel's `FileBasedMigrations`).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use diesel::migration::{Migration as DieselMigration, MigrationSource};
use diesel::pg::Pg;
use diesel_migrations::{EmbeddedMigrations, FileBasedMigrations, embed_migrations};

use super::error::MigrateError;
use super::layout::{self, Checked};

/// The workspace's migrations, embedded by diesel's macro.
const EMBEDDED: EmbeddedMigrations = embed_migrations!("../../migrations");

mod generated {
    include!(concat!(env!("OUT_DIR"), "/migration_checks.rs"));
}

/// One migration: `<version>_<name>/up.sql` (+ `down.sql`, `metadata.toml`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Migration {
    dir_name: String,
    checked: Checked,
}

impl Migration {
    /// diesel's version: the folder name before the first `_`, dashes removed. This is what
    /// `__diesel_schema_migrations.version` holds.
    pub fn version(&self) -> &str {
        &self.checked.version
    }

    /// The folder name after the first `_` (`create_users`).
    pub fn name(&self) -> &str {
        &self.checked.name
    }

    /// The folder name as written (`2024-05-01-120000_create_users`).
    pub fn dir_name(&self) -> &str {
        &self.dir_name
    }

    /// False when `metadata.toml` says `run_in_transaction = false` (e.g. `CREATE INDEX
    /// CONCURRENTLY`); such a migration is not atomic.
    pub fn run_in_transaction(&self) -> bool {
        self.checked.run_in_transaction
    }

    /// Lower-case hex sha256 of `up.sql` (CRLF line endings read as LF, so a Windows
    /// checkout does not look edited). Recorded when the migration is applied and compared
    /// on every later run.
    pub fn checksum(&self) -> &str {
        &self.checked.checksum
    }

    /// True when `down.sql` exists and holds more than comments: what `reset` needs.
    pub fn is_reversible(&self) -> bool {
        self.checked.reversible
    }
}

/// Where diesel's migration objects come from.
#[derive(Clone, Debug, Default)]
pub(crate) enum Source {
    #[default]
    Embedded,
    Dir(PathBuf),
}

impl Source {
    /// diesel's migration for `m`, run by the harness.
    pub(crate) fn find(&self, m: &Migration) -> Result<Box<dyn DieselMigration<Pg>>, MigrateError> {
        let missing = |reason: String| MigrateError::Source {
            path: m.dir_name().to_owned(),
            reason,
        };
        let all = match self {
            Source::Embedded => MigrationSource::<Pg>::migrations(&EMBEDDED),
            Source::Dir(path) => FileBasedMigrations::from_path(path)
                .map_err(|e| missing(e.to_string()))?
                .migrations(),
        };
        all.map_err(|e| missing(e.to_string()))?
            .into_iter()
            .find(|d| d.name().to_string() == m.dir_name)
            .ok_or_else(|| missing("no longer in the migrations folder".to_owned()))
    }
}

/// An ordered set of migrations (by version), each checked against the layout rules of
/// `migrations/README.md`.
#[derive(Clone, Debug, Default)]
pub struct Migrations {
    list: Vec<Migration>,
    pub(crate) source: Source,
}

impl Migrations {
    /// The migrations of the workspace's `migrations/` folder, embedded at build time by
    /// `embed_migrations!` (`build.rs` checked them with the same rules and recorded their
    /// checksums, so this cannot fail).
    pub fn embedded() -> &'static Migrations {
        static SET: OnceLock<Migrations> = OnceLock::new();
        SET.get_or_init(|| {
            let list = generated::CHECKS
                .iter()
                .map(|&(dir_name, checksum, reversible, run_in_transaction)| {
                    let (version, name) = layout::parse_dir_name(dir_name)
                        .unwrap_or_else(|e| panic!("checked by build.rs: {e}"));
                    Migration {
                        dir_name: dir_name.to_owned(),
                        checked: Checked {
                            version,
                            name,
                            run_in_transaction,
                            checksum: checksum.to_owned(),
                            reversible,
                        },
                    }
                })
                .collect();
            Migrations::from_list(list, Source::Embedded)
                .unwrap_or_else(|e| panic!("embedded migrations: {e}"))
        })
    }

    /// Reads and checks the migrations of a folder laid out like `migrations/` (tests,
    /// tools); they run from the folder, through diesel's `FileBasedMigrations`. The error
    /// names the folder or file at fault and the rule it breaks.
    pub fn from_dir(path: impl AsRef<Path>) -> Result<Migrations, MigrateError> {
        let path = path.as_ref();
        let invalid = |reason: String| MigrateError::Source {
            path: path.display().to_string(),
            reason,
        };
        let list = layout::scan(path)
            .map_err(invalid)?
            .into_iter()
            .map(|raw| {
                let checked = layout::check(&raw).map_err(invalid)?;
                Ok(Migration {
                    dir_name: raw.dir_name,
                    checked,
                })
            })
            .collect::<Result<Vec<_>, MigrateError>>()?;
        FileBasedMigrations::from_path(path).map_err(|e| invalid(e.to_string()))?;
        Migrations::from_list(list, Source::Dir(path.to_owned()))
    }

    fn from_list(mut list: Vec<Migration>, source: Source) -> Result<Migrations, MigrateError> {
        list.sort_by(|a, b| a.version().cmp(b.version()));
        if let Some(pair) = list.windows(2).find(|w| w[0].version() == w[1].version()) {
            return Err(MigrateError::Source {
                path: pair[1].dir_name.clone(),
                reason: format!(
                    "version {} is also used by {}; versions must be unique",
                    pair[1].version(),
                    pair[0].dir_name
                ),
            });
        }
        Ok(Migrations { list, source })
    }

    /// The migrations, oldest version first.
    pub fn iter(&self) -> std::slice::Iter<'_, Migration> {
        self.list.iter()
    }

    /// The migration with this version.
    pub fn get(&self, version: &str) -> Option<&Migration> {
        self.list
            .binary_search_by(|m| m.version().cmp(version))
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
    fn the_embedded_set_is_diesels_with_our_checks() {
        let set = Migrations::embedded();
        assert!(
            set.iter()
                .zip(set.iter().skip(1))
                .all(|(a, b)| a.version() < b.version())
        );
        let diesel = MigrationSource::<Pg>::migrations(&EMBEDDED).expect("embedded");
        assert_eq!(
            diesel.len(),
            set.len(),
            "build.rs saw the folder embed_migrations! saw"
        );
        for m in set {
            let d = Source::Embedded.find(m).expect("diesel has it");
            assert_eq!(d.metadata().run_in_transaction(), m.run_in_transaction());
            assert_eq!(d.name().version().to_string(), m.version());
        }
    }
}
