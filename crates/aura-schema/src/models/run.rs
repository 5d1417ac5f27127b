//! `aura.runs`.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::enums::RunStatus;
use crate::ids::{ConversationId, RunId};
use crate::models::Conversation;
use crate::runs;

/// A row of `runs`.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Identifiable, Associations)]
#[diesel(
    table_name = runs,
    primary_key(conversation_id, id),
    belongs_to(Conversation),
    check_for_backend(diesel::pg::Pg)
)]
pub struct Run {
    /// The conversation the run works on.
    pub conversation_id: ConversationId,
    /// Run id (UUIDv7), unique within its conversation.
    pub id: RunId,
    /// Where the run is; at most one run per conversation is `Running`.
    pub status: RunStatus,
    /// When the run started.
    pub started_at: DateTime<Utc>,
    /// When the run left `Running`; `None` while it runs.
    pub ended_at: Option<DateTime<Utc>>,
    /// Why the run ended, when given.
    pub stop_reason: Option<String>,
}

/// A new run; `started_at` comes from the database (`now()`). Inserting a second
/// `Running` run for a conversation violates `runs_one_running_idx` (unique violation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Insertable)]
#[diesel(table_name = runs, check_for_backend(diesel::pg::Pg))]
pub struct NewRun {
    /// The conversation.
    pub conversation_id: ConversationId,
    /// The new id: [`RunId::new`].
    pub id: RunId,
    /// Usually [`RunStatus::Running`].
    pub status: RunStatus,
}

/// Changes to a run: `None` leaves a column as it is; `Some(None)` sets a nullable one to
/// NULL.
#[derive(Debug, Clone, Default, PartialEq, Eq, AsChangeset)]
#[diesel(table_name = runs, check_for_backend(diesel::pg::Pg))]
pub struct RunUpdate {
    /// New status.
    pub status: Option<RunStatus>,
    /// New `ended_at`, or `Some(None)` to clear it.
    pub ended_at: Option<Option<DateTime<Utc>>>,
    /// New stop reason, or `Some(None)` to clear it.
    pub stop_reason: Option<Option<String>>,
}
