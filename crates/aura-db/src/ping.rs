//! `ping`: is the database there, and how far away.

use std::time::{Duration, Instant};

use diesel_async::SimpleAsyncConnection;

use crate::error::Error;
use crate::pool::Pool;

/// Checks out a connection and times one `SELECT 1` round trip on it.
pub async fn ping(pool: &Pool) -> Result<Duration, Error> {
    let mut conn = pool.get().await?;
    let start = Instant::now();
    conn.batch_execute("SELECT 1").await?;
    Ok(start.elapsed())
}
