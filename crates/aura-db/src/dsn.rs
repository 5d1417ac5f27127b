//! Connection strings that may hold a password: kept secret, shown redacted.

use std::fmt;
use std::str::FromStr;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use secrecy::{ExposeSecret, SecretString};

use crate::credentials::Credentials;
use crate::error::Error;
use crate::tcp::TcpSettings;
use crate::tls::TlsSettings;
use crate::tls::params::{self, TlsParams};

/// Characters escaped in the user-info and path parts of a composed URL: every ASCII
/// character but letters, digits and `-._~()*` (which neither libpq nor tokio-postgres
/// reads specially), so any password round-trips through libpq and tokio-postgres.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'(')
    .remove(b')')
    .remove(b'*');

/// A Postgres connection string (URL or `key=value` form) that may contain a password.
///
/// The text is a [`SecretString`] from the moment it is read. `Debug` and `Display` show
/// only the redacted form `postgres://user:***@host:port/db`.
///
/// Besides the text, a DSN carries what every connection made from it gets: the TCP
/// keepalive settings ([`Dsn::with_tcp`]) and, optionally, a credential source asked for the
/// password of each new connection ([`Dsn::with_credentials`]), which wins over a password
/// in the text.
#[derive(Clone)]
pub struct Dsn {
    secret: SecretString,
    redacted: String,
    /// The TLS keys of the text (tokio-postgres is never shown them).
    tls: TlsParams,
    /// Where the text came from, to name in TLS setting errors.
    source: String,
    /// Keepalives and TCP user timeout, where the text sets none.
    tcp: TcpSettings,
    /// Asked for the password of every new connection, when set.
    credentials: Option<Credentials>,
}

impl Dsn {
    /// Parses and validates a connection string. `source` names where it came from (an
    /// environment variable or builder field) for the error; the error never echoes the value.
    ///
    /// The TLS settings (`sslmode`, `sslrootcert`, `sslcert`, `sslkey`, in the string or
    /// in `PGSSL*`) are checked here too: an unknown mode or a missing file is an error
    /// naming the setting.
    pub fn parse(source: &str, value: SecretString) -> Result<Self, Error> {
        let text = value.expose_secret();
        if text.trim().is_empty() {
            return Err(Error::config(source, "is empty"));
        }
        let (driver_text, tls) = params::split(text);
        let parsed = tokio_postgres::Config::from_str(&driver_text).map_err(|_| {
            Error::config(
                source,
                "is not a valid Postgres connection string (expected \
                 postgres://user:password@host:port/dbname or key=value pairs)",
            )
        })?;
        let redacted = redact(&parsed);
        TlsSettings::resolve(&tls, source)?;
        Ok(Dsn {
            secret: value,
            redacted,
            tls,
            source: source.to_owned(),
            tcp: TcpSettings::default(),
            credentials: None,
        })
    }

