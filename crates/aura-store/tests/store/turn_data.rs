//! Structured turn data: JSONB that reads back as exactly the value appended, through every
//! read; part of a turn's idempotency key; refused before any SQL when over a rule.

use aura_store::{
    ConflictKind, ConversationStore, StoreError, TurnDraft, TurnId, TurnKey, TurnQuery, TurnRole,
    TurnStore,
};
use serde_json::{Value, json};

use crate::common::{conversation, scalar, store};

/// Values JSONB changes the form of: floats that are whole numbers (numeric drops an
/// exponent), big and small numbers, escapes, non-ASCII, nesting, empty containers.
fn awkward() -> Value {
    json!({
        "tool_calls": [{"id": "call_1", "name": "search", "arguments": {"q": "Lisbon \"old\" town\\"}}],
        "finish_reason": "tool_calls",
        "model": "m-1",
        "floats": [1e16, -1.5e17, 1e300, 1e308, 5e-324, 0.1, 1e-7, 3.0, 2.5, -0.5, 123456.789],
        "ints": [0, -1, 9007199254740993u64, u64::MAX, i64::MIN],
        "text": "ünïcode ✓ 🦀 \u{1} \t\n \u{2028}",
        "empty": {"a": [], "o": {}, "s": "", "n": null},
        "bools": [true, false],
        "": "an empty key",
    })
}

#[tokio::test]
async fn data_reads_back_exactly_through_every_read() {
    let (db, store) = store().await;
    let c = conversation(&store).await.id;
    let data = awkward();
    let appended = store
        .append_turn(
            c,
            TurnDraft::new(TurnRole::Assistant, "calling search").with_data(&data),
        )
        .await
        .expect("append");
    let plain = store
        .append_turn(c, TurnDraft::new(TurnRole::User, "no data"))
        .await
        .expect("append");
    assert_eq!(appended.data.as_ref(), Some(&data));
    assert_eq!(plain.data, None);

    let by_key = store
        .get_turn(TurnKey::from(&appended))
        .await
        .expect("get_turn");
    let all = store.get_conversation(c).await.expect("get").turns;
    let page = store
        .list_turns(c, TurnQuery::first(10))
        .await
        .expect("page");
    let last = store
        .get_conversation_with_last_turns(c, 2)
        .await
        .expect("last");
    for (read, what) in [
        (&by_key, "get_turn"),
        (&all[0], "get_conversation"),
        (&page.turns[0], "list_turns"),
        (&last.turns[0], "get_conversation_with_last_turns"),
    ] {
        assert_eq!(read, &appended, "{what}");
        // The same value, and the same JSON text: nothing changed form on the way.
        let back = read.data.as_ref().expect("data");
        assert_eq!(back, &data, "{what}");
        assert_eq!(back.to_string(), data.to_string(), "{what}");
    }
    assert_eq!(all[1].data, None);
    // In the database it is JSONB, whole floats in plain decimal.
    let stored = scalar(
        &db,
        "SELECT ((data->'floats'->>0) = '10000000000000000.0')::int::bigint \
           FROM aura.turns WHERE conversation_id = $1::text::uuid AND seq = 1",
        c,
    )
    .await;
    assert_eq!(stored, 1);
}

#[tokio::test]
async fn data_is_part_of_a_turns_idempotency_key() {
    let (_db, store) = store().await;
    let c = conversation(&store).await.id;
    let data = json!({"finish_reason": "stop", "n": 1.0});
    let draft = TurnDraft::new(TurnRole::Assistant, "done")
        .with_data(&data)
        .with_id(TurnId::new());
    let first = store.append_turn(c, draft).await.expect("append");
    let again = store.append_turn(c, draft).await.expect("repeat");
    assert_eq!(again, first);

    // 1 and 1.0 are equal to JSONB's `=`, but read back differently: not the same turn.
    let one = json!({"finish_reason": "stop", "n": 1});
    let other = json!({"finish_reason": "length", "n": 1.0});
    for changed in [
        TurnDraft {
            data: None,
            ..draft
        },
        draft.with_data(&one),
        draft.with_data(&other),
    ] {
        match store.append_turn(c, changed).await {
            Err(StoreError::Conflict {
                kind: ConflictKind::IdempotencyMismatch,
                ..
            }) => {}
            other => panic!(
                "{:?}: expected IdempotencyMismatch, got {other:?}",
                changed.data
            ),
        }
    }
    let keyed_without = TurnDraft::new(TurnRole::User, "plain").with_id(TurnId::new());
    let stored = store.append_turn(c, keyed_without).await.expect("append");
    assert_eq!(
        store.append_turn(c, keyed_without).await.expect("repeat"),
        stored
    );
    assert_eq!(
        store
            .get_conversation(c)
            .await
            .expect("get")
            .conversation
            .turn_count,
        2
    );
}

#[tokio::test]
async fn data_over_a_rule_is_refused_before_anything_is_written() {
    let (db, store) = store().await;
    let c = conversation(&store).await.id;
    let mut deep = json!("bottom");
    for _ in 0..65 {
        deep = json!([deep]);
    }
    let big = json!({ "blob": "x".repeat(aura_store::limits::MAX_DATA_BYTES) });
    let nul = json!({ "text": "a\u{0}b" });
    let nul_key = json!({ "a\u{0}": 1 });
    let unreadable = json!({ "n": f64::MAX });
    for (value, words) in [
        (&unreadable, "read back"),
        (&deep, "nested"),
        (&big, "1 MiB"),
        (&nul, "NUL"),
        (&nul_key, "NUL"),
    ] {
        let draft = TurnDraft::new(TurnRole::Tool, "result").with_data(value);
        match store.append_turn(c, draft).await {
            Err(StoreError::InvalidInput {
                field: "data",
                reason,
            }) => assert!(reason.contains(words), "{reason}"),
            other => panic!("expected InvalidInput data, got {other:?}"),
        }
    }
    assert_eq!(
        scalar(
            &db,
            "SELECT count(*) FROM aura.turns WHERE conversation_id = $1::text::uuid",
            c
        )
        .await,
        0
    );
    let mut deepest = json!("bottom");
    for _ in 0..aura_store::limits::MAX_DATA_DEPTH {
        deepest = json!([deepest]);
    }
    let turn = store
        .append_turn(
            c,
            TurnDraft::new(TurnRole::Tool, "deep").with_data(&deepest),
        )
        .await
        .expect("64 deep is allowed");
    let back = store.get_turn(TurnKey::from(&turn)).await.expect("read");
    assert_eq!(back.data, Some(deepest));
}
