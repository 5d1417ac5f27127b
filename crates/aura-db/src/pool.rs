//! The connection pool: bb8 over diesel-async's `AsyncPgConnection`, with three things bb8
//! alone does not give (see docs/facts.md, "diesel-async and bb8"):
//!
//! - **Real connect errors.** bb8's `get()` only ever reports "timed out"; connect failures
//!   go to its error sink. Ours forwards them to every waiting caller, so a wrong password
//!   or a refused port surfaces at once as itself (the failure is kept in an `Arc`; each
//!   caller gets its own [`Error`] of the same variant, whose source is the shared one).
//! - **Fairness.** bb8 hands an idle connection to whoever asks first, so a task that just
//!   returned one takes it again and others starve. A FIFO semaphore with one permit per
//!   connection, taken before `get()`, serves waiters in arrival order.
//! - **No round trip on checkout.** bb8's test-on-checkout (a query per checkout) is off; a
//!   connection whose socket was closed (killed backend) is recognised locally
//!   (`is_broken`) and replaced, and one that fails mid-query is discarded on return.
//!
//! Idle connections are reused last-in first-out (bb8's `QueueStrategy::Lifo`).
//!
//! [`Pool::close`] shuts the pool down: the semaphore is closed (every waiting and every
//! later `get()` fails at once with [`Error::PoolClosed`]), the connections in use are waited for up to a bound, and
//! every connection is closed as it comes back.

use std::fmt;
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;
use std::time::Duration;

use bb8::{ErrorSink, ManageConnection};
use diesel_async::pooled_connection::PoolableConnection;
use diesel_async::{
    AnsiTransactionManager, AsyncPgConnection, SimpleAsyncConnection, TransactionManager,
};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, TryAcquireError, watch};
use tokio::time::Instant;
use tracing::Instrument;

use crate::abandon::Abandon;
use crate::config::{Config, PoolSettings};
use crate::connect::ConnectSpec;
use crate::error::{Error, fmt_duration};
use crate::lc_messages::LcMessagesCheck;
use crate::stats::{Counters, PoolStats};
use crate::telemetry::{self, DbAttributes};

/// A pool of connections as the app role. Cheap to clone; clones share the pool.
#[derive(Clone)]
pub struct Pool {
    inner: Arc<Inner>,
}

struct Inner {
    bb8: bb8::Pool<Manager>,
    gate: Arc<Semaphore>,
    closing: Arc<Closing>,
    connect_errors: watch::Sender<Option<Arc<Error>>>,
    lc_messages: Arc<LcMessagesCheck>,
    settings: PoolSettings,
    target: String,
    counters: Arc<Counters>,
    attrs: DbAttributes,
    /// Spans on (the default) or off ([`Pool::set_tracing`]).
    tracing: AtomicBool,
    /// For the cancel request of an abandoned operation (see [`crate::abandon`]).
    spec: Arc<ConnectSpec>,
}

/// A connection checked out of the [`Pool`]; returned to it on drop.
///
/// Dereferences to [`AsyncPgConnection`], so diesel-async queries take `&mut *conn` or
/// `&mut conn`.
pub struct PooledConn {
    // Field order is drop order: the connection goes back before the permit is released,
    // so the next waiter finds it idle.
    conn: bb8::PooledConnection<'static, Manager>,
    permit: Permit,
    abandon: Abandon,
}

/// A checkout's place in the pool, from the moment `get()` takes it: the semaphore permit,
/// then (dropped after it went back) the signal that wakes a [`Pool::close`] waiting for
/// the connections in use. A `get()` that fails after taking its permit releases it the
/// same way.
struct Permit {
    _permit: OwnedSemaphorePermit,
    returned: Returned,
}

/// Shared by the pool, its connection manager and every checked-out connection: whether
/// [`Pool::close`] was called, and the signal it waits on for connections to come back.
#[derive(Default)]
struct Closing {
    closed: AtomicBool,
    returned: Notify,
}

impl Closing {
    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }
}

/// The last field of a [`Permit`]: dropped after the permit went back, it wakes a
/// [`Pool::close`] that waits for the connections in use. Before `close` nothing is
/// signalled (one atomic load per return).
struct Returned(Arc<Closing>);

