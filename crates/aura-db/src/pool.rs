//! The connection pool: bb8 over diesel-async's `AsyncPgConnection`, with three things bb8
//! alone does not give (see docs/facts.md, "diesel-async and bb8"):
//!
//! - **Real connect errors.** bb8's `get()` only ever reports "timed out"; connect failures
//!   go to its error sink. Ours forwards them to every waiting caller, so a wrong password
//!   or a refused port surfaces at once as itself.
//! - **Fairness.** bb8 hands an idle connection to whoever asks first, so a task that just
//!   returned one takes it again and others starve. A FIFO semaphore with one permit per
//!   connection, taken before `get()`, serves waiters in arrival order.
//! - **No round trip on checkout.** bb8's test-on-checkout (a query per checkout) is off; a
//!   connection whose socket was closed (killed backend) is recognised locally
//!   (`is_broken`) and replaced, and one that fails mid-query is discarded on return.
//!
//! Idle connections are reused last-in first-out (bb8's `QueueStrategy::Lifo`).

use std::fmt;
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bb8::{ErrorSink, ManageConnection};
use diesel_async::pooled_connection::PoolableConnection;
use diesel_async::{
    AnsiTransactionManager, AsyncPgConnection, SimpleAsyncConnection, TransactionManager,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError, watch};
use tokio::time::Instant;

use crate::config::{Config, PoolSettings};
use crate::connect::ConnectSpec;
use crate::error::{Error, fmt_duration};

/// A pool of connections as the app role. Cheap to clone; clones share the pool.
#[derive(Clone)]
pub struct Pool {
    inner: Arc<Inner>,
}

struct Inner {
    bb8: bb8::Pool<Manager>,
    gate: Arc<Semaphore>,
    connect_errors: watch::Sender<Option<Error>>,
    settings: PoolSettings,
    target: String,
}

/// A connection checked out of the [`Pool`]; returned to it on drop.
///
/// Dereferences to [`AsyncPgConnection`], so diesel-async queries take `&mut *conn` or
/// `&mut conn`.
pub struct PooledConn {
    // Field order is drop order: the connection goes back before the permit is released,
    // so the next waiter finds it idle.
    conn: bb8::PooledConnection<'static, Manager>,
    _permit: OwnedSemaphorePermit,
}

/// Opens the pool described by `config` (app role, `config.app_url()`).
///
/// With `min_conns > 0` the first connections are made before this returns, so a wrong
/// password or an unreachable server fails here, with its real cause.
pub async fn open(config: &Config) -> Result<Pool, Error> {
    open_with(config.app_url(), config.pool()).await
}

/// Opens a pool on any DSN with explicit settings (tests, tools).
pub async fn open_with(dsn: &crate::Dsn, settings: &PoolSettings) -> Result<Pool, Error> {
    let spec = ConnectSpec::pooled(dsn, settings);
    let target = spec.target().to_owned();
    let (connect_errors, _) = watch::channel(None);
    let builder = bb8::Pool::builder()
        .max_size(settings.max_conns)
        .min_idle(Some(settings.min_conns).filter(|n| *n > 0))
        .idle_timeout(Some(settings.max_conn_idle))
        .connection_timeout(settings.checkout_timeout)
        .test_on_check_out(false)
        // The connection returned last is handed out first: its backend is warm in the
        // CPU caches, and the ones idle longest are those the idle timeout closes.
        .queue_strategy(bb8::QueueStrategy::Lifo)
        .retry_connection(false)
        .error_sink(Box::new(ForwardErrors(connect_errors.clone())));
    let manager = Manager { spec };
    let bb8 = if settings.min_conns > 0 {
        builder.build(manager).await?
    } else {
        builder.build_unchecked(manager)
    };
    tracing::debug!(target = %target, max = settings.max_conns, "pool opened");
    Ok(Pool {
        inner: Arc::new(Inner {
            bb8,
            gate: Arc::new(Semaphore::new(settings.max_conns as usize)),
            connect_errors,
            settings: settings.clone(),
            target,
        }),
    })
}

