//! What the data layer needs to know: where the database is, who connects, pool limits.
//!
//! Built from the environment ([`Config::from_env`]) or in code ([`ConfigBuilder`]).

mod builder;
mod env;
pub mod vars;

#[cfg(test)]
mod tests;

use std::fmt;
use std::time::Duration;

use secrecy::SecretString;

pub use builder::ConfigBuilder;

use crate::dsn::Dsn;
use crate::tcp::TcpSettings;

/// The data layer's configuration. `Debug` shows DSNs redacted and passwords as `***`.
#[derive(Clone)]
pub struct Config {
    pub(crate) app_url: Dsn,
    pub(crate) read_url: Option<Dsn>,
    pub(crate) read_max_lag: Duration,
    pub(crate) migrate_url: Option<Dsn>,
    pub(crate) bootstrap_url: Dsn,
    pub(crate) bootstrap_skipped: bool,
    pub(crate) role_password: SecretString,
    pub(crate) app_role: String,
    pub(crate) migrate_role: String,
    pub(crate) pool: PoolSettings,
    pub(crate) tcp: TcpSettings,
}

/// Pool limits and per-connection settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolSettings {
    /// Most connections open at once (`AURA_DB_MAX_CONNS`, default 10).
    pub max_conns: u32,
    /// Idle connections kept ready (`AURA_DB_MIN_CONNS`, default 1).
    pub min_conns: u32,
    /// An idle connection above `min_conns` is closed after this (`AURA_DB_MAX_CONN_IDLE`, 30s).
    pub max_conn_idle: Duration,
    /// Limit for establishing one connection (`AURA_DB_CONNECT_TIMEOUT`, 5s).
    pub connect_timeout: Duration,
    /// Limit for waiting on a pooled connection (`AURA_DB_CHECKOUT_TIMEOUT`, defaults to the
    /// connect timeout).
    pub checkout_timeout: Duration,
    /// `statement_timeout` of every pooled connection (`AURA_DB_STATEMENT_TIMEOUT`, 30s).
    pub statement_timeout: Duration,
    /// `idle_in_transaction_session_timeout` of every pooled connection (60s; zero: none),
    /// as role bootstrap also gives the app role: a session left inside a transaction is
    /// ended instead of holding its locks.
    pub idle_in_transaction_timeout: Duration,
    /// `application_name` of every connection (`AURA_DB_APPLICATION_NAME`, `aura`).
    pub application_name: String,
    /// The client-side deadline of every store operation and every [`crate::with_tx`]
    /// transaction (`AURA_DB_OPERATION_TIMEOUT`); `None`: derived from the other timeouts
    /// (see [`PoolSettings::operation_deadline`]). Past it the call fails as
    /// [`crate::Error::Timeout`] and its connection is discarded: the bound that holds when
    /// the server or the network path stops answering without closing the connection.
    pub operation_timeout: Option<Duration>,
    /// Store operations and transactions that take longer than this are logged as a
    /// `tracing` warning naming the operation and its duration (`AURA_DB_SLOW_OP`, 1s;
    /// `None`, or `0` / `off` in the variable: no warning).
    pub slow_op: Option<Duration>,
    /// Every transaction of every connection is read-only by default
    /// (`default_transaction_read_only`, SET on each new connection): set on the read pool
    /// ([`Config::for_reads`]), so a write sent there fails (SQLSTATE 25006) even when the
    /// read URL points at a primary. A guard, not security: `BEGIN READ WRITE` overrides it.
    pub read_only: bool,
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings {
            max_conns: 10,
            min_conns: 1,
            max_conn_idle: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            checkout_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(30),
            idle_in_transaction_timeout: Duration::from_secs(60),
            application_name: "aura".to_owned(),
            operation_timeout: None,
            slow_op: Some(Duration::from_secs(1)),
            read_only: false,
        }
    }
}

/// What the derived operation deadline adds to the checkout and statement timeouts: room
/// for round trips and for a transaction's few statements besides the one that waits.
pub const OPERATION_MARGIN: Duration = Duration::from_secs(5);

impl PoolSettings {
    /// The deadline of one store operation or [`crate::with_tx`] transaction:
    /// `operation_timeout` when set, else `checkout_timeout + statement_timeout +`
    /// [`OPERATION_MARGIN`] (40 s with the defaults: the longest a call that waits for a
    /// connection and then on a lock runs before the server itself ends it). `None` (no
    /// deadline) only when neither is set (`statement_timeout` zero: statements unbounded).
    pub fn operation_deadline(&self) -> Option<Duration> {
        match self.operation_timeout {
            Some(d) => Some(d),
            None if self.statement_timeout.is_zero() => None,
            None => Some(self.checkout_timeout + self.statement_timeout + OPERATION_MARGIN),
        }
    }

