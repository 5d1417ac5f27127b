//! Creating, answering and resuming ask-user requests.

use aura_schema::{ConversationId, RequestId, RunId, ask_user_requests};
use diesel::QueryResult;
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, QueryFragment};
use diesel::sql_types::{Array, Nullable, Text, Timestamptz, Uuid};

use super::cached_statement;

/// Inserts a pending request, only if its run (when it has one) is running:
///
/// ```sql
/// INSERT INTO aura.ask_user_requests (conversation_id, id, run_id, question, status)
/// SELECT $1, $2, $3, $4, 'pending'
///  WHERE $5::uuid IS NULL
///     OR EXISTS (SELECT 1 FROM aura.runs
///                 WHERE conversation_id = $6 AND id = $7 AND status = 'running'
///                   FOR SHARE)
/// ON CONFLICT (conversation_id, id) DO NOTHING
/// RETURNING created_at
/// ```
///
/// `FOR SHARE` holds the run's row until this transaction ends, so a concurrent stop waits
/// for the request to exist (and then cancels it); a stop that came first makes the re-checked
/// `status = 'running'` false, and no row is inserted. No row: the caller finds out why
/// (the request exists, or the run is not running or missing).
///
/// The request's id is its idempotency key: when a request with this id is stored already,
/// nothing is inserted (`ON CONFLICT … DO NOTHING`: also when a concurrent insert of the
/// same id commits first).
pub(crate) struct CreateRequest<'a> {
    pub(crate) conversation_id: ConversationId,
    pub(crate) id: RequestId,
    pub(crate) run_id: Option<RunId>,
    pub(crate) question: &'a str,
}

cached_statement!(CreateRequest<'_>, id = CreateRequest<'static>, returns Timestamptz);

impl QueryFragment<Pg> for CreateRequest<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql(
            "INSERT INTO aura.ask_user_requests (conversation_id, id, run_id, question, status) \
             SELECT ",
        );
        out.push_bind_param::<Uuid, _>(&self.conversation_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Uuid, _>(&self.id)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Uuid>, _>(&self.run_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(self.question)?;
        out.push_sql(", 'pending' WHERE ");
        out.push_bind_param::<Nullable<Uuid>, _>(&self.run_id)?;
        out.push_sql("::uuid IS NULL OR EXISTS (SELECT 1 FROM aura.runs WHERE conversation_id = ");
        out.push_bind_param::<Uuid, _>(&self.conversation_id)?;
        out.push_sql(" AND id = ");
        out.push_bind_param::<Nullable<Uuid>, _>(&self.run_id)?;
        out.push_sql(
            " AND status = 'running' FOR SHARE) \
             ON CONFLICT (conversation_id, id) DO NOTHING RETURNING created_at",
        );
        Ok(())
    }
}

/// Answers a pending request:
///
/// ```sql
/// UPDATE aura.ask_user_requests
///    SET status = 'answered', answer = $1, answered_at = now(), resolved_at = now()
///  WHERE conversation_id = $2 AND id = $3 AND status = 'pending'
/// RETURNING <every column of ask_user_requests>
/// ```
pub(crate) struct AnswerRequest<'a> {
    pub(crate) conversation_id: ConversationId,
    pub(crate) id: RequestId,
    pub(crate) answer: &'a str,
}

cached_statement!(
    AnswerRequest<'_>,
    id = AnswerRequest<'static>,
    returns ask_user_requests::SqlType
);

impl QueryFragment<Pg> for AnswerRequest<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("UPDATE aura.ask_user_requests SET status = 'answered', answer = ");
        out.push_bind_param::<Text, _>(self.answer)?;
        out.push_sql(", answered_at = now(), resolved_at = now() WHERE conversation_id = ");
        out.push_bind_param::<Uuid, _>(&self.conversation_id)?;
        out.push_sql(" AND id = ");
        out.push_bind_param::<Uuid, _>(&self.id)?;
        out.push_sql(" AND status = 'pending' RETURNING ");
        ask_user_requests::all_columns.walk_ast(out.reborrow())
    }
}

/// Moves answered requests to resumed (one array bind, so the SQL is the same for any
/// number of ids):
///
/// ```sql
/// UPDATE aura.ask_user_requests SET status = 'resumed', resumed_at = now()
///  WHERE conversation_id = $1 AND id = ANY($2) AND status = 'answered'
/// RETURNING <every column of ask_user_requests>
/// ```
///
/// Fewer rows than ids: some are missing or not answered; the caller rolls back.
pub(crate) struct MarkResumed<'a> {
    pub(crate) conversation_id: ConversationId,
    pub(crate) ids: &'a [RequestId],
}

cached_statement!(
    MarkResumed<'_>,
    id = MarkResumed<'static>,
    returns ask_user_requests::SqlType
);

impl QueryFragment<Pg> for MarkResumed<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql(
            "UPDATE aura.ask_user_requests SET status = 'resumed', resumed_at = now() \
             WHERE conversation_id = ",
        );
        out.push_bind_param::<Uuid, _>(&self.conversation_id)?;
        out.push_sql(" AND id = ANY(");
        out.push_bind_param::<Array<Uuid>, _>(self.ids)?;
        out.push_sql(") AND status = 'answered' RETURNING ");
        ask_user_requests::all_columns.walk_ast(out.reborrow())
    }
}
