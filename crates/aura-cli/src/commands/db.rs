//! `aura db …`: the Aura database.

use std::process::ExitCode;
use std::time::Duration;

use aura_db::{
    Config, Error, MigrateOptions, MigrationRow, MigrationState, Migrations, ResetGuards,
};
use secrecy::SecretString;

use super::{bootstrap, lint};
use crate::cli::DbCommand;
use crate::local_default;

/// `aura db status` exit codes.
const EXIT_PENDING: u8 = 2;
const EXIT_INCONSISTENT: u8 = 3;

pub async fn run(cmd: DbCommand) -> Result<ExitCode, String> {
    if let DbCommand::Bootstrap { print_sql: true } = cmd {
        // Connects nowhere, so never starts the local cluster either.
        return bootstrap::print_sql();
    }
    match &cmd {
        // Connect nowhere either.
        DbCommand::Lint { rules: true, .. } => return Ok(lint::print_rules()),
        DbCommand::Lint { paths, format, .. } if !paths.is_empty() => {
            return lint::paths(paths, *format);
        }
        _ => {}
    }
    let (config, local) = local_default::config().await?;
    // The whole chain: a migration error's Display leaves the server's words to its source.
    let chain = |err: Error| aura_db::error_chain(&err);
    let result = match cmd {
        DbCommand::Ping => ping(&config).await.map_err(chain),
        DbCommand::Migrate => migrate(&config, local.is_some()).await.map_err(chain),
        DbCommand::Bootstrap { .. } => return bootstrap::run(&config).await,
        DbCommand::Status { json } => status(&config, json).await.map_err(chain),
        DbCommand::Lint { format, .. } => lint::pending(&config, format).await,
        DbCommand::Reset { yes } => reset(&config, yes).await.map_err(chain),
    };
    match (result, local) {
        (Ok(code), Some(note)) => {
            eprintln!("{note}");
            Ok(code)
        }
        (Ok(code), None) => Ok(code),
        (Err(err), Some(_)) => Err(format!(
            "{err} (no database configured: on the local cluster)"
        )),
        (Err(err), None) => Err(err),
    }
}

async fn ping(config: &Config) -> Result<ExitCode, Error> {
    let pool = aura_db::open(config).await?;
    let rtt = aura_db::ping(&pool).await?;
    let encryption = aura_db::encryption(&mut *pool.get().await?).await?;
    println!(
        "ok: {} answered in {}; session: {encryption}",
        config.app_url().redacted(),
        ms(rtt)
    );
    Ok(ExitCode::SUCCESS)
}

async fn migrate(config: &Config, local: bool) -> Result<ExitCode, Error> {
    // The local default bootstrapped the roles already.
    if config.bootstrap_skipped() {
        println!("roles: bootstrap skipped (AURA_DB_URL and AURA_DB_MIGRATE_URL are both set)");
    } else if !local {
        let report = aura_db::ensure_roles(config).await?;
        print_roles(config, &report);
    }
    let url = migrate_url(config)?;
    let set = Migrations::embedded();
    let applied = aura_db::migrate_with(&url, set, &options(config), |a| {
        println!("applied {}_{} ({})", a.version, a.name, ms(a.duration));
    })
    .await?;
    let target = config
        .migrate_url()
        .map(|d| d.redacted())
        .unwrap_or_default();
    if applied.is_empty() {
        println!("up to date: {} migrations applied on {target}", set.len());
    } else {
        let total: Duration = applied.iter().map(|a| a.duration).sum();
        println!(
            "applied {} migration(s) in {} on {target}",
            applied.len(),
            ms(total)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The migration options for `config`: its app role gets the grants.
pub(super) fn options(config: &Config) -> MigrateOptions {
    MigrateOptions::for_config(config)
}

/// `roles: created …; updated …; created schema aura`.
pub(super) fn print_roles(config: &Config, report: &aura_db::RolesReport) {
    let mut parts = Vec::new();
    if !report.created.is_empty() {
        parts.push(format!("created {}", report.created.join(", ")));
    }
    if !report.updated.is_empty() {
        parts.push(format!("updated {}", report.updated.join(", ")));
    }
    if report.schema_created {
        parts.push(format!("created schema {}", config.schema()));
    }
    println!("roles: {}", parts.join("; "));
}

async fn status(config: &Config, json: bool) -> Result<ExitCode, Error> {
    let url = migrate_url(config)?;
    let set = Migrations::embedded();
    let mut rows = aura_db::status_with(&url, set, &options(config)).await?;
    if rows.is_empty() {
        // Never migrated: everything this binary carries is pending.
        rows = set
            .iter()
            .map(|m| MigrationRow {
                version: m.version().to_owned(),
                name: m.name().to_owned(),
                applied_at: None,
                state: MigrationState::Pending,
            })
            .collect();
    }
    let count = |state| rows.iter().filter(|r| r.state == state).count();
    let pending = count(MigrationState::Pending);
    let inconsistent = count(MigrationState::ChecksumMismatch) + count(MigrationState::Unknown);
    let target = config
        .migrate_url()
        .map(|d| d.redacted().to_owned())
        .unwrap_or_default();
    if json {
        let migrations: Vec<_> = rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "version": r.version,
                    "name": r.name,
                    "state": r.state.as_str(),
                    "applied_at": r.applied_at.map(|t| humantime::format_rfc3339_seconds(t).to_string()),
                })
            })
            .collect();
        let doc = serde_json::json!({
            "target": target,
            "migrations": migrations,
            "applied": count(MigrationState::Applied),
            "pending": pending,
            "inconsistent": inconsistent,
        });
        println!("{doc:#}");
    } else {
        println!(
            "{:<16} {:<40} {:<18} APPLIED AT",
            "VERSION", "NAME", "STATE"
        );
        for r in &rows {
            let at = r
                .applied_at
                .map(|t| humantime::format_rfc3339_seconds(t).to_string())
                .unwrap_or_else(|| "-".to_owned());
            println!(
                "{:<16} {:<40} {:<18} {at}",
                r.version,
                r.name,
                r.state.as_str()
            );
        }
        println!(
            "{} applied, {pending} pending, {inconsistent} inconsistent on {target}",
            count(MigrationState::Applied)
        );
    }
    Ok(if inconsistent > 0 {
        ExitCode::from(EXIT_INCONSISTENT)
    } else if pending > 0 {
        ExitCode::from(EXIT_PENDING)
    } else {
        ExitCode::SUCCESS
    })
}

async fn reset(config: &Config, yes: bool) -> Result<ExitCode, Error> {
    let guards = ResetGuards::from_env(yes);
    let url = migrate_url(config)?;
    let report =
        aura_db::reset_with(&url, Migrations::embedded(), guards, &options(config)).await?;
    for r in &report.reverted {
        println!("reverted {}_{} ({})", r.version, r.name, ms(r.duration));
    }
    for a in &report.applied {
        println!("applied {}_{} ({})", a.version, a.name, ms(a.duration));
    }
    println!(
        "reset: {} reverted, {} applied",
        report.reverted.len(),
        report.applied.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// The migrate DSN as the secret `aura_db::migrate` takes; empty when configured empty, so
/// that the migration code reports its load-bearing "migrate URL is empty" error.
pub(super) fn migrate_url(config: &Config) -> Result<SecretString, Error> {
    Ok(SecretString::from(
        config
            .migrate_url()
            .map(|d| d.expose().to_owned())
            .unwrap_or_default(),
    ))
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}
