//! create / get / delete conversations.

use aura_store::{ConversationDraft, ConversationStore};

use crate::common::store;

#[tokio::test]
async fn create_get_delete() {
    let (_db, store) = store().await;
    let created = store
        .create_conversation(ConversationDraft {
            id: None,
            title: Some("Trip"),
            model: "m-1",
        })
        .await
        .expect("create");
    assert_eq!(created.title.as_deref(), Some("Trip"));
    assert_eq!(created.model, "m-1");
    assert_eq!(
        (
            created.turn_count,
            created.input_tokens,
            created.output_tokens
        ),
        (0, 0, 0)
    );
    assert_eq!(created.id.as_uuid().get_version_num(), 7);
    assert_eq!(created.updated_at, created.started_at);

    let got = store.get_conversation(created.id).await.expect("get");
    assert_eq!(got.conversation, created);
    assert!(got.turns.is_empty());

    let untitled = store
        .create_conversation(ConversationDraft::default())
        .await
        .expect("create");
    assert_eq!(untitled.title, None);
    assert_eq!(untitled.model, "");

    store.delete_conversation(created.id).await.expect("delete");
    assert!(store.get_conversation(created.id).await.is_err());
    store
        .get_conversation(untitled.id)
        .await
        .expect("the other one stays");
}
