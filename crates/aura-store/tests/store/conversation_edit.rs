//! update_conversation: title and model, the expected version (Conflict when it moved),
//! NotFound, InvalidInput.

use std::sync::Arc;

use aura_store::{
    ConflictKind, ConversationDraft, ConversationEdit, ConversationId, ConversationStore, Entity,
    StoreError, TurnStore,
};

use crate::common::{store, turn};

#[tokio::test]
async fn title_and_model_change_and_updated_at_moves_forward() {
    let (_db, store) = store().await;
    let created = store
        .create_conversation(ConversationDraft::new("m-1"))
        .await
        .expect("create");
    let titled = store
        .update_conversation(created.id, ConversationEdit::new().title("Trip to Lisbon"))
        .await
        .expect("title");
    assert_eq!(titled.title.as_deref(), Some("Trip to Lisbon"));
    assert_eq!(titled.model, "m-1", "the model is left alone");
    assert!(titled.updated_at > created.updated_at);
    assert_eq!(
        (titled.started_at, titled.turn_count),
        (created.started_at, 0)
    );

    let both = store
        .update_conversation(
            created.id,
            ConversationEdit::new()
                .model("m-2")
                .clear_title()
                .if_unchanged_since(titled.updated_at),
        )
        .await
        .expect("model and no title");
    assert_eq!((both.title.as_deref(), both.model.as_str()), (None, "m-2"));
    assert!(both.updated_at > titled.updated_at);
    let read = store.get_conversation(created.id).await.expect("get");
    assert_eq!(read.conversation, both);
}

#[tokio::test]
async fn an_edit_against_a_version_that_moved_is_a_conflict_and_changes_nothing() {
    let (_db, store) = store().await;
    let seen = store
        .create_conversation(ConversationDraft::new("m").titled("first"))
        .await
        .expect("create");
    // Someone else renames it.
    let theirs = store
        .update_conversation(seen.id, ConversationEdit::new().title("theirs"))
        .await
        .expect("their edit");
    let mine = ConversationEdit::new()
        .title("mine")
        .if_unchanged_since(seen.updated_at);
    match store.update_conversation(seen.id, mine).await {
        Err(StoreError::Conflict {
            kind: ConflictKind::ConversationChanged { updated_at },
            entity: Entity::Conversation,
            id,
        }) => {
            assert_eq!(updated_at, theirs.updated_at, "names the version now");
            assert_eq!(id, seen.id.to_string());
        }
        other => panic!("expected ConversationChanged, got {other:?}"),
    }
    let now = store
        .get_conversation(seen.id)
        .await
        .expect("get")
        .conversation;
    assert_eq!(now, theirs, "nothing changed");

    // A new turn moves the version too.
    store
        .append_turn(seen.id, turn("hi", 1, 1))
        .await
        .expect("append");
    let stale = ConversationEdit::new()
        .model("m-2")
        .if_unchanged_since(theirs.updated_at);
    let err = store
        .update_conversation(seen.id, stale)
        .await
        .expect_err("stale after a turn");
    assert!(
        matches!(
            err.conflict_kind(),
            Some(ConflictKind::ConversationChanged { .. })
        ),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("has changed since the expected version"),
        "{err}"
    );
}

/// Two editors with the same version: one wins, the other is told.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_concurrent_editors_of_one_version_exactly_one_wins() {
    let (_db, store) = store().await;
    for round in 0..10 {
        let seen = store
            .create_conversation(ConversationDraft::new("m"))
            .await
            .expect("create");
        let editors: Vec<_> = ["a", "b"]
            .into_iter()
            .map(|title| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    let edit = ConversationEdit::new()
                        .title(title)
                        .if_unchanged_since(seen.updated_at);
                    store.update_conversation(seen.id, edit).await
                })
            })
            .collect();
        let mut won = Vec::new();
        let mut conflicts = 0;
        for editor in editors {
            match editor.await.expect("task") {
                Ok(c) => won.push(c),
                Err(err)
                    if matches!(
                        err.conflict_kind(),
                        Some(ConflictKind::ConversationChanged { .. })
                    ) =>
                {
                    conflicts += 1
                }
                Err(other) => panic!("{other:?}"),
            }
        }
        assert_eq!((won.len(), conflicts), (1, 1), "round {round}");
        let now = store
            .get_conversation(seen.id)
            .await
            .expect("get")
            .conversation;
        assert_eq!(now, won[0]);
    }
}

#[tokio::test]
async fn missing_conversations_and_bad_edits() {
    let (_db, store) = store().await;
    let gone = ConversationId::new();
    for edit in [
        ConversationEdit::new().title("t"),
        ConversationEdit::new()
            .model("m")
            .if_unchanged_since(chrono::Utc::now()),
    ] {
        match store.update_conversation(gone, edit).await {
            Err(StoreError::NotFound {
                entity: Entity::Conversation,
                id,
            }) => assert_eq!(id, gone.to_string()),
            other => panic!("expected NotFound, got {other:?}"),
        }
    }
    let c = store
        .create_conversation(ConversationDraft::new("m").titled("keep"))
        .await
        .expect("create");
    let long = "é".repeat(501);
    for (edit, field) in [
        (ConversationEdit::new(), "edit"),
        (
            ConversationEdit::new().if_unchanged_since(c.updated_at),
            "edit",
        ),
        (ConversationEdit::new().title(""), "title"),
        (ConversationEdit::new().title(&long), "title"),
        (ConversationEdit::new().title("a\0b"), "title"),
        (ConversationEdit::new().title("ok").model(&long), "model"),
        (ConversationEdit::new().model("m\0"), "model"),
    ] {
        match store.update_conversation(c.id, edit).await {
            Err(StoreError::InvalidInput { field: f, .. }) => assert_eq!(f, field, "{edit:?}"),
            other => panic!("{edit:?}: expected InvalidInput {field}, got {other:?}"),
        }
    }
    let now = store
        .get_conversation(c.id)
        .await
        .expect("get")
        .conversation;
    assert_eq!(now, c, "nothing was changed");
}
