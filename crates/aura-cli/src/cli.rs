//! The command line, as clap parses it.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::lint::report::Format;

/// Drive Aura's Postgres database and the local development cluster.
///
/// With no POSTGRES_HOST, POSTGRES_PORT or AURA_DB_*_URL set, `aura db …` uses the
/// project's local cluster (started when needed).
#[derive(Debug, Parser)]
#[command(name = "aura", version)]
pub struct Cli {
    /// More log output on stderr (-v, -vv); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The Aura database: ping, migrate, status, lint, reset.
    #[command(subcommand)]
    Db(DbCommand),
    /// The local development cluster.
    #[command(subcommand)]
    Dev(DevCommand),
}

/// `aura db …`
#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Connect as the app role and time a `SELECT 1` round trip.
    Ping,
    /// Bootstrap the roles (unless AURA_DB_URL and AURA_DB_MIGRATE_URL are both set), then
    /// apply the pending migrations.
    Migrate,
    /// Create or update the roles, the schema and their privileges as the role of
    /// AURA_DB_BOOTSTRAP_URL (a superuser, or an administrator with CREATEROLE).
    ///
    /// With `--print-sql`, connect nowhere: print the SQL script an administrator runs once,
    /// connected to the database, on a server where Aura gets no superuser (managed
    /// Postgres). Passwords appear in it only as SCRAM-SHA-256 verifiers, computed here
    /// from AURA_DB_URL / AURA_DB_MIGRATE_URL, else AURA_DB_PASSWORD.
    Bootstrap {
        /// Print the SQL instead of running it.
        #[arg(long)]
        print_sql: bool,
    },
    /// List applied and pending migrations.
    ///
    /// Exit codes: 0 up to date, 2 migrations pending, 3 inconsistent (an applied migration
    /// was edited or is unknown to this binary), 1 error.
    Status {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Check migrations for DDL that would lock a busy table (squawk's linter, with this
    /// project's rules): the pending ones (asks the database which are applied), or the
    /// folders given (connects nowhere).
    ///
    /// One line per finding: file:line:column, level, rule, what is wrong and what to do
    /// instead. Acknowledge a finding in up.sql with
    /// `-- squawk-ignore <rule> -- <why it is safe here>` on the line before the statement.
    /// Exit codes: 0 no error finding, 1 an error finding or bad input.
    Lint {
        /// Migration folders (`migrations/2026-…_add_x`), or folders of them
        /// (`migrations`); none: the pending migrations.
        paths: Vec<PathBuf>,
        /// `text`, `github` (workflow commands that annotate a pull request) or `markdown`
        /// (a table, for a PR comment or $GITHUB_STEP_SUMMARY).
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        /// Print which rules are off or warnings for this project, and why.
        #[arg(long, conflicts_with = "paths")]
        rules: bool,
    },
    /// Dev only: revert every migration, then apply them all again. Needs `--yes` and
    /// AURA_RESET_YES=1.
    Reset {
        /// Confirm that every table's data is to be dropped.
        #[arg(long)]
        yes: bool,
    },
}

/// `aura dev …`
#[derive(Debug, Subcommand)]
pub enum DevCommand {
    /// Start the local cluster (initialising it on first use), create the `aura` database
    /// and bootstrap its roles.
    Up {
        /// Serve TLS: generate a development CA and a server certificate for localhost and
        /// 127.0.0.1 in the data directory, and turn `ssl` on (plaintext still accepted).
        #[arg(long)]
        tls: bool,
        /// Like `--tls`, and accept TLS connections only (`hostssl` lines in pg_hba.conf).
        #[arg(long)]
        tls_only: bool,
        /// Also start a streaming read replica of the cluster (`<data root>-replica`,
        /// pg_basebackup -R) and print its AURA_DB_READ_URL (`aura dev env` prints it too).
        #[arg(long)]
        replica: bool,
    },
    /// Stop the local cluster (and its read replica, if one runs).
    Down,
    /// Say whether the local cluster is running, and where.
    Status,
    /// Print `export` lines for `eval "$(aura dev env)"`.
    Env,
}
