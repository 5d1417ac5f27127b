//! [`ConfigBuilder`]: a [`Config`] assembled in code, with the same defaults and checks as
//! the environment.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::vars::Names;
use super::{Config, PoolSettings};
use crate::credentials::{Credentials, PasswordFile};
use crate::dsn::Dsn;
use crate::error::Error;
use crate::ident::validate_ident;
use crate::tcp::TcpSettings;

/// Builds a [`Config`] without reading the environment. Unset fields take the defaults of
/// the configuration table; [`ConfigBuilder::build`] validates everything at once.
#[derive(Clone, Default)]
pub struct ConfigBuilder {
    pub(super) host: Option<String>,
    pub(super) port: Option<u16>,
    pub(super) dbname: Option<String>,
    pub(super) superuser: Option<String>,
    pub(super) superuser_password: Option<SecretString>,
    pub(super) role_password: Option<SecretString>,
    pub(super) app_url: Option<SecretString>,
    pub(super) read_url: Option<SecretString>,
    pub(super) read_max_lag: Option<Duration>,
    pub(super) migrate_url: Option<SecretString>,
    pub(super) bootstrap_url: Option<SecretString>,
    pub(super) app_role: Option<String>,
    pub(super) migrate_role: Option<String>,
    pub(super) pool: PoolSettings,
    pub(super) checkout_timeout_set: bool,
    pub(super) superuser_password_file: Option<PathBuf>,
    pub(super) role_password_file: Option<PathBuf>,
    pub(super) app_credentials: Option<Credentials>,
    pub(super) migrate_credentials: Option<Credentials>,
    pub(super) bootstrap_credentials: Option<Credentials>,
    pub(super) tcp: TcpSettings,
}

