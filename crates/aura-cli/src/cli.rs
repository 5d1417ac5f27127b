//! The command line, as clap parses it.

use clap::{Parser, Subcommand};

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
    /// The Aura database: ping, migrate, status, reset.
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
}

/// `aura dev …`
#[derive(Debug, Subcommand)]
pub enum DevCommand {
    /// Start the local cluster (initialising it on first use), create the `aura` database
    /// and bootstrap its roles.
    Up,
    /// Stop the local cluster.
    Down,
    /// Say whether the local cluster is running, and where.
    Status,
    /// Print `export` lines for `eval "$(aura dev env)"`.
    Env,
}
