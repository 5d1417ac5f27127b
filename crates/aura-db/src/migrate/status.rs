//! [`status`]: what is applied, pending, edited or unknown. Read-only, no lock.

use std::time::SystemTime;

use secrecy::SecretString;

use super::options::MigrateOptions;
use super::session::{Access, Session};
use super::set::Migrations;
use super::tracking;
use crate::error::Error;

/// The state of one migration in one database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MigrationState {
    /// Applied, and its `up.sql` is unchanged (or it was applied by diesel CLI and has no
    /// checksum yet: the next `migrate` records it).
    Applied,
    /// In the set, not applied.
    Pending,
    /// Applied, but its `up.sql` changed since: `migrate` refuses to run.
    ChecksumMismatch,
    /// Applied, but not in the set: `migrate` refuses to run.
    Unknown,
}

impl MigrationState {
    /// `applied`, `pending`, `checksum-mismatch`, `unknown`: for tables and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            MigrationState::Applied => "applied",
            MigrationState::Pending => "pending",
            MigrationState::ChecksumMismatch => "checksum-mismatch",
            MigrationState::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for MigrationState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One line of [`status`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationRow {
    /// The version.
    pub version: String,
    /// The name; empty for an unknown migration whose name was never recorded.
    pub name: String,
    /// When it was applied; `None` when pending.
    pub applied_at: Option<SystemTime>,
    /// Its state.
    pub state: MigrationState,
}

/// Every migration of `set` and every applied one, by version, with its state.
///
/// A database never migrated (no `__diesel_schema_migrations` in the session's schema)
/// gives an empty list; any other failure (unreachable, permission denied, no usable
/// schema on the search_path) is an error, never an empty list.
pub async fn status(
    migrate_url: &SecretString,
    set: &Migrations,
) -> Result<Vec<MigrationRow>, Error> {
    status_with(migrate_url, set, &MigrateOptions::default()).await
}

/// [`status`] with connection options.
pub async fn status_with(
    migrate_url: &SecretString,
    set: &Migrations,
    opts: &MigrateOptions,
) -> Result<Vec<MigrationRow>, Error> {
    let mut session = Session::open(migrate_url, opts, Access::Read).await?;
    let Some(applied) = tracking::read(&mut session).await? else {
        return Ok(Vec::new());
    };
    let mut rows: Vec<MigrationRow> = applied
        .into_iter()
        .map(|a| {
            let known = set.get(&a.version);
            let state = match (known, &a.checksum) {
                (None, _) => MigrationState::Unknown,
                (Some(m), Some(c)) if c != m.checksum() => MigrationState::ChecksumMismatch,
                (Some(_), _) => MigrationState::Applied,
            };
            MigrationRow {
                name: known
                    .map(|m| m.name().to_owned())
                    .or(a.name)
                    .unwrap_or_default(),
                version: a.version,
                applied_at: Some(a.applied_at),
                state,
            }
        })
        .collect();
    for m in set {
        if !rows.iter().any(|r| r.version == m.version()) {
            rows.push(MigrationRow {
                version: m.version().to_owned(),
                name: m.name().to_owned(),
                applied_at: None,
                state: MigrationState::Pending,
            });
        }
    }
    rows.sort_by(|a, b| a.version.cmp(&b.version));
    Ok(rows)
}
