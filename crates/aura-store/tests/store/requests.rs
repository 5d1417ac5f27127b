//! Ask-user requests: answer from pending only; resume a batch all or none.

use aura_store::{
    ConflictKind, Entity, RequestDraft, RequestKey, RequestStatus, RequestStore, RunDraft,
    RunStore, StoreError,
};

use crate::common::{conversation, store};

#[tokio::test]
async fn mark_requests_resumed_is_all_or_nothing() {
    let (_db, store) = store().await;
    let c = conversation(&store).await.id;
    let run = store
        .start_run(c, RunDraft::default())
        .await
        .expect("start");
    let mut requests = Vec::new();
    for q in ["a?", "b?", "c?"] {
        requests.push(
            store
                .create_request(c, RequestDraft::new(Some(run.id), q))
                .await
                .expect("ask"),
        );
    }
    let keys: Vec<RequestKey> = requests.iter().map(RequestKey::from).collect();
    let ids: Vec<_> = requests.iter().map(|r| r.id).collect();
    store.answer_request(keys[0], "A").await.expect("answer");
    store.answer_request(keys[1], "B").await.expect("answer");

    // One still pending: Conflict naming it, and nothing changed.
    match store.mark_requests_resumed(c, &ids).await {
        Err(
            err @ StoreError::Conflict {
                kind: ConflictKind::RequestsNotAnswered { .. },
                entity: Entity::Conversation,
                ..
            },
        ) => {
            assert_eq!(
                err.conflict_kind(),
                Some(&ConflictKind::RequestsNotAnswered {
                    offending: vec![(ids[2], Some(RequestStatus::Pending))]
                })
            );
            assert_eq!(
                err.to_string(),
                format!(
                    "aura-store: conflict: conversation {c} has requests that are not \
                     answered, none resumed: {} (pending)",
                    ids[2]
                )
            );
        }
        other => panic!("expected Conflict, got {other:?}"),
    }
    for (key, status) in keys.iter().zip([
        RequestStatus::Answered,
        RequestStatus::Answered,
        RequestStatus::Pending,
    ]) {
        let now = store.get_request(*key).await.expect("get");
        assert_eq!(now.status, status);
        assert_eq!(now.resumed_at, None);
    }

    // All answered: all resumed, with their answers; repeated ids count once.
    store.answer_request(keys[2], "C").await.expect("answer");
    let mut batch = ids.clone();
    batch.push(ids[0]);
    let mut resumed = store
        .mark_requests_resumed(c, &batch)
        .await
        .expect("resume");
    resumed.sort_by_key(|r| r.id);
    assert_eq!(resumed.len(), 3);
    for (request, answer) in resumed.iter().zip(["A", "B", "C"]) {
        assert_eq!(request.status, RequestStatus::Resumed);
        assert_eq!(request.answer.as_deref(), Some(answer));
        assert!(request.resumed_at.is_some() && request.answered_at.is_some());
    }

    // Resuming again: they are no longer answered.
    match store.mark_requests_resumed(c, &ids[..1]).await {
        Err(StoreError::Conflict {
            kind: ConflictKind::RequestsNotAnswered { offending },
            ..
        }) => assert_eq!(offending, [(ids[0], Some(RequestStatus::Resumed))]),
        other => panic!("expected Conflict, got {other:?}"),
    }
}

#[tokio::test]
async fn a_batch_with_a_missing_id_changes_nothing() {
    let (_db, store) = store().await;
    let c = conversation(&store).await.id;
    let answered = store
        .create_request(c, RequestDraft::new(None, "no run?"))
        .await
        .expect("ask");
    assert_eq!(answered.run_id, None);
    store
        .answer_request(RequestKey::from(&answered), "fine")
        .await
        .expect("answer");
    let pending = store
        .create_request(c, RequestDraft::new(None, "later?"))
        .await
        .expect("ask");
    let missing = aura_store::RequestId::new();

    // Only a missing id is in the way: NotFound naming it.
    match store
        .mark_requests_resumed(c, &[answered.id, missing])
        .await
    {
        Err(StoreError::NotFound {
            entity: Entity::Request,
            id,
        }) => assert_eq!(id, format!("{c}/{missing}")),
        other => panic!("expected NotFound, got {other:?}"),
    }
    // A pending one and a missing one: Conflict naming both.
    match store
        .mark_requests_resumed(c, &[answered.id, pending.id, missing])
        .await
    {
        Err(StoreError::Conflict {
            kind: ConflictKind::RequestsNotAnswered { offending },
            ..
        }) => {
            let mut offending = offending;
            offending.sort_unstable_by_key(|(id, _)| *id);
            let mut expected = vec![(pending.id, Some(RequestStatus::Pending)), (missing, None)];
            expected.sort_unstable_by_key(|(id, _)| *id);
            assert_eq!(offending, expected);
        }
        other => panic!("expected Conflict, got {other:?}"),
    }
    // Neither attempt resumed the answered one.
    let now = store
        .get_request(RequestKey::from(&answered))
        .await
        .expect("get");
    assert_eq!(now.status, RequestStatus::Answered);
    assert_eq!(now.resumed_at, None);
}

#[tokio::test]
async fn answer_only_from_pending() {
    let (_db, store) = store().await;
    let c = conversation(&store).await.id;
    let run = store
        .start_run(c, RunDraft::default())
        .await
        .expect("start");
    let request = store
        .create_request(c, RequestDraft::new(Some(run.id), "which one?"))
        .await
        .expect("ask");
    assert_eq!(request.status, RequestStatus::Pending);
    assert_eq!(
        store.list_pending_requests(c).await.expect("pending"),
        vec![request.clone()]
    );
    let key = RequestKey::from(&request);
    let answered = store
        .answer_request(key, "the blue one")
        .await
        .expect("answer");
    assert_eq!(answered.status, RequestStatus::Answered);
    assert_eq!(answered.answer.as_deref(), Some("the blue one"));
    assert_eq!(answered.answered_at, answered.resolved_at);
    assert!(answered.answered_at.is_some());
    assert_eq!(answered.question, "which one?");
    assert!(
        store
            .list_pending_requests(c)
            .await
            .expect("pending")
            .is_empty()
    );
    match store.answer_request(key, "the red one").await {
        Err(
            err @ StoreError::Conflict {
                kind:
                    ConflictKind::RequestNotPending {
                        status: RequestStatus::Answered,
                    },
                entity: Entity::Request,
                ..
            },
        ) => assert_eq!(
            err.to_string(),
            format!("aura-store: conflict: ask-user request {key} is answered, not pending")
        ),
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert_eq!(
        store.get_request(key).await.expect("get").answer.as_deref(),
        Some("the blue one")
    );
}
