//! Each store operation inside its `db.operation` span (built by
//! [`aura_db::telemetry::operation_span`], so every span of the data layer names its
//! attributes in one place), with what the operation returned or why it failed, and the
//! slow-operation warning.
//!
//! Recorded on the span: `db.operation.name` (the store operation: `append_turn`, …),
//! `db.collection.name` (its table), `db.query.text` (the main statement, with `$n`
//! placeholders: diesel renders it without bind values), `db.response.returned_rows` (rows
//! the operation returned), `error.type` (the [`StoreError`] variant) and
//! `db.response.status_code` (its SQLSTATE, when the server gave one).

use std::time::Instant;

use aura_db::telemetry::{self as db_telemetry, variant_name};
use diesel::pg::{Pg, PgQueryBuilder};
use diesel::query_builder::{QueryBuilder, QueryFragment};
use tracing::{Instrument, Span};

use crate::error::StoreError;
use crate::pg::PgStore;
use crate::views::{ConversationWithTurns, Page, StoppedRun};
use aura_schema::{AskUserRequest, Conversation, Run, Turn};

/// Runs the operation `start` makes (the store operation `op` on table `collection`) inside
/// its span, then warns if it took longer than the pool's `slow_op` threshold.
///
/// It takes the maker, not the future: a future passed to an `async fn` is stored twice in
/// that function's own future (as the argument, then where it is awaited;
/// rust-lang/rust#62958), so each layer doubled the size, and a store call's future was
/// 14 KB, copied whole when boxed (see the size test in `pg/traced.rs`).
pub(crate) async fn traced<T: Returned, Fut>(
    store: &PgStore,
    op: &'static str,
    collection: &'static str,
    start: impl FnOnce() -> Fut,
) -> Result<T, StoreError>
where
    Fut: Future<Output = Result<T, StoreError>>,
{
    let pool = store.pool();
    let threshold = pool.settings().slow_op;
    let began = Instant::now();
    if !store.tracing() {
        let result = start().await;
        db_telemetry::warn_if_slow(threshold, op, began.elapsed());
        return result;
    }
    let span = db_telemetry::operation_span(pool.attributes(), op, collection);
    if span.is_disabled() {
        // No subscriber listens to the span (the warning may still have one).
        let result = start().await;
        db_telemetry::warn_if_slow(threshold, op, began.elapsed());
        return result;
    }
    let result = start().instrument(span.clone()).await;
    let elapsed = began.elapsed();
    match &result {
        Ok(value) => {
            if let Some(rows) = value.rows() {
                span.record("db.response.returned_rows", rows);
            }
        }
        Err(err) => db_telemetry::record_error(&span, &variant_name(err), err.sqlstate()),
    }
    span.in_scope(|| db_telemetry::warn_if_slow(threshold, op, elapsed));
    result
}

/// Passes `query` through, recording its SQL text (placeholders, no bind values) as
/// `db.query.text` on the current span when a subscriber listens to it.
pub(crate) fn query_text<Q: QueryFragment<Pg>>(query: Q) -> Q {
    let span = Span::current();
    if !span.is_disabled() {
        let mut sql = PgQueryBuilder::default();
        if query.to_sql(&mut sql, &Pg).is_ok() {
            span.record("db.query.text", sql.finish().as_str());
        }
    }
    query
}

/// How many rows an operation returned, for `db.response.returned_rows`.
pub(crate) trait Returned {
    /// The row count; `None` when the operation returns no rows.
    fn rows(&self) -> Option<u64>;
}

macro_rules! one_row {
    ($($t:ty),*) => {$(
        impl Returned for $t {
            fn rows(&self) -> Option<u64> {
                Some(1)
            }
        }
    )*};
}
one_row!(Conversation, Turn, Run, AskUserRequest, StoppedRun);

impl Returned for () {
    fn rows(&self) -> Option<u64> {
        None
    }
}

impl<T> Returned for Vec<T> {
    fn rows(&self) -> Option<u64> {
        Some(self.len() as u64)
    }
}

impl<T> Returned for Option<T> {
    fn rows(&self) -> Option<u64> {
        Some(u64::from(self.is_some()))
    }
}

impl Returned for crate::turn_query::TurnPage {
    fn rows(&self) -> Option<u64> {
        Some(self.turns.len() as u64)
    }
}

impl<T> Returned for Page<T> {
    fn rows(&self) -> Option<u64> {
        Some(self.items.len() as u64)
    }
}

impl Returned for ConversationWithTurns {
    /// The conversation and its turns.
    fn rows(&self) -> Option<u64> {
        Some(1 + self.turns.len() as u64)
    }
}
