//! `aura.turns`. Turns are never changed once written: there is no update form.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::enums::TurnRole;
use crate::ids::{ConversationId, TurnId};
use crate::models::Conversation;
use crate::turns;

/// A row of `turns`.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Identifiable, Associations)]
#[diesel(
    table_name = turns,
    primary_key(conversation_id, id),
    belongs_to(Conversation),
    check_for_backend(diesel::pg::Pg)
)]
pub struct Turn {
    /// The conversation the turn belongs to.
    pub conversation_id: ConversationId,
    /// Turn id (UUIDv7), unique within its conversation.
    pub id: TurnId,
    /// Position in the conversation, from 1, without gaps.
    pub seq: i32,
    /// Who spoke.
    pub role: TurnRole,
    /// The message text.
    pub content: String,
    /// Input tokens spent on this turn.
    pub input_tokens: i32,
    /// Output tokens spent on this turn.
    pub output_tokens: i32,
    /// When the turn was stored.
    pub created_at: DateTime<Utc>,
    /// Structured data (tool calls and results, finish reason, producing model), as JSON;
    /// `None` when the turn has none.
    pub data: Option<serde_json::Value>,
}

/// A new turn; `created_at` comes from the database (`now()`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Insertable)]
#[diesel(table_name = turns, check_for_backend(diesel::pg::Pg))]
pub struct NewTurn<'a> {
    /// The conversation.
    pub conversation_id: ConversationId,
    /// The new id: [`TurnId::new`].
    pub id: TurnId,
    /// Position: the conversation's `turn_count + 1`.
    pub seq: i32,
    /// Who spoke.
    pub role: TurnRole,
    /// The message text.
    pub content: &'a str,
    /// Input tokens (0 when not metered).
    pub input_tokens: i32,
    /// Output tokens (0 when not metered).
    pub output_tokens: i32,
    /// Structured data, if any (JSONB; written with diesel's serializer: see aura-store for
    /// a write that reads back exactly the same `serde_json::Value`).
    pub data: Option<&'a serde_json::Value>,
}
