//! Each store operation under the pool's operation deadline, and made again after a
//! transient failure as the store's [`RetryPolicy`] allows ([`PgStore::with_retry`]).
//!
//! What may be made again depends on the operation ([`Repeat`]):
//!
//! - [`Repeat::AnyTransient`]: reads, and the creates and appends given a caller-supplied
//!   id. Running them twice is harmless (a read) or exactly-once (the id is the row's
//!   idempotency key: the repeat returns the stored row). Retried after every transient
//!   failure, a lost connection or a passed deadline included.
//! - [`Repeat::IfNothingApplied`]: every other write (creates and appends without an id,
//!   `delete_conversation`, `stop_run`, `finish_run`, `answer_request`,
//!   `mark_requests_resumed`). Retried only when the failure proves the attempt applied
//!   nothing: a serialization failure (40001) or deadlock (40P01), which the server rolled
//!   back, or no connection to be had (nothing sent). After a lost connection or a passed
//!   deadline they may have committed, and a repeat would apply them twice or answer with
//!   a conflict about their own first attempt: the error goes to the caller.

use std::future::Future;

use aura_db::telemetry::variant_name;
use aura_db::{Error as DbError, RetryPolicy, Transient, retry_event};

use super::PgStore;
use crate::error::StoreError;

/// Which failures of an operation another attempt may follow (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Repeat {
    /// Reads, and writes keyed by a caller-supplied id.
    AnyTransient,
    /// Writes that may not run twice.
    IfNothingApplied,
}

impl Repeat {
    /// A create or append: keyed by a caller-supplied id or not.
    pub(super) fn keyed(has_id: bool) -> Repeat {
        if has_id {
            Repeat::AnyTransient
        } else {
            Repeat::IfNothingApplied
        }
    }

    /// Why another attempt may follow `err`, if one may.
    fn allows(self, err: &StoreError) -> Option<Transient> {
        let (StoreError::Unavailable(db) | StoreError::Database(db)) = err else {
            return None;
        };
        let transient = db.transient()?;
        match self {
            Repeat::AnyTransient => Some(transient),
            Repeat::IfNothingApplied => transient.applied_nothing().then_some(transient),
        }
    }
}

impl PgStore {
    /// Runs the operation `make` starts, each attempt under the operation deadline, again
    /// after a failure `repeat` allows while the store's policy has attempts left; each
    /// retry is a `retrying database operation` event (attempt, reason, SQLSTATE).
    pub(super) async fn attempts<T, F, Fut>(
        &self,
        op: &'static str,
        repeat: Repeat,
        mut make: F,
    ) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        let policy: &RetryPolicy = self.retry_policy();
        let mut attempt = 1;
        loop {
            let err = match self.within_deadline(&mut make).await {
                Ok(value) => return Ok(value),
                Err(err) => err,
            };
            match repeat.allows(&err) {
                Some(reason) if policy.allows_another(attempt) => {
                    let backoff = policy.backoff(attempt);
                    let error_type = variant_name(&err);
                    retry_event(
                        op,
                        attempt,
                        policy,
                        reason,
                        &error_type,
                        err.sqlstate(),
                        backoff,
                    );
                    tokio::time::sleep(backoff).await;
                    attempt += 1;
                }
                _ => return Err(err),
            }
        }
    }

    /// The operation `start` makes, failing as [`StoreError::Unavailable`]
    /// ([`DbError::Timeout`]) when the pool's operation deadline passes first. The
    /// operation's future is dropped then: its armed connection is discarded and its
    /// statement cancelled (`PooledConn::arm`). (A maker, not a future: see
    /// `crate::telemetry::traced`.)
    async fn within_deadline<T, Fut>(&self, start: impl FnOnce() -> Fut) -> Result<T, StoreError>
    where
        Fut: Future<Output = Result<T, StoreError>>,
    {
        let pool = self.pool();
        match pool.settings().operation_deadline() {
            None => start().await,
            Some(deadline) => match tokio::time::timeout(deadline, start()).await {
                Ok(result) => result,
                Err(_) => Err(StoreError::Unavailable(DbError::Timeout {
                    target: pool.target().to_owned(),
                    after: deadline,
                })),
            },
        }
    }
}
