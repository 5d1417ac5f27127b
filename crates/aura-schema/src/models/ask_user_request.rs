//! `aura.ask_user_requests`.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::ask_user_requests;
use crate::enums::RequestStatus;
use crate::ids::{ConversationId, RequestId, RunId};
use crate::models::Conversation;

/// A row of `ask_user_requests`. The database guarantees `answer.is_some() ==
/// status.has_answer()`.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Identifiable, Associations)]
#[diesel(
    table_name = ask_user_requests,
    primary_key(conversation_id, id),
    belongs_to(Conversation),
    check_for_backend(diesel::pg::Pg)
)]
pub struct AskUserRequest {
    /// The conversation the question is asked in.
    pub conversation_id: ConversationId,
    /// Request id (UUIDv7), unique within its conversation.
    pub id: RequestId,
    /// The run that asked (same conversation), if any.
    pub run_id: Option<RunId>,
    /// The question.
    pub question: String,
    /// Where the request is.
    pub status: RequestStatus,
    /// The answer; present exactly when the status is `Answered` or `Resumed`.
    pub answer: Option<String>,
    /// When the question was asked.
    pub created_at: DateTime<Utc>,
    /// When the user answered.
    pub answered_at: Option<DateTime<Utc>>,
    /// When the run resumed with the answer.
    pub resumed_at: Option<DateTime<Utc>>,
    /// When the request stopped waiting (answered or cancelled).
    pub resolved_at: Option<DateTime<Utc>>,
}

/// A new request; `created_at` comes from the database (`now()`). The status is normally
/// [`RequestStatus::Pending`] (a status that needs an answer is refused without one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Insertable)]
#[diesel(table_name = ask_user_requests, check_for_backend(diesel::pg::Pg))]
pub struct NewAskUserRequest<'a> {
    /// The conversation.
    pub conversation_id: ConversationId,
    /// The new id: [`RequestId::new`].
    pub id: RequestId,
    /// The run that asks, in the same conversation, if any.
    pub run_id: Option<RunId>,
    /// The question.
    pub question: &'a str,
    /// Usually [`RequestStatus::Pending`].
    pub status: RequestStatus,
}

/// Changes to a request: `None` leaves a column as it is; `Some(None)` sets a nullable one
/// to NULL. Answering sets `status`, `answer`, `answered_at` and `resolved_at` together.
#[derive(Debug, Clone, Default, PartialEq, Eq, AsChangeset)]
#[diesel(table_name = ask_user_requests, check_for_backend(diesel::pg::Pg))]
pub struct AskUserRequestUpdate {
    /// New status.
    pub status: Option<RequestStatus>,
    /// New answer, or `Some(None)` to clear it.
    pub answer: Option<Option<String>>,
    /// New `answered_at`, or `Some(None)` to clear it.
    pub answered_at: Option<Option<DateTime<Utc>>>,
    /// New `resumed_at`, or `Some(None)` to clear it.
    pub resumed_at: Option<Option<DateTime<Utc>>>,
    /// New `resolved_at`, or `Some(None)` to clear it.
    pub resolved_at: Option<Option<DateTime<Utc>>>,
}
