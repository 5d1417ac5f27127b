//! What the workload was told: every write acknowledged (Ok), and every write whose
//! outcome stayed unknown (all its attempts failed). The invariants compare the database
//! with it.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use aura_store::{ConversationId, RequestId, RunId, RunStatus, TurnId};

/// The acknowledged and the unknown writes (shared by the workload tasks).
#[derive(Default)]
pub struct Ledger {
    inner: Mutex<Writes>,
}

/// A snapshot of the ledger.
#[derive(Default, Clone)]
pub struct Writes {
    /// Conversations whose create was acknowledged.
    pub conversations: HashSet<ConversationId>,
    /// Turns acknowledged: id -> (conversation, seq).
    pub turns: HashMap<TurnId, (ConversationId, i32)>,
    /// Turns whose every attempt failed: they may or may not be stored.
    pub maybe_turns: HashSet<TurnId>,
    /// Runs acknowledged, with the last status a call acknowledged for them.
    pub runs: HashMap<RunId, (ConversationId, RunStatus)>,
    /// Requests acknowledged.
    pub requests: HashMap<RequestId, ConversationId>,
}

impl Ledger {
    fn with<R>(&self, f: impl FnOnce(&mut Writes) -> R) -> R {
        let mut w = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut w)
    }

    /// A conversation's create was acknowledged.
    pub fn conversation(&self, id: ConversationId) {
        self.with(|w| w.conversations.insert(id));
    }

    /// An append was acknowledged with `seq`.
    pub fn turn(&self, conversation: ConversationId, id: TurnId, seq: i32) {
        self.with(|w| w.turns.insert(id, (conversation, seq)));
    }

    /// An append whose every attempt failed.
    pub fn maybe_turn(&self, id: TurnId) {
        self.with(|w| w.maybe_turns.insert(id));
    }

    /// A run call was acknowledged, leaving the run in `status`.
    pub fn run(&self, conversation: ConversationId, id: RunId, status: RunStatus) {
        self.with(|w| w.runs.insert(id, (conversation, status)));
    }

    /// A request's create was acknowledged.
    pub fn request(&self, conversation: ConversationId, id: RequestId) {
        self.with(|w| w.requests.insert(id, conversation));
    }

    /// A copy of what was recorded.
    pub fn snapshot(&self) -> Writes {
        self.with(|w| w.clone())
    }
}
