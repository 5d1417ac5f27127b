//! Runs: one running per conversation; stop cancels exactly the run's pending requests.

use aura_store::{
    ConflictKind, Entity, RequestDraft, RequestStatus, RequestStore, RunDraft, RunEnd, RunKey,
    RunStatus, RunStore, StoreError,
};

use crate::common::{conversation, store};

#[tokio::test]
async fn stop_cancels_exactly_the_runs_pending_requests() {
    let (_db, store) = store().await;
    let c = conversation(&store).await.id;

    // An earlier run asked a question and finished: its request stays pending.
    let earlier = store
        .start_run(c, RunDraft::default())
        .await
        .expect("start earlier");
    let earlier_key = RunKey::from(&earlier);
    let other = store
        .create_request(c, RequestDraft::new(Some(earlier.id), "still open?"))
        .await
        .expect("ask");
    let finished = store
        .finish_run(earlier_key, RunEnd::Completed, None)
        .await
        .expect("finish");
    assert_eq!(finished.status, RunStatus::Completed);
    assert!(finished.ended_at.is_some());

    let run = store
        .start_run(c, RunDraft::default())
        .await
        .expect("start");
    let key = RunKey::from(&run);
    assert_eq!(run.status, RunStatus::Running);
    let mut pending = Vec::new();
    for q in ["one?", "two?", "three?"] {
        pending.push(
            store
                .create_request(c, RequestDraft::new(Some(run.id), q))
                .await
                .expect("ask"),
        );
    }
    let answered = store
        .create_request(c, RequestDraft::new(Some(run.id), "four?"))
        .await
        .expect("ask");
    store
        .answer_request(aura_store::RequestKey::from(&answered), "yes")
        .await
        .expect("answer");

    let stopped = store
        .stop_run(key, Some("user pressed stop"))
        .await
        .expect("stop");
    assert_eq!(stopped.cancelled_requests, 3);
    assert_eq!(stopped.run.status, RunStatus::Stopped);
    assert_eq!(
        stopped.run.stop_reason.as_deref(),
        Some("user pressed stop")
    );
    assert!(stopped.run.ended_at.is_some());
    for request in &pending {
        let now = store
            .get_request(aura_store::RequestKey::from(request))
            .await
            .expect("get");
        assert_eq!(now.status, RequestStatus::Cancelled);
        assert!(now.resolved_at.is_some());
        assert_eq!(now.answer, None);
    }
    let answered = store
        .get_request(aura_store::RequestKey::from(&answered))
        .await
        .expect("get");
    assert_eq!(answered.status, RequestStatus::Answered);
    let still = store.list_pending_requests(c).await.expect("pending");
    assert_eq!(still.iter().map(|r| r.id).collect::<Vec<_>>(), [other.id]);

    // Stopping the completed run that still has a pending request: Conflict, and the
    // cancel that went out with it is rolled back: the request stays pending.
    match store.stop_run(earlier_key, Some("too late")).await {
        Err(StoreError::Conflict {
            kind:
                ConflictKind::RunNotRunning {
                    status: RunStatus::Completed,
                },
            entity: Entity::Run,
            id,
        }) => assert_eq!(id, earlier_key.to_string()),
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert_eq!(store.get_run(earlier_key).await.expect("get"), finished);
    let still = store.list_pending_requests(c).await.expect("pending");
    assert_eq!(still.iter().map(|r| r.id).collect::<Vec<_>>(), [other.id]);
    assert_eq!(
        store
            .get_request(aura_store::RequestKey::from(&other))
            .await
            .expect("get"),
        other
    );

    // Stopping again: Conflict, and nothing changes.
    match store.stop_run(key, None).await {
        Err(
            err @ StoreError::Conflict {
                kind:
                    ConflictKind::RunNotRunning {
                        status: RunStatus::Stopped,
                    },
                ..
            },
        ) => assert_eq!(
            err.to_string(),
            format!("aura-store: conflict: run {key} is stopped, not running")
        ),
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert_eq!(store.get_run(key).await.expect("get"), stopped.run);
    match store.finish_run(key, RunEnd::Failed, None).await {
        Err(StoreError::Conflict {
            kind: ConflictKind::RunNotRunning { .. },
            ..
        }) => {}
        other => panic!("expected Conflict, got {other:?}"),
    }
    // A stopped run cannot ask any more.
    match store
        .create_request(c, RequestDraft::new(Some(run.id), "late?"))
        .await
    {
        Err(StoreError::Conflict {
            kind:
                ConflictKind::RunNotRunning {
                    status: RunStatus::Stopped,
                },
            ..
        }) => {}
        other => panic!("expected Conflict, got {other:?}"),
    }
}

#[tokio::test]
async fn a_second_running_run_is_a_conflict() {
    let (_db, store) = store().await;
    let c = conversation(&store).await.id;
    let run = store
        .start_run(c, RunDraft::default())
        .await
        .expect("start");
    match store.start_run(c, RunDraft::default()).await {
        Err(
            err @ StoreError::Conflict {
                kind: ConflictKind::RunAlreadyRunning,
                entity: Entity::Conversation,
                ..
            },
        ) => assert_eq!(
            err.to_string(),
            format!("aura-store: conflict: conversation {c} already has a running run")
        ),
        other => panic!("expected Conflict, got {other:?}"),
    }
    let failed = store
        .finish_run(RunKey::from(&run), RunEnd::Failed, Some("model error"))
        .await
        .expect("finish");
    assert_eq!(failed.status, RunStatus::Failed);
    assert_eq!(failed.stop_reason.as_deref(), Some("model error"));
    // Once it ended, another may start.
    let next = store
        .start_run(c, RunDraft::default())
        .await
        .expect("start again");
    assert_ne!(next.id, run.id);
    // Another conversation is independent.
    let d = conversation(&store).await.id;
    store
        .start_run(d, RunDraft::default())
        .await
        .expect("start elsewhere");
}

/// Requests created while the run is being stopped are either refused (the run is no
/// longer running) or cancelled by the stop: none is left pending on a stopped run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_racing_a_stop_are_refused_or_cancelled() {
    let (_db, store) = store().await;
    let c = conversation(&store).await.id;
    for _ in 0..5 {
        let run = store
            .start_run(c, RunDraft::default())
            .await
            .expect("start");
        let askers: Vec<_> = (0..3)
            .map(|_| {
                let store = std::sync::Arc::clone(&store);
                tokio::spawn(async move {
                    let mut created = Vec::new();
                    loop {
                        match store
                            .create_request(c, RequestDraft::new(Some(run.id), "still there?"))
                            .await
                        {
                            Ok(request) => created.push(request.id),
                            Err(StoreError::Conflict { .. }) => return created,
                            Err(other) => panic!("{other:?}"),
                        }
                    }
                })
            })
            .collect();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let stopped = store
            .stop_run(RunKey::from(&run), None)
            .await
            .expect("stop");
        let mut created = Vec::new();
        for asker in askers {
            created.extend(asker.await.expect("task"));
        }
        assert!(!created.is_empty());
        assert_eq!(stopped.cancelled_requests, created.len() as u64);
        assert!(
            store
                .list_pending_requests(c)
                .await
                .expect("pending")
                .is_empty()
        );
    }
}
