//! The migrator's own session: one dedicated connection (never a pooled one: a session
//! advisory lock would leak through the pool, and PgBouncer's transaction mode gives no
//! mutual exclusion), with the settings migrations rely on.

use secrecy::{ExposeSecret, SecretString};
use tokio_postgres::{CancelToken, Client};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::options::MigrateOptions;
use crate::connect::ConnectSpec;
use crate::dsn::Dsn;
use crate::error::Error;
use crate::ident::quote_ident;

/// A connected, configured migrator session.
pub(crate) struct Session {
    pub(crate) client: Client,
    /// `current_schema()` at connect time, double-quoted: where the tracking tables live.
    pub(crate) schema: String,
    /// The same, unquoted (for messages and catalog lookups).
    pub(crate) schema_name: String,
    /// The TLS connector the session was opened with: cancel requests use it too.
    tls: MakeRustlsConnect,
}

impl Session {
    /// Checks the URL, connects, and applies the session settings.
    pub(crate) async fn open(url: &SecretString, opts: &MigrateOptions) -> Result<Self, Error> {
        if url.expose_secret().trim().is_empty() {
            return Err(Error::EmptyMigrateUrl);
        }
        let dsn = Dsn::parse("migrate URL", url.clone())?;
        let spec = ConnectSpec::single(&dsn, &opts.application_name, opts.connect_timeout);
        let client = spec.connect_raw().await?;
        let tls = spec.tls_connector()?;

        // client_connection_check_interval: a backend whose client vanished (a SIGKILLed
        // migrator) notices within a second, even inside a long statement, ends, and frees
        // the lock. standard_conforming_strings: the statement splitter reads '…' that way.
        let mut settings = String::from(
            "SET client_connection_check_interval = '1s'; SET standard_conforming_strings = on;",
        );
        if let Some(t) = opts.statement_timeout {
            settings.push_str(&format!(" SET statement_timeout = {};", t.as_millis()));
        }
        if let Some(t) = opts.ddl_lock_timeout {
            settings.push_str(&format!(" SET lock_timeout = {};", t.as_millis()));
        }
        client
            .batch_execute(&settings)
            .await
            .map_err(|e| Error::migrate_step(format!("session setup on {}", spec.target()), &e))?;

        let row = client
            .query_one(
                "SELECT current_schema()::text, current_setting('search_path')",
                &[],
            )
            .await
            .map_err(|e| Error::migrate_step("reading current_schema()", &e))?;
        let schema: Option<String> = row.get(0);
        let search_path: String = row.get(1);
        let schema_name = schema.ok_or_else(|| Error::MigrateStep {
            step: format!("finding the migrations schema on {}", spec.target()),
            message: format!(
                "no schema of search_path ({search_path}) exists and is usable by this role; \
                 the migrate role's search_path should name its schema (role bootstrap sets it)"
            ),
            sqlstate: None,
        })?;
        Ok(Session {
            client,
            schema: quote_ident(&schema_name),
            schema_name,
            tls,
        })
    }

    /// `"schema".table`.
    pub(crate) fn qualified(&self, table: &str) -> String {
        format!("{}.{table}", self.schema)
    }

    /// A guard that, if dropped before [`CancelOnDrop::disarm`], cancels the statement this
    /// session is running. See [`CancelOnDrop`].
    pub(crate) fn cancel_on_drop(&self) -> CancelOnDrop {
        CancelOnDrop {
            token: Some((self.client.cancel_token(), self.tls.clone())),
        }
    }

    /// Ends whatever transaction a failed step left open. Errors are ignored: the caller is
    /// already returning one, and a broken session ends with the connection.
    pub(crate) async fn rollback_quietly(&self) {
        let _ = self.client.batch_execute("ROLLBACK").await;
    }
}

/// Cancels the session's running statement when dropped armed: when the caller drops the
/// migration future (a timeout, a cancelled task) in the middle of a statement.
///
/// Dropping the `Client` alone is not enough: tokio-postgres keeps the socket open until the
/// in-flight statement's response arrives, so the backend would run it to the end (a long
/// index build, a `pg_sleep`) while holding the migration lock. The cancel request makes
/// that response arrive now (an error); the connection then closes, the backend rolls the
/// migration back and the lock is free.
pub(crate) struct CancelOnDrop {
    token: Option<(CancelToken, MakeRustlsConnect)>,
}

impl CancelOnDrop {
    /// The guarded work finished: nothing to cancel.
    pub(crate) fn disarm(mut self) {
        self.token = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        let Some((token, tls)) = self.token.take() else {
            return;
        };
        // No runtime (it is shutting down): the process is ending and its sockets with it,
        // which the backend notices within client_connection_check_interval.
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                if let Err(e) = token.cancel_query(tls).await {
                    tracing::warn!(error = %e, "could not cancel the abandoned migration statement");
                }
            });
        }
    }
}
