//! A deployment's life: `aura db migrate` on an empty database, then the application's
//! store, configured from the same environment, working as the app role; `aura db status`
//! and `aura db reset` around it.

use aura_e2e::{AuraEnv, applied_count, text};
use aura_store::{
    ConversationDraft, ConversationStore, Entity, ListQuery, PgStore, StoreError, TurnDraft,
    TurnRole, TurnStore,
};
use aura_testkit::TestDb;

#[tokio::test]
async fn the_cli_migrates_and_the_store_works_as_the_app_role() {
    let db = TestDb::empty().await;
    let env = AuraEnv::for_db(&db);

    let out = env.run(&["db", "migrate"]);
    assert!(out.status.success(), "migrate: {}", text(&out.stderr));
    let applied = applied_count(&out.stdout);
    assert_eq!(
        applied,
        aura_db::Migrations::embedded().len(),
        "{}",
        text(&out.stdout)
    );

    // The application: configuration from the same environment, the app role's pool.
    let config = env.config();
    assert_eq!(config.app_role(), "aura_app");
    let store = PgStore::open(&config)
        .await
        .expect("store opens as the app role");
    let conversation = store
        .create_conversation(ConversationDraft::new("m").titled("deployed"))
        .await
        .expect("create");
    for (i, role) in [TurnRole::User, TurnRole::Assistant, TurnRole::User]
        .into_iter()
        .enumerate()
    {
        let turn = store
            .append_turn(conversation.id, TurnDraft::new(role, "hello").tokens(3, 5))
            .await
            .expect("append");
        assert_eq!(turn.seq, i as i32 + 1);
    }
    let page = store
        .list_conversations(ListQuery::default())
        .await
        .expect("list");
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].id, conversation.id);
    assert_eq!(page.items[0].turn_count, 3);
    assert_eq!(page.items[0].input_tokens, 9);
    assert!(page.next.is_none());

    let out = env.run(&["db", "status"]);
    assert_eq!(out.status.code(), Some(0), "status: {}", text(&out.stderr));

    // The migrations' tables are the app role's to use, not to change.
    let err = app_role_ddl(&db).await;
    assert_eq!(err.as_deref(), Some("42501"), "the app role ran DDL");

    // A dev reset (both guards) reverts and reapplies everything: the data is gone.
    drop(store);
    let out = env
        .clone()
        .with(aura_db::vars::AURA_RESET_YES, "1")
        .run(&["db", "reset", "--yes"]);
    assert!(out.status.success(), "reset: {}", text(&out.stderr));
    let store = PgStore::open(&config).await.expect("store reopens");
    match store.get_conversation(conversation.id).await {
        Err(StoreError::NotFound {
            entity: Entity::Conversation,
            ..
        }) => {}
        other => panic!("expected NotFound after reset, got {other:?}"),
    }
    let page = store
        .list_conversations(ListQuery::default())
        .await
        .expect("list after reset");
    assert!(page.items.is_empty());
}

/// `ALTER TABLE` as the app role, on a plain connection; the SQLSTATE it fails with.
async fn app_role_ddl(db: &TestDb) -> Option<String> {
    db.app_client()
        .await
        .batch_execute("ALTER TABLE aura.turns ADD COLUMN sneaky int")
        .await
        .err()
        .and_then(|e| e.code().map(|c| c.code().to_owned()))
}
