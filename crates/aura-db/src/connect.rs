//! Making one connection: through a `tokio_postgres::Config` (not a URL string handed to
//! diesel-async, which flattens every failure to "error connecting to server"), so a
//! refused port, an unknown host and a rejected password each keep their real cause.
//!
//! Every connection goes through TLS as its DSN's `sslmode` says (see [`crate::tls`]): the
//! pool, migrations, bootstrap, cancellation and [`connect_raw`] alike. Every TCP connection
//! gets the DSN's keepalives and user timeout (see [`crate::TcpSettings`]). When the DSN has
//! a credential source, it is asked for the password of each connection, within the
//! connect timeout (see [`crate::CredentialSource`]).

use std::sync::Arc;
use std::time::Duration;

use diesel::ConnectionError;
use diesel_async::AsyncPgConnection;
use tokio_postgres::{CancelToken, Client, Connection, Socket};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::config::PoolSettings;
use crate::credentials::{Credentials, SourceTimedOut};
use crate::dsn::{Dsn, redact};
use crate::error::{Error, error_chain, fmt_duration};
use crate::tls::{self, SslMode, TlsConnector};

/// The stream of a TLS-capable connection (rustls, or plaintext inside the same type).
type TlsStream = <MakeRustlsConnect as tokio_postgres::tls::MakeTlsConnect<Socket>>::Stream;

/// How long [`connect_raw`] waits for a connection when the DSN sets no `connect_timeout`.
const RAW_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens a plain tokio-postgres client on `dsn`, through the same TLS and error handling as
/// the pool; its connection is driven on a spawned task (of the current runtime).
///
/// For tools and tests that need a raw client (admin statements, catalog reads). The
/// connect timeout is the DSN's `connect_timeout`, else 10 s; `application_name` the
/// DSN's, else `aura`.
///
/// # Errors
/// [`Error::Config`] for bad TLS settings, [`Error::Tls`], [`Error::Connect`],
/// [`Error::Auth`].
pub async fn connect_raw(dsn: &Dsn) -> Result<Client, Error> {
    let timeout = dsn
        .pg_config()
        .get_connect_timeout()
        .copied()
        .unwrap_or(RAW_CONNECT_TIMEOUT);
    ConnectSpec::single(dsn, "aura", timeout)
        .connect_raw()
        .await
}

/// Cancels the statement running on the session of `token` (from
/// [`Client::cancel_token`] of a client connected to `dsn`), over the same TLS settings.
///
/// # Errors
/// As [`connect_raw`].
pub async fn cancel_query(dsn: &Dsn, token: &CancelToken) -> Result<(), Error> {
    let spec = ConnectSpec::single(dsn, "aura", RAW_CONNECT_TIMEOUT);
    spec.cancel(token).await
}

/// How to reach one database as one role, with the session settings every connection gets.
#[derive(Clone)]
pub(crate) struct ConnectSpec {
    pg: tokio_postgres::Config,
    target: String,
    timeout: Duration,
    /// The TLS connector, or why the DSN's TLS settings cannot be used (returned by every
    /// connect, each a copy sharing the original: the constructors stay infallible).
    tls: Result<TlsConnector, Arc<Error>>,
    /// Asked for the password of every connection, when set.
    credentials: Option<Credentials>,
    /// `SET` statements every new connection runs before it is used (pooled connections).
    session: Option<String>,
}

impl ConnectSpec {
    /// A spec for `dsn` with the per-connection settings of `settings`: application_name
    /// and connect timeout in the startup packet; the session settings
    /// ([`PoolSettings::session_statements`]) as `SET`s each new connection runs once, one
    /// round trip. Not the startup `options`: PgBouncer refuses those unless told to ignore
    /// them, and then drops them; `SET`s hold through it in session mode.
    pub(crate) fn pooled(dsn: &Dsn, settings: &PoolSettings) -> Self {
        let mut spec = Self::single(dsn, &settings.application_name, settings.connect_timeout);
        spec.session = Some(settings.session_statements());
        spec
    }

    /// A spec for a one-off session (migrations, bootstrap): the DSN as given, with a
    /// connect timeout and an application name (unless the DSN sets one).
    pub(crate) fn single(dsn: &Dsn, application_name: &str, timeout: Duration) -> Self {
        let mut pg = dsn.pg_config();
        if pg.get_application_name().is_none() {
            pg.application_name(application_name);
        }
        pg.connect_timeout(timeout);
        let target = redact(&pg);
        let tls = dsn
            .tls()
            .and_then(|settings| TlsConnector::build(&settings))
            .map_err(Arc::new);
        if let Ok(connector) = &tls {
            pg.ssl_mode(connector.mode.driver());
        }
        ConnectSpec {
            pg,
            target,
            timeout,
            tls,
            credentials: dsn.credentials().cloned(),
            session: None,
        }
    }

    /// The rustls connector of this spec (the same one connections use), for
    /// [`CancelToken::cancel_query`].
    pub(crate) fn tls_connector(&self) -> Result<MakeRustlsConnect, Error> {
        Ok(self.connector()?.make())
    }

    /// The TLS connector, or this caller's copy of why there is none.
    fn connector(&self) -> Result<&TlsConnector, Error> {
        self.tls
            .as_ref()
            .map_err(|err| Error::shared(err, &self.target))
    }

    /// Sends a cancel request for `token`'s session over this spec's TLS settings, waiting
    /// at most the connect timeout for the server to take it (a server that stopped
    /// answering would otherwise hold the request, and its task, forever).
    pub(crate) async fn cancel(&self, token: &CancelToken) -> Result<(), Error> {
        let connector = self.connector()?;
        match tokio::time::timeout(self.timeout, token.cancel_query(connector.make())).await {
            Ok(sent) => sent.map_err(|e| self.classify(e, connector)),
            Err(_) => Err(Error::Connect {
                target: self.target.clone(),
                cause: format!(
                    "the cancel request got no answer within {}",
                    crate::error::fmt_duration(self.timeout)
                ),
                source: None,
            }),
        }
    }

