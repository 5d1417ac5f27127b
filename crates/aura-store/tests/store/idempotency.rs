//! Caller-supplied ids are idempotency keys: a repeated create or append returns what was
//! stored and writes nothing; the same id with other content is a Conflict; concurrent
//! repeats store one row.

use std::sync::Arc;
use std::time::Duration;

use aura_store::{
    ConflictKind, ConversationDraft, ConversationId, ConversationStore, Entity, RequestDraft,
    RequestId, RequestKey, RequestStatus, RequestStore, RunDraft, RunId, RunKey, RunStatus,
    RunStore, StoreError, TurnDraft, TurnId, TurnKey, TurnRole, TurnStore,
};

use crate::common::{conversation, scalar, store};

const TURNS: &str = "SELECT count(*) FROM aura.turns WHERE conversation_id = $1::text::uuid";
const TURN_COUNT: &str =
    "SELECT turn_count::bigint FROM aura.conversations WHERE id = $1::text::uuid";

/// The result is an IdempotencyMismatch conflict about row `id` of kind `entity`.
#[track_caller]
fn assert_mismatch<T: std::fmt::Debug>(result: Result<T, StoreError>, entity: Entity, id: String) {
    let err = result.expect_err("an IdempotencyMismatch conflict");
    let StoreError::Conflict {
        kind: ConflictKind::IdempotencyMismatch,
        entity: got_entity,
        id: got_id,
    } = &err
    else {
        panic!("expected an IdempotencyMismatch conflict, got {err:?}");
    };
    assert_eq!((*got_entity, got_id), (entity, &id));
    assert_eq!(
        err.to_string(),
        format!(
            "aura-store: conflict: {entity} {id} already exists with different content (the id \
             is an idempotency key: a retry must send the same content)"
        )
    );
}

#[tokio::test]
async fn a_repeated_append_returns_the_stored_turn_and_changes_nothing() {
    let (db, store) = store().await;
    let c = conversation(&store).await.id;
    let id = TurnId::new();
    let draft = TurnDraft::new(TurnRole::User, "hello")
        .tokens(3, 5)
        .with_id(id);
    let first = store.append_turn(c, draft).await.expect("append");
    assert_eq!((first.id, first.seq), (id, 1));
    let other = store
        .append_turn(c, TurnDraft::new(TurnRole::Assistant, "hi"))
        .await
        .expect("another turn");
    assert_eq!(other.seq, 2);

    let again = store.append_turn(c, draft).await.expect("repeat");
    assert_eq!(again, first, "the same turn: same seq and time");
    assert_eq!(scalar(&db, TURNS, c).await, 2);
    assert_eq!(scalar(&db, TURN_COUNT, c).await, 2, "turn_count not bumped");

    for changed in [
        draft.tokens(3, 6),
        TurnDraft {
            content: "hello!",
            ..draft
        },
        TurnDraft {
            role: TurnRole::System,
            ..draft
        },
    ] {
        assert_mismatch(
            store.append_turn(c, changed).await,
            Entity::Turn,
            TurnKey::new(c, id).to_string(),
        );
    }
    let got = store.get_conversation(c).await.expect("get");
    assert_eq!(got.conversation.turn_count, 2);
    assert_eq!(
        (
            got.conversation.input_tokens,
            got.conversation.output_tokens
        ),
        (3, 5)
    );
    assert_eq!(got.turns[0], first);

    // The next append (no id) still gets the next seq: no gap.
    let next = store
        .append_turn(c, TurnDraft::new(TurnRole::User, "next"))
        .await
        .expect("append");
    assert_eq!(next.seq, 3);
}

