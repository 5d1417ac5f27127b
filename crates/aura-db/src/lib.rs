#![doc = include_str!("../README.md")]

mod abandon;
mod config;
mod connect;
mod dsn;
mod error;
mod ident;
mod migrate;
mod ping;
mod pool;
mod roles;
mod sqlstate;
mod tls;
mod tx;

pub use config::{Config, ConfigBuilder, PoolSettings, vars};
pub use connect::{cancel_query, connect_raw};
pub use dsn::Dsn;
pub use error::{Error, error_chain};
pub use ident::validate_ident;
pub use migrate::{
    Applied, CHECKSUM_TABLE, DIESEL_TABLE, MIGRATION_LOCK_KEY, MigrateError, MigrateOptions,
    Migration, MigrationFailure, MigrationRow, MigrationState, Migrations, ResetGuards,
    ResetReport, SqlError, migrate, migrate_with, reset, reset_with, status, status_with,
};
pub use ping::{Encryption, encryption, ping};
pub use pool::{Pool, PoolState, PooledConn, mark_broken, open, open_with};
pub use roles::{
    MAX_PASSWORD_BYTES, RolesReport, RolesSpec, ensure_roles, ensure_roles_with, validate_password,
};
pub use tls::{RootCert, SslMode, TlsFailure, TlsSettings};
pub use tx::{Isolation, TxBody, TxOptions, with_tx, with_tx_opts};

/// Re-exported so callers name the same connection type as the pool.
pub use diesel_async::AsyncPgConnection;
