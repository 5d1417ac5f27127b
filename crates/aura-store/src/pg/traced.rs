//! The store traits for [`PgStore`]: every operation runs inside its `db.operation` span
//! (see `crate::telemetry`), each attempt under the operation deadline and repeated as the
//! store's retry policy allows (see `super::attempts`, which says which operation is
//! [`Repeat::AnyTransient`] and why); the work itself is in the sibling modules.

use async_trait::async_trait;
use aura_schema::{AskUserRequest, Conversation, ConversationId, RequestId, Run, Turn};

use super::PgStore;
use super::attempts::Repeat;
use crate::edit::ConversationEdit;
use crate::error::StoreError;
use crate::input::{ConversationDraft, RequestDraft, RunDraft, RunEnd, TurnDraft};
use crate::keys::{RequestKey, RunKey, TurnKey};
use crate::telemetry::traced;
use crate::traits::{ConversationStore, RequestStore, RunStore, TurnStore};
use crate::turn_query::{TurnPage, TurnQuery};
use crate::views::{ConversationSummary, ConversationWithTurns, ListQuery, Page, StoppedRun};

const CONVERSATIONS: &str = "aura.conversations";
const TURNS: &str = "aura.turns";
const RUNS: &str = "aura.runs";
const REQUESTS: &str = "aura.ask_user_requests";

#[async_trait]
impl ConversationStore for PgStore {
    async fn create_conversation(
        &self,
        draft: ConversationDraft<'_>,
    ) -> Result<Conversation, StoreError> {
        let repeat = Repeat::keyed(draft.id.is_some());
        let op = self.written(self.attempts("create_conversation", repeat, || {
            self.create_conversation_body(draft)
        }));
        traced(self, "create_conversation", CONVERSATIONS, op).await
    }

    async fn get_conversation(
        &self,
        id: ConversationId,
    ) -> Result<ConversationWithTurns, StoreError> {
        let op = self.attempts("get_conversation", Repeat::AnyTransient, || {
            self.routed(move |s| Box::pin(async move { s.get_conversation_body(id).await }))
        });
        traced(self, "get_conversation", CONVERSATIONS, op).await
    }

    async fn list_conversations(
        &self,
        query: ListQuery,
    ) -> Result<Page<ConversationSummary>, StoreError> {
        let op = self.attempts("list_conversations", Repeat::AnyTransient, || {
            let query = query.clone();
            self.routed(move |s| {
                let query = query.clone();
                Box::pin(async move { s.list_conversations_body(query).await })
            })
        });
        traced(self, "list_conversations", CONVERSATIONS, op).await
    }

    async fn delete_conversation(&self, id: ConversationId) -> Result<(), StoreError> {
        let op = self.written(self.attempts(
            "delete_conversation",
            Repeat::IfNothingApplied,
            || self.delete_conversation_body(id),
        ));
        traced(self, "delete_conversation", CONVERSATIONS, op).await
    }

    async fn get_conversation_with_last_turns(
        &self,
        id: ConversationId,
        turns: u32,
    ) -> Result<ConversationWithTurns, StoreError> {
        let op = self.attempts(
            "get_conversation_with_last_turns",
            Repeat::AnyTransient,
            || {
                self.routed(move |s| {
                    Box::pin(
                        async move { s.get_conversation_with_last_turns_body(id, turns).await },
                    )
                })
            },
        );
        traced(self, "get_conversation_with_last_turns", CONVERSATIONS, op).await
    }

    async fn update_conversation(
        &self,
        id: ConversationId,
        edit: ConversationEdit<'_>,
    ) -> Result<Conversation, StoreError> {
        let op = self.written(self.attempts(
            "update_conversation",
            Repeat::IfNothingApplied,
            || self.update_conversation_body(id, edit),
        ));
        traced(self, "update_conversation", CONVERSATIONS, op).await
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
        let op = self.written(self.attempts("append_turn", repeat, || {
            self.append_turn_body(conversation_id, draft)
        }));
        traced(self, "append_turn", TURNS, op).await
    }

    async fn get_turn(&self, key: TurnKey) -> Result<Turn, StoreError> {
        let op = self.attempts("get_turn", Repeat::AnyTransient, || {
            self.routed(move |s| Box::pin(async move { s.get_turn_body(key).await }))
        });
        traced(self, "get_turn", TURNS, op).await
    }

    async fn list_turns(
        &self,
        conversation_id: ConversationId,
        query: TurnQuery,
    ) -> Result<TurnPage, StoreError> {
        let op = self.attempts("list_turns", Repeat::AnyTransient, || {
            self.routed(move |s| {
                Box::pin(async move { s.list_turns_body(conversation_id, query).await })
            })
        });
        traced(self, "list_turns", TURNS, op).await
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
        let op = self.written(self.attempts("start_run", repeat, || {
            self.start_run_body(conversation_id, draft)
        }));
        traced(self, "start_run", RUNS, op).await
    }