/// Sixteen appends of one id at once (a client retrying in parallel): one row, one seq,
/// and every caller gets that turn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_of_one_id_store_one_turn() {
    let (db, store) = store().await;
    let c = conversation(&store).await.id;
    let id = TurnId::new();
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let draft = TurnDraft::new(TurnRole::User, "once")
                    .tokens(1, 1)
                    .with_id(id);
                store.append_turn(c, draft).await
            })
        })
        .collect();
    let mut turns = Vec::new();
    for task in tasks {
        turns.push(task.await.expect("task").expect("append"));
    }
    assert!(turns.iter().all(|t| *t == turns[0]), "{turns:#?}");
    assert_eq!(turns[0].seq, 1);
    assert_eq!(scalar(&db, TURNS, c).await, 1);
    assert_eq!(scalar(&db, TURN_COUNT, c).await, 1);
    let got = store.get_conversation(c).await.expect("get");
    assert_eq!(
        (
            got.conversation.input_tokens,
            got.conversation.output_tokens
        ),
        (1, 1)
    );
}

/// The race the statement cannot see: two appends of one id whose snapshots both predate
/// the other's insert (both started while the conversation was locked). The second fails
/// on the primary key inside the store, is made again, and returns the first one's turn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_of_one_id_that_cannot_see_each_other_still_store_one_turn() {
    let (db, store) = store().await;
    let c = conversation(&store).await.id;
    let mut locker = db.superuser_client().await;
    let lock = locker.transaction().await.expect("begin");
    lock.execute(
        "SELECT 1 FROM aura.conversations WHERE id = $1::text::uuid FOR UPDATE",
        &[&c.to_string()],
    )
    .await
    .expect("lock the conversation");
    let id = TurnId::new();
    let tasks: Vec<_> = (0..2)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let draft = TurnDraft::new(TurnRole::User, "raced").with_id(id);
                store.append_turn(c, draft).await
            })
        })
        .collect();
    wait_for_lock_waiters(&db, 2).await;
    lock.rollback().await.expect("release");
    let mut seqs = Vec::new();
    for task in tasks {
        seqs.push(task.await.expect("task").expect("append").seq);
    }
    assert_eq!(seqs, [1, 1]);
    assert_eq!(scalar(&db, TURNS, c).await, 1);
    assert_eq!(
        scalar(&db, TURN_COUNT, c).await,
        1,
        "the undone bump left no gap"
    );
}

/// Waits until `n` app sessions wait on a lock.
async fn wait_for_lock_waiters(db: &aura_testkit::TestDb, n: i64) {
    let admin = db.superuser_client().await;
    for _ in 0..200 {
        let waiting: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                 AND usename = 'aura_app' AND wait_event_type = 'Lock'",
                &[],
            )
            .await
            .expect("pg_stat_activity")
            .get(0);
        if waiting == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{n} appends never waited on the conversation's lock");
}

#[tokio::test]
async fn a_repeated_create_returns_the_stored_conversation() {
    let (db, store) = store().await;
    let id = ConversationId::new();
    let draft = ConversationDraft::new("m-1").titled("Trip").with_id(id);
    let created = store.create_conversation(draft).await.expect("create");
    assert_eq!(created.id, id);
    store
        .append_turn(id, TurnDraft::new(TurnRole::User, "hi"))
        .await
        .expect("append");
    // The repeat returns the conversation as it is now.
    let again = store.create_conversation(draft).await.expect("repeat");
    assert_eq!(
        (again.id, again.started_at, again.turn_count),
        (id, created.started_at, 1)
    );
    assert_eq!(
        scalar(
            &db,
            "SELECT count(*) FROM aura.conversations WHERE id = $1::text::uuid",
            id
        )
        .await,
        1
    );
    assert_mismatch(
        store.create_conversation(draft.titled("Other trip")).await,
        Entity::Conversation,
        id.to_string(),
    );
    assert_mismatch(
        store
            .create_conversation(ConversationDraft {
                title: None,
                ..draft
            })
            .await,
        Entity::Conversation,
        id.to_string(),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_start_returns_the_stored_run() {
    let (db, store) = store().await;
    let c = conversation(&store).await.id;
    let id = RunId::new();
    // Concurrent starts of one id: one run, every caller gets it (not RunAlreadyRunning).
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.start_run(c, RunDraft::with_id(id)).await })
        })
        .collect();
    let mut runs = Vec::new();
    for task in tasks {
        runs.push(task.await.expect("task").expect("start"));
    }
    assert!(
        runs.iter().all(|r| *r == runs[0] && r.id == id),
        "{runs:#?}"
    );
    assert_eq!(
        scalar(
            &db,
            "SELECT count(*) FROM aura.runs WHERE conversation_id = $1::text::uuid",
            c
        )
        .await,
        1
    );
    // Another id while it runs: the one-running rule still holds.
    match store.start_run(c, RunDraft::with_id(RunId::new())).await {
        Err(StoreError::Conflict {
            kind: ConflictKind::RunAlreadyRunning,
            ..
        }) => {}
        other => panic!("expected RunAlreadyRunning, got {other:?}"),
    }
    // Repeated after it stopped: the stored run, as it is now; no new run starts.
    let key = RunKey::new(c, id);
    store.stop_run(key, None).await.expect("stop");
    let again = store
        .start_run(c, RunDraft::with_id(id))
        .await
        .expect("repeat");
    assert_eq!(again.status, RunStatus::Stopped);
    assert_eq!(again, store.get_run(key).await.expect("get"));
}

