//! One model set per table: the read model (`Conversation`: `Queryable` + `Selectable`,
//! checked against the Pg backend), the insert struct (`NewConversation`) and, where rows
//! change after insert, the update form (`ConversationUpdate`: `AsChangeset`; a field left
//! `None` is not touched, and a nullable column takes `Some(None)` to be set to NULL).
//!
//! Structs only: the queries live in `aura-store`.

mod ask_user_request;
mod conversation;
mod run;
mod turn;

pub use ask_user_request::{AskUserRequest, AskUserRequestUpdate, NewAskUserRequest};
pub use conversation::{Conversation, ConversationUpdate, NewConversation};
pub use run::{NewRun, Run, RunUpdate};
pub use turn::{NewTurn, Turn};
