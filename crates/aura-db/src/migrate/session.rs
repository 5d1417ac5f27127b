//! The migrator's own session: one dedicated connection from the crate's one connect path
//! (never a pooled one: a session advisory lock would leak through the pool, and
//! PgBouncer's transaction mode gives no mutual exclusion), with the settings migrations
//! rely on. A session that cannot connect fails with the crate's connect error as it is.
//!
//! Async steps (lock, tracking tables) run on the `AsyncPgConnection`; diesel's
//! `MigrationHarness` is synchronous, so [`Session::blocking`] lends the connection to a
//! `spawn_blocking` thread as an `AsyncConnectionWrapper`. That works on every runtime
//! flavour (diesel-async's `AsyncMigrationHarness` uses `block_in_place`, which panics on a
//! current-thread runtime).

use std::sync::{Arc, Mutex, PoisonError};

use diesel::connection::InstrumentationEvent;
use diesel::sql_types::{Nullable, Text};
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use secrecy::{ExposeSecret, SecretString};
use tokio_postgres::CancelToken;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::error::{MigrateError, SqlError};
use super::options::{MigrateOptions, TargetSchema};
use crate::connect::ConnectSpec;
use crate::dsn::Dsn;
use crate::error::Error;
use crate::ident::quote_ident;
use crate::{MIGRATE_LOCK_TIMEOUT, SCHEMA};

/// The blocking view of the session's connection that diesel's harness runs on.
pub(crate) type Wrapper = AsyncConnectionWrapper<AsyncPgConnection>;

/// What the session is for: reading the tracking tables (`status`), or changing the schema
/// (`migrate`, `reset`: the schema must be the migrate role's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    Read,
    Write,
}

/// A connected, configured migrator session.
pub(crate) struct Session {
    /// `None` only while lent to [`Session::blocking`].
    conn: Option<AsyncPgConnection>,
    cancel: CancelToken,
    /// The TLS connector the session was opened with: cancel requests use it too.
    tls: MakeRustlsConnect,
    /// The last statement that failed, as sent, with its error.
    pub(crate) failed_sql: FailedSql,
    /// `current_schema()` at connect time, double-quoted: where the tracking tables live.
    pub(crate) schema: String,
    /// The same, unquoted (for messages).
    pub(crate) schema_name: String,
    /// The redacted DSN.
    pub(crate) target: String,
}

impl Session {
    /// Checks the URL, connects, and applies the session settings.
    pub(crate) async fn open(
        url: &SecretString,
        opts: &MigrateOptions,
        access: Access,
    ) -> Result<Self, Error> {
        if url.expose_secret().trim().is_empty() {
            return Err(MigrateError::EmptyUrl.into());
        }
        let dsn = opts.dsn(Dsn::parse("migrate URL", url.clone())?);
        let spec = ConnectSpec::single(&dsn, &opts.application_name, opts.connect_timeout);
        let tls = spec.tls_connector()?;
        let mut conn = spec.connect().await?;
        if access == Access::Write {
            check_own_session(&mut conn, &spec).await?;
        }

        // The server's error position counts characters of the text it was sent: keep the
        // text of a failed statement to turn the position into a line.
        let failed_sql = FailedSql::default();
        let keep = failed_sql.clone();
        conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
            if let InstrumentationEvent::FinishQuery {
                query,
                error: Some(e),
                ..
            } = event
            {
                *keep.lock() = Some((query.to_string(), SqlError::from_diesel(e)));
            }
        });

        // client_connection_check_interval: a backend whose client vanished (a SIGKILLed
        // migrator) notices within a second, even inside a long statement, ends, and frees
        // the lock.
        let mut settings = String::from("SET client_connection_check_interval = '1s';");
        if let Some(t) = opts.statement_timeout {
            settings.push_str(&format!(" SET statement_timeout = {};", t.as_millis()));
        }
        if let Some(t) = opts.ddl_lock_timeout {
            settings.push_str(&format!(" SET lock_timeout = {};", t.as_millis()));
        }
        conn.batch_execute(&settings)
            .await
            .map_err(|e| MigrateError::step(format!("session setup on {}", spec.target()), &e))?;
        if opts.schema == TargetSchema::Aura {
            enter_aura(&mut conn, opts, access, spec.target()).await?;
        }

        let (schema, search_path): (Option<String>, String) =
            diesel::dsl::sql::<(Nullable<Text>, Text)>(
                "SELECT current_schema()::text, current_setting('search_path')",
            )
            .get_result(&mut conn)
            .await
            .map_err(|e| MigrateError::step("reading current_schema()", &e))?;
        let schema_name = schema.ok_or_else(|| MigrateError::NoSchema {
            search_path,
            target: spec.target().to_owned(),
        })?;
        Ok(Session {
            cancel: conn.cancel_token(),
            tls,
            conn: Some(conn),
            failed_sql,
            schema: quote_ident(&schema_name),
            schema_name,
            target: spec.target().to_owned(),
        })
    }

    /// The connection, for async steps.
    pub(crate) fn conn(&mut self) -> &mut AsyncPgConnection {
        self.conn
            .as_mut()
            .expect("the connection is back from every blocking step")
    }

    /// `"schema".table`.
    pub(crate) fn qualified(&self, table: &str) -> String {
        format!("{}.{table}", self.schema)
    }

    /// Runs `f` on a blocking thread with the connection as diesel's synchronous
    /// `Connection`, then takes the connection back. A panic in `f` is resumed here.
    pub(crate) async fn blocking<T: Send + 'static>(
        &mut self,
        f: impl FnOnce(&mut Wrapper) -> T + Send + 'static,
    ) -> T {
        let conn = self
            .conn
            .take()
            .expect("the connection is back from every blocking step");
        let joined = tokio::task::spawn_blocking(move || {
            let mut wrapper = Wrapper::from(conn);
            let out = f(&mut wrapper);
            (wrapper.into_inner(), out)
        })
        .await;
        match joined {
            Ok((conn, out)) => {
                self.conn = Some(conn);
                out
            }
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }

    /// A guard that, if dropped before [`CancelOnDrop::disarm`], cancels the statement this
    /// session is running. See [`CancelOnDrop`].
    pub(crate) fn cancel_on_drop(&self) -> CancelOnDrop {
        CancelOnDrop {
            token: Some((self.cancel.clone(), self.tls.clone())),
        }
    }
}