impl Drop for Returned {
    fn drop(&mut self) {
        if self.0.is_closed() {
            self.0.returned.notify_waiters();
        }
    }
}

impl Drop for PooledConn {
    /// After [`Pool::close`], the connection is closed on return instead of kept idle.
    /// Dropped mid-operation (armed), it is discarded and its statement cancelled.
    fn drop(&mut self) {
        self.abandon.on_drop(&mut self.conn);
        if self.permit.returned.0.is_closed() {
            mark_broken(&mut self.conn);
        }
    }
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
    let closing = Arc::new(Closing::default());
    let lc_messages = Arc::new(LcMessagesCheck::default());
    let counters = Arc::new(Counters::default());
    let attrs = DbAttributes::of(&dsn.pg_config());
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
        .error_sink(Box::new(ForwardErrors {
            waiters: connect_errors.clone(),
            closing: closing.clone(),
        }));
    let cancel_spec = Arc::new(spec.clone());
    let manager = Manager {
        spec,
        closing: closing.clone(),
        lc_messages: lc_messages.clone(),
        counters: counters.clone(),
        attrs: attrs.clone(),
    };
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
            closing,
            connect_errors,
            lc_messages,
            settings: settings.clone(),
            target,
            counters,
            attrs,
            tracing: AtomicBool::new(true),
            spec: cancel_spec,
        }),
    })
}

impl Pool {
    /// Checks out a connection, waiting in arrival order when all are in use.
    ///
    /// Errors: [`Error::PoolExhausted`] when every connection stayed in use for the whole
    /// checkout timeout; [`Error::Connect`] / [`Error::Auth`] / [`Error::Tls`] when a new
    /// connection was needed and could not be made; [`Error::PoolClosed`] after
    /// [`Pool::close`], at once, also for a call that was waiting when the pool was closed.
    pub async fn get(&self) -> Result<PooledConn, Error> {
        if !self.tracing() {
            return self.checkout().await;
        }
        let span = telemetry::checkout_span(&self.inner.attrs, self.inner.settings.max_conns);
        if span.is_disabled() {
            // No subscriber listens: nothing to time or record.
            return self.checkout().await;
        }
        let start = Instant::now();
        let got = self.checkout().instrument(span.clone()).await;
        let waited = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
        span.record("db.client.connection.wait_time_us", waited);
        if let Err(err) = &got {
            telemetry::record_db_error(&span, err);
        }
        got
    }

