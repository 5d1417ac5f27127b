//! InvalidInput for each input rule, naming the field; nothing is written.

use aura_store::{
    ConversationDraft, ConversationId, ConversationStore, Cursor, ListQuery, RequestDraft,
    RequestId, RequestKey, RequestStore, RunId, RunKey, RunStore, StoreError, TurnDraft, TurnRole,
    TurnStore,
    limits::{MAX_BATCH, MAX_TEXT_BYTES},
};

use crate::common::{conversation, scalar, store, turn};

#[track_caller]
fn assert_invalid<T: std::fmt::Debug>(result: Result<T, StoreError>, field: &str) {
    match result {
        Err(StoreError::InvalidInput { field: f, reason }) => {
            assert_eq!(f, field, "{reason}");
            assert!(!reason.is_empty());
        }
        other => panic!("expected InvalidInput {field}, got {other:?}"),
    }
}

#[tokio::test]
async fn each_rule_names_its_field() {
    let (db, store) = store().await;
    let c = conversation(&store).await.id;
    let too_big = "x".repeat(MAX_TEXT_BYTES + 1);
    let long_title = "t".repeat(501);

    // Conversations.
    for (title, model) in [
        (Some(long_title.as_str()), ""),
        (Some(""), ""),
        (Some("nul\0"), ""),
    ] {
        assert_invalid(
            store
                .create_conversation(ConversationDraft {
                    id: None,
                    title,
                    model,
                })
                .await,
            "title",
        );
    }
    assert_invalid(
        store
            .create_conversation(ConversationDraft {
                id: None,
                title: None,
                model: &long_title,
            })
            .await,
        "model",
    );
    let ok = store
        .create_conversation(ConversationDraft {
            id: None,
            title: Some(&long_title[..500]),
            model: "m",
        })
        .await
        .expect("500 characters is fine");
    assert_eq!(ok.title.as_deref().map(str::len), Some(500));
    for limit in [0, 101] {
        assert_invalid(
            store
                .list_conversations(ListQuery {
                    limit: Some(limit),
                    after: None,
                })
                .await,
            "limit",
        );
    }
    for after in ["", "garbage", "AAAA", "not/base64url=="] {
        assert_invalid(
            store
                .list_conversations(ListQuery {
                    limit: None,
                    after: Some(Cursor::from(after)),
                })
                .await,
            "after",
        );
    }

    // Turns.
    assert_invalid(store.append_turn(c, turn("", 0, 0)).await, "content");
    assert_invalid(store.append_turn(c, turn(&too_big, 0, 0)).await, "content");
    assert_invalid(store.append_turn(c, turn("a\0b", 0, 0)).await, "content");
    assert_invalid(store.append_turn(c, turn("x", -1, 0)).await, "input_tokens");
    assert_invalid(
        store.append_turn(c, turn("x", 0, -1)).await,
        "output_tokens",
    );
    // Checked before SQL: even a missing conversation reports the input first.
    assert_invalid(
        store
            .append_turn(
                ConversationId::new(),
                TurnDraft {
                    id: None,
                    role: TurnRole::Tool,
                    content: "",
                    input_tokens: 0,
                    output_tokens: 0,
                    data: None,
                },
            )
            .await,
        "content",
    );
    let exactly_1_mib = "y".repeat(MAX_TEXT_BYTES);
    store
        .append_turn(c, turn(&exactly_1_mib, 0, 0))
        .await
        .expect("1 MiB is fine");

    // Runs.
    let run = RunKey::new(c, RunId::new());
    assert_invalid(store.stop_run(run, Some(&too_big)).await, "reason");

    // Requests.
    assert_invalid(
        store.create_request(c, RequestDraft::new(None, "")).await,
        "question",
    );
    assert_invalid(
        store
            .create_request(c, RequestDraft::new(None, &too_big))
            .await,
        "question",
    );
    let key = RequestKey::new(c, RequestId::new());
    assert_invalid(store.answer_request(key, "").await, "answer");
    assert_invalid(store.answer_request(key, &too_big).await, "answer");
    assert_invalid(store.mark_requests_resumed(c, &[]).await, "ids");
    let many: Vec<RequestId> = (0..=MAX_BATCH).map(|_| RequestId::new()).collect();
    assert_invalid(store.mark_requests_resumed(c, &many).await, "ids");

    // Nothing was written by the refused calls: one turn (the 1 MiB one), no request.
    let sql = "SELECT count(*) FROM aura.turns WHERE conversation_id = $1::text::uuid";
    assert_eq!(scalar(&db, sql, c).await, 1);
    let sql = "SELECT count(*) FROM aura.ask_user_requests WHERE conversation_id = $1::text::uuid";
    assert_eq!(scalar(&db, sql, c).await, 0);
}
