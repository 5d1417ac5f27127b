//! Making one connection: through a `tokio_postgres::Config` (not a URL string handed to
//! diesel-async, which flattens every failure to "error connecting to server"), so a
//! refused port, an unknown host and a rejected password each keep their real cause.

use std::time::Duration;

use diesel::ConnectionError;
use diesel_async::AsyncPgConnection;
use tokio_postgres::NoTls;

use crate::config::PoolSettings;
use crate::dsn::{Dsn, redact};
use crate::error::{Error, error_chain, fmt_duration};

/// How to reach one database as one role, with the session settings every connection gets.
#[derive(Clone)]
pub(crate) struct ConnectSpec {
    pg: tokio_postgres::Config,
    target: String,
    timeout: Duration,
}

impl ConnectSpec {
    /// A spec for `dsn` with the per-connection settings of `settings`: application_name,
    /// connect timeout, statement_timeout, idle_in_transaction_session_timeout and a 1 s
    /// client_connection_check_interval (sent
    /// in the startup packet: no extra round trip). The check interval lets the server end
    /// the statement and transaction of a connection dropped mid-statement (a cancelled
    /// `with_tx`) within a second, instead of holding its locks until the statement ends.
    pub(crate) fn pooled(dsn: &Dsn, settings: &PoolSettings) -> Self {
        let mut pg = dsn.pg_config();
        if pg.get_application_name().is_none() {
            pg.application_name(&settings.application_name);
        }
        let statement = format!(
            "-c statement_timeout={} -c idle_in_transaction_session_timeout={} \
             -c client_connection_check_interval=1000",
            settings.statement_timeout.as_millis(),
            settings.idle_in_transaction_timeout.as_millis()
        );
        let options = match pg.get_options() {
            Some(existing) if !existing.is_empty() => format!("{existing} {statement}"),
            _ => statement,
        };
        pg.options(&options);
        Self::with_timeout(pg, settings.connect_timeout)
    }

    /// A spec for a one-off session (migrations, bootstrap): the DSN as given, with a
    /// connect timeout and an application name.
    pub(crate) fn single(dsn: &Dsn, application_name: &str, timeout: Duration) -> Self {
        let mut pg = dsn.pg_config();
        if pg.get_application_name().is_none() {
            pg.application_name(application_name);
        }
        Self::with_timeout(pg, timeout)
    }

    fn with_timeout(mut pg: tokio_postgres::Config, timeout: Duration) -> Self {
        pg.connect_timeout(timeout);
        let target = redact(&pg);
        ConnectSpec {
            pg,
            target,
            timeout,
        }
    }

    /// The redacted DSN, for errors and logs.
    pub(crate) fn target(&self) -> &str {
        &self.target
    }

    /// Opens a raw tokio-postgres client; its connection is driven on a spawned task.
    pub(crate) async fn connect_raw(&self) -> Result<tokio_postgres::Client, Error> {
        let (client, connection) = self.timed(self.pg.connect(NoTls)).await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(client)
    }

    /// Opens a diesel-async connection.
    pub(crate) async fn connect(&self) -> Result<AsyncPgConnection, Error> {
        let (client, connection) = self.timed(self.pg.connect(NoTls)).await?;
        AsyncPgConnection::try_from_client_and_connection(client, connection)
            .await
            .map_err(|e| self.setup_error(e))
    }

    async fn timed<T>(
        &self,
        fut: impl Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<T, Error> {
        // tokio-postgres' connect_timeout covers each socket connect, not name resolution
        // nor authentication; the outer limit covers the whole handshake.
        match tokio::time::timeout(self.timeout + Duration::from_millis(100), fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(self.classify(&e)),
            Err(_) => Err(Error::Connect {
                target: self.target.clone(),
                cause: format!("no answer within {}", fmt_duration(self.timeout)),
            }),
        }
    }

    fn classify(&self, err: &tokio_postgres::Error) -> Error {
        match err.as_db_error() {
            Some(db) if db.code().code().starts_with("28") || db.code().code() == "3D000" => {
                Error::Auth {
                    target: self.target.clone(),
                    sqlstate: db.code().code().to_owned(),
                    message: db.message().to_owned(),
                }
            }
            Some(_) => Error::from(err),
            None => Error::Connect {
                target: self.target.clone(),
                cause: error_chain(err),
            },
        }
    }

    fn setup_error(&self, err: ConnectionError) -> Error {
        match err {
            ConnectionError::CouldntSetupConfiguration(e) => Error::from(e),
            other => Error::Connect {
                target: self.target.clone(),
                cause: other.to_string(),
            },
        }
    }
}
