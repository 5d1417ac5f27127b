//! `with_tx`: one transaction on a pooled connection.
//!
//! - the body returns `Err` -> `ROLLBACK`, and that error is returned;
//! - the body panics -> the connection is dropped mid-transaction; the pool sees it broken
//!   and closes it, so the server rolls back; the panic continues;
//! - the body returns `Ok` -> `COMMIT`; a commit failure (a deferred constraint) is returned
//!   as [`Error::Commit`] and nothing is committed;
//! - the future is dropped at any await point -> the connection, still inside its
//!   transaction, is discarded by the pool and never reused, and its running statement is
//!   cancelled at once (see `PooledConn::arm`): nothing commits;
//! - the transaction runs past the pool's operation deadline
//!   ([`crate::PoolSettings::operation_deadline`]) -> as a dropped future, and the error is
//!   [`Error::Timeout`].
//!
//! [`with_tx_retry`] runs the body again after a transient failure, as a
//! [`RetryPolicy`] allows, whenever that cannot commit it twice: any transient failure
//! before `COMMIT` was sent (a lost connection included: the server rolls back a
//! transaction whose session ends), and a `COMMIT` the server refused (40001, 40P01); never
//! a `COMMIT` whose answer was lost or timed out.

use std::sync::atomic::{AtomicBool, Ordering};

use diesel_async::{AnsiTransactionManager, AsyncPgConnection, TransactionManager};

use tracing::{Instrument, Span};

use crate::error::Error;
use crate::pool::Pool;
use crate::retry::{AsDbError, RetryPolicy, Transient, retry_event};
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

/// [`TxBody`] for a body that runs once per attempt ([`with_tx_retry`]): an `async` closure
/// callable more than once, whose future is `Send`. Implemented for every such closure.
///
/// Let the closure capture by shared reference, and keep state it changes across attempts
/// in an atomic or a `Mutex`: a closure whose future borrows from the closure itself (a
/// capture used mutably, or a `move` capture used by reference) is only `AsyncFnMut`,
/// whose future Rust cannot yet bound as `Send`, and is refused.
pub trait TxBodyMut<A, R>: AsyncFnMut(A) -> R + FnMut(A) -> <Self as TxBodyMut<A, R>>::Fut {
    /// The closure's future.
    type Fut: Future<Output = R>;
}

impl<F, A, Fut, R> TxBodyMut<A, R> for F
where
    F: AsyncFnMut(A) -> R + FnMut(A) -> Fut,
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
/// happens on `Err`, panic, commit failure, cancellation and the operation deadline.
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
    attempt(pool, options, body)
        .await
        .map_err(Failure::into_error)
}

/// [`with_tx_opts`], running the body again after a transient failure as `policy` allows
/// (see the module docs for which failures; with [`RetryPolicy::none`] it is
/// [`with_tx_opts`]). Each attempt is a transaction of its own, on a connection checked out
/// for it, and the body is called once per attempt: it must be safe to run again (its
/// effects outside the transaction, if any, are yours to make repeatable) and run its
/// statements on the connection it is given.
///
/// Each retry is an INFO event `retrying database operation` with the attempt number and
/// the SQLSTATE (see [`retry_event`]). When the attempts run out, the last error is
/// returned as it is.
///
/// ```no_run
/// # async fn demo(pool: &aura_db::Pool) -> Result<(), aura_db::Error> {
/// use std::time::Duration;
/// use aura_db::{Isolation, RetryPolicy, TxOptions};
/// use diesel_async::SimpleAsyncConnection;
///
/// let policy = RetryPolicy::new(5, Duration::from_millis(10), Duration::from_millis(500))?;
/// let serializable = TxOptions { isolation: Isolation::Serializable, read_only: false };
/// aura_db::with_tx_retry(pool, serializable, &policy, async |conn| {
///     conn.batch_execute("UPDATE accounts SET balance = balance - 1 WHERE id = 1").await?;
///     Ok::<_, aura_db::Error>(())
/// })
/// .await?;
/// # Ok(()) }
/// ```
pub async fn with_tx_retry<T, E, F>(
    pool: &Pool,
    options: TxOptions,
    policy: &RetryPolicy,
    mut body: F,
) -> Result<T, E>
where
    for<'c> F: TxBodyMut<&'c mut AsyncPgConnection, Result<T, E>, Fut: Send> + Send,
    E: From<Error> + AsDbError + Send,
    T: Send,
{
    let mut attempt_no = 1;
    loop {
        let failure = match attempt(pool, options, &mut body).await {
            Ok(value) => return Ok(value),
            Err(failure) => failure,
        };
        match failure.transient() {
            Some(reason) if policy.allows_another(attempt_no) => {
                let backoff = policy.backoff(attempt_no);
                let (error_type, sqlstate) = failure.describe();
                retry_event(
                    "transaction",
                    attempt_no,
                    policy,
                    reason,
                    &error_type,
                    sqlstate,
                    backoff,
                );
                tokio::time::sleep(backoff).await;
                attempt_no += 1;
            }
            _ => return Err(failure.into_error()),
        }
    }
}

