//! `with_tx`: one transaction on a pooled connection.
//!
//! - the body returns `Err` -> `ROLLBACK`, and that error is returned;
//! - the body panics -> the connection is dropped mid-transaction; the pool sees it broken
//!   and closes it, so the server rolls back; the panic continues;
//! - the body returns `Ok` -> `COMMIT`; a commit failure (a deferred constraint) is returned
//!   as [`Error::Commit`] and nothing is committed;
//! - the future is dropped at any await point -> the connection, still inside its
//!   transaction, is discarded by the pool and never reused, and its running statement is
//!   cancelled at once (see `PooledConn::arm`): nothing commits.

use diesel_async::{AnsiTransactionManager, AsyncPgConnection, TransactionManager};

use tracing::{Instrument, Span};

use crate::error::Error;
use crate::pool::Pool;
use crate::telemetry;

/// An `async` closure taking the connection, whose future is `Send` (so `with_tx` can run
/// inside `tokio::spawn`). Implemented for every such closure; you never implement it.
///
/// Rust cannot yet bound the future of an `AsyncFnOnce` directly; this is the same
/// workaround diesel-async uses internally.
pub trait TxBody<A, R>: AsyncFnOnce(A) -> R + FnOnce(A) -> <Self as TxBody<A, R>>::Fut {
    /// The closure's future.
    type Fut: Future<Output = R>;
}

impl<F, A, Fut, R> TxBody<A, R> for F
where
    F: AsyncFnOnce(A) -> R + FnOnce(A) -> Fut,
    Fut: Future<Output = R>,
{
    type Fut = Fut;
}

/// Isolation level of a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Isolation {
    /// The server default (`READ COMMITTED` unless configured otherwise).
    #[default]
    Default,
    /// `READ COMMITTED`.
    ReadCommitted,
    /// `REPEATABLE READ`.
    RepeatableRead,
    /// `SERIALIZABLE`; expect SQLSTATE 40001 and retry (see [`Error::is_retryable`]).
    Serializable,
}

/// Options of [`with_tx_opts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TxOptions {
    /// Isolation level.
    pub isolation: Isolation,
    /// `READ ONLY` when true.
    pub read_only: bool,
}

impl TxOptions {
    fn begin_sql(&self) -> String {
        let mut sql = String::from("BEGIN");
        match self.isolation {
            Isolation::Default => {}
            Isolation::ReadCommitted => sql.push_str(" ISOLATION LEVEL READ COMMITTED"),
            Isolation::RepeatableRead => sql.push_str(" ISOLATION LEVEL REPEATABLE READ"),
            Isolation::Serializable => sql.push_str(" ISOLATION LEVEL SERIALIZABLE"),
        }
        if self.read_only {
            sql.push_str(" READ ONLY");
        }
        sql
    }
}

/// Runs `body` in one transaction on a connection from `pool`; see the module docs for what
/// happens on `Err`, panic, commit failure and cancellation.
///
/// ```no_run
/// # async fn demo(pool: &aura_db::Pool) -> Result<(), aura_db::Error> {
/// use diesel_async::SimpleAsyncConnection;
/// let n: i32 = aura_db::with_tx(pool, async |conn| {
///     conn.batch_execute("SELECT 1").await?;
///     Ok::<_, aura_db::Error>(1)
/// })
/// .await?;
/// # Ok(()) }
/// ```
pub async fn with_tx<T, E, F>(pool: &Pool, body: F) -> Result<T, E>
where
    for<'c> F: AsyncFnOnce(&'c mut AsyncPgConnection) -> Result<T, E>
        + TxBody<&'c mut AsyncPgConnection, Result<T, E>, Fut: Send>
        + Send,
    E: From<Error> + Send,
    T: Send,
{
    with_tx_opts(pool, TxOptions::default(), body).await
}

/// [`with_tx`] with an isolation level and/or `READ ONLY`.
pub async fn with_tx_opts<T, E, F>(pool: &Pool, options: TxOptions, body: F) -> Result<T, E>
where
    for<'c> F: AsyncFnOnce(&'c mut AsyncPgConnection) -> Result<T, E>
        + TxBody<&'c mut AsyncPgConnection, Result<T, E>, Fut: Send>
        + Send,
    E: From<Error> + Send,
    T: Send,
{
    let start = tokio::time::Instant::now();
    let result = if pool.tracing() {
        let span = telemetry::transaction_span(pool.attributes());
        run(pool, options, body, &span)
            .instrument(span.clone())
            .await
    } else {
        run(pool, options, body, &Span::none()).await
    };
    telemetry::warn_if_slow(pool.settings().slow_op, "transaction", start.elapsed());
    result
}

/// [`with_tx_opts`] inside its span: records the statement that began the transaction,
/// its outcome and its own failures (begin, commit) on `span`.
async fn run<T, E, F>(pool: &Pool, options: TxOptions, body: F, span: &Span) -> Result<T, E>
where
    for<'c> F: AsyncFnOnce(&'c mut AsyncPgConnection) -> Result<T, E>
        + TxBody<&'c mut AsyncPgConnection, Result<T, E>, Fut: Send>
        + Send,
    E: From<Error> + Send,
    T: Send,
{
    let mut pooled = pool.get().await.inspect_err(|e| {
        if !span.is_disabled() {
            telemetry::record_db_error(span, e);
        }
    })?;
    // Dropped before the end (the caller gave up), the connection is discarded and its
    // statement cancelled (see `PooledConn::arm`).
    pooled.arm();
    let result = in_tx(&mut pooled, options, body, span).await;
    pooled.disarm();
    result
}

/// BEGIN, the body, then COMMIT or ROLLBACK on `conn`, recorded on `span`.
async fn in_tx<T, E, F>(
    conn: &mut AsyncPgConnection,
    options: TxOptions,
    body: F,
    span: &Span,
) -> Result<T, E>
where
    for<'c> F: AsyncFnOnce(&'c mut AsyncPgConnection) -> Result<T, E>
        + TxBody<&'c mut AsyncPgConnection, Result<T, E>, Fut: Send>
        + Send,
    E: From<Error> + Send,
    T: Send,
{
    let traced = !span.is_disabled();
    let begin = options.begin_sql();
    if traced {
        span.record("db.transaction.begin", begin.as_str());
    }
    AnsiTransactionManager::begin_transaction_sql(conn, &begin)
        .await
        .map_err(Error::from)
        .inspect_err(|e| telemetry::record_db_error(span, e))?;
    match body(&mut *conn).await {
        Ok(value) => {
            AnsiTransactionManager::commit_transaction(conn)
                .await
                .map_err(Error::commit)
                .inspect_err(|e| telemetry::record_db_error(span, e))?;
            if traced {
                span.record("db.transaction.outcome", "commit");
            }
            Ok(value)
        }
        Err(err) => {
            // The body's error is the caller's to classify (the store's operation span
            // records it); this span says the transaction rolled back.
            if traced {
                span.record("db.transaction.outcome", "rollback");
            }
            if let Err(rollback) = AnsiTransactionManager::rollback_transaction(conn).await {
                // The connection is now marked broken and will be discarded; the body's
                // error is the one the caller needs.
                tracing::warn!(error = %Error::from(rollback), "rollback failed");
            }
            Err(err)
        }
    }
}
