//! [`RequestStore`](crate::RequestStore) for [`PgStore`].

use std::collections::{HashMap, HashSet};

use aura_db::{AsyncPgConnection, TxOptions};
use aura_schema::{
    AskUserRequest, ConversationId, RequestId, RequestStatus, RunId, RunStatus, ask_user_requests,
    conversations, runs,
};
use chrono::{DateTime, Utc};
use diesel::{ExpressionMethods, OptionalExtension, QueryDsl, SelectableHelper};
use diesel_async::RunQueryDsl;

use super::one_row::OneRowDsl;
use super::{PgStore, settle};
use crate::classify::classify_diesel;
use crate::error::{ConflictKind, Entity, StoreError, Subject};
use crate::input::RequestDraft;
use crate::keys::{RequestKey, RunKey};
use crate::limits;
use crate::sql::{AnswerRequest, CreateRequest, MarkResumed};
use crate::telemetry::query_text;

/// The operations of [`RequestStore`](crate::RequestStore), each run inside its span by `super::traced`.
impl PgStore {
    pub(super) async fn create_request_body(
        &self,
        conversation_id: ConversationId,
        draft: RequestDraft<'_>,
    ) -> Result<AskUserRequest, StoreError> {
        limits::caller_id(draft.id.map(|id| id.as_uuid()))?;
        limits::required_text("question", draft.question)?;
        let statement = CreateRequest {
            conversation_id,
            id: draft.id.unwrap_or_else(RequestId::new),
            run_id: draft.run_id,
            question: draft.question,
        };
        let key = RequestKey::new(conversation_id, statement.id);
        let subject = Subject::row(conversation_id, key, draft.run_id);
        let mut conn = self.conn().await?;
        let created = async {
            let created_at: Option<DateTime<Utc>> = query_text(statement)
                .one_row(&mut &*conn)
                .await
                .optional()
                .map_err(|e| classify_diesel(e, &subject))?;
            if let Some(created_at) = created_at {
                return Ok(AskUserRequest {
                    conversation_id,
                    id: key.id,
                    run_id: draft.run_id,
                    question: draft.question.to_owned(),
                    status: RequestStatus::Pending,
                    answer: None,
                    created_at,
                    answered_at: None,
                    resumed_at: None,
                    resolved_at: None,
                });
            }
            // Nothing inserted: the id is taken (a repeated create, or another request), or
            // the run is not running or missing.
            let stored = ask_user_requests::table
                .find((key.conversation_id, key.id))
                .select(AskUserRequest::as_select())
                .one_row(&mut &*conn)
                .await
                .optional()
                .map_err(|e| classify_diesel(e, &subject))?;
            match (stored, draft.run_id) {
                (Some(stored), _)
                    if stored.run_id == draft.run_id && stored.question == draft.question =>
                {
                    Ok(stored)
                }
                (Some(_), _) => Err(StoreError::conflict(
                    ConflictKind::IdempotencyMismatch,
                    Entity::Request,
                    key,
                )),
                (None, Some(run_id)) => Err(why_no_request(&conn, conversation_id, run_id).await),
                // Without a run the insert has no condition: it inserts, conflicts, or fails.
                (None, None) => Err(StoreError::not_found(Entity::Conversation, conversation_id)),
            }
        }
        .await;
        settle(&mut conn, created)
    }

    pub(super) async fn get_request_body(
        &self,
        key: RequestKey,
    ) -> Result<AskUserRequest, StoreError> {
        let mut conn = self.read_conn().await?;
        let request = ask_user_requests::table
            .find((key.conversation_id, key.id))
            .select(AskUserRequest::as_select())
            .one_row(&mut *conn)
            .await
            .optional()
            .map_err(StoreError::from);
        settle(&mut conn, request)?.ok_or_else(|| StoreError::not_found(Entity::Request, key))
    }

    pub(super) async fn answer_request_body(
        &self,
        key: RequestKey,
        answer: &str,
    ) -> Result<AskUserRequest, StoreError> {
        limits::required_text("answer", answer)?;
        let mut conn = self.conn().await?;
        let answered = async {
            let answered = query_text(AnswerRequest {
                conversation_id: key.conversation_id,
                id: key.id,
                answer,
            })
            .one_row::<AskUserRequest>(&mut &*conn)
            .await
            .optional()?;
            match answered {
                Some(request) => Ok(request),
                None => Err(why_not_pending(&conn, key).await),
            }
        }
        .await;
        settle(&mut conn, answered)
    }

    pub(super) async fn mark_requests_resumed_body(
        &self,
        conversation_id: ConversationId,
        ids: &[RequestId],
    ) -> Result<Vec<AskUserRequest>, StoreError> {
        limits::batch("ids", ids.len())?;
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        let ids = &ids;
        self.tx(TxOptions::default(), async |conn| {
            let resumed = resume(conn, conversation_id, ids).await;
            settle(conn, resumed)
        })
        .await
    }