    /// The driver configuration every connection of this spec starts from.
    #[cfg(test)]
    pub(crate) fn pg(&self) -> &tokio_postgres::Config {
        &self.pg
    }

    /// The redacted DSN, for errors and logs.
    pub(crate) fn target(&self) -> &str {
        &self.target
    }

    /// Opens a raw tokio-postgres client; its connection is driven on a spawned task.
    pub(crate) async fn connect_raw(&self) -> Result<tokio_postgres::Client, Error> {
        let (client, connection) = self.open().await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(client)
    }

    /// Opens a diesel-async connection, its session settings applied.
    pub(crate) async fn connect(&self) -> Result<AsyncPgConnection, Error> {
        let (client, connection) = self.open().await?;
        let mut conn = AsyncPgConnection::try_from_client_and_connection(client, connection)
            .await
            .map_err(|e| self.setup_error(e))?;
        if let Some(session) = &self.session {
            diesel_async::SimpleAsyncConnection::batch_execute(&mut conn, session)
                .await
                .map_err(Error::from)?;
        }
        Ok(conn)
    }

    /// Connects through TLS as the mode says. With `prefer`, a failed TLS handshake (a
    /// root certificate was given and the chain did not verify) is retried in plaintext,
    /// as libpq does (with the same password).
    async fn open(&self) -> Result<(Client, Connection<Socket, TlsStream>), Error> {
        let connector = self.connector()?;
        // tokio-postgres' connect_timeout covers each socket connect, not name resolution
        // nor authentication; the outer limit covers the whole handshake, and the
        // credential source's time counts against it.
        let deadline = || tokio::time::Instant::now() + self.timeout + Duration::from_millis(100);
        let first = deadline();
        let pg = self.login(first).await?;
        match self
            .timed(pg.connect(connector.make()), connector, first)
            .await
        {
            Err(Error::Tls { .. }) if connector.mode == SslMode::Prefer => {
                let mut plain = pg.into_owned();
                plain.ssl_mode(tokio_postgres::config::SslMode::Disable);
                self.timed(plain.connect(connector.make()), connector, deadline())
                    .await
            }
            other => other,
        }
    }

    /// The driver configuration with the credential source's password (when there is a
    /// source), asked for by `deadline`.
    async fn login(
        &self,
        deadline: tokio::time::Instant,
    ) -> Result<std::borrow::Cow<'_, tokio_postgres::Config>, Error> {
        let Some(source) = &self.credentials else {
            return Ok(std::borrow::Cow::Borrowed(&self.pg));
        };
        let fail = |source: Arc<dyn std::error::Error + Send + Sync>| Error::Credentials {
            target: self.target.clone(),
            source,
        };
        let password = match tokio::time::timeout_at(deadline, source.password()).await {
            Ok(Ok(password)) => password,
            Ok(Err(e)) => return Err(fail(Arc::from(e))),
            Err(_) => return Err(fail(Arc::new(SourceTimedOut(self.timeout)))),
        };
        let mut pg = self.pg.clone();
        pg.password(secrecy::ExposeSecret::expose_secret(&password).as_bytes());
        Ok(std::borrow::Cow::Owned(pg))
    }

    async fn timed<T>(
        &self,
        fut: impl Future<Output = Result<T, tokio_postgres::Error>>,
        connector: &TlsConnector,
        deadline: tokio::time::Instant,
    ) -> Result<T, Error> {
        match tokio::time::timeout_at(deadline, fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(self.classify(e, connector)),
            Err(_) => Err(Error::Connect {
                target: self.target.clone(),
                cause: format!("no answer within {}", fmt_duration(self.timeout)),
                source: None,
            }),
        }
    }

    /// The error a failed connect (or cancel request) is: TLS, a rejected login, a server
    /// error, or the server out of reach; the driver's error is its source.
    fn classify(&self, err: tokio_postgres::Error, connector: &TlsConnector) -> Error {
        if let Some(failure) = tls::classify(&err, connector.mode, connector.rootcert.as_deref()) {
            return Error::Tls {
                target: self.target.clone(),
                failure,
                source: Box::new(err),
            };
        }
        match err.as_db_error() {
            Some(db) if db.code().code().starts_with("28") || db.code().code() == "3D000" => {
                Error::Auth {
                    target: self.target.clone(),
                    sqlstate: db.code().code().to_owned(),
                    message: db.message().to_owned(),
                    source: Box::new(err),
                }
            }
            // The server is there but cannot take a session now (class 08, 53 "too many
            // clients", 57 "shutting down" / "starting up"): a connect failure like a
            // refused port, retryable, and nothing of any operation was sent.
            Some(db) if ["08", "53", "57"].contains(&&db.code().code()[..2]) => Error::Connect {
                target: self.target.clone(),
                cause: format!("{} (SQLSTATE {})", db.message(), db.code().code()),
                source: Some(Box::new(err)),
            },
            Some(_) => Error::from(err),
            None => Error::Connect {
                target: self.target.clone(),
                cause: error_chain(&err),
                source: Some(Box::new(err)),
            },
        }
    }

    fn setup_error(&self, err: ConnectionError) -> Error {
        match err {
            ConnectionError::CouldntSetupConfiguration(e) => Error::from(e),
            other => Error::Connect {
                target: self.target.clone(),
                cause: other.to_string(),
                source: Some(Box::new(other)),
            },
        }
    }
}