    async fn get_run(&self, key: RunKey) -> Result<Run, StoreError> {
        let op = self.attempts("get_run", Repeat::AnyTransient, || {
            self.routed(move |s| Box::pin(async move { s.get_run_body(key).await }))
        });
        traced(self, "get_run", RUNS, op).await
    }

    async fn stop_run(&self, key: RunKey, reason: Option<&str>) -> Result<StoppedRun, StoreError> {
        let op = self.written(self.attempts("stop_run", Repeat::IfNothingApplied, || {
            self.stop_run_body(key, reason)
        }));
        traced(self, "stop_run", RUNS, op).await
    }

    async fn finish_run(
        &self,
        key: RunKey,
        end: RunEnd,
        reason: Option<&str>,
    ) -> Result<Run, StoreError> {
        let op = self.written(self.attempts("finish_run", Repeat::IfNothingApplied, || {
            self.finish_run_body(key, end, reason)
        }));
        traced(self, "finish_run", RUNS, op).await
    }

    async fn list_runs(
        &self,
        conversation_id: ConversationId,
        query: ListQuery,
    ) -> Result<Page<Run>, StoreError> {
        let op = self.attempts("list_runs", Repeat::AnyTransient, || {
            let query = query.clone();
            self.routed(move |s| {
                let query = query.clone();
                Box::pin(async move { s.list_runs_body(conversation_id, query).await })
            })
        });
        traced(self, "list_runs", RUNS, op).await
    }

    async fn find_running_run(
        &self,
        conversation_id: ConversationId,
    ) -> Result<Option<Run>, StoreError> {
        let op = self.attempts("find_running_run", Repeat::AnyTransient, || {
            self.routed(move |s| {
                Box::pin(async move { s.find_running_run_body(conversation_id).await })
            })
        });
        traced(self, "find_running_run", RUNS, op).await
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
        let op = self.written(self.attempts("create_request", repeat, || {
            self.create_request_body(conversation_id, draft)
        }));
        traced(self, "create_request", REQUESTS, op).await
    }

    async fn get_request(&self, key: RequestKey) -> Result<AskUserRequest, StoreError> {
        let op = self.attempts("get_request", Repeat::AnyTransient, || {
            self.routed(move |s| Box::pin(async move { s.get_request_body(key).await }))
        });
        traced(self, "get_request", REQUESTS, op).await
    }

    async fn answer_request(
        &self,
        key: RequestKey,
        answer: &str,
    ) -> Result<AskUserRequest, StoreError> {
        let op = self.written(
            self.attempts("answer_request", Repeat::IfNothingApplied, || {
                self.answer_request_body(key, answer)
            }),
        );
        traced(self, "answer_request", REQUESTS, op).await
    }

    async fn mark_requests_resumed(
        &self,
        conversation_id: ConversationId,
        ids: &[RequestId],
    ) -> Result<Vec<AskUserRequest>, StoreError> {
        let op = self.written(self.attempts(
            "mark_requests_resumed",
            Repeat::IfNothingApplied,
            || self.mark_requests_resumed_body(conversation_id, ids),
        ));
        traced(self, "mark_requests_resumed", REQUESTS, op).await
    }

    async fn list_pending_requests(
        &self,
        conversation_id: ConversationId,
    ) -> Result<Vec<AskUserRequest>, StoreError> {
        let op = self.attempts("list_pending_requests", Repeat::AnyTransient, || {
            self.routed(move |s| {
                Box::pin(async move { s.list_pending_requests_body(conversation_id).await })
            })
        });
        traced(self, "list_pending_requests", REQUESTS, op).await
    }

    async fn list_run_requests(&self, key: RunKey) -> Result<Vec<AskUserRequest>, StoreError> {
        let op = self.attempts("list_run_requests", Repeat::AnyTransient, || {
            self.routed(move |s| Box::pin(async move { s.list_run_requests_body(key).await }))
        });
        traced(self, "list_run_requests", REQUESTS, op).await
    }

    async fn list_all_pending_requests(
        &self,
        query: ListQuery,
    ) -> Result<Page<AskUserRequest>, StoreError> {
        let op = self.attempts("list_all_pending_requests", Repeat::AnyTransient, || {
            let query = query.clone();
            self.routed(move |s| {
                let query = query.clone();
                Box::pin(async move { s.list_all_pending_requests_body(query).await })
            })
        });
        traced(self, "list_all_pending_requests", REQUESTS, op).await
    }
}