/// Refuses a session whose server backend is not its own: a second connection to the same
/// URL must be served by another backend. Through PgBouncer in transaction (or statement)
/// mode, the session's server connection goes back to the pooler's pool after each
/// transaction, and the pooler hands its most recently used idle one (LIFO) to the next
/// client: the probe lands on the session's backend. A direct connection, and PgBouncer in
/// session mode, give each client connection a backend of its own. Simple-protocol on the
/// probe: nothing prepared that could collide with the session's statements on a shared
/// backend.
async fn check_own_session(conn: &mut AsyncPgConnection, spec: &ConnectSpec) -> Result<(), Error> {
    let mine: i32 = diesel::dsl::sql::<diesel::sql_types::Integer>("SELECT pg_backend_pid()")
        .get_result(conn)
        .await
        .map_err(|e| MigrateError::step("reading the session's backend pid", &e))?;
    let probe = spec.connect_raw().await?;
    let messages = probe
        .simple_query("SELECT pg_backend_pid()")
        .await
        .map_err(|e| MigrateError::Step {
            step: "probing for a connection pooler".to_owned(),
            cause: SqlError::client(&e),
        })?;
    let other = messages.iter().find_map(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(row) => {
            row.get(0).and_then(|pid| pid.parse::<i32>().ok())
        }
        _ => None,
    });
    if other == Some(mine) {
        return Err(MigrateError::SharedSession {
            target: spec.target().to_owned(),
            pid: mine,
        }
        .into());
    }
    Ok(())
}

/// Points the session at schema `aura`, whatever the role's search_path says: it must
/// exist and, to change it, be the session's role's (a member of the owner role becomes
/// the owner with `SET ROLE`, so what it creates belongs to the owner). Without a
/// `lock_timeout` of its own (no role setting, no option), DDL waits at most
/// [`MIGRATE_LOCK_TIMEOUT`] for its locks, as role bootstrap would have set.
async fn enter_aura(
    conn: &mut AsyncPgConnection,
    opts: &MigrateOptions,
    access: Access,
    target: &str,
) -> Result<(), MigrateError> {
    let (role, database, owner, lock_timeout): (String, String, Option<String>, String) =
        diesel::dsl::sql::<(Text, Text, Nullable<Text>, Text)>(
            "SELECT current_user::text, current_database()::text, \
             (SELECT pg_get_userbyid(nspowner)::text FROM pg_namespace WHERE nspname = ",
        )
        .bind::<Text, _>(SCHEMA)
        .sql("), current_setting('lock_timeout')")
        .get_result(conn)
        .await
        .map_err(|e| MigrateError::step("looking up schema aura", &e))?;
    let Some(owner) = owner else {
        return Err(MigrateError::SchemaMissing {
            schema: SCHEMA.to_owned(),
            database,
            role,
            target: target.to_owned(),
        });
    };
    let mut settings = format!("SET search_path = {};", quote_ident(SCHEMA));
    if access == Access::Write {
        if owner != role {
            let not_owned = || MigrateError::SchemaNotOwned {
                schema: SCHEMA.to_owned(),
                owner: owner.clone(),
                role: role.clone(),
                target: target.to_owned(),
            };
            conn.batch_execute(&format!("SET ROLE {}", quote_ident(&owner)))
                .await
                .map_err(|_| not_owned())?;
            tracing::info!(
                role,
                owner,
                "the schema's owner runs the migrations (SET ROLE)"
            );
        }
        if opts.ddl_lock_timeout.is_none() && lock_timeout == "0" {
            settings.push_str(&format!(
                " SET lock_timeout = {};",
                MIGRATE_LOCK_TIMEOUT.as_millis()
            ));
        }
    }
    conn.batch_execute(&settings)
        .await
        .map_err(|e| MigrateError::step(format!("session setup on {target}"), &e))
}

/// The last statement that failed on the session, as sent (diesel's query text), with its
/// error: the server's error position counts characters of that text.
#[derive(Clone, Default)]
pub(crate) struct FailedSql(Arc<Mutex<Option<(String, SqlError)>>>);

impl FailedSql {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(String, SqlError)>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes it.
    pub(crate) fn take(&self) -> Option<(String, SqlError)> {
        self.lock().take()
    }
}

/// Cancels the session's running statement when dropped armed: when the caller drops the
/// migration future (a timeout, a cancelled task) in the middle of a statement.
///
/// Dropping the connection alone is not enough: a statement running on a blocking thread
/// (the harness) keeps that thread and the connection until it ends, so the backend would
/// run it to the end (a long index build, a `pg_sleep`) while holding the migration lock.
/// The cancel request ends it now (an error); the migration's transaction rolls back, the
/// blocking step returns, the connection closes and the lock is free.
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
