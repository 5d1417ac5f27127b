//! [`PoolStats`]: the pool's counters, for a service to export as metrics.
//!
//! The counters are atomics the pool updates on each checkout and connect (relaxed
//! ordering: each is exact on its own; a snapshot is not one instant across all of them);
//! the gauges come from bb8's `state()` and the pool's FIFO gate.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use tokio::time::Instant;

/// A snapshot of a [`crate::Pool`]'s gauges and counters ([`crate::Pool::stats`]).
///
/// Gauges are the state now; counters only grow, from the pool's opening.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct PoolStats {
    /// Gauge: connections open (idle and in use).
    pub size: u32,
    /// The most connections the pool opens (`max_conns`).
    pub max_size: u32,
    /// Gauge: connections open and idle.
    pub idle: u32,
    /// Gauge: checkouts currently held (connections handed out, or being made for a caller).
    pub in_use: u32,
    /// Gauge: callers waiting now in [`crate::Pool::get`] (for a free slot or a new
    /// connection).
    pub waiters: u64,
    /// Counter: physical connections made.
    pub connects: u64,
    /// Counter: attempts to make a connection that failed (refused, auth, TLS, timeout).
    pub connect_errors: u64,
    /// Counter: successful checkouts.
    pub checkouts: u64,
    /// Counter: checkouts (successful or not) that had to wait, for a slot or a new
    /// connection, instead of finding an idle connection at once.
    pub checkout_waits: u64,
    /// Counter: total time those waiting checkouts waited.
    pub checkout_wait_time: Duration,
    /// Counter: checkouts that failed because the checkout timeout ran out
    /// ([`crate::Error::PoolExhausted`], or no new connection within the timeout).
    pub timeouts: u64,
    /// Counter: connections closed because they were broken (bb8's count).
    pub closed_broken: u64,
    /// Counter: connections closed after the idle timeout (bb8's count).
    pub closed_idle: u64,
}

/// The pool's own counters (the parts of [`PoolStats`] bb8 does not keep).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    waiters: AtomicU64,
    connects: AtomicU64,
    connect_errors: AtomicU64,
    checkouts: AtomicU64,
    checkout_waits: AtomicU64,
    checkout_wait_nanos: AtomicU64,
    timeouts: AtomicU64,
}

impl Counters {
    pub(crate) fn connected(&self, ok: bool) {
        if ok {
            self.connects.fetch_add(1, Relaxed);
        } else {
            self.connect_errors.fetch_add(1, Relaxed);
        }
    }

    pub(crate) fn checked_out(&self) {
        self.checkouts.fetch_add(1, Relaxed);
    }

    pub(crate) fn timed_out(&self) {
        self.timeouts.fetch_add(1, Relaxed);
    }

    /// Marks the start of a wait; the guard ends it (also when the checkout is cancelled).
    pub(crate) fn wait(self: &Arc<Self>) -> Waiting {
        self.waiters.fetch_add(1, Relaxed);
        Waiting {
            counters: self.clone(),
            since: Instant::now(),
        }
    }

    /// The counters' part of a snapshot.
    pub(crate) fn fill(&self, stats: &mut PoolStats) {
        stats.waiters = self.waiters.load(Relaxed);
        stats.connects = self.connects.load(Relaxed);
        stats.connect_errors = self.connect_errors.load(Relaxed);
        stats.checkouts = self.checkouts.load(Relaxed);
        stats.checkout_waits = self.checkout_waits.load(Relaxed);
        stats.checkout_wait_time = Duration::from_nanos(self.checkout_wait_nanos.load(Relaxed));
        stats.timeouts = self.timeouts.load(Relaxed);
    }
}

/// A checkout that waits: counted in `waiters` while it lives; on drop it adds one
/// `checkout_waits` and its duration to `checkout_wait_time`.
pub(crate) struct Waiting {
    counters: Arc<Counters>,
    since: Instant,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        let c = &self.counters;
        c.waiters.fetch_sub(1, Relaxed);
        c.checkout_waits.fetch_add(1, Relaxed);
        let nanos = u64::try_from(self.since.elapsed().as_nanos()).unwrap_or(u64::MAX);
        c.checkout_wait_nanos.fetch_add(nanos, Relaxed);
    }
}