    pub(super) async fn list_pending_requests_body(
        &self,
        conversation_id: ConversationId,
    ) -> Result<Vec<AskUserRequest>, StoreError> {
        let mut conn = self.read_conn().await?;
        let pending = async {
            let (mut first, mut second) = (&*conn, &*conn);
            // The existence check rides along (pipelined: same round trip), so an empty list
            // and a missing conversation can be told apart without a second trip.
            let exists = diesel::select(diesel::dsl::exists(
                conversations::table.find(conversation_id),
            ))
            .one_row::<bool>(&mut first);
            let pending = ask_user_requests::table
                .filter(ask_user_requests::conversation_id.eq(conversation_id))
                .filter(ask_user_requests::status.eq(RequestStatus::Pending))
                .order((
                    ask_user_requests::created_at.asc(),
                    ask_user_requests::id.asc(),
                ))
                .select(AskUserRequest::as_select())
                .load(&mut second);
            let (exists, pending) = tokio::try_join!(biased; exists, pending)?;
            if !exists {
                return Err(StoreError::not_found(Entity::Conversation, conversation_id));
            }
            Ok(pending)
        }
        .await;
        settle(&mut conn, pending)
    }
}

/// The body of `mark_requests_resumed`, inside its transaction: resume, and when not every id
/// was answered, find out why (the caller's `Err` rolls the resumed ones back).
async fn resume(
    conn: &mut AsyncPgConnection,
    conversation_id: ConversationId,
    ids: &[RequestId],
) -> Result<Vec<AskUserRequest>, StoreError> {
    let resumed: Vec<AskUserRequest> = MarkResumed {
        conversation_id,
        ids,
    }
    .load(&mut *conn)
    .await?;
    if resumed.len() == ids.len() {
        return Ok(resumed);
    }
    let done: HashSet<RequestId> = resumed.iter().map(|r| r.id).collect();
    let offending: Vec<RequestId> = ids
        .iter()
        .filter(|id| !done.contains(id))
        .copied()
        .collect();
    let statuses: HashMap<RequestId, RequestStatus> = ask_user_requests::table
        .filter(ask_user_requests::conversation_id.eq(conversation_id))
        .filter(ask_user_requests::id.eq_any(&offending))
        .select((ask_user_requests::id, ask_user_requests::status))
        .load::<(RequestId, RequestStatus)>(&mut *conn)
        .await?
        .into_iter()
        .collect();
    Err(not_resumable(conversation_id, &offending, &statuses))
}

/// Why `CreateRequest` inserted nothing: the run is missing (or its conversation), or it
/// is not running.
async fn why_no_request(
    mut conn: &AsyncPgConnection,
    conversation_id: ConversationId,
    run_id: RunId,
) -> StoreError {
    let key = RunKey::new(conversation_id, run_id);
    let run = runs::table
        .find((conversation_id, run_id))
        .select(runs::status)
        .one_row::<RunStatus>(&mut conn)
        .await
        .optional();
    match run {
        Ok(Some(status)) => {
            StoreError::conflict(ConflictKind::RunNotRunning { status }, Entity::Run, key)
        }
        Ok(None) => {
            let conversation = conversations::table
                .find(conversation_id)
                .select(conversations::id)
                .one_row::<ConversationId>(&mut conn)
                .await
                .optional();
            match conversation {
                Ok(Some(_)) => StoreError::not_found(Entity::Run, key),
                Ok(None) => StoreError::not_found(Entity::Conversation, conversation_id),
                Err(err) => err.into(),
            }
        }
        Err(err) => err.into(),
    }
}

/// NotFound or Conflict for a request that `AnswerRequest` missed.
async fn why_not_pending(mut conn: &AsyncPgConnection, key: RequestKey) -> StoreError {
    let status = ask_user_requests::table
        .find((key.conversation_id, key.id))
        .select(ask_user_requests::status)
        .one_row::<RequestStatus>(&mut conn)
        .await
        .optional();
    match status {
        Ok(None) => StoreError::not_found(Entity::Request, key),
        Ok(Some(status)) => StoreError::conflict(
            ConflictKind::RequestNotPending { status },
            Entity::Request,
            key,
        ),
        Err(err) => err.into(),
    }
}

/// The error of a batch that could not be resumed: NotFound when every offending id is
/// missing, else Conflict listing each offending id with its status.
fn not_resumable(
    conversation_id: ConversationId,
    offending: &[RequestId],
    statuses: &HashMap<RequestId, RequestStatus>,
) -> StoreError {
    let missing: Vec<String> = offending
        .iter()
        .filter(|id| !statuses.contains_key(id))
        .map(|id| format!("{conversation_id}/{id}"))
        .collect();
    if missing.len() == offending.len() {
        return StoreError::NotFound {
            entity: Entity::Request,
            id: missing.join(", "),
        };
    }
    let offending = offending
        .iter()
        .map(|id| (*id, statuses.get(id).copied()))
        .collect();
    StoreError::conflict(
        ConflictKind::RequestsNotAnswered { offending },
        Entity::Conversation,
        conversation_id,
    )
}
