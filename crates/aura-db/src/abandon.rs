//! A call abandoned by its caller: the future of an operation dropped (a caller's timeout,
//! a `select!` that took another branch) while its statement was still running on the
//! server.
//!
//! Without care the connection goes back to the pool looking idle, with the statement
//! still running (waiting on a row lock, say): the next, unrelated caller is handed that
//! connection and waits behind it, and the abandoned write commits when the lock goes
//! although its caller saw a timeout.
//!
//! A [`PooledConn`](crate::PooledConn) is *armed* for the duration of an operation
//! ([`PooledConn::arm`](crate::PooledConn::arm) / [`disarm`](crate::PooledConn::disarm);
//! [`crate::with_tx`] and every aura-store operation do it). Dropped while armed, the
//! connection is marked broken, so the pool discards it instead of handing it out, and a
//! cancel request for its session is sent on a spawned task (over the pool's TLS
//! settings), so the server stops the statement now (it is rolled back) rather than when
//! it would have ended or when the server notices the closed socket. A call dropped after
//! the server finished its statement (reply in flight) may have committed; a late cancel
//! then hits a session no one will use again (the connection is discarded).

use std::sync::Arc;

use diesel_async::AsyncPgConnection;

use crate::connect::ConnectSpec;
use crate::pool::mark_broken;

/// The guard of one checked-out connection: armed or not, and how to reach the server for
/// a cancel request.
pub(crate) struct Abandon {
    armed: bool,
    spec: Arc<ConnectSpec>,
}

impl Abandon {
    pub(crate) fn new(spec: Arc<ConnectSpec>) -> Self {
        Abandon { armed: false, spec }
    }

    pub(crate) fn arm(&mut self) {
        self.armed = true;
    }

    pub(crate) fn disarm(&mut self) {
        self.armed = false;
    }

    pub(crate) fn is_armed(&self) -> bool {
        self.armed
    }

    /// Called when the connection is dropped: if an operation was still in progress, marks
    /// the connection broken (the pool discards it) and cancels its statement.
    pub(crate) fn on_drop(&mut self, conn: &mut AsyncPgConnection) {
        if !std::mem::take(&mut self.armed) {
            return;
        }
        mark_broken(conn);
        let token = conn.cancel_token();
        let spec = self.spec.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                tracing::debug!(
                    target = %spec.target(),
                    "operation abandoned mid-call: cancelling its statement, discarding the connection"
                );
                runtime.spawn(async move {
                    if let Err(err) = spec.cancel(&token).await {
                        // The connection is discarded anyway: the server ends the statement
                        // when it notices the closed socket (client_connection_check_interval).
                        tracing::warn!(error = %err, "cancel of an abandoned statement failed");
                    }
                });
            }
            Err(_) => {
                tracing::debug!("operation abandoned outside a runtime: connection discarded");
            }
        }
    }
}
