//! [`ConfigBuilder`]: a [`Config`] assembled in code, with the same defaults and checks as
//! the environment.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::vars::Names;
use super::{Config, PoolSettings};
use crate::dsn::Dsn;
use crate::error::Error;
use crate::ident::validate_ident;

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
    pub(super) migrate_url: Option<SecretString>,
    pub(super) bootstrap_url: Option<SecretString>,
    pub(super) app_role: Option<String>,
    pub(super) migrate_role: Option<String>,
    pub(super) schema: Option<String>,
    pub(super) pool: PoolSettings,
    pub(super) checkout_timeout_set: bool,
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
    setter!(/// DDL DSN, verbatim (AURA_DB_MIGRATE_URL). An empty one makes `migrate` fail.
        migrate_url: SecretString);
    setter!(/// Superuser DSN for role bootstrap, verbatim (AURA_DB_BOOTSTRAP_URL).
        bootstrap_url: SecretString);
    setter!(/// App role name (AURA_DB_APP_ROLE).
        app_role: String);
    setter!(/// Migrate role name (AURA_DB_MIGRATE_ROLE).
        migrate_role: String);
    setter!(/// Schema name (AURA_DB_SCHEMA).
        schema: String);

    /// Most connections open at once.
    pub fn max_conns(mut self, n: u32) -> Self {
        self.pool.max_conns = n;
        self
    }

    /// Idle connections kept ready.
    pub fn min_conns(mut self, n: u32) -> Self {
        self.pool.min_conns = n;
        self
    }

    /// Idle timeout of connections above `min_conns`.
    pub fn max_conn_idle(mut self, d: Duration) -> Self {
        self.pool.max_conn_idle = d;
        self
    }

    /// Limit for establishing one connection (also the checkout timeout unless set).
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.pool.connect_timeout = d;
        self
    }

    /// Limit for waiting on a pooled connection.
    pub fn checkout_timeout(mut self, d: Duration) -> Self {
        self.pool.checkout_timeout = d;
        self.checkout_timeout_set = true;
        self
    }

    /// `statement_timeout` of pooled connections (zero: none).
    pub fn statement_timeout(mut self, d: Duration) -> Self {
        self.pool.statement_timeout = d;
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

        let app_role = self.app_role.unwrap_or_else(|| "aura_app".to_owned());
        let migrate_role = self
            .migrate_role
            .unwrap_or_else(|| "aura_migrate".to_owned());
        let schema = self.schema.unwrap_or_else(|| "aura".to_owned());
        validate_ident(names.app_role, &app_role)?;
        validate_ident(names.migrate_role, &migrate_role)?;
        validate_ident(names.schema, &schema)?;
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
        let superuser_password = self
            .superuser_password
            .unwrap_or_else(|| SecretString::from(String::new()));
        let role_password = self
            .role_password
            .unwrap_or_else(|| superuser_password.clone());

        // The host is checked only where it is used: verbatim URLs do not need it.
        let compose = |user: &str, password: &SecretString| {
            validate_host(names.host, &host)?;
            Ok::<_, Error>(Dsn::compose(user, password, &host, port, &dbname))
        };
        let bootstrap_skipped = self.app_url.is_some() && self.migrate_url.is_some();
        let app_url = match self.app_url {
            Some(url) => Dsn::parse(names.app_url, url)?,
            None => compose(&app_role, &role_password)?,
        };
        let migrate_url = match self.migrate_url {
            Some(url) if url.expose_secret().trim().is_empty() => None,
            Some(url) => Some(Dsn::parse(names.migrate_url, url)?),
            None => Some(compose(&migrate_role, &role_password)?),
        };
        let bootstrap_url = match self.bootstrap_url {
            Some(url) => Dsn::parse(names.bootstrap_url, url)?,
            None => compose(&superuser, &superuser_password)?,
        };
        // PGSSL* apply to composed URLs too: a bad value fails here, naming the variable.
        app_url.tls()?;

        Ok(Config {
            app_url,
            migrate_url,
            bootstrap_url,
            bootstrap_skipped,
            role_password,
            app_role,
            migrate_role,
            schema,
            pool,
        })
    }
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
