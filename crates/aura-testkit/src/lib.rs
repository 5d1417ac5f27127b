#![doc = include_str!("../README.md")]

mod admin;
mod log_capture;
mod pgbouncer;
mod proxy;
mod replica;
mod restart;
mod server;
mod sibling;
mod stale;
mod template;
mod test_db;
mod tls;

pub use log_capture::CapturedLog;
pub use pgbouncer::{Pgbouncer, PoolMode};
pub use proxy::{FaultProxy, MessagePredicate};
pub use replica::{REPLICATION_ROLE, ReplayPaused, Replica};
pub use restart::{RestartCluster, RestartLock};
pub use server::TEST_DATABASE_URL;
pub use test_db::TestDb;
pub use tls::TlsCluster;
