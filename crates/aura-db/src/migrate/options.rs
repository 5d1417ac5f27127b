//! [`MigrateOptions`]: limits and names of a migration run.

use std::time::Duration;

use crate::config::Config;
use crate::credentials::Credentials;
use crate::dsn::Dsn;
use crate::tcp::TcpSettings;

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
    /// Asked for the migrate role's password when the session connects, instead of the
    /// URL's password (`None`: the URL's).
    pub credentials: Option<Credentials>,
    /// Keepalives and TCP user timeout of the session (the defaults of [`TcpSettings`]).
    pub tcp: TcpSettings,
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
            credentials: None,
            tcp: TcpSettings::default(),
        }
    }
}

impl MigrateOptions {
    /// The defaults with another lock wait.
    pub fn with_lock_wait(mut self, wait: Duration) -> Self {
        self.lock_wait = wait;
        self
    }

    /// The defaults with what `config` says about the migrate role's connections: its
    /// connect timeout, TCP settings and credential source (a source set in code, or the
    /// password file of `AURA_DB_PASSWORD_FILE` / `POSTGRES_PASSWORD_FILE`).
    pub fn for_config(config: &Config) -> Self {
        MigrateOptions {
            connect_timeout: config.pool().connect_timeout,
            credentials: config
                .migrate_url()
                .and_then(|dsn| dsn.credentials().cloned()),
            tcp: *config.tcp(),
            ..MigrateOptions::default()
        }
    }

    /// These options with a credential source for the migrate role.
    pub fn with_credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = Some(credentials);
        self
    }

    /// `dsn` with these options' TCP settings and credential source.
    pub(crate) fn dsn(&self, dsn: Dsn) -> Dsn {
        let dsn = dsn.with_tcp(self.tcp);
        match &self.credentials {
            Some(source) => dsn.with_credentials(source.clone()),
            None => dsn,
        }
    }

    /// The defaults with another connect timeout.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }
}
