//! What callers hand the store to create rows. Ids and timestamps are never part of it:
//! the store makes ids (UUIDv7) and the database stamps times.

use aura_schema::TurnRole;

/// A new conversation (see [`ConversationStore::create_conversation`]).
///
/// [`ConversationStore::create_conversation`]: crate::ConversationStore::create_conversation
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NewConversation<'a> {
    /// Title shown in lists, at most 500 characters; `None` until one is known.
    pub title: Option<&'a str>,
    /// The model the conversation talks to, at most 500 characters; `""` when not chosen.
    pub model: &'a str,
}

/// A new turn (see [`TurnStore::append_turn`]); its `seq` is given by the store.
///
/// [`TurnStore::append_turn`]: crate::TurnStore::append_turn
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewTurn<'a> {
    /// Who spoke.
    pub role: TurnRole,
    /// The message text: not empty, at most 1 MiB, no NUL character.
    pub content: &'a str,
    /// Input (prompt) tokens spent on the turn, `>= 0`.
    pub input_tokens: i32,
    /// Output (completion) tokens spent on the turn, `>= 0`.
    pub output_tokens: i32,
}

/// How a run that finished on its own ended (see [`RunStore::finish_run`]).
///
/// [`RunStore::finish_run`]: crate::RunStore::finish_run
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunEnd {
    /// It ended normally.
    Completed,
    /// It ended with an error.
    Failed,
}

impl RunEnd {
    /// The run status it leaves the run in.
    pub const fn status(self) -> aura_schema::RunStatus {
        match self {
            RunEnd::Completed => aura_schema::RunStatus::Completed,
            RunEnd::Failed => aura_schema::RunStatus::Failed,
        }
    }
}
