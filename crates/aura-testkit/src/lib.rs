#![doc = include_str!("../README.md")]

mod admin;
mod logs;
mod proxy;
mod server;
mod stale;
mod template;
mod test_db;
mod tls;

pub use logs::CapturedLogs;
pub use proxy::{FaultProxy, MessagePredicate};
pub use server::TEST_DATABASE_URL;
pub use test_db::TestDb;
pub use tls::TlsCluster;