    /// Composes `postgres://user:password@host:port/dbname`, percent-encoding each part so
    /// that libpq (psql) and tokio-postgres read back exactly the same values.
    pub fn compose(
        user: &str,
        password: &SecretString,
        host: &str,
        port: u16,
        dbname: &str,
    ) -> Self {
        let host_part = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host.to_owned()
        };
        let user_enc = utf8_percent_encode(user, COMPONENT);
        let db_enc = utf8_percent_encode(dbname, COMPONENT);
        let pw = password.expose_secret();
        let url = if pw.is_empty() {
            format!("postgres://{user_enc}@{host_part}:{port}/{db_enc}")
        } else {
            let pw_enc = utf8_percent_encode(pw, COMPONENT);
            format!("postgres://{user_enc}:{pw_enc}@{host_part}:{port}/{db_enc}")
        };
        let redacted = if pw.is_empty() {
            format!("postgres://{user}@{host_part}:{port}/{dbname}")
        } else {
            format!("postgres://{user}:***@{host_part}:{port}/{dbname}")
        };
        Dsn {
            secret: SecretString::from(url),
            redacted,
            tls: TlsParams::default(),
            source: "the composed URL".to_owned(),
            tcp: TcpSettings::default(),
            credentials: None,
        }
    }

    /// The TLS settings of this connection string, resolved as libpq does (the string's
    /// keys, else `PGSSLMODE` / `PGSSLROOTCERT` / `PGSSLCERT` / `PGSSLKEY`, else the
    /// defaults: `prefer`, and `~/.postgresql/root.crt` etc. when they exist).
    ///
    /// # Errors
    /// [`Error::Config`] naming the setting: an unknown sslmode, a missing file, a client
    /// key without its certificate or the reverse.
    pub fn tls(&self) -> Result<TlsSettings, Error> {
        TlsSettings::resolve(&self.tls, &self.source)
    }

    /// The redacted form, safe for logs and errors.
    pub fn redacted(&self) -> &str {
        &self.redacted
    }

    /// The full connection string, password included. Only for handing to a driver or to
    /// `aura dev env`; never log it.
    pub fn expose(&self) -> &str {
        self.secret.expose_secret()
    }

    /// The parsed driver configuration, without the TLS keys tokio-postgres cannot read;
    /// its `ssl_mode` is the one [`Dsn::tls`] resolves (prefer when that fails), its
    /// keepalives and TCP user timeout those of [`Dsn::tcp`] where the text sets none.
    /// Connect through [`crate::connect_raw`] to get the certificate checks and the
    /// credential source as well.
    pub fn pg_config(&self) -> tokio_postgres::Config {
        // `parse`/`compose` guarantee the text parses.
        let (driver_text, _) = params::split(self.expose());
        let mut cfg = tokio_postgres::Config::from_str(&driver_text).unwrap_or_default();
        if let Ok(tls) = self.tls() {
            cfg.ssl_mode(tls.mode.driver());
        }
        self.tcp.apply(&mut cfg);
        cfg
    }

    /// This DSN with other keepalive / TCP user timeout settings (the text's own keys
    /// still win).
    pub fn with_tcp(mut self, tcp: TcpSettings) -> Dsn {
        self.tcp = tcp;
        self
    }

    /// The keepalive / TCP user timeout settings of connections made from this DSN.
    pub fn tcp(&self) -> &TcpSettings {
        &self.tcp
    }

    /// This DSN with a credential source: asked for the password of every new connection,
    /// instead of any password in the text.
    pub fn with_credentials(mut self, credentials: Credentials) -> Dsn {
        self.credentials = Some(credentials);
        self
    }

    /// The credential source of this DSN, if one was set.
    pub fn credentials(&self) -> Option<&Credentials> {
        self.credentials.as_ref()
    }

    /// True when the text itself holds a (non-empty) password.
    pub fn has_password(&self) -> bool {
        self.pg_config()
            .get_password()
            .is_some_and(|p| !p.is_empty())
    }

    /// The user name in the DSN, if any.
    pub fn user(&self) -> Option<String> {
        self.pg_config().get_user().map(str::to_owned)
    }

    /// The database name in the DSN, if any.
    pub fn dbname(&self) -> Option<String> {
        self.pg_config().get_dbname().map(str::to_owned)
    }

    /// A copy of this DSN logging in as `user` with `password` (same host, database, TLS
    /// keys and TCP settings; no credential source: another login), as a URL.
    pub fn with_login(&self, user: &str, password: &SecretString) -> Dsn {
        let cfg = self.pg_config();
        let (host, port) = first_host_port(&cfg);
        let dsn = Dsn::compose(user, password, &host, port, cfg.get_dbname().unwrap_or(""));
        self.carry_tls(dsn)
    }

    /// `dsn` with this DSN's TLS keys (as URL query parameters libpq and psql read too).
    fn carry_tls(&self, mut dsn: Dsn) -> Dsn {
        let query = self.tls.query();
        if !query.is_empty() {
            dsn.secret = SecretString::from(format!("{}{query}", dsn.expose()));
        }
        dsn.tls = self.tls.clone();
        dsn.source.clone_from(&self.source);
        dsn.tcp = self.tcp;
        dsn
    }

    /// A copy of this DSN pointing at another database (same login, credential source
    /// included), as a URL.
    pub fn with_dbname(&self, dbname: &str) -> Dsn {
        let cfg = self.pg_config();
        let (host, port) = first_host_port(&cfg);
        let password = cfg
            .get_password()
            .map(|p| SecretString::from(String::from_utf8_lossy(p).into_owned()))
            .unwrap_or_else(|| SecretString::from(String::new()));
        let dsn = Dsn::compose(
            cfg.get_user().unwrap_or("postgres"),
            &password,
            &host,
            port,
            dbname,
        );
        let mut dsn = self.carry_tls(dsn);
        dsn.credentials.clone_from(&self.credentials);
        dsn
    }

    /// True when the connection string itself sets a TLS key (`sslmode`, `sslrootcert`,
    /// `sslcert`, `sslkey`).
    pub fn has_tls_keys(&self) -> bool {
        !self.tls.query().is_empty()
    }
}

