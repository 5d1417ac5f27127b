//! Migrations: diesel_migrations (`embed_migrations!`, `MigrationHarness`) with what
//! golang-migrate users expect on top: a lock across processes, checksums, errors that
//! name the migration, the line and the SQLSTATE.
//!
//! - The set: the workspace's `migrations/` embedded by `embed_migrations!`
//!   ([`Migrations::embedded`]; `build.rs` checks the folder and records each up.sql's
//!   sha256), or any folder with the same layout ([`Migrations::from_dir`]).
//! - One dedicated connection runs everything, holding a session advisory lock taken by
//!   polling `pg_try_advisory_lock` (released on every path); concurrent migrators wait
//!   their turn and then find nothing to do.
//! - Before anything runs, every applied migration is checked: unknown to the set, or its
//!   `up.sql` edited since (sha256), and the run is refused naming it.
//! - Each migration runs whole through diesel's harness (as `diesel migration run` does),
//!   in one transaction with its bookkeeping (unless `run_in_transaction = false`), so a
//!   failure leaves nothing of it; the error names the line of the server's error position.
//! - Applied versions are in diesel's `__diesel_schema_migrations` (the harness writes
//!   them), so `diesel migration list/run` agree with us.
//!
//! Runs on any tokio runtime, current-thread included: the harness runs on a
//! `spawn_blocking` thread, never `block_in_place`.

mod grants;
mod layout;
mod lock;
mod options;
mod plan;
mod reset;
mod run;
mod session;
mod set;
mod status;
mod tracking;

use secrecy::SecretString;

pub use lock::MIGRATION_LOCK_KEY;
pub use options::{MigrateOptions, TargetSchema};
pub use reset::{ResetGuards, ResetReport, reset, reset_with};
pub use run::Applied;
pub use set::{Migration, Migrations};
pub use status::{MigrationRow, MigrationState, status, status_with};
pub use tracking::{CHECKSUM_TABLE, DIESEL_TABLE};

use crate::error::Error;
#[cfg(doc)]
use crate::error::MigrateError;
/// The migration errors live in `crate::error` (which imports nothing from here).
use crate::error::migrate as error;
use run::Direction;
use session::{Access, Session};

/// Applies the pending embedded migrations (the workspace's `migrations/`) with the default
/// [`MigrateOptions`]; returns how many were newly applied (0 when up to date).
///
/// An empty URL is [`MigrateError::EmptyUrl`]; a session that cannot connect is the
/// connect failure itself ([`Error::Connect`], [`Error::Auth`], [`Error::Tls`],
/// [`Error::Config`]); a migration's own failure is [`Error::Migrate`].
pub async fn migrate(migrate_url: &SecretString) -> Result<usize, Error> {
    migrate_with(
        migrate_url,
        Migrations::embedded(),
        &MigrateOptions::default(),
        |_| {},
    )
    .await
    .map(|applied| applied.len())
}

/// Applies the pending migrations of `set`, oldest first, calling `on_applied` after each
/// one commits; returns them.
///
/// Refused before anything runs when the database has a migration applied that `set` does
/// not know ([`MigrateError::UnknownApplied`]) or whose `up.sql` changed
/// ([`MigrateError::ChecksumMismatch`]). A failing migration stops the run
/// ([`MigrateError::Failed`]); those before it stay applied (and were reported to
/// `on_applied`).
pub async fn migrate_with(
    migrate_url: &SecretString,
    set: &Migrations,
    opts: &MigrateOptions,
    mut on_applied: impl FnMut(&Applied),
) -> Result<Vec<Applied>, Error> {
    let mut session = Session::open(migrate_url, opts, Access::Write).await?;
    lock::with_lock(&mut session, opts, async |s| {
        grants::grant_app(s, opts).await?;
        let rows = tracking::read(s).await?.unwrap_or_default();
        let plan = plan::plan(set, &rows)?;
        tracking::ensure(s).await?;
        tracking::adopt(s, &plan.adopt).await?;
        let mut done = Vec::with_capacity(plan.pending.len());
        for m in plan.pending {
            let applied = run::run(s, set, m, Direction::Up).await?;
            tracing::info!(version = m.version(), name = m.name(), took = ?applied.duration, "applied migration");
            on_applied(&applied);
            done.push(applied);
        }
        Ok(done)
    })
    .await
    .map_err(Error::from)
}
