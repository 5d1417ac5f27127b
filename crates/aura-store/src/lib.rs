#![doc = include_str!("../README.md")]

mod classify;
mod cursor;
mod error;
mod input;
mod keys;
pub mod limits;
mod pg;
mod sql;
mod traits;
mod views;

pub use cursor::Cursor;
pub use error::{Entity, StoreError};
pub use input::{NewConversation, NewTurn, RunEnd};
pub use keys::{RequestKey, RunKey, TurnKey};
pub use pg::PgStore;
pub use traits::{ConversationStore, RequestStore, RunStore, Store, TurnStore};
pub use views::{ConversationSummary, ConversationWithTurns, ListQuery, Page, StoppedRun};

/// Re-exported for implementors of the traits (mocks in sibling crates' tests).
pub use async_trait::async_trait;
/// Re-exported so callers name the same types as the traits: rows, ids and enums.
pub use aura_schema::{
    AskUserRequest, Conversation, ConversationId, RequestId, RequestStatus, Run, RunId, RunStatus,
    Turn, TurnId, TurnRole,
};
