//! Rows for the unit tests of the read paths' consistency checks.

use aura_schema::{Conversation, ConversationId, Turn, TurnId, TurnRole};
use chrono::Utc;

use crate::views::ConversationWithTurns;

/// A conversation with this `turn_count` (everything else empty or now).
pub(super) fn conversation(turn_count: i32) -> Conversation {
    let now = Utc::now();
    Conversation {
        id: ConversationId::new(),
        title: None,
        model: String::new(),
        started_at: now,
        updated_at: now,
        turn_count,
        input_tokens: 0,
        output_tokens: 0,
        last_turn_at: None,
        last_activity_at: now,
    }
}

/// Turns of conversation `id` with these seqs, in this order.
pub(super) fn turns(id: ConversationId, seqs: &[i32]) -> Vec<Turn> {
    let now = Utc::now();
    seqs.iter()
        .map(|&seq| Turn {
            conversation_id: id,
            id: TurnId::new(),
            seq,
            role: TurnRole::User,
            content: String::new(),
            input_tokens: 0,
            output_tokens: 0,
            created_at: now,
            data: None,
        })
        .collect()
}

/// The seqs of a consistency check's result (`None`: torn; `Some(None)` reads as `None`
/// too: the tests that call it expect a conversation).
pub(super) fn seqs(found: Option<Option<ConversationWithTurns>>) -> Option<Vec<i32>> {
    found
        .flatten()
        .map(|c| c.turns.iter().map(|t| t.seq).collect())
}
