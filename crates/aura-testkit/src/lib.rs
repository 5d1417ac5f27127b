#![doc = include_str!("../README.md")]

mod server;
mod template;
mod test_db;

pub use server::TEST_DATABASE_URL;
pub use test_db::TestDb;
