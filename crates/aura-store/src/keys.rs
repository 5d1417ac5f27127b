//! Typed keys: a turn, run or request is addressed by its conversation and its own id, so
//! every statement filters on the conversation (one shard when distributed by it).

use std::fmt;

use aura_schema::{AskUserRequest, ConversationId, RequestId, Run, RunId, Turn, TurnId};

macro_rules! key {
    ($(#[$doc:meta])* $name:ident, $id:ty, $row:ty) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name {
            /// The conversation the row belongs to.
            pub conversation_id: ConversationId,
            /// The row's own id, unique within its conversation.
            pub id: $id,
        }

        impl $name {
            /// The key of row `id` in `conversation_id`.
            pub const fn new(conversation_id: ConversationId, id: $id) -> Self {
                Self { conversation_id, id }
            }
        }

        /// `<conversation id>/<id>`.
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}/{}", self.conversation_id, self.id)
            }
        }

        impl From<&$row> for $name {
            fn from(row: &$row) -> Self {
                Self::new(row.conversation_id, row.id)
            }
        }
    };
}

key!(
    /// The key of a turn.
    TurnKey, TurnId, Turn
);
key!(
    /// The key of a run.
    RunKey, RunId, Run
);
key!(
    /// The key of an ask-user request.
    RequestKey, RequestId, AskUserRequest
);