#[tokio::test]
async fn a_repeated_request_returns_the_stored_request() {
    let (db, store) = store().await;
    let c = conversation(&store).await.id;
    let run = store
        .start_run(c, RunDraft::default())
        .await
        .expect("start");
    let id = RequestId::new();
    let draft = RequestDraft::new(Some(run.id), "which one?").with_id(id);
    let asked = store.create_request(c, draft).await.expect("ask");
    assert_eq!(store.create_request(c, draft).await.expect("repeat"), asked);
    assert_mismatch(
        store
            .create_request(
                c,
                RequestDraft {
                    question: "which two?",
                    ..draft
                },
            )
            .await,
        Entity::Request,
        RequestKey::new(c, id).to_string(),
    );
    assert_mismatch(
        store
            .create_request(
                c,
                RequestDraft {
                    run_id: None,
                    ..draft
                },
            )
            .await,
        Entity::Request,
        RequestKey::new(c, id).to_string(),
    );
    // After its run stopped (which cancelled it), the repeat still returns it, as it is now.
    store
        .stop_run(RunKey::from(&run), None)
        .await
        .expect("stop");
    let again = store
        .create_request(c, draft)
        .await
        .expect("repeat after stop");
    assert_eq!((again.id, again.status), (id, RequestStatus::Cancelled));
    assert_eq!(
        scalar(
            &db,
            "SELECT count(*) FROM aura.ask_user_requests WHERE conversation_id = $1::text::uuid",
            c
        )
        .await,
        1
    );
    // A new id from the stopped run is refused as before.
    match store
        .create_request(
            c,
            RequestDraft::new(Some(run.id), "late?").with_id(RequestId::new()),
        )
        .await
    {
        Err(StoreError::Conflict {
            kind:
                ConflictKind::RunNotRunning {
                    status: RunStatus::Stopped,
                },
            ..
        }) => {}
        other => panic!("expected RunNotRunning, got {other:?}"),
    }
}

#[tokio::test]
async fn a_caller_id_must_be_a_uuid_v7() {
    let (db, store) = store().await;
    let c = conversation(&store).await.id;
    let v4 = uuid::Builder::from_random_bytes([42; 16]).into_uuid();
    let results = [
        store
            .create_conversation(ConversationDraft::new("m").with_id(ConversationId::from(v4)))
            .await
            .err(),
        store
            .append_turn(
                c,
                TurnDraft::new(TurnRole::User, "x").with_id(TurnId::from(v4)),
            )
            .await
            .err(),
        store
            .start_run(c, RunDraft::with_id(RunId::from(v4)))
            .await
            .err(),
        store
            .create_request(c, RequestDraft::new(None, "q").with_id(RequestId::from(v4)))
            .await
            .err(),
    ];
    for err in results {
        match err {
            Some(StoreError::InvalidInput {
                field: "id",
                reason,
            }) => {
                assert!(
                    reason.contains("UUIDv7") && reason.contains("version 4"),
                    "{reason}"
                )
            }
            other => panic!("expected InvalidInput id, got {other:?}"),
        }
    }
    assert_eq!(scalar(&db, TURNS, c).await, 0);
}
