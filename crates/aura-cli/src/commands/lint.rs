//! `aura db lint [PATHS…]`: the pending migrations (asking the database which are
//! applied), or the migration folders given, checked by [`crate::lint`].

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use aura_db::{Config, MigrationState, Migrations};

use super::db::{migrate_url, options};
use crate::lint::report::{self, Format};
use crate::lint::{self, Level, Source, rules};

/// Lints the migration folders `paths` (each a migration folder, or a folder of them such
/// as `migrations/`); connects nowhere.
pub fn paths(paths: &[PathBuf], format: Format) -> Result<ExitCode, String> {
    let mut sources = Vec::new();
    for path in paths {
        sources.extend(sources_at(path)?);
    }
    run(sources, format)
}

/// Lints the embedded migrations the database has not applied (history is not re-linted).
pub async fn pending(config: &Config, format: Format) -> Result<ExitCode, String> {
    let set = Migrations::embedded();
    let url = migrate_url(config).map_err(|e| aura_db::error_chain(&e))?;
    let rows = aura_db::status_with(&url, set, &options(config))
        .await
        .map_err(|e| aura_db::error_chain(&e))?;
    let applied = |version: &str| {
        rows.iter()
            .any(|r| r.version == version && r.state != MigrationState::Pending)
    };
    let sources: Vec<Source> = set
        .iter()
        .filter(|m| !applied(m.version()))
        .map(|m| Source {
            migration: m.dir_name().to_owned(),
            file: format!("migrations/{}/up.sql", m.dir_name()),
            sql: m.up_sql().to_owned(),
            in_transaction: m.run_in_transaction(),
        })
        .collect();
    if sources.is_empty() {
        let target = config
            .migrate_url()
            .map(|d| d.redacted())
            .unwrap_or_default();
        println!(
            "lint: no pending migration on {target} (applied ones are not re-linted; \
             `aura db lint migrations` lints every folder)"
        );
        return Ok(ExitCode::SUCCESS);
    }
    run(sources, format)
}

/// `aura db lint --rules`: the project's rule configuration.
pub fn print_rules() -> ExitCode {
    println!(
        "squawk-linter's default rules, assuming PostgreSQL {}; every finding is an error except:",
        rules::PG_VERSION
    );
    for rule in rules::WARN {
        println!("  warning  {rule}");
    }
    println!("off for this project (crates/aura-cli/src/lint/rules.rs):");
    for (rule, why) in rules::OFF {
        println!("  off      {rule}: {why}");
    }
    ExitCode::SUCCESS
}

/// Parses every source first (one unparsable file is the one-line error, nothing else is
/// printed), then prints the findings and the summary; exit code 1 on an error finding.
fn run(sources: Vec<Source>, format: Format) -> Result<ExitCode, String> {
    let count = sources.len();
    let parsed = sources
        .into_iter()
        .map(lint::parse)
        .collect::<Result<Vec<_>, String>>()?;
    let findings: Vec<_> = parsed.iter().flat_map(lint::lint).collect();
    if let Some(header) = report::header(format).filter(|_| !findings.is_empty()) {
        println!("{header}");
    }
    for finding in &findings {
        println!("{}", report::line(finding, format));
    }
    if format == Format::Markdown {
        println!();
    }
    println!(
        "{} ({} squawk rules off for this project: aura db lint --rules)",
        report::summary(count, &findings),
        rules::OFF.len()
    );
    Ok(if findings.iter().any(|f| f.level == Level::Error) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The `up.sql` sources at `path`: a migration folder (or its `up.sql`), or a folder of
/// migration folders. Anything else is a one-line error naming the path.
fn sources_at(path: &Path) -> Result<Vec<Source>, String> {
    let source = |m: &aura_db::Migration, dir: &Path| Source {
        migration: m.dir_name().to_owned(),
        file: dir.join("up.sql").display().to_string(),
        sql: m.up_sql().to_owned(),
        in_transaction: m.run_in_transaction(),
    };
    let shown = path.display();
    if !path.exists() {
        return Err(format!("lint: {shown} does not exist"));
    }
    let dir = if path.is_file() {
        match (path.file_name(), path.parent()) {
            (Some(name), Some(parent)) if name == "up.sql" => parent.to_owned(),
            _ => {
                return Err(format!(
                    "lint: {shown} is a file; give a migration folder (<version>_<name>/ holding up.sql) or a folder of them"
                ));
            }
        }
    } else {
        path.to_owned()
    };
    if dir.join("up.sql").is_file() {
        let m = aura_db::Migration::from_dir(&dir).map_err(|e| format!("lint: {e}"))?;
        return Ok(vec![source(&m, &dir)]);
    }
    let holds_migrations = std::fs::read_dir(&dir)
        .map_err(|e| format!("lint: cannot list {shown}: {e}"))?
        .filter_map(Result::ok)
        .any(|e| e.path().join("up.sql").is_file());
    if !holds_migrations {
        return Err(format!(
            "lint: {shown} is not a migration folder: it has no up.sql, and no folder in it has one"
        ));
    }
    let set = Migrations::from_dir(&dir).map_err(|e| format!("lint: {e}"))?;
    Ok(set
        .iter()
        .map(|m| source(m, &dir.join(m.dir_name())))
        .collect())
}
