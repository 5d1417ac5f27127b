#![doc = include_str!("../README.md")]

mod admin;
mod logs;
mod proxy;
mod restart;
mod server;
mod sibling;
mod stale;
mod template;
mod test_db;
mod tls;

pub use logs::CapturedLogs;
pub use proxy::{FaultProxy, MessagePredicate};
pub use restart::{RestartCluster, RestartLock};
pub use server::TEST_DATABASE_URL;
pub use test_db::TestDb;
pub use tls::TlsCluster;
