//! [`MigrateOptions`]: limits and names of a migration run.

use std::time::Duration;

/// How a migration run connects and waits. `Default` gives the values below.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MigrateOptions {
    /// Longest wait for the migration lock held by another migrator (60s); the error then
    /// names the holder's backend pid.
    pub lock_wait: Duration,
    /// Pause between two `pg_try_advisory_lock` attempts (250ms). The lock is polled, never
    /// awaited: a blocked waiter would deadlock against `CREATE INDEX CONCURRENTLY`.
    pub lock_poll: Duration,
    /// Limit for establishing the connection (5s).
    pub connect_timeout: Duration,
    /// `statement_timeout` of the session; `None` keeps the role's (default `None`).
    pub statement_timeout: Option<Duration>,
    /// `lock_timeout` of the session, i.e. the longest a DDL statement waits for its table
    /// locks; `None` keeps the role's (role bootstrap gives the migrate role 5s).
    pub ddl_lock_timeout: Option<Duration>,
    /// `application_name` of the session, unless the URL sets one (`aura-migrate`).
    pub application_name: String,
}

impl Default for MigrateOptions {
    fn default() -> Self {
        MigrateOptions {
            lock_wait: Duration::from_secs(60),
            lock_poll: Duration::from_millis(250),
            connect_timeout: Duration::from_secs(5),
            statement_timeout: None,
            ddl_lock_timeout: None,
            application_name: "aura-migrate".to_owned(),
        }
    }
}

impl MigrateOptions {
    /// The defaults with another lock wait.
    pub fn with_lock_wait(mut self, wait: Duration) -> Self {
        self.lock_wait = wait;
        self
    }

    /// The defaults with another connect timeout.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }
}