impl fmt::Debug for Dsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut t = f.debug_tuple("Dsn");
        t.field(&self.redacted);
        if let Some(credentials) = &self.credentials {
            t.field(credentials);
        }
        t.finish()
    }
}

impl fmt::Display for Dsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted)
    }
}

/// The first host and port of a parsed configuration (`localhost:5432` when unset).
pub(crate) fn first_host_port(cfg: &tokio_postgres::Config) -> (String, u16) {
    let host = match cfg.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = cfg.get_ports().first().copied().unwrap_or(5432);
    (host, port)
}

/// `postgres://user:***@host:port/db` from a parsed configuration.
pub(crate) fn redact(cfg: &tokio_postgres::Config) -> String {
    let (host, port) = first_host_port(cfg);
    let host = if host.contains(':') && !host.starts_with('[') && !host.starts_with('/') {
        format!("[{host}]")
    } else {
        host
    };
    let user = cfg.get_user().unwrap_or("");
    let db = cfg.get_dbname().unwrap_or("");
    let auth = match (user.is_empty(), cfg.get_password().is_some()) {
        (true, false) => String::new(),
        (true, true) => ":***@".to_owned(),
        (false, false) => format!("{user}@"),
        (false, true) => format!("{user}:***@"),
    };
    format!("postgres://{auth}{host}:{port}/{db}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> SecretString {
        SecretString::from(s.to_owned())
    }

    #[test]
    fn composed_urls_round_trip_every_password() {
        for pw in [
            "it's",
            "back\\slash",
            "qu'o\\'te\";--",
            "päss wörd ☃",
            "a@b:c/d?e#f%g+h",
        ] {
            let dsn = Dsn::compose("aura_app", &secret(pw), "127.0.0.1", 5433, "aura db");
            let cfg = dsn.pg_config();
            assert_eq!(cfg.get_password(), Some(pw.as_bytes()), "password {pw:?}");
            assert_eq!(cfg.get_user(), Some("aura_app"));
            assert_eq!(cfg.get_dbname(), Some("aura db"));
            assert_eq!(
                dsn.redacted(),
                "postgres://aura_app:***@127.0.0.1:5433/aura db"
            );
            assert!(!format!("{dsn:?} {dsn}").contains(pw));
        }
    }

    #[test]
    fn parse_redacts_url_and_key_value_forms() {
        let url = Dsn::parse("X", secret("postgres://u:s3cr3t@db.example:6432/app")).unwrap();
        assert_eq!(url.redacted(), "postgres://u:***@db.example:6432/app");
        let kv = Dsn::parse("X", secret("host=h port=7 user=u password=s3cr3t dbname=d")).unwrap();
        assert_eq!(kv.redacted(), "postgres://u:***@h:7/d");
        assert!(!format!("{url:?}{kv:?}{url}{kv}").contains("s3cr3t"));
    }

    #[test]
    fn parse_errors_name_the_source_and_hide_the_value() {
        let err =
            Dsn::parse("AURA_DB_URL", secret("postgres://u:s3cr3t@h:notaport/d")).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("AURA_DB_URL"), "{text}");
        assert!(!text.contains("s3cr3t") && !format!("{err:?}").contains("s3cr3t"));
    }
}
