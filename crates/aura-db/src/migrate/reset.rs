//! [`reset`]: development only. Every applied migration down (newest first), then every
//! migration up, under the migration lock; refused without both guards, and refused before
//! anything changes when an applied migration is unknown, edited or has no down.sql.

use secrecy::SecretString;

use super::error::MigrateError;
use super::lock::with_lock;
use super::options::MigrateOptions;
use super::plan::plan;
use super::run::{Applied, Direction, run};
use super::session::{Access, Session};
use super::set::Migrations;
use super::tracking;
use crate::config::vars::AURA_RESET_YES;
use crate::error::Error;

/// The two confirmations `reset` needs: the caller's flag (`--yes`) and the environment
/// (`AURA_RESET_YES=1`), so neither a stray flag nor a stray variable alone wipes a database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ResetGuards {
    /// The command line's `--yes`.
    pub yes_flag: bool,
    /// `AURA_RESET_YES` is `1`.
    pub env_yes: bool,
}

impl ResetGuards {
    /// `yes_flag` as given; `env_yes` from the process environment (`AURA_RESET_YES == "1"`).
    pub fn from_env(yes_flag: bool) -> Self {
        ResetGuards {
            yes_flag,
            env_yes: std::env::var(AURA_RESET_YES).is_ok_and(|v| v == "1"),
        }
    }

    fn check(self) -> Result<(), MigrateError> {
        let reason = match (self.yes_flag, self.env_yes) {
            (true, true) => return Ok(()),
            (false, false) => {
                "it needs --yes and AURA_RESET_YES=1 (it reverts every migration, dropping their data)"
            }
            (false, true) => "it needs --yes",
            (true, false) => "it needs AURA_RESET_YES=1 in the environment",
        };
        Err(MigrateError::ResetRefused {
            reason: reason.to_owned(),
        })
    }
}

/// What [`reset`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResetReport {
    /// The migrations reverted, newest first.
    pub reverted: Vec<Applied>,
    /// The migrations applied afterwards, oldest first.
    pub applied: Vec<Applied>,
}

/// Reverts every applied migration of `set` (newest first), then applies every migration
/// of `set`. Refused, with nothing changed, unless both guards are given, and when an applied
/// migration is unknown to `set`, edited since it was applied, or has no down.sql.
///
/// Each migration runs in its own transaction: a down.sql or up.sql that fails stops the
/// reset there, with the migrations before it done.
pub async fn reset(
    migrate_url: &SecretString,
    set: &Migrations,
    guards: ResetGuards,
) -> Result<ResetReport, Error> {
    reset_with(migrate_url, set, guards, &MigrateOptions::default()).await
}

/// [`reset`] with connection and lock options.
pub async fn reset_with(
    migrate_url: &SecretString,
    set: &Migrations,
    guards: ResetGuards,
    opts: &MigrateOptions,
) -> Result<ResetReport, Error> {
    guards.check()?;
    let mut session = Session::open(migrate_url, opts, Access::Write).await?;
    with_lock(&mut session, opts, async |s| {
        super::grants::grant_app(s, opts).await?;
        let rows = tracking::read(s).await?.unwrap_or_default();
        let plan = plan(set, &rows)?;
        if let Some(m) = plan.applied.iter().find(|m| !m.is_reversible()) {
            return Err(MigrateError::MissingDown {
                version: m.version().to_owned(),
                name: m.name().to_owned(),
            });
        }
        tracking::ensure(s).await?;
        let mut report = ResetReport::default();
        for m in plan.applied.iter().rev() {
            let done = run(s, set, m, Direction::Down).await?;
            tracing::info!(version = m.version(), name = m.name(), took = ?done.duration, "reverted migration");
            report.reverted.push(done);
        }
        for m in set {
            let done = run(s, set, m, Direction::Up).await?;
            tracing::info!(version = m.version(), name = m.name(), took = ?done.duration, "applied migration");
            report.applied.push(done);
        }
        Ok(report)
    })
    .await
    .map_err(Error::from)
}
