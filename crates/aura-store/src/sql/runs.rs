//! Ending a run and cancelling its pending requests.

use aura_schema::{ConversationId, RunId, RunStatus, runs};
use diesel::QueryResult;
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, QueryFragment};
use diesel::sql_types::{Nullable, Text, Uuid};

use super::cached_statement;

/// Moves a running run to `status`:
///
/// ```sql
/// UPDATE aura.runs SET status = $1, ended_at = now(), stop_reason = $2
///  WHERE conversation_id = $3 AND id = $4 AND status = 'running'
/// RETURNING <every column of runs>
/// ```
///
/// No row: the run does not exist or is not running (the caller tells which).
pub(crate) struct EndRun<'a> {
    pub(crate) conversation_id: ConversationId,
    pub(crate) id: RunId,
    pub(crate) status: RunStatus,
    pub(crate) reason: Option<&'a str>,
}

cached_statement!(EndRun<'_>, id = EndRun<'static>, returns runs::SqlType);

impl QueryFragment<Pg> for EndRun<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("UPDATE aura.runs SET status = ");
        out.push_bind_param::<Text, _>(&self.status)?;
        out.push_sql(", ended_at = now(), stop_reason = ");
        out.push_bind_param::<Nullable<Text>, _>(&self.reason)?;
        out.push_sql(" WHERE conversation_id = ");
        out.push_bind_param::<Uuid, _>(&self.conversation_id)?;
        out.push_sql(" AND id = ");
        out.push_bind_param::<Uuid, _>(&self.id)?;
        out.push_sql(" AND status = 'running' RETURNING ");
        runs::all_columns.walk_ast(out.reborrow())
    }
}

/// Cancels the pending requests of one run; returns how many (execute's row count):
///
/// ```sql
/// UPDATE aura.ask_user_requests SET status = 'cancelled', resolved_at = now()
///  WHERE conversation_id = $1 AND run_id = $2 AND status = 'pending'
/// ```
///
/// Run after [`EndRun`] in the same transaction, as its own statement: it takes its snapshot
/// after `EndRun` has waited for any `create_request` holding the run's row (`FOR SHARE`), so
/// a request created just before the stop is seen and cancelled too.
pub(crate) struct CancelPending {
    pub(crate) conversation_id: ConversationId,
    pub(crate) run_id: RunId,
}

cached_statement!(CancelPending, id = CancelPending);

impl QueryFragment<Pg> for CancelPending {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql(
            "UPDATE aura.ask_user_requests SET status = 'cancelled', resolved_at = now() \
             WHERE conversation_id = ",
        );
        out.push_bind_param::<Uuid, _>(&self.conversation_id)?;
        out.push_sql(" AND run_id = ");
        out.push_bind_param::<Uuid, _>(&self.run_id)?;
        out.push_sql(" AND status = 'pending'");
        Ok(())
    }
}