macro_rules! setter {
    ($(#[$doc:meta])* $name:ident: $ty:ty) => {
        $(#[$doc])*
        pub fn $name(mut self, value: impl Into<$ty>) -> Self {
            self.$name = Some(value.into());
            self
        }
    };
}

/// A setter of one [`PoolSettings`] field.
macro_rules! pool_setter {
    ($(#[$doc:meta])* $name:ident: $ty:ty) => {
        $(#[$doc])*
        pub fn $name(mut self, value: $ty) -> Self {
            self.pool.$name = value;
            self
        }
    };
}

impl ConfigBuilder {
    setter!(/// Database host (POSTGRES_HOST).
        host: String);
    setter!(/// Database port (POSTGRES_PORT).
        port: u16);
    setter!(/// Database name (POSTGRES_DB).
        dbname: String);
    setter!(/// Superuser name for role bootstrap (POSTGRES_USER).
        superuser: String);
    setter!(/// Superuser password (POSTGRES_PASSWORD).
        superuser_password: SecretString);
    setter!(/// Password of both application roles (AURA_DB_PASSWORD).
        role_password: SecretString);
    setter!(/// Runtime DSN, verbatim (AURA_DB_URL).
        app_url: SecretString);
    setter!(/// A read replica's DSN, verbatim (AURA_DB_READ_URL): the app role's login there,
        /// with the app role's password file and credential source as for the app URL.
        read_url: SecretString);
    setter!(/// Replay lag past which reads leave the replica (AURA_DB_READ_MAX_LAG, 10s).
        read_max_lag: Duration);
    setter!(/// DDL DSN, verbatim (AURA_DB_MIGRATE_URL). An empty one makes `migrate` fail.
        migrate_url: SecretString);
    setter!(/// Superuser DSN for role bootstrap, verbatim (AURA_DB_BOOTSTRAP_URL).
        bootstrap_url: SecretString);
    setter!(/// App role name (AURA_DB_APP_ROLE).
        app_role: String);
    setter!(/// Migrate role name (AURA_DB_MIGRATE_ROLE).
        migrate_role: String);
    setter!(/// A file holding the superuser's password, re-read for every bootstrap connection
        /// (POSTGRES_PASSWORD_FILE; exclusive with `superuser_password`).
        superuser_password_file: PathBuf);
    setter!(/// A file holding the application roles' password, re-read for every new
        /// connection (AURA_DB_PASSWORD_FILE; exclusive with `role_password`).
        role_password_file: PathBuf);
    setter!(/// Asked for the app role's password on every new pool connection; wins over
        /// a password in the URL and over the password file.
        app_credentials: Credentials);
    setter!(/// Asked for the migrate role's password when a migration session connects
        /// (through [`crate::MigrateOptions::for_config`]); wins over the URL's password.
        migrate_credentials: Credentials);
    setter!(/// Asked for the superuser's password when role bootstrap connects; wins over
        /// the URL's password.
        bootstrap_credentials: Credentials);

    /// Keepalives and TCP user timeout of every connection (AURA_DB_TCP_*).
    pub fn tcp(mut self, tcp: TcpSettings) -> Self {
        self.tcp = tcp;
        self
    }

    pool_setter!(/// Most connections open at once.
        max_conns: u32);
    pool_setter!(/// Idle connections kept ready.
        min_conns: u32);
    pool_setter!(/// Idle timeout of connections above `min_conns`.
        max_conn_idle: Duration);
    pool_setter!(/// Limit for establishing one connection (also the checkout timeout unless set).
        connect_timeout: Duration);

    /// Limit for waiting on a pooled connection.
    pub fn checkout_timeout(mut self, d: Duration) -> Self {
        self.pool.checkout_timeout = d;
        self.checkout_timeout_set = true;
        self
    }

    pool_setter!(/// `idle_in_transaction_session_timeout` of pooled connections (zero: none).
        idle_in_transaction_timeout: Duration);
    pool_setter!(/// `statement_timeout` of pooled connections (zero: none).
        statement_timeout: Duration);

    /// Deadline of every store operation and [`crate::with_tx`] transaction
    /// (AURA_DB_OPERATION_TIMEOUT; see [`PoolSettings::operation_deadline`] for the default).
    pub fn operation_timeout(mut self, d: Duration) -> Self {
        self.pool.operation_timeout = Some(d);
        self
    }

    /// `application_name` of every connection.
    pub fn application_name(mut self, name: impl Into<String>) -> Self {
        self.pool.application_name = name.into();
        self
    }

    /// Threshold of the slow-operation warning (see [`PoolSettings::slow_op`]); `None` or
    /// zero: no warning.
    pub fn slow_op(mut self, threshold: Option<Duration>) -> Self {
        self.pool.slow_op = threshold.filter(|d| !d.is_zero());
        self
    }

    /// Validates and assembles the configuration; errors name the builder field.
    pub fn build(self) -> Result<Config, Error> {
        self.build_named(&Names::BUILDER)
    }

    /// Validates and assembles, naming fields in errors as `names` says.
    pub(super) fn build_named(self, names: &Names) -> Result<Config, Error> {
        let mut pool = self.pool;
        if !self.checkout_timeout_set {
            pool.checkout_timeout = pool.connect_timeout;
        }
        if pool.max_conns == 0 {
            return Err(Error::config(names.max_conns, "must be at least 1"));
        }
        if pool.min_conns > pool.max_conns {
            return Err(Error::config(
                names.min_conns,
                format!(
                    "({}) must not exceed {} ({})",
                    pool.min_conns, names.max_conns, pool.max_conns
                ),
            ));
        }
        for (name, d) in [
            (names.max_conn_idle, pool.max_conn_idle),
            (names.connect_timeout, pool.connect_timeout),
            (names.checkout_timeout, pool.checkout_timeout),
            (
                names.operation_timeout,
                pool.operation_timeout.unwrap_or(Duration::MAX),
            ),
        ] {
            if d.is_zero() {
                return Err(Error::config(name, "must be greater than zero"));
            }
        }
        if pool.application_name.len() > 63 || pool.application_name.chars().any(char::is_control) {
            return Err(Error::config(
                names.application_name,
                "must be at most 63 bytes without control characters",
            ));
        }

        // Unset role names follow the users of verbatim URLs: with per-role credentials
        // (managed Postgres), the URLs alone name the roles.
        let app_role = self
            .app_role
            .or_else(|| url_user(self.app_url.as_ref()))
            .unwrap_or_else(|| "aura_app".to_owned());
        let migrate_role = self
            .migrate_role
            .or_else(|| url_user(self.migrate_url.as_ref()))
            .unwrap_or_else(|| "aura_migrate".to_owned());
        validate_ident(names.app_role, &app_role)?;
        validate_ident(names.migrate_role, &migrate_role)?;
        if app_role == migrate_role {
            return Err(Error::config(
                names.migrate_role,
                format!(
                    "must differ from {} (both are {app_role:?})",
                    names.app_role
                ),
            ));
        }

        let host = self.host.unwrap_or_else(|| "127.0.0.1".to_owned());
        let port = self.port.unwrap_or(5432);
        if port == 0 {
            return Err(Error::config(
                names.port,
                "must be a port number 1-65535, got 0",
            ));
        }
        let dbname = self.dbname.unwrap_or_else(|| "aura".to_owned());
        let superuser = self.superuser.unwrap_or_else(|| "postgres".to_owned());
        validate_tcp(names, &self.tcp)?;
        let tcp = self.tcp;

        // A *_FILE is the password read from a file, re-read per connection: it goes where
        // its variable goes, and the two together are ambiguous.
        let superuser_file = password_file(
            names.superuser_password_file,
            self.superuser_password_file,
            names.superuser_password,
            self.superuser_password.is_some(),
        )?;
        let role_file = password_file(
            names.role_password_file,
            self.role_password_file,
            names.role_password,
            self.role_password.is_some(),
        )?;
        // Read now too: a bad file fails at start-up, and the bootstrap and composed URLs
        // get its current content.
        let read =
            |file: &Option<PasswordFile>| file.as_ref().map(PasswordFile::read_now).transpose();
        let superuser_password = match self.superuser_password {
            Some(p) => p,
            None => read(&superuser_file)?.unwrap_or_else(|| SecretString::from(String::new())),
        };
        // The roles' password defaults to the superuser's, its file included.
        let role_file = match (role_file, self.role_password.is_some()) {
            (Some(file), _) => Some(file),
            (None, false) => superuser_file.clone(),
            (None, true) => None,
        };
        let role_password = match self.role_password {
            Some(p) => p,
            None => read(&role_file)?.unwrap_or_else(|| superuser_password.clone()),
        };
        // One login: the verbatim URL `url` (parsed naming `name`), else one composed for
        // `user` (the host is checked only where it is used: verbatim URLs do not need it).
        // Its password, per connection: a source set in code wins; then a password written
        // in a verbatim URL (as libpq prefers the connection string's over PGPASSWORD);
        // then the file.
        let login = |name: &str,
                     url: Option<SecretString>,
                     user: &str,
                     password: &SecretString,
                     explicit: Option<Credentials>,
                     file: &Option<PasswordFile>| {
            let (dsn, verbatim) = match url {
                Some(url) => (Dsn::parse(name, url)?, true),
                None => {
                    validate_host(names.host, &host)?;
                    (Dsn::compose(user, password, &host, port, &dbname), false)
                }
            };
            let dsn = dsn.with_tcp(tcp);
            Ok::<_, Error>(match (explicit, file) {
                (Some(source), _) => dsn.with_credentials(source),
                (None, Some(file)) if !(verbatim && dsn.has_password()) => {
                    dsn.with_credentials(Credentials::file(file.clone()))
                }
                _ => dsn,
            })
        };
        let is_empty = |url: &SecretString| url.expose_secret().trim().is_empty();

        let bootstrap_skipped = self.app_url.is_some() && self.migrate_url.is_some();
        let read_url = match self.read_url {
            Some(url) if !is_empty(&url) => Some(login(
                names.read_url,
                Some(url),
                &app_role,
                &role_password,
                self.app_credentials.clone(),
                &role_file,
            )?),
            _ => None,
        };
        let read_max_lag = self.read_max_lag.unwrap_or(Duration::from_secs(10));
        if read_max_lag.is_zero() {
            return Err(Error::config(
                names.read_max_lag,
                "must be greater than zero",
            ));
        }
        let app_url = login(
            names.app_url,
            self.app_url,
            &app_role,
            &role_password,
            self.app_credentials,
            &role_file,
        )?;
        let migrate_url = match self.migrate_url {
            Some(url) if is_empty(&url) => None,
            url => Some(login(
                names.migrate_url,
                url,
                &migrate_role,
                &role_password,
                self.migrate_credentials,
                &role_file,
            )?),
        };
        let bootstrap_url = login(
            names.bootstrap_url,
            self.bootstrap_url,
            &superuser,
            &superuser_password,
            self.bootstrap_credentials,
            &superuser_file,
        )?;
        // PGSSL* apply to composed URLs too: a bad value fails here, naming the variable.
        app_url.tls()?;
        if let Some(read_url) = &read_url {
            read_url.tls()?;
        }

        Ok(Config {
            app_url,
            read_url,
            read_max_lag,
            migrate_url,
            bootstrap_url,
            bootstrap_skipped,
            role_password,
            app_role,
            migrate_role,
            pool,
            tcp,
        })
    }
}

/// The password file of one login, refused when its plain variable is set too.
fn password_file(
    name: &str,
    path: Option<PathBuf>,
    plain_name: &str,
    plain_set: bool,
) -> Result<Option<PasswordFile>, Error> {
    match path {
        Some(_) if plain_set => Err(Error::config(
            name,
            format!("and {plain_name} are both set: give the password one way only"),
        )),
        Some(path) if path.as_os_str().is_empty() => Err(Error::config(name, "is empty")),
        Some(path) => Ok(Some(PasswordFile::new(name, path))),
        None => Ok(None),
    }
}

/// Keepalive probes need an interval and at least one probe (when keepalives are on).
fn validate_tcp(names: &Names, tcp: &TcpSettings) -> Result<(), Error> {
    if tcp.keepalive_idle.is_zero() {
        return Ok(());
    }
    for (name, d) in [
        (names.tcp_keepalive_idle, tcp.keepalive_idle),
        (names.tcp_keepalive_interval, tcp.keepalive_interval),
    ] {
        if d < Duration::from_secs(1) {
            return Err(Error::config(
                name,
                "must be at least 1s (the kernel counts keepalive time in whole seconds)",
            ));
        }
    }
    if tcp.keepalive_retries == 0 {
        return Err(Error::config(
            names.tcp_keepalive_retries,
            "must be at least 1",
        ));
    }
    Ok(())
}

/// A host name, an IPv4 address or an IPv6 address (bracketed or not): what a composed URL
/// can carry unencoded. Anything else (a `/`, `@`, `?` or space) would silently point the
/// URL elsewhere; a Unix socket directory goes in a verbatim URL instead.
fn validate_host(name: &str, host: &str) -> Result<(), Error> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let ok = !bare.is_empty()
        && bare
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'));
    if ok {
        Ok(())
    } else {
        Err(Error::config(
            name,
            format!(
                "({host:?}) must be a host name or an IP address (for a Unix socket, give \
                 {}, {} and {} as URLs)",
                super::vars::AURA_DB_URL,
                super::vars::AURA_DB_MIGRATE_URL,
                super::vars::AURA_DB_BOOTSTRAP_URL
            ),
        ))
    }
}

/// The user of a verbatim URL, when it is a valid role name.
fn url_user(url: Option<&SecretString>) -> Option<String> {
    let url = url.filter(|u| !u.expose_secret().trim().is_empty())?;
    Dsn::parse("url", url.clone())
        .ok()?
        .user()
        .filter(|u| validate_ident("user", u).is_ok())
}
