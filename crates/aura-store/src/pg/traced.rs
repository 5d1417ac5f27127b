//! The store traits for [`PgStore`]: every operation runs inside its `db.operation` span
//! (see `crate::telemetry`), each attempt under the operation deadline and repeated as the
//! store's retry policy allows (see `super::attempts`, which says which operation is
//! [`Repeat::AnyTransient`] and why); the work itself is in the sibling modules.

use async_trait::async_trait;
use aura_schema::{AskUserRequest, Conversation, ConversationId, RequestId, Run, Turn};

use super::PgStore;
use super::attempts::Repeat;
use super::replica::ReadOp;
use crate::edit::ConversationEdit;
use crate::error::StoreError;
use crate::input::{ConversationDraft, RequestDraft, RunDraft, RunEnd, TurnDraft};
use crate::keys::{RequestKey, RunKey, TurnKey};
use crate::telemetry::{Returned, traced};
use crate::traits::{ConversationStore, RequestStore, RunStore, TurnStore};
use crate::turn_query::{TurnPage, TurnQuery};
use crate::views::{ConversationSummary, ConversationWithTurns, ListQuery, Page, StoppedRun};

const CONVERSATIONS: &str = "aura.conversations";
const TURNS: &str = "aura.turns";
const RUNS: &str = "aura.runs";
const REQUESTS: &str = "aura.ask_user_requests";

impl PgStore {
    /// A read operation `name` on `collection`: `op` on the replica or the primary
    /// ([`PgStore::routed`]), each attempt as the retry policy allows after any transient
    /// failure, inside the operation's span.
    async fn read<T, F>(
        &self,
        name: &'static str,
        collection: &'static str,
        op: F,
    ) -> Result<T, StoreError>
    where
        T: Returned,
        F: Fn(PgStore) -> ReadOp<T>,
    {
        traced(self, name, collection, || {
            self.attempts(name, Repeat::AnyTransient, || self.routed(&op))
        })
        .await
    }

    /// A write operation `name` on `collection`: each attempt `make` starts, repeated as
    /// `repeat` and the retry policy allow, its WAL position recorded for read-your-writes
    /// ([`PgStore::written`]), inside the operation's span.
    async fn write<T, F, Fut>(
        &self,
        name: &'static str,
        collection: &'static str,
        repeat: Repeat,
        make: F,
    ) -> Result<T, StoreError>
    where
        T: Returned,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        traced(self, name, collection, || {
            self.written(|| self.attempts(name, repeat, make))
        })
        .await
    }
}

#[async_trait]
impl ConversationStore for PgStore {
    async fn create_conversation(
        &self,
        draft: ConversationDraft<'_>,
    ) -> Result<Conversation, StoreError> {
        let repeat = Repeat::keyed(draft.id.is_some());
        self.write("create_conversation", CONVERSATIONS, repeat, || {
            self.create_conversation_body(draft)
        })
        .await
    }

    async fn get_conversation(
        &self,
        id: ConversationId,
    ) -> Result<ConversationWithTurns, StoreError> {
        self.read("get_conversation", CONVERSATIONS, move |s| {
            Box::pin(async move { s.get_conversation_body(id).await })
        })
        .await
    }

    async fn list_conversations(
        &self,
        query: ListQuery,
    ) -> Result<Page<ConversationSummary>, StoreError> {
        self.read("list_conversations", CONVERSATIONS, move |s| {
            let query = query.clone();
            Box::pin(async move { s.list_conversations_body(query).await })
        })
        .await
    }

    async fn delete_conversation(&self, id: ConversationId) -> Result<(), StoreError> {
        self.write(
            "delete_conversation",
            CONVERSATIONS,
            Repeat::IfNothingApplied,
            || self.delete_conversation_body(id),
        )
        .await
    }

    async fn get_conversation_with_last_turns(
        &self,
        id: ConversationId,
        turns: u32,
    ) -> Result<ConversationWithTurns, StoreError> {
        self.read(
            "get_conversation_with_last_turns",
            CONVERSATIONS,
            move |s| {
                Box::pin(async move { s.get_conversation_with_last_turns_body(id, turns).await })
            },
        )
        .await
    }

    async fn update_conversation(
        &self,
        id: ConversationId,
        edit: ConversationEdit<'_>,
    ) -> Result<Conversation, StoreError> {
        self.write(
            "update_conversation",
            CONVERSATIONS,
            Repeat::IfNothingApplied,
            || self.update_conversation_body(id, edit),
        )
        .await
    }
}

#[async_trait]
impl TurnStore for PgStore {
    async fn append_turn(
        &self,
        conversation_id: ConversationId,
        draft: TurnDraft<'_>,
    ) -> Result<Turn, StoreError> {
        let repeat = Repeat::keyed(draft.id.is_some());
        self.write("append_turn", TURNS, repeat, || {
            self.append_turn_body(conversation_id, draft)
        })
        .await
    }

    async fn get_turn(&self, key: TurnKey) -> Result<Turn, StoreError> {
        self.read("get_turn", TURNS, move |s| {
            Box::pin(async move { s.get_turn_body(key).await })
        })
        .await
    }

    async fn list_turns(
        &self,
        conversation_id: ConversationId,
        query: TurnQuery,
    ) -> Result<TurnPage, StoreError> {
        self.read("list_turns", TURNS, move |s| {
            Box::pin(async move { s.list_turns_body(conversation_id, query).await })
        })
        .await
    }
}