impl Pool {
    /// Checks out a connection, waiting in arrival order when all are in use.
    ///
    /// Errors: [`Error::PoolExhausted`] when every connection stayed in use for the whole
    /// checkout timeout; [`Error::Connect`] / [`Error::Auth`] when a new connection was
    /// needed and could not be made.
    pub async fn get(&self) -> Result<PooledConn, Error> {
        let inner = &self.inner;
        let start = Instant::now();
        let deadline = start + inner.settings.checkout_timeout;
        // A free permit is taken at once (tokio hands released permits to queued waiters
        // first, so this never jumps the queue); only a wait sets up a timer.
        let permit = match inner.gate.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(TryAcquireError::Closed) => unreachable!("the pool's semaphore is never closed"),
            Err(TryAcquireError::NoPermits) => {
                match tokio::time::timeout_at(deadline, inner.gate.clone().acquire_owned()).await {
                    Ok(Ok(permit)) => permit,
                    Ok(Err(_closed)) => unreachable!("the pool's semaphore is never closed"),
                    // Timed out at the deadline: the wait was the whole checkout timeout
                    // (timer slack is not worth a "5.001s" in the message).
                    Err(_) => {
                        return Err(Error::PoolExhausted {
                            max: inner.settings.max_conns,
                            waited: inner.settings.checkout_timeout,
                        });
                    }
                }
            }
        };
        // Holding a permit guarantees an idle connection or room for a new one.
        let mut errors = inner.connect_errors.subscribe();
        errors.mark_unchanged();
        loop {
            let mut checkout = std::pin::pin!(inner.bb8.get_owned());
            // An idle connection is ready on the first poll: then neither the error watch
            // nor a timer is set up. Otherwise wait for whichever comes first.
            let first = std::future::poll_fn(|cx| Poll::Ready(checkout.as_mut().poll(cx))).await;
            let got = match first {
                Poll::Ready(got) => got,
                Poll::Pending => tokio::select! {
                    biased;
                    got = &mut checkout => got,
                    _ = errors.changed() => {
                        let err = errors.borrow_and_update().clone();
                        if let Some(err) = err {
                            return Err(err);
                        }
                        continue;
                    }
                    () = tokio::time::sleep_until(deadline) => {
                        return Err(self.new_connection_timeout(start.elapsed()));
                    }
                },
            };
            match got {
                Ok(mut conn) => {
                    if conn.is_broken() {
                        // Dropping hands it back to bb8, which sees it broken and discards it.
                        tracing::debug!(target = %inner.target, "discarded a closed connection at checkout");
                        drop(conn);
                        continue;
                    }
                    return Ok(PooledConn {
                        conn,
                        _permit: permit,
                    });
                }
                Err(bb8::RunError::User(err)) => return Err(err),
                Err(bb8::RunError::TimedOut) => {
                    return Err(self.new_connection_timeout(start.elapsed()));
                }
            }
        }
    }

    fn new_connection_timeout(&self, waited: Duration) -> Error {
        Error::Connect {
            target: self.inner.target.clone(),
            cause: format!(
                "no new connection could be made within {}",
                fmt_duration(waited)
            ),
        }
    }

    /// The settings the pool was opened with.
    pub fn settings(&self) -> &PoolSettings {
        &self.inner.settings
    }

    /// The redacted DSN the pool connects to.
    pub fn target(&self) -> &str {
        &self.inner.target
    }

    /// Open and idle connection counts.
    pub fn state(&self) -> PoolState {
        let s = self.inner.bb8.state();
        PoolState {
            connections: s.connections,
            idle: s.idle_connections,
            in_use: self.inner.settings.max_conns - self.inner.gate.available_permits() as u32,
        }
    }
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("target", &self.inner.target)
            .field("state", &self.state())
            .finish()
    }
}

/// A snapshot of the pool's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolState {
    /// Connections open (idle and checked out).
    pub connections: u32,
    /// Connections idle in the pool.
    pub idle: u32,
    /// Checkouts currently held.
    pub in_use: u32,
}

/// Marks `conn` so the pool closes it when it comes back instead of handing it out again.
///
/// For a connection whose session the server ended ([`Error::Query`] with
/// `connection_lost`): a backend ended by `pg_terminate_backend` or a shutdown sends its
/// FATAL error before it exits, so the statement fails at once while the socket closes only
/// later; until the client reads that EOF, the pool's local "is it closed?" check still
/// passes. The mark is diesel's own "broken" state (the transaction manager in error), which
/// the pool checks on return; it works inside a [`crate::with_tx`] body too.
pub fn mark_broken(conn: &mut AsyncPgConnection) {
    <AnsiTransactionManager as TransactionManager<_>>::transaction_manager_status_mut(conn)
        .set_in_error();
}

impl PooledConn {
    /// Marks this connection so the pool closes it on return (see [`mark_broken`]).
    pub fn mark_broken(&mut self) {
        mark_broken(&mut self.conn);
    }

    /// True when the connection can no longer be used (closed socket, open or failed
    /// transaction); the pool discards such a connection when it comes back.
    pub fn is_broken(&mut self) -> bool {
        PoolableConnection::is_broken(&mut *self.conn)
    }
}

impl Deref for PooledConn {
    type Target = AsyncPgConnection;
    fn deref(&self) -> &AsyncPgConnection {
        &self.conn
    }
}

impl DerefMut for PooledConn {
    fn deref_mut(&mut self) -> &mut AsyncPgConnection {
        &mut self.conn
    }
}

/// bb8's view of how to make and judge connections.
struct Manager {
    spec: ConnectSpec,
}

impl ManageConnection for Manager {
    type Connection = AsyncPgConnection;
    type Error = Error;

    async fn connect(&self) -> Result<AsyncPgConnection, Error> {
        self.spec.connect().await
    }

    async fn is_valid(&self, conn: &mut AsyncPgConnection) -> Result<(), Error> {
        conn.batch_execute("SELECT 1").await.map_err(Error::from)
    }

    fn has_broken(&self, conn: &mut AsyncPgConnection) -> bool {
        PoolableConnection::is_broken(conn)
    }
}

/// bb8's error sink: publishes each connect failure to the callers waiting in `get()`.
#[derive(Clone)]
struct ForwardErrors(watch::Sender<Option<Error>>);

impl fmt::Debug for ForwardErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ForwardErrors")
    }
}

impl ErrorSink<Error> for ForwardErrors {
    fn sink(&self, error: Error) {
        tracing::warn!(error = %error, "connection attempt failed");
        self.0.send_replace(Some(error));
    }

    fn boxed_clone(&self) -> Box<dyn ErrorSink<Error>> {
        Box::new(self.clone())
    }
}
