//! aura-store as a sibling crate (the runner, the API server) uses it: `aura-store` the only
//! data-layer name in scope (its re-exports cover the configuration and the rows), the
//! store held as `Arc<dyn Store>` only, errors matched by variant and `ConflictKind`.

use std::sync::Arc;
use std::time::Duration;

use aura_testkit::TestDb;

/// The sibling crate's code: nothing but `aura_store` paths, and only `Arc<dyn Store>`.
mod sibling {
    use std::sync::Arc;

    use aura_store::{
        ConflictKind, ConversationDraft, ConversationId, RequestDraft, RequestId, RequestKey,
        RequestStatus, RunDraft, RunEnd, RunKey, Store, StoreError, TurnDraft, TurnId, TurnRole,
    };

    /// Opens the store the way the service does at start-up.
    pub async fn open(config: &aura_store::Config) -> (aura_store::PgStore, Arc<dyn Store>) {
        let pg = aura_store::PgStore::open(config)
            .await
            .expect("store opens");
        let store: Arc<dyn Store> = Arc::new(pg.clone());
        (pg, store)
    }

    /// One exchange with a question in the middle; every write carries the caller's id, and
    /// each is sent twice, as a client retrying after a lost answer would.
    pub async fn exchange(store: &Arc<dyn Store>) -> Result<ConversationId, StoreError> {
        let conversation = ConversationDraft::new("m-1")
            .titled("downstream")
            .with_id(ConversationId::new());
        let c = store.create_conversation(conversation).await?.id;
        assert_eq!(store.create_conversation(conversation).await?.id, c);

        let question = TurnDraft::new(TurnRole::User, "book a table?")
            .tokens(4, 0)
            .with_id(TurnId::new());
        let first = store.append_turn(c, question).await?;
        let retried = store.append_turn(c, question).await?;
        assert_eq!((first.seq, retried.seq), (1, 1));

        let run_id = aura_store::RunId::new();
        let run = store.start_run(c, RunDraft::with_id(run_id)).await?;
        assert_eq!(store.start_run(c, RunDraft::with_id(run_id)).await?, run);
        match store.start_run(c, RunDraft::default()).await {
            Err(StoreError::Conflict {
                kind: ConflictKind::RunAlreadyRunning,
                ..
            }) => {}
            other => panic!("expected RunAlreadyRunning, got {other:?}"),
        }

        let ask = RequestDraft::new(Some(run.id), "for how many?").with_id(RequestId::new());
        let request = store.create_request(c, ask).await?;
        assert_eq!(store.create_request(c, ask).await?, request);
        assert_eq!(store.list_pending_requests(c).await?, vec![request.clone()]);
        let key = RequestKey::from(&request);
        store.answer_request(key, "two").await?;
        match store.answer_request(key, "three").await {
            Err(StoreError::Conflict {
                kind:
                    ConflictKind::RequestNotPending {
                        status: RequestStatus::Answered,
                    },
                ..
            }) => {}
            other => panic!("expected RequestNotPending, got {other:?}"),
        }
        store
            .finish_run(RunKey::from(&run), RunEnd::Completed, None)
            .await?;
        let resumed = store.mark_requests_resumed(c, &[request.id]).await?;
        assert_eq!(resumed[0].status, RequestStatus::Resumed);

        // The same turn id with other content: a bug in the caller, told as such.
        match store
            .append_turn(
                c,
                TurnDraft {
                    content: "book two tables?",
                    ..question
                },
            )
            .await
        {
            Err(StoreError::Conflict {
                kind: ConflictKind::IdempotencyMismatch,
                ..
            }) => {}
            other => panic!("expected IdempotencyMismatch, got {other:?}"),
        }
        let answer = TurnDraft::new(TurnRole::Assistant, "booked for two")
            .tokens(10, 6)
            .with_id(TurnId::new());
        assert_eq!(store.append_turn(c, answer).await?.seq, 2);
        Ok(c)
    }

    /// What the runner and the API server read and change afterwards (issue 15): the
    /// context window, a tool turn with structured data, the run history, a rename by
    /// two editors, the notifier's poll.
    pub async fn follow_up(store: &Arc<dyn Store>, c: ConversationId) -> Result<(), StoreError> {
        use aura_store::{ConversationEdit, ListQuery, TurnQuery};

        let call =
            aura_store::serde_json::json!({"tool": "book", "args": {"people": 2}, "score": 1e16});
        let tool = TurnDraft::new(TurnRole::Tool, "booked")
            .with_data(&call)
            .with_id(TurnId::new());
        assert_eq!(store.append_turn(c, tool).await?.data.as_ref(), Some(&call));
        let window = store.list_turns(c, TurnQuery::latest(2)).await?;
        let seqs: Vec<i32> = window.turns.iter().map(|t| t.seq).collect();
        assert_eq!(seqs, [2, 3]);
        assert_eq!(window.turns[1].data.as_ref(), Some(&call));
        let older = store.list_turns(c, window.next.expect("turn 1")).await?;
        assert_eq!((older.turns.len(), older.next), (1, None));

        let seen = store.get_conversation_with_last_turns(c, 1).await?;
        assert_eq!(seen.turns.len(), 1);
        let renamed = store
            .update_conversation(
                c,
                ConversationEdit::new()
                    .title("dinner for two")
                    .if_unchanged_since(seen.conversation.updated_at),
            )
            .await?;
        match store
            .update_conversation(
                c,
                ConversationEdit::new()
                    .title("dinner")
                    .if_unchanged_since(seen.conversation.updated_at),
            )
            .await
        {
            Err(StoreError::Conflict {
                kind: ConflictKind::ConversationChanged { updated_at },
                ..
            }) => assert_eq!(updated_at, renamed.updated_at),
            other => panic!("expected ConversationChanged, got {other:?}"),
        }

        assert_eq!(store.find_running_run(c).await?, None);
        let runs = store.list_runs(c, ListQuery::default()).await?;
        assert_eq!(runs.items.len(), 1);
        let asked = store
            .list_run_requests(RunKey::from(&runs.items[0]))
            .await?;
        assert_eq!(asked[0].status, RequestStatus::Resumed);
        store
            .create_request(c, RequestDraft::new(None, "dessert?"))
            .await?;
        let pending = store
            .list_all_pending_requests(ListQuery::default())
            .await?;
        assert_eq!(pending.items.len(), 1);
        assert_eq!(pending.items[0].conversation_id, c);
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sibling_crate_uses_the_store_through_arc_dyn_store_only() {
    let db = TestDb::new().await;
    let config: aura_store::Config = db.config().clone();
    let (pg, store) = sibling::open(&config).await;
    let c = sibling::exchange(&store).await.expect("the exchange");
    sibling::follow_up(&store, c).await.expect("the follow-up");

    let got = store.get_conversation(c).await.expect("get");
    assert_eq!(got.conversation.turn_count, 3);
    assert_eq!(
        (
            got.conversation.input_tokens,
            got.conversation.output_tokens
        ),
        (14, 6)
    );
    let contents: Vec<&str> = got.turns.iter().map(|t| t.content.as_str()).collect();
    assert_eq!(contents, ["book a table?", "booked for two", "booked"]);

    // Shutdown: the handle held elsewhere answers Closed, not a timeout.
    let held: Arc<dyn aura_store::Store> = Arc::clone(&store);
    assert_eq!(pg.close(Duration::from_secs(5)).await, 0);
    match held.get_conversation(c).await {
        Err(aura_store::StoreError::Closed) => {}
        other => panic!("expected Closed, got {other:?}"),
    }
}
