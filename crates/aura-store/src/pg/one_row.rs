//! One row of a statement, returned only once the server has reported the statement done.
//!
//! diesel-async's `get_result` (and `first`, built on it) resolves at the statement's first
//! row and drops the rest of the server's answer. For an autocommit write that is too
//! early: Postgres commits the statement when it reaches the `Sync` that follows it, after
//! the row went out, and a commit that fails there (its backend terminated, the server
//! restarting, a serialization failure or a deferred constraint at commit) undoes a write
//! whose caller was told it succeeded. The chaos soak saw exactly that: an append
//! acknowledged with its seq, then absent. [`OneRowDsl::one_row`] reads the answer to its
//! end (`ReadyForQuery`, past the commit, as `load` does), at no extra round trip.
//!
//! aura-store's `clippy.toml` disallows `get_result` and `first`, so every statement of
//! the store goes through here.

use std::pin::Pin;
use std::task::{Context, Poll};

use diesel::QueryResult;
use diesel_async::methods::LoadQuery;
use diesel_async::return_futures::LoadFuture;
use diesel_async::{AsyncConnectionCore, RunQueryDsl};

/// `one_row`: `get_result` that waits for the end of the statement.
pub(crate) trait OneRowDsl<Conn>: RunQueryDsl<Conn> + Sized {
    /// The first row of this query on `conn`, once the server reported the statement
    /// complete (and, outside a transaction, committed); `Err(NotFound)` when it returned
    /// none (`.optional()` makes that `None`, as after `get_result`).
    fn one_row<'query, 'conn, U>(
        self,
        conn: &'conn mut Conn,
    ) -> OneRow<LoadFuture<'conn, 'query, Self, Conn, U>>
    where
        U: Send,
        Conn: AsyncConnectionCore,
        Self: LoadQuery<'query, Conn, U> + 'query,
    {
        OneRow(self.load(conn))
    }
}

impl<Q: RunQueryDsl<Conn>, Conn> OneRowDsl<Conn> for Q {}

/// The future of [`OneRowDsl::one_row`]: every row loaded, the first one kept.
pub(crate) struct OneRow<F>(F);

impl<F, U> Future for OneRow<F>
where
    F: Future<Output = QueryResult<Vec<U>>> + Unpin,
{
    type Output = QueryResult<U>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx).map(|rows| {
            rows?
                .into_iter()
                .next()
                .ok_or(diesel::result::Error::NotFound)
        })
    }
}
