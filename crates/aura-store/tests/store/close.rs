//! `PgStore::close`: calls in progress finish, new ones fail as `Closed`, at once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aura_store::{RunKey, Store, StoreError, TurnDraft, TurnRole};

use crate::common::{conversation, store_with_pool};

#[track_caller]
fn assert_closed<T: std::fmt::Debug>(result: Result<T, StoreError>) {
    match result {
        Err(err @ StoreError::Closed) => {
            assert!(!err.is_retryable());
            assert_eq!(err.to_string(), "aura-store: the store is closed");
        }
        other => panic!("expected Closed, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_waits_for_the_call_in_progress_and_refuses_new_ones() {
    let db = aura_testkit::TestDb::new().await;
    let pg = Arc::new(store_with_pool(&db, 2).await);
    let c = conversation(&pg).await.id;
    let store: Arc<dyn Store> = pg.clone();

    // An append in progress: it waits on the conversation's row lock.
    let mut locker = db.superuser_client().await;
    let lock = locker.transaction().await.expect("begin");
    lock.execute(
        "SELECT 1 FROM aura.conversations WHERE id = $1::text::uuid FOR UPDATE",
        &[&c.to_string()],
    )
    .await
    .expect("lock the conversation");
    let in_progress = tokio::spawn({
        let store = store.clone();
        async move {
            store
                .append_turn(c, TurnDraft::new(TurnRole::User, "in flight"))
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;

    let closing = tokio::spawn({
        let pg = pg.clone();
        async move { pg.close(Duration::from_secs(10)).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(pg.is_closed());
    let started = Instant::now();
    // One statement, a read, and a transaction (stop_run): each refused at once.
    assert_closed(store.get_conversation(c).await);
    assert_closed(
        store
            .append_turn(c, TurnDraft::new(TurnRole::User, "late"))
            .await,
    );
    assert_closed(store.list_pending_requests(c).await);
    assert_closed(
        store
            .stop_run(RunKey::new(c, aura_store::RunId::new()), None)
            .await,
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "refused at once"
    );
    assert!(
        !closing.is_finished(),
        "close waits for the append in progress"
    );

    lock.rollback().await.expect("release");
    let turn = in_progress
        .await
        .expect("task")
        .expect("the append in progress completes");
    assert_eq!(turn.seq, 1);
    let still_in_use = tokio::time::timeout(Duration::from_secs(2), closing)
        .await
        .expect("close returns once the append is done")
        .expect("task");
    assert_eq!(still_in_use, 0);
    assert_closed(store.get_conversation(c).await);

    // The append is stored; no app connection is left open.
    let admin = db.superuser_client().await;
    let turns: i64 = admin
        .query_one(
            "SELECT count(*) FROM aura.turns WHERE conversation_id = $1::text::uuid",
            &[&c.to_string()],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(turns, 1);
    let mut sessions: i64 = -1;
    for _ in 0..60 {
        sessions = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE datname = current_database() AND usename = 'aura_app'",
                &[],
            )
            .await
            .expect("pg_stat_activity")
            .get(0);
        if sessions == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(sessions, 0, "every connection of the store is closed");
}
