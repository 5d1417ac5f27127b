#![doc = include_str!("../README.md")]

mod abandon;
mod config;
mod connect;
mod credentials;
mod dsn;
mod error;
mod ident;
mod lc_messages;
mod migrate;
mod ping;
mod pool;
mod provision;
mod replication;
mod retry;
mod roles;
mod scram;
mod sqlstate;
mod stats;
mod tcp;
pub mod telemetry;
mod tls;
mod tx;

pub use config::{Config, ConfigBuilder, OPERATION_MARGIN, PoolSettings, vars};
pub use connect::{cancel_query, connect_raw};
pub use credentials::{
    CredentialError, CredentialSource, Credentials, PasswordFile, PasswordFileError,
};
pub use dsn::Dsn;
pub use error::{Error, MigrateError, MigrationFailure, Source, SqlError, error_chain};
pub use ident::validate_ident;
pub use migrate::{
    Applied, CHECKSUM_TABLE, DIESEL_TABLE, MIGRATION_LOCK_KEY, MigrateOptions, Migration,
    MigrationRow, MigrationState, Migrations, ResetGuards, ResetReport, TargetSchema, migrate,
    migrate_with, reset, reset_with, status, status_with,
};
pub use ping::{Encryption, encryption, ping};
pub use pool::{Pool, PoolState, PooledConn, mark_broken, open, open_with};
pub use provision::bootstrap_script;
pub use replication::ensure_replication_role;
pub use retry::{AsDbError, RetryPolicy, Transient, retry_event};
pub use roles::{
    MAX_PASSWORD_BYTES, MIGRATE_LOCK_TIMEOUT, RolesReport, RolesSpec, ensure_roles,
    ensure_roles_with, validate_password,
};
pub use stats::PoolStats;
pub use tcp::TcpSettings;
pub use telemetry::DbAttributes;
pub use tls::{RootCert, SslMode, TlsFailure, TlsSettings};

/// The schema of Aura's tables: always `aura` (diesel's `table!` definitions and the
/// store's SQL name it at compile time; there is no setting for it).
pub const SCHEMA: &str = "aura";

pub use tx::{Isolation, TxBody, TxBodyMut, TxOptions, with_tx, with_tx_opts, with_tx_retry};

/// Re-exported so a [`CredentialSource`] can be implemented without a dependency of one's own.
pub use async_trait::async_trait;

/// Re-exported so callers name the same connection type as the pool.
pub use diesel_async::AsyncPgConnection;
