//! [`Migrations`]: an ordered set of checked migrations, from `embed_migrations!` (the
//! workspace's `migrations/`) or from a folder (diesel's `FileBasedMigrations`).

use std::borrow::Cow;
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
    up: Cow<'static, str>,
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

    /// The text of `up.sql`, as written (what `aura db lint` reads).
    pub fn up_sql(&self) -> &str {
        &self.up
    }

    /// Reads and checks one migration folder (`…/<version>_<name>/`, holding `up.sql`)
    /// with the rules [`Migrations::from_dir`] applies to each of its folders. The error
    /// names the folder or file at fault and the rule it breaks.
    pub fn from_dir(path: impl AsRef<Path>) -> Result<Migration, MigrateError> {
        let path = path.as_ref();
        let invalid = |reason: String| MigrateError::Source {
            path: path.display().to_string(),
            reason,
        };
        let dir_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| invalid("is not a folder name".to_owned()))?;
        if !path.is_dir() {
            return Err(invalid("is not a folder".to_owned()));
        }
        let raw = layout::read_migration(path, dir_name).map_err(invalid)?;
        Migration::checked(raw).map_err(invalid)
    }

    fn checked(raw: layout::RawMigration) -> Result<Migration, String> {
        let checked = layout::check(&raw)?;
        Ok(Migration {
            dir_name: raw.dir_name,
            checked,
            up: Cow::Owned(raw.up),
        })
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
                .map(
                    |&(dir_name, checksum, reversible, run_in_transaction, up)| {
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
                            up: Cow::Borrowed(up),
                        }
                    },
                )
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
            .map(|raw| Migration::checked(raw).map_err(invalid))
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
            assert_eq!(
                layout::checksum(m.up_sql()),
                m.checksum(),
                "up.sql embedded"
            );
        }
    }

    #[test]
    fn one_folder_reads_as_in_a_set() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations");
        let set = Migrations::from_dir(&root).expect("the workspace's migrations");
        for m in &set {
            let one = Migration::from_dir(root.join(m.dir_name())).expect("one folder");
            assert_eq!(&one, m);
        }
        let err = Migration::from_dir(&root).expect_err("the root is no migration");
        assert!(err.to_string().contains("migrations"), "{err}");
    }
}
