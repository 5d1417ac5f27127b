#![doc = include_str!("../README.md")]

mod binaries;
mod cluster;
mod error;
mod fsutil;
mod layout;
mod location;
mod lock;
mod password;
mod pidfile;
mod port;
mod server_user;
mod standby;
mod tls;

pub use binaries::BIN_DIR_ENV;
pub use cluster::{DIR_ENV, HOST, LocalCluster, LocalClusterBuilder, SUPERUSER, Status};
pub use error::Error;
pub use location::{RELOCATION_BASE, find_checkout};
pub use port::PORT_ENV;
pub use standby::REPLICATION_PASSFILE;
pub use tls::{ClientCert, TlsFiles, TlsOptions};