    /// [`Pool::get`] without its span.
    async fn checkout(&self) -> Result<PooledConn, Error> {
        let inner = &self.inner;
        // Set while this checkout waits: counts it in `PoolStats::waiters`, then in
        // `checkout_waits` and `checkout_wait_time`.
        let mut waiting = None;
        let start = Instant::now();
        let deadline = start + inner.settings.checkout_timeout;
        // A free permit is taken at once (tokio hands released permits to queued waiters
        // first, so this never jumps the queue); only a wait sets up a timer.
        let permit = match inner.gate.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(TryAcquireError::Closed) => return Err(self.closed_error()),
            Err(TryAcquireError::NoPermits) => {
                waiting = Some(inner.counters.wait());
                match tokio::time::timeout_at(deadline, inner.gate.clone().acquire_owned()).await {
                    Ok(Ok(permit)) => permit,
                    Ok(Err(_closed)) => return Err(self.closed_error()),
                    // Timed out at the deadline: the wait was the whole checkout timeout
                    // (timer slack is not worth a "5.001s" in the message).
                    Err(_) => {
                        inner.counters.timed_out();
                        return Err(Error::PoolExhausted {
                            max: inner.settings.max_conns,
                            waited: inner.settings.checkout_timeout,
                        });
                    }
                }
            }
        };
        let permit = Permit {
            _permit: permit,
            returned: Returned(inner.closing.clone()),
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
                Poll::Pending => {
                    waiting.get_or_insert_with(|| inner.counters.wait());
                    tokio::select! {
                    biased;
                    got = &mut checkout => got,
                    _ = errors.changed() => {
                        let err = errors.borrow_and_update().clone();
                        if let Some(err) = err {
                            return Err(Error::shared(&err, &inner.target));
                        }
                        continue;
                    }
                    () = tokio::time::sleep_until(deadline) => {
                        return Err(self.new_connection_timeout(start.elapsed()));
                    }
                    }
                }
            };
            match got {
                Ok(mut conn) => {
                    if inner.closing.is_closed() {
                        // Made or found while the pool was closing: closed, not handed out.
                        mark_broken(&mut conn);
                        return Err(self.closed_error());
                    }
                    if conn.is_broken() {
                        // Dropping hands it back to bb8, which sees it broken and discards it.
                        tracing::debug!(target = %inner.target, "discarded a closed connection at checkout");
                        drop(conn);
                        continue;
                    }
                    inner.counters.checked_out();
                    drop(waiting);
                    let abandon = Abandon::new(inner.spec.clone());
                    return Ok(PooledConn {
                        conn,
                        permit,
                        abandon,
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
        self.inner.counters.timed_out();
        Error::Connect {
            target: self.inner.target.clone(),
            cause: format!(
                "no new connection could be made within {}",
                fmt_duration(waited)
            ),
            source: None,
        }
    }

    fn closed_error(&self) -> Error {
        Error::PoolClosed {
            target: self.inner.target.clone(),
        }
    }

    /// Closes the pool: from now on it hands out no connection ([`Pool::get`] fails at once,
    /// also for the calls already waiting), closes its idle connections, and waits up to
    /// `bound` for the connections in use to come back, closing each as it does. Returns
    /// how many were still in use when `bound` ran out (0: all came back and are closed);
    /// those are closed whenever their holders drop them. Calling it again waits again.
    ///
    /// Every clone of the pool is closed: they share it.
    pub async fn close(&self, bound: Duration) -> u32 {
        let inner = &self.inner;
        let deadline = Instant::now() + bound;
        let first = !inner.closing.closed.swap(true, Ordering::SeqCst);
        inner.gate.close();
        if first {
            tracing::debug!(target = %inner.target, "pool closing");
        }
        loop {
            self.close_idle();
            // Registered before the count is read: a connection returned after the read
            // wakes us (its `Returned` loads `closed` after its permit went back).
            let returned = inner.closing.returned.notified();
            let mut returned = std::pin::pin!(returned);
            returned.as_mut().enable();
            if self.state().in_use == 0 {
                self.close_idle();
                return 0;
            }
            if tokio::time::timeout_at(deadline, returned).await.is_err() {
                self.close_idle();
                let in_use = self.state().in_use;
                tracing::warn!(
                    target = %inner.target,
                    in_use,
                    bound = %fmt_duration(bound),
                    "pool closed with connections still in use"
                );
                return in_use;
            }
        }
    }

    /// Takes every idle connection out of bb8 and drops it marked broken, so bb8 closes it
    /// (bb8 has no close of its own; its attempts to replace them fail in
    /// `Manager::connect` once the pool is closed).
    fn close_idle(&self) {
        let bb8 = &self.inner.bb8;
        for _ in 0..bb8.state().idle_connections {
            let mut checkout = std::pin::pin!(bb8.get_owned());
            let waker = std::task::Waker::noop();
            let mut cx = std::task::Context::from_waker(waker);
            // Idle connections are handed out on the first poll; anything else (a new
            // connection would be needed) is not waited for.
            match checkout.as_mut().poll(&mut cx) {
                Poll::Ready(Ok(mut conn)) => mark_broken(&mut conn),
                _ => break,
            }
        }
    }

    /// True once [`Pool::close`] was called (on this pool or any clone of it).
    pub fn is_closed(&self) -> bool {
        self.inner.closing.is_closed()
    }

    /// The server's `lc_messages` as the pool's first connection read it (`None` before
    /// one was made). Not English (`C`, `POSIX`, `en_*`) means the SQLSTATEs recognised by
    /// their message are missing (see [`Error::sqlstate`]); the pool warns once.
    pub fn server_lc_messages(&self) -> Option<&str> {
        self.inner.lc_messages.value()
    }

    /// The settings the pool was opened with.
    pub fn settings(&self) -> &PoolSettings {
        &self.inner.settings
    }

    /// The redacted DSN the pool connects to.
    pub fn target(&self) -> &str {
        &self.inner.target
    }

    /// The pool's gauges and counters (see [`PoolStats`]): for metrics.
    pub fn stats(&self) -> PoolStats {
        let inner = &self.inner;
        let bb8 = inner.bb8.state();
        let mut stats = PoolStats {
            size: bb8.connections,
            max_size: inner.settings.max_conns,
            idle: bb8.idle_connections,
            in_use: self.state().in_use,
            closed_broken: bb8.statistics.connections_closed_broken,
            closed_idle: bb8.statistics.connections_closed_idle_timeout,
            ..PoolStats::default()
        };
        inner.counters.fill(&mut stats);
        stats
    }

    /// The database, host and port the pool's spans name (no user, no password).
    pub fn attributes(&self) -> &DbAttributes {
        &self.inner.attrs
    }

    /// Turns this pool's spans (checkouts, [`crate::with_tx`]) off or back on, for every
    /// clone. For measuring what the spans cost; with no subscriber listening they are
    /// already next to free, so production code has no reason to call this.
    pub fn set_tracing(&self, on: bool) {
        self.inner.tracing.store(on, Ordering::Relaxed);
    }

    /// Whether this pool makes spans ([`Pool::set_tracing`]).
    pub fn tracing(&self) -> bool {
        self.inner.tracing.load(Ordering::Relaxed)
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

    /// Arms the connection for an operation: until [`PooledConn::disarm`], dropping it
    /// (the caller abandoned the call mid-statement) cancels its running statement and
    /// makes the pool discard it, so no caller is ever handed a connection still busy with
    /// an abandoned statement (see `abandon.rs`). [`crate::with_tx`] arms its connection;
    /// call this around your own statements on a connection from [`Pool::get`].
    pub fn arm(&mut self) {
        self.abandon.arm();
    }

    /// Ends the operation [`PooledConn::arm`] began: the connection goes back to the pool
    /// as usual when dropped.
    pub fn disarm(&mut self) {
        self.abandon.disarm();
    }

    /// True between [`PooledConn::arm`] and [`PooledConn::disarm`].
    pub fn is_armed(&self) -> bool {
        self.abandon.is_armed()
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
    closing: Arc<Closing>,
    /// Warns once when the server's messages are not English (see `crate::lc_messages`).
    lc_messages: Arc<LcMessagesCheck>,
    counters: Arc<Counters>,
    attrs: DbAttributes,
}

impl ManageConnection for Manager {
    type Connection = AsyncPgConnection;
    type Error = Error;

    async fn connect(&self) -> Result<AsyncPgConnection, Error> {
        if self.closing.is_closed() {
            // bb8 replaces closed connections to keep `min_idle`: not any more.
            return Err(Error::PoolClosed {
                target: self.spec.target().to_owned(),
            });
        }
        let span = telemetry::connect_span(&self.attrs);
        let made = self.spec.connect().instrument(span.clone()).await;
        self.counters.connected(made.is_ok());
        let mut conn = match made {
            Ok(conn) => conn,
            Err(err) => {
                telemetry::record_db_error(&span, &err);
                return Err(err);
            }
        };
        self.lc_messages.once(&mut conn, self.spec.target()).await;
        Ok(conn)
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
struct ForwardErrors {
    waiters: watch::Sender<Option<Arc<Error>>>,
    closing: Arc<Closing>,
}

impl fmt::Debug for ForwardErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ForwardErrors")
    }
}

impl ErrorSink<Error> for ForwardErrors {
    fn sink(&self, error: Error) {
        // Once closed, the failures are the closed pool's own refusals (`Manager::connect`):
        // not worth a warning, but a `get()` waiting for a new connection ends with it.
        if !self.closing.is_closed() {
            tracing::warn!(error = %crate::error::error_chain(&error), "connection attempt failed");
        }
        self.waiters.send_replace(Some(Arc::new(error)));
    }

    fn boxed_clone(&self) -> Box<dyn ErrorSink<Error>> {
        Box::new(self.clone())
    }
}
