//! The keyset listings of runs and ask-user requests. Each page is one statement: an
//! index range scan from the cursor's position (a row comparison, which Postgres uses as
//! an index bound), `limit + 1` rows (the extra one says whether there is a next page). A
//! first page and a page after a cursor are two statements, so each has one fixed SQL
//! text (one prepared statement per connection).

use aura_schema::{ConversationId, RequestId, RunId, ask_user_requests, runs};
use chrono::{DateTime, Utc};
use diesel::QueryResult;
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, QueryFragment};
use diesel::sql_types::{BigInt, Timestamptz, Uuid};

use super::cached_statement;

/// A conversation's runs, newest first, on `runs_started_idx` (`conversation_id,
/// started_at, id`) read backward:
///
/// ```sql
/// SELECT <every column of runs> FROM aura.runs
///  WHERE conversation_id = $1 [AND (started_at, id) < ($2, $3)]
///  ORDER BY started_at DESC, id DESC LIMIT $n
/// ```
///
/// This is the first page; [`RunsAfter`] adds the bracketed bound (the last row of the
/// previous page).
pub(crate) struct RunsPage {
    pub(crate) conversation_id: ConversationId,
    pub(crate) limit: i64,
}

/// [`RunsPage`] after a position.
pub(crate) struct RunsAfter {
    pub(crate) conversation_id: ConversationId,
    pub(crate) started_at: DateTime<Utc>,
    pub(crate) id: RunId,
    pub(crate) limit: i64,
}

cached_statement!(RunsPage, id = RunsPage, returns runs::SqlType);
cached_statement!(RunsAfter, id = RunsAfter, returns runs::SqlType);

impl QueryFragment<Pg> for RunsPage {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        select_runs(&self.conversation_id, out.reborrow())?;
        order_runs(&self.limit, out)
    }
}

impl QueryFragment<Pg> for RunsAfter {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        select_runs(&self.conversation_id, out.reborrow())?;
        out.push_sql(" AND (started_at, id) < (");
        out.push_bind_param::<Timestamptz, _>(&self.started_at)?;
        out.push_sql(", ");
        out.push_bind_param::<Uuid, _>(&self.id)?;
        out.push_sql(")");
        order_runs(&self.limit, out)
    }
}

fn select_runs<'b>(
    conversation_id: &'b ConversationId,
    mut out: AstPass<'_, 'b, Pg>,
) -> QueryResult<()> {
    out.push_sql("SELECT ");
    runs::all_columns.walk_ast(out.reborrow())?;
    out.push_sql(" FROM aura.runs WHERE conversation_id = ");
    out.push_bind_param::<Uuid, _>(conversation_id)
}

fn order_runs<'b>(limit: &'b i64, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
    out.push_sql(" ORDER BY started_at DESC, id DESC LIMIT ");
    out.push_bind_param::<BigInt, _>(limit)
}

/// Pending requests of every conversation, oldest first, on the partial index
/// `ask_user_requests_pending_created_idx` (`created_at, conversation_id, id WHERE status
/// = 'pending'`):
///
/// ```sql
/// SELECT <every column of ask_user_requests> FROM aura.ask_user_requests
///  WHERE status = 'pending' [AND (created_at, conversation_id, id) > ($1, $2, $3)]
///  ORDER BY created_at, conversation_id, id LIMIT $n
/// ```
///
/// This is the first page; [`PendingAfter`] adds the bracketed bound.
pub(crate) struct PendingPage {
    pub(crate) limit: i64,
}

/// [`PendingPage`] after a position.
pub(crate) struct PendingAfter {
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) conversation_id: ConversationId,
    pub(crate) id: RequestId,
    pub(crate) limit: i64,
}

cached_statement!(PendingPage, id = PendingPage, returns ask_user_requests::SqlType);
cached_statement!(PendingAfter, id = PendingAfter, returns ask_user_requests::SqlType);

impl QueryFragment<Pg> for PendingPage {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        select_pending(out.reborrow())?;
        order_pending(&self.limit, out)
    }
}

impl QueryFragment<Pg> for PendingAfter {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        select_pending(out.reborrow())?;
        out.push_sql(" AND (created_at, conversation_id, id) > (");
        out.push_bind_param::<Timestamptz, _>(&self.created_at)?;
        out.push_sql(", ");
        out.push_bind_param::<Uuid, _>(&self.conversation_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Uuid, _>(&self.id)?;
        out.push_sql(")");
        order_pending(&self.limit, out)
    }
}

fn select_pending(mut out: AstPass<'_, '_, Pg>) -> QueryResult<()> {
    out.push_sql("SELECT ");
    ask_user_requests::all_columns.walk_ast(out.reborrow())?;
    out.push_sql(" FROM aura.ask_user_requests WHERE status = 'pending'");
    Ok(())
}

fn order_pending<'b>(limit: &'b i64, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
    out.push_sql(" ORDER BY created_at, conversation_id, id LIMIT ");
    out.push_bind_param::<BigInt, _>(limit)
}
