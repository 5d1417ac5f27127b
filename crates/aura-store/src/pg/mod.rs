//! [`PgStore`]: the traits over the aura-db pool.
//!
//! One statement per call wherever one statement is atomic on its own; a write of several
//! statements runs inside [`aura_db::with_tx`]. Hot writes are the cached statement types
//! of `crate::sql`; reads and inserts are diesel's DSL, which diesel caches too.

mod attempts;
mod conversation_edit;
mod conversations;
mod exists;
#[cfg(test)]
mod fixtures;
mod listings;
mod one_row;
mod replica;
mod requests;
mod runs;
mod traced;
mod turn_pages;
mod turns;

use std::time::Duration;

use aura_db::{AsyncPgConnection, Config, Pool, PooledConn, RetryPolicy, TxBody, TxOptions};

use crate::error::StoreError;

/// The Postgres implementation of every store trait. Cheap to clone (the pool is shared).
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: Pool,
    /// Spans on (the default) or off ([`PgStore::with_tracing`]).
    tracing: bool,
    /// Retries of the store's own operations ([`PgStore::with_retry`]); none by default.
    retry: RetryPolicy,
    /// The read replica, if any, and this handle's consistency (see `replica/`).
    reads: replica::ReadRoute,
}

impl PgStore {
    /// A store over an open pool (app role).
    pub fn new(pool: Pool) -> Self {
        PgStore {
            pool,
            tracing: true,
            retry: RetryPolicy::none(),
            reads: replica::ReadRoute::primary_only(),
        }
    }

    /// Makes this store's operations run again after a transient failure, as `policy`
    /// allows (attempts, backoff), wherever running them again cannot apply them twice:
    ///
    /// - reads, and the creates and appends given a caller-supplied id (their idempotency
    ///   key), after any transient failure: serialization failure (40001), deadlock
    ///   (40P01), no connection to be had, a connection lost mid-call, the operation
    ///   deadline passing;
    /// - every other write only after a failure that proves it applied nothing: 40001,
    ///   40P01, or no connection to be had (nothing was sent). A write that may have
    ///   committed (its connection lost, its deadline passed) is never repeated: the
    ///   caller gets [`StoreError::Unavailable`].
    ///
    /// Each retry is an INFO event `retrying database operation` inside the operation's
    /// span, with `retry.attempt`, `retry.reason` and the SQLSTATE. The default is
    /// [`RetryPolicy::none`]: one attempt.
    pub fn with_retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// The retry policy of this store's operations ([`PgStore::with_retry`]).
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    /// Turns the `tracing` spans of this store's operations, and of its pool's checkouts
    /// and transactions ([`Pool::set_tracing`]), off (`false`) or back on. For measuring
    /// what the spans cost (`just bench`); with no subscriber listening they are already
    /// next to free. The slow-operation warning stays on.
    pub fn with_tracing(mut self, on: bool) -> Self {
        self.tracing = on;
        self.pool.set_tracing(on);
        if let Some(read_pool) = self.reads.pool() {
            read_pool.set_tracing(on);
        }
        self
    }

    /// Whether this store's operations make spans ([`PgStore::with_tracing`]).
    pub fn tracing(&self) -> bool {
        self.tracing
    }

    /// Opens the pool `config` describes and wraps it (see [`aura_db::open`]); with a read
    /// URL (`AURA_DB_READ_URL`), also the read pool on that replica (see
    /// [`PgStore::with_read_pool`]; a replica that cannot be reached is a warning, not an
    /// error: reads go to the primary until it answers).
    ///
    /// Errors: the database cannot be reached or refuses the credentials, as
    /// [`StoreError::Unavailable`] or [`StoreError::Database`].
    pub async fn open(config: &Config) -> Result<Self, StoreError> {
        let store = PgStore::new(aura_db::open(config).await?);
        Ok(store.with_read_config(config).await)
    }

    /// The pool underneath.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Closes the store: it hands out no more connections, so every call made from now on
    /// (and every call waiting for a connection) fails with [`StoreError::Closed`]; waits up
    /// to `bound` for the calls in progress to finish, and closes every connection. Returns
    /// how many connections were still in use when `bound` ran out (0: all finished and
    /// every connection is closed); those close when their calls end.
    ///
    /// Clones of the store, and the pool underneath (see [`Pool::close`]), are closed too.
    pub async fn close(&self, bound: Duration) -> u32 {
        let in_use = self.pool.close(bound).await;
        match self.reads.pool() {
            Some(read_pool) => in_use + read_pool.close(bound).await,
            None => in_use,
        }
    }

    /// True once [`PgStore::close`] was called (on this store, a clone, or its pool).
    pub fn is_closed(&self) -> bool {
        self.pool.is_closed()
    }

    /// A connection for one operation, armed (see [`PooledConn::arm`]): an operation
    /// dropped by its caller before [`settle`] cancels its statement and the connection is
    /// discarded, never handed to the next caller still busy. [`StoreError::Closed`] once
    /// the store is closed (the pool's [`aura_db::Error::PoolClosed`]).
    async fn conn(&self) -> Result<PooledConn, StoreError> {
        let mut conn = self.pool.get().await?;
        conn.arm();
        Ok(conn)
    }

    /// [`aura_db::with_tx_opts`] on the store's pool, failing as [`StoreError::Closed`] once
    /// the store is closed. Boxed: the transaction's future is kilobytes, and the operations
    /// that reach it only sometimes (a torn read's snapshot) would otherwise carry it in
    /// every call's future.
    async fn tx<T, F>(&self, options: TxOptions, body: F) -> Result<T, StoreError>
    where
        for<'c> F: AsyncFnOnce(&'c mut AsyncPgConnection) -> Result<T, StoreError>
            + TxBody<&'c mut AsyncPgConnection, Result<T, StoreError>, Fut: Send>
            + Send,
        T: Send,
    {
        Box::pin(aura_db::with_tx_opts(&self.pool, options, body)).await
    }
}

/// Passes an operation's result through, ending the operation: the connection's statements
/// are done (a [`PooledConn`] from [`PgStore::conn`] is disarmed); when it failed because the
/// connection is gone ([`StoreError::Unavailable`]), first marks the connection broken
/// ([`aura_db::mark_broken`]), so the pool discards it rather than handing it out again.
fn settle<C, T>(conn: &mut C, result: Result<T, StoreError>) -> Result<T, StoreError>
where
    C: Operation + ?Sized,
{
    if let Err(StoreError::Unavailable(_)) = &result {
        aura_db::mark_broken(conn.connection());
    }
    conn.finish();
    result
}

/// What [`settle`] ends: an operation on a pooled connection, or a statement inside a
/// transaction body (whose connection `with_tx` guards).
trait Operation {
    fn connection(&mut self) -> &mut AsyncPgConnection;
    fn finish(&mut self) {}
}

impl Operation for PooledConn {
    fn connection(&mut self) -> &mut AsyncPgConnection {
        self
    }
    fn finish(&mut self) {
        self.disarm();
    }
}

impl Operation for AsyncPgConnection {
    fn connection(&mut self) -> &mut AsyncPgConnection {
        self
    }
}