#[async_trait]
impl RunStore for PgStore {
    async fn start_run(
        &self,
        conversation_id: ConversationId,
        draft: RunDraft,
    ) -> Result<Run, StoreError> {
        let repeat = Repeat::keyed(draft.id.is_some());
        self.write("start_run", RUNS, repeat, || {
            self.start_run_body(conversation_id, draft)
        })
        .await
    }

    async fn get_run(&self, key: RunKey) -> Result<Run, StoreError> {
        self.read("get_run", RUNS, move |s| {
            Box::pin(async move { s.get_run_body(key).await })
        })
        .await
    }

    async fn stop_run(&self, key: RunKey, reason: Option<&str>) -> Result<StoppedRun, StoreError> {
        self.write("stop_run", RUNS, Repeat::IfNothingApplied, || {
            self.stop_run_body(key, reason)
        })
        .await
    }

    async fn finish_run(
        &self,
        key: RunKey,
        end: RunEnd,
        reason: Option<&str>,
    ) -> Result<Run, StoreError> {
        self.write("finish_run", RUNS, Repeat::IfNothingApplied, || {
            self.finish_run_body(key, end, reason)
        })
        .await
    }

    async fn list_runs(
        &self,
        conversation_id: ConversationId,
        query: ListQuery,
    ) -> Result<Page<Run>, StoreError> {
        self.read("list_runs", RUNS, move |s| {
            let query = query.clone();
            Box::pin(async move { s.list_runs_body(conversation_id, query).await })
        })
        .await
    }

    async fn find_running_run(
        &self,
        conversation_id: ConversationId,
    ) -> Result<Option<Run>, StoreError> {
        self.read("find_running_run", RUNS, move |s| {
            Box::pin(async move { s.find_running_run_body(conversation_id).await })
        })
        .await
    }
}

#[async_trait]
impl RequestStore for PgStore {
    async fn create_request(
        &self,
        conversation_id: ConversationId,
        draft: RequestDraft<'_>,
    ) -> Result<AskUserRequest, StoreError> {
        let repeat = Repeat::keyed(draft.id.is_some());
        self.write("create_request", REQUESTS, repeat, || {
            self.create_request_body(conversation_id, draft)
        })
        .await
    }

    async fn get_request(&self, key: RequestKey) -> Result<AskUserRequest, StoreError> {
        self.read("get_request", REQUESTS, move |s| {
            Box::pin(async move { s.get_request_body(key).await })
        })
        .await
    }

    async fn answer_request(
        &self,
        key: RequestKey,
        answer: &str,
    ) -> Result<AskUserRequest, StoreError> {
        self.write("answer_request", REQUESTS, Repeat::IfNothingApplied, || {
            self.answer_request_body(key, answer)
        })
        .await
    }

    async fn mark_requests_resumed(
        &self,
        conversation_id: ConversationId,
        ids: &[RequestId],
    ) -> Result<Vec<AskUserRequest>, StoreError> {
        self.write(
            "mark_requests_resumed",
            REQUESTS,
            Repeat::IfNothingApplied,
            || self.mark_requests_resumed_body(conversation_id, ids),
        )
        .await
    }

    async fn list_pending_requests(
        &self,
        conversation_id: ConversationId,
    ) -> Result<Vec<AskUserRequest>, StoreError> {
        self.read("list_pending_requests", REQUESTS, move |s| {
            Box::pin(async move { s.list_pending_requests_body(conversation_id).await })
        })
        .await
    }

    async fn list_run_requests(&self, key: RunKey) -> Result<Vec<AskUserRequest>, StoreError> {
        self.read("list_run_requests", REQUESTS, move |s| {
            Box::pin(async move { s.list_run_requests_body(key).await })
        })
        .await
    }

    async fn list_all_pending_requests(
        &self,
        query: ListQuery,
    ) -> Result<Page<AskUserRequest>, StoreError> {
        self.read("list_all_pending_requests", REQUESTS, move |s| {
            let query = query.clone();
            Box::pin(async move { s.list_all_pending_requests_body(query).await })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use aura_schema::{ConversationId, TurnRole};

    use super::*;

    /// A store call's future holds every layer (span, retry attempts, deadline, routing;
    /// a write also its body). Each layer takes a maker, not a future, so none holds its
    /// inner future twice (see `crate::telemetry::traced`): in a debug build a read's was
    /// 13.9 KB before and is under 1 KB now, a write's under 4 KB.
    #[tokio::test]
    async fn a_store_call_future_stays_small() {
        let db = aura_testkit::TestDb::new().await;
        let store = PgStore::new(db.pool().await);
        let id = ConversationId::new();
        let read = store.read("list_turns", TURNS, move |s| {
            Box::pin(async move { s.list_turns_body(id, TurnQuery::latest(40)).await })
        });
        let size = std::mem::size_of_val(&read);
        assert!(size <= 2048, "a read's future is {size} bytes");
        drop(read);
        let draft = TurnDraft::new(TurnRole::User, "hi");
        let write = store.write("append_turn", TURNS, Repeat::IfNothingApplied, || {
            store.append_turn_body(id, draft)
        });
        let size = std::mem::size_of_val(&write);
        assert!(size <= 6144, "a write's future is {size} bytes");
    }
}