    /// The `SET` statements every pooled connection runs once when it is made:
    /// `statement_timeout`, `idle_in_transaction_session_timeout`, a 1 s
    /// `client_connection_check_interval`, `default_transaction_isolation = 'read
    /// committed'` (and `default_transaction_read_only = on` for a read pool).
    ///
    /// The check interval lets the server end the statement and transaction of a
    /// connection dropped mid-statement (a cancelled `with_tx`) within a second, instead of
    /// holding its locks until the statement ends. The isolation is pinned because the
    /// store's single-statement writes are written for READ COMMITTED (the conversation's
    /// row lock orders concurrent appends; under a database default of `serializable` they
    /// fail with 40001), and a hot standby refuses serializable transactions. Behind a
    /// pooler that shares sessions, set these on the role instead (docs/scale-out.md).
    pub fn session_statements(&self) -> String {
        let mut session = format!(
            "SET statement_timeout = {}; SET idle_in_transaction_session_timeout = {}; \
             SET client_connection_check_interval = 1000; \
             SET default_transaction_isolation = 'read committed';",
            self.statement_timeout.as_millis(),
            self.idle_in_transaction_timeout.as_millis()
        );
        if self.read_only {
            session.push_str(" SET default_transaction_read_only = on;");
        }
        session
    }
}

impl Config {
    /// Reads every variable of the configuration table (see the README) from the process
    /// environment. An `AURA_DB_*` variable no setting reads (a typo) is logged as a warning
    /// naming it (see [`vars::unknown_in_env`]).
    pub fn from_env() -> Result<Self, crate::Error> {
        for unknown in vars::unknown_in_env() {
            tracing::warn!(variable = %unknown.name, "{unknown}");
        }
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`Config::from_env`], reading variables through `lookup` (tests, embedding).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, crate::Error> {
        env::from_lookup(&lookup)
    }

    /// A builder for code that does not use the environment.
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder::default()
    }

    /// The runtime DSN (app role), used by [`crate::open`].
    pub fn app_url(&self) -> &Dsn {
        &self.app_url
    }

    /// The read replica's DSN (app role, `AURA_DB_READ_URL`), when one is configured.
    pub fn read_url(&self) -> Option<&Dsn> {
        self.read_url.as_ref()
    }

    /// How far a replica's replay may lag before reads leave it for the primary
    /// (`AURA_DB_READ_MAX_LAG`, default 10s).
    pub fn read_max_lag(&self) -> Duration {
        self.read_max_lag
    }

    /// The configuration of the read pool: this one with the read URL as its app URL and
    /// read-only sessions ([`PoolSettings::read_only`]); `None` without a read URL. Open it
    /// with [`crate::open`].
    pub fn for_reads(&self) -> Option<Config> {
        let read_url = self.read_url.clone()?;
        let mut reads = self.clone();
        reads.app_url = read_url;
        reads.pool.read_only = true;
        Some(reads)
    }

    /// The DDL DSN (migrate role); `None` when it was configured empty.
    pub fn migrate_url(&self) -> Option<&Dsn> {
        self.migrate_url.as_ref()
    }

    /// The superuser DSN used only to bootstrap roles.
    pub fn bootstrap_url(&self) -> &Dsn {
        &self.bootstrap_url
    }

    /// True when both AURA_DB_URL and AURA_DB_MIGRATE_URL were given: role bootstrap is
    /// skipped (managed Postgres with per-role credentials).
    pub fn bootstrap_skipped(&self) -> bool {
        self.bootstrap_skipped
    }

    /// The password both application roles get at bootstrap.
    pub fn role_password(&self) -> &SecretString {
        &self.role_password
    }

    /// The app role's name (DML only).
    pub fn app_role(&self) -> &str {
        &self.app_role
    }

    /// The migrate role's name (owns the schema).
    pub fn migrate_role(&self) -> &str {
        &self.migrate_role
    }

    /// The schema holding Aura's tables: always [`crate::SCHEMA`] (`aura`).
    pub fn schema(&self) -> &str {
        crate::SCHEMA
    }

    /// Pool limits and per-connection settings.
    pub fn pool(&self) -> &PoolSettings {
        &self.pool
    }

    /// Keepalive and TCP user timeout settings of every connection (already carried by
    /// the three DSNs).
    pub fn tcp(&self) -> &TcpSettings {
        &self.tcp
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("app_url", &self.app_url)
            .field("read_url", &self.read_url)
            .field("read_max_lag", &self.read_max_lag)
            .field("migrate_url", &self.migrate_url)
            .field("bootstrap_url", &self.bootstrap_url)
            .field("bootstrap_skipped", &self.bootstrap_skipped)
            .field("role_password", &"***")
            .field("app_role", &self.app_role)
            .field("migrate_role", &self.migrate_role)
            .field("pool", &self.pool)
            .field("tcp", &self.tcp)
            .finish()
    }
}
