//! What the store hands back beyond the plain rows of `aura-schema`.

use aura_schema::{Conversation, ConversationId, Run, Turn, conversations};
use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::cursor::Cursor;

/// A conversation with all its turns, ordered by `seq` (see
/// [`get_conversation`](crate::ConversationStore::get_conversation)), or with its latest
/// ones ([`get_conversation_with_last_turns`](crate::ConversationStore::get_conversation_with_last_turns)).
///
/// Consistent: `turns` are exactly turns `1..=conversation.turn_count` (all of them; the
/// conversation's token totals are their sums), or the last of those (the latest ones).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationWithTurns {
    /// The conversation row.
    pub conversation: Conversation,
    /// Its turns, `seq` 1, 2, … without gaps (empty for a new conversation), or the latest
    /// ones, without gaps, ending at `turn_count`.
    pub turns: Vec<Turn>,
}

/// One line of the conversation list: the conversation without its turns.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = conversations, check_for_backend(diesel::pg::Pg))]
pub struct ConversationSummary {
    /// Conversation id.
    pub id: ConversationId,
    /// Title, if set.
    pub title: Option<String>,
    /// Model; empty when not chosen.
    pub model: String,
    /// When the conversation was created.
    pub started_at: DateTime<Utc>,
    /// Number of turns.
    pub turn_count: i32,
    /// Sum of the turns' input tokens.
    pub input_tokens: i64,
    /// Sum of the turns' output tokens.
    pub output_tokens: i64,
    /// The latest turn's time, or `started_at` while there is none: the list's sort key.
    pub last_activity_at: DateTime<Utc>,
}

/// Which page of a keyset listing to read:
/// [`list_conversations`](crate::ConversationStore::list_conversations),
/// [`list_runs`](crate::RunStore::list_runs) or
/// [`list_all_pending_requests`](crate::RequestStore::list_all_pending_requests).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// Page size, 1 to [`MAX_PAGE`](crate::limits::MAX_PAGE); `None` is
    /// [`DEFAULT_PAGE`](crate::limits::DEFAULT_PAGE).
    pub limit: Option<u32>,
    /// Start after this position (the previous page's [`Page::next`]); `None` is the first
    /// page.
    pub after: Option<Cursor>,
}

/// A page of results, in the listing's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The rows of this page.
    pub items: Vec<T>,
    /// The cursor of the next page; `None` on the last page.
    pub next: Option<Cursor>,
}

/// A stopped run, and how many of its pending ask-user requests were cancelled with it (see
/// [`RunStore::stop_run`](crate::RunStore::stop_run)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoppedRun {
    /// The run as it is now (status stopped, `ended_at` and `stop_reason` set).
    pub run: Run,
    /// Pending requests of this run that were cancelled in the same transaction.
    pub cancelled_requests: u64,
}