/// Why one transaction attempt failed, with what [`with_tx_retry`] needs to know: whether
/// `COMMIT` had been sent.
enum Failure<E> {
    /// Checkout, `BEGIN`, `COMMIT`, or the deadline.
    Db {
        /// The error.
        err: Error,
        /// `COMMIT` had been sent: a lost answer leaves the outcome unknown.
        commit_sent: bool,
    },
    /// The body's own error (`ROLLBACK` was sent; `COMMIT` never was).
    Body(E),
}

impl<E> Failure<E> {
    /// A failure of our own (checkout, `BEGIN`, `COMMIT`, the deadline), recorded on `span`.
    fn db(span: &Span, err: Error, commit_sent: bool) -> Self {
        telemetry::record_db_error(span, &err);
        Failure::Db { err, commit_sent }
    }
}

impl<E: From<Error> + Send> Failure<E> {
    fn into_error(self) -> E {
        match self {
            Failure::Db { err, .. } => E::from(err),
            Failure::Body(err) => err,
        }
    }
}

impl<E: AsDbError> Failure<E> {
    /// Why running the transaction again may succeed, when doing so cannot commit it twice.
    fn transient(&self) -> Option<Transient> {
        match self {
            Failure::Db { err, commit_sent } => err
                .transient()
                .filter(|t| !commit_sent || t.applied_nothing()),
            Failure::Body(err) => err.as_db_error().and_then(Error::transient),
        }
    }

    /// `error.type` and SQLSTATE for the retry event.
    fn describe(&self) -> (String, Option<&str>) {
        let err = match self {
            Failure::Db { err, .. } => Some(err),
            Failure::Body(err) => err.as_db_error(),
        };
        match err {
            Some(err) => (telemetry::variant_name(err), err.sqlstate()),
            None => ("body".to_owned(), None),
        }
    }
}

/// One transaction inside its span, under the pool's operation deadline.
async fn attempt<T, E, F>(pool: &Pool, options: TxOptions, body: F) -> Result<T, Failure<E>>
where
    for<'c> F: TxBody<&'c mut AsyncPgConnection, Result<T, E>>,
{
    let start = tokio::time::Instant::now();
    let span = if pool.tracing() {
        telemetry::transaction_span(pool.attributes())
    } else {
        Span::none()
    };
    let commit_sent = AtomicBool::new(false);
    let work = run(pool, options, body, &span, &commit_sent).instrument(span.clone());
    let result = match pool.settings().operation_deadline() {
        None => work.await,
        Some(deadline) => match tokio::time::timeout(deadline, work).await {
            Ok(result) => result,
            // The transaction's future is dropped: its armed connection is discarded and
            // its statement cancelled (`PooledConn::arm`).
            Err(_) => {
                let err = Error::Timeout {
                    target: pool.target().to_owned(),
                    after: deadline,
                };
                Err(Failure::db(&span, err, commit_sent.load(Ordering::SeqCst)))
            }
        },
    };
    telemetry::warn_if_slow(pool.settings().slow_op, "transaction", start.elapsed());
    result
}

/// [`attempt`] inside its span: records the statement that began the transaction,
/// its outcome and its own failures (checkout, begin, commit) on `span`.
async fn run<T, E, F>(
    pool: &Pool,
    options: TxOptions,
    body: F,
    span: &Span,
    commit_sent: &AtomicBool,
) -> Result<T, Failure<E>>
where
    for<'c> F: TxBody<&'c mut AsyncPgConnection, Result<T, E>>,
{
    let mut pooled = pool
        .get()
        .await
        .map_err(|err| Failure::db(span, err, false))?;
    // Dropped before the end (the caller gave up, or the deadline passed), the connection
    // is discarded and its statement cancelled (see `PooledConn::arm`).
    pooled.arm();
    let result = in_tx(&mut pooled, options, body, span, commit_sent).await;
    pooled.disarm();
    result
}

/// BEGIN, the body, then COMMIT or ROLLBACK on `conn`, recorded on `span`.
async fn in_tx<T, E, F>(
    conn: &mut AsyncPgConnection,
    options: TxOptions,
    body: F,
    span: &Span,
    commit_sent: &AtomicBool,
) -> Result<T, Failure<E>>
where
    for<'c> F: TxBody<&'c mut AsyncPgConnection, Result<T, E>>,
{
    let traced = !span.is_disabled();
    let begin = options.begin_sql();
    if traced {
        span.record("db.transaction.begin", begin.as_str());
    }
    AnsiTransactionManager::begin_transaction_sql(conn, &begin)
        .await
        .map_err(|e| Failure::db(span, Error::from(e), false))?;
    match body(&mut *conn).await {
        Ok(value) => {
            commit_sent.store(true, Ordering::SeqCst);
            AnsiTransactionManager::commit_transaction(conn)
                .await
                .map_err(|e| Failure::db(span, Error::commit(e), true))?;
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
            Err(Failure::Body(err))
        }
    }
}
