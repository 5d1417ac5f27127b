//! The traits as objects: PgStore behind `Arc<dyn …>`, and a test double in its place.

use std::sync::{Arc, Mutex};

use aura_store::{
    ConversationId, ConversationStore, RequestDraft, RequestStore, RunDraft, RunKey, RunStore,
    Store, StoreError, Turn, TurnDraft, TurnId, TurnKey, TurnPage, TurnQuery, TurnRole, TurnStore,
    async_trait,
};

use crate::common::store;

/// Code of a sibling crate: it only knows the traits.
async fn chat(
    conversations: Arc<dyn ConversationStore>,
    turns: Arc<dyn TurnStore>,
    id: ConversationId,
) -> Result<usize, StoreError> {
    for content in ["hello", "hi there"] {
        turns
            .append_turn(
                id,
                TurnDraft {
                    id: None,
                    role: TurnRole::User,
                    content,
                    input_tokens: 1,
                    output_tokens: 1,
                    data: None,
                },
            )
            .await?;
    }
    Ok(conversations.get_conversation(id).await?.turns.len())
}

#[tokio::test]
async fn pg_store_works_behind_trait_objects() {
    let (_db, pg) = store().await;
    let all: Arc<dyn Store> = pg;
    let conversations: Arc<dyn ConversationStore> = all.clone();
    let turns: Arc<dyn TurnStore> = all.clone();
    let runs: Arc<dyn RunStore> = all.clone();
    let requests: Arc<dyn RequestStore> = all.clone();

    let id = conversations
        .create_conversation(aura_store::ConversationDraft::default())
        .await
        .expect("create")
        .id;
    assert_eq!(
        chat(conversations.clone(), turns, id).await.expect("chat"),
        2
    );
    let run = runs
        .start_run(id, RunDraft::default())
        .await
        .expect("start");
    requests
        .create_request(id, RequestDraft::new(Some(run.id), "go on?"))
        .await
        .expect("ask");
    let stopped = runs.stop_run(RunKey::from(&run), None).await.expect("stop");
    assert_eq!(stopped.cancelled_requests, 1);

    // Shared across tasks.
    let task = tokio::spawn({
        let all = all.clone();
        async move { all.list_pending_requests(id).await }
    });
    assert!(task.await.expect("task").expect("pending").is_empty());
}

/// A sibling crate's unit test substitutes its own TurnStore.
#[derive(Default)]
struct FakeTurns {
    stored: Mutex<Vec<Turn>>,
}

#[async_trait]
impl TurnStore for FakeTurns {
    async fn append_turn(
        &self,
        conversation_id: ConversationId,
        turn: TurnDraft<'_>,
    ) -> Result<Turn, StoreError> {
        let mut stored = self.stored.lock().expect("lock");
        let turn = Turn {
            conversation_id,
            id: TurnId::new(),
            seq: stored.len() as i32 + 1,
            role: turn.role,
            content: turn.content.to_owned(),
            input_tokens: turn.input_tokens,
            output_tokens: turn.output_tokens,
            created_at: chrono::Utc::now(),
            data: turn.data.cloned(),
        };
        stored.push(turn.clone());
        Ok(turn)
    }

    async fn get_turn(&self, key: TurnKey) -> Result<Turn, StoreError> {
        let stored = self.stored.lock().expect("lock");
        stored
            .iter()
            .find(|t| TurnKey::from(*t) == key)
            .cloned()
            .ok_or_else(|| StoreError::NotFound {
                entity: aura_store::Entity::Turn,
                id: key.to_string(),
            })
    }

    /// The latest turns only: what this fake's callers ask for.
    async fn list_turns(
        &self,
        _conversation_id: ConversationId,
        query: TurnQuery,
    ) -> Result<TurnPage, StoreError> {
        let stored = self.stored.lock().expect("lock");
        let from = stored.len().saturating_sub(query.limit as usize);
        Ok(TurnPage {
            turns: stored[from..].to_vec(),
            next: None,
        })
    }
}

#[tokio::test]
async fn a_test_double_stands_in_for_the_store() {
    let fake = Arc::new(FakeTurns::default());
    let turns: Arc<dyn TurnStore> = fake.clone();
    let id = ConversationId::new();
    let turn = turns
        .append_turn(
            id,
            TurnDraft {
                id: None,
                role: TurnRole::System,
                content: "be brief",
                input_tokens: 0,
                output_tokens: 0,
                data: None,
            },
        )
        .await
        .expect("append");
    assert_eq!(turn.seq, 1);
    assert_eq!(
        turns.get_turn(TurnKey::from(&turn)).await.expect("get"),
        turn
    );
    assert_eq!(fake.stored.lock().expect("lock").len(), 1);
    let window = turns
        .list_turns(id, TurnQuery::latest(40))
        .await
        .expect("latest");
    assert_eq!(window.turns, vec![turn]);
}
