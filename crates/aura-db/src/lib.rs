#![doc = include_str!("../README.md")]

mod config;
mod connect;
mod dsn;
mod error;
mod ident;
mod ping;
mod pool;
mod tx;

pub use config::{Config, ConfigBuilder, PoolSettings, vars};
pub use dsn::Dsn;
pub use error::Error;
pub use ident::validate_ident;
pub use ping::ping;
pub use pool::{Pool, PoolState, PooledConn, open, open_with};
pub use tx::{Isolation, TxBody, TxOptions, with_tx, with_tx_opts};

/// Re-exported so callers name the same connection type as the pool.
pub use diesel_async::AsyncPgConnection;
