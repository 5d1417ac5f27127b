//! NotFound for every operation on a missing id, naming the entity and the id.

use aura_store::{
    ConversationId, ConversationStore, Entity, RequestDraft, RequestId, RequestKey, RequestStore,
    RunDraft, RunEnd, RunId, RunKey, RunStore, StoreError, TurnId, TurnKey, TurnStore,
};

use crate::common::{conversation, store, turn};

#[track_caller]
fn assert_not_found<T: std::fmt::Debug>(
    result: Result<T, StoreError>,
    entity: Entity,
    id: impl std::fmt::Display,
) {
    match result {
        Err(StoreError::NotFound { entity: e, id: got }) => {
            assert_eq!(e, entity, "entity");
            assert_eq!(got, id.to_string(), "id");
        }
        other => panic!("expected NotFound {entity} {id}, got {other:?}"),
    }
}

#[tokio::test]
async fn every_operation_on_a_missing_conversation() {
    let (_db, store) = store().await;
    let gone = ConversationId::new();
    let conv = Entity::Conversation;
    assert_not_found(store.get_conversation(gone).await, conv, gone);
    assert_not_found(store.delete_conversation(gone).await, conv, gone);
    assert_not_found(store.append_turn(gone, turn("hi", 0, 0)).await, conv, gone);
    assert_not_found(store.start_run(gone, RunDraft::default()).await, conv, gone);
    assert_not_found(
        store
            .create_request(gone, RequestDraft::new(None, "q?"))
            .await,
        conv,
        gone,
    );
    assert_not_found(
        store
            .create_request(gone, RequestDraft::new(Some(RunId::new()), "q?"))
            .await,
        conv,
        gone,
    );
    assert_not_found(store.list_pending_requests(gone).await, conv, gone);
    let id = RequestId::new();
    assert_not_found(
        store.mark_requests_resumed(gone, &[id]).await,
        Entity::Request,
        format!("{gone}/{id}"),
    );
}

#[tokio::test]
async fn every_operation_on_a_missing_turn_run_or_request() {
    let (_db, store) = store().await;
    let c = conversation(&store).await.id;

    let turn_key = TurnKey::new(c, TurnId::new());
    assert_not_found(store.get_turn(turn_key).await, Entity::Turn, turn_key);

    let run_key = RunKey::new(c, RunId::new());
    assert_not_found(store.get_run(run_key).await, Entity::Run, run_key);
    assert_not_found(store.stop_run(run_key, None).await, Entity::Run, run_key);
    assert_not_found(
        store.finish_run(run_key, RunEnd::Completed, None).await,
        Entity::Run,
        run_key,
    );
    assert_not_found(
        store
            .create_request(c, RequestDraft::new(Some(run_key.id), "q?"))
            .await,
        Entity::Run,
        run_key,
    );

    let request_key = RequestKey::new(c, RequestId::new());
    assert_not_found(
        store.get_request(request_key).await,
        Entity::Request,
        request_key,
    );
    assert_not_found(
        store.answer_request(request_key, "a").await,
        Entity::Request,
        request_key,
    );

    // A key whose id exists, but in another conversation, is missing too.
    let run = store
        .start_run(c, RunDraft::default())
        .await
        .expect("start");
    let d = conversation(&store).await.id;
    let elsewhere = RunKey::new(d, run.id);
    assert_not_found(store.get_run(elsewhere).await, Entity::Run, elsewhere);
    assert_not_found(
        store.stop_run(elsewhere, None).await,
        Entity::Run,
        elsewhere,
    );
}

#[tokio::test]
async fn a_deleted_conversation_takes_everything_with_it() {
    let (db, store) = store().await;
    let c = conversation(&store).await.id;
    store
        .append_turn(c, turn("hi", 1, 1))
        .await
        .expect("append");
    let run = store
        .start_run(c, RunDraft::default())
        .await
        .expect("start");
    store
        .create_request(c, RequestDraft::new(Some(run.id), "q?"))
        .await
        .expect("ask");
    store.delete_conversation(c).await.expect("delete");
    assert_not_found(store.get_conversation(c).await, Entity::Conversation, c);
    assert_not_found(
        store.get_run(RunKey::from(&run)).await,
        Entity::Run,
        RunKey::from(&run),
    );
    for table in ["turns", "runs", "ask_user_requests"] {
        let sql =
            format!("SELECT count(*) FROM aura.{table} WHERE conversation_id = $1::text::uuid");
        assert_eq!(crate::common::scalar(&db, &sql, c).await, 0, "{table}");
    }
    assert_not_found(store.delete_conversation(c).await, Entity::Conversation, c);
}
