//! Lost connections and an exhausted pool surface as Unavailable (retryable), and the next
//! call succeeds.

use std::sync::Arc;
use std::time::Duration;

use aura_store::{
    ConversationStore, RequestDraft, RequestStore, RunDraft, RunKey, RunStatus, RunStore,
    StoreError, TurnStore,
};
use aura_testkit::TestDb;

use crate::common::{conversation, store_with_pool, turn};

const APP_BACKENDS: &str = "SELECT pid FROM pg_stat_activity \
     WHERE datname = current_database() AND usename = 'aura_app'";

#[track_caller]
fn assert_unavailable<T: std::fmt::Debug>(result: Result<T, StoreError>) {
    match result {
        Err(err @ StoreError::Unavailable(_)) => assert!(err.is_retryable(), "{err:?}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

/// The app connection is terminated while its statement waits on a row lock: the call
/// fails as Unavailable, nothing of it was written, and the next call (pool of 1) works on
/// a new connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_killed_mid_statement_is_unavailable_then_the_next_call_works() {
    let db = TestDb::new().await;
    let store = Arc::new(store_with_pool(&db, 1).await);
    let c = conversation(&store).await.id;
    let admin = db.superuser_client().await;

    let mut locker = db.superuser_client().await;
    let lock = locker.transaction().await.expect("begin");
    lock.execute(
        "SELECT 1 FROM aura.conversations WHERE id = $1::text::uuid FOR UPDATE",
        &[&c.to_string()],
    )
    .await
    .expect("lock the conversation");

    let blocked = tokio::spawn({
        let store = Arc::clone(&store);
        async move { store.append_turn(c, turn("blocked", 1, 1)).await }
    });
    terminate_the_lock_waiter(&admin).await;
    assert_unavailable(blocked.await.expect("task"));
    lock.rollback().await.expect("rollback");

    let next = store
        .append_turn(c, turn("again", 1, 1))
        .await
        .expect("the next call works");
    assert_eq!(next.seq, 1, "the killed append wrote nothing");
    let got = store.get_conversation(c).await.expect("get");
    assert_eq!(got.conversation.turn_count, 1);
}

/// Killed inside a transaction (`stop_run`: its UPDATE of the run waits on the run's row
/// lock, the cancel of its requests is queued behind it): Unavailable, the transaction is
/// gone with the session, the run is still running with its request pending, and the next
/// stop works and cancels that request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_killed_inside_a_transaction_is_unavailable_and_changes_nothing() {
    let db = TestDb::new().await;
    let store = Arc::new(store_with_pool(&db, 1).await);
    let c = conversation(&store).await.id;
    let run = store
        .start_run(c, RunDraft::default())
        .await
        .expect("start");
    let key = RunKey::from(&run);
    let request = store
        .create_request(c, RequestDraft::new(Some(run.id), "still there?"))
        .await
        .expect("ask");
    let admin = db.superuser_client().await;

    let mut locker = db.superuser_client().await;
    let lock = locker.transaction().await.expect("begin");
    lock.execute(
        "SELECT 1 FROM aura.runs WHERE conversation_id = $1::text::uuid \
         AND id = $2::text::uuid FOR UPDATE",
        &[&c.to_string(), &run.id.to_string()],
    )
    .await
    .expect("lock the run");
    let blocked = tokio::spawn({
        let store = Arc::clone(&store);
        async move { store.stop_run(key, Some("stop")).await }
    });
    terminate_the_lock_waiter(&admin).await;
    assert_unavailable(blocked.await.expect("task"));
    lock.rollback().await.expect("rollback");

    let now = store.get_run(key).await.expect("get the run");
    assert_eq!(now.status, RunStatus::Running);
    assert_eq!(now.stop_reason, None);
    let pending = store.list_pending_requests(c).await.expect("pending");
    assert_eq!(
        pending.iter().map(|r| r.id).collect::<Vec<_>>(),
        [request.id]
    );
    let stopped = store
        .stop_run(key, None)
        .await
        .expect("the next stop works");
    assert_eq!(stopped.cancelled_requests, 1);
}

/// Waits until an app-role session waits on a lock, then terminates it.
async fn terminate_the_lock_waiter(admin: &tokio_postgres::Client) {
    let waiting = format!("{APP_BACKENDS} AND wait_event_type = 'Lock'");
    let mut pid = None;
    for _ in 0..500 {
        if let Some(row) = admin.query(&waiting, &[]).await.expect("activity").first() {
            pid = Some(row.get::<_, i32>(0));
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let pid = pid.expect("an app session waits on the row lock");
    admin
        .execute("SELECT pg_terminate_backend($1)", &[&pid])
        .await
        .expect("terminate");
}

/// Killed while idle in the pool: the next call either notices at checkout and works on a
/// new connection, or fails as Unavailable; the one after works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_killed_between_calls_is_replaced() {
    let db = TestDb::new().await;
    let store = store_with_pool(&db, 1).await;
    let c = conversation(&store).await.id;
    let admin = db.superuser_client().await;
    let rows = admin.query(APP_BACKENDS, &[]).await.expect("activity");
    assert_eq!(rows.len(), 1, "a pool of one");
    let pid: i32 = rows[0].get(0);
    admin
        .execute("SELECT pg_terminate_backend($1)", &[&pid])
        .await
        .expect("terminate");

    match store.get_conversation(c).await {
        Ok(got) => assert_eq!(got.conversation.id, c),
        Err(err) => {
            assert_unavailable::<()>(Err(err));
            store
                .get_conversation(c)
                .await
                .expect("the call after works");
        }
    }
    let rows = admin.query(APP_BACKENDS, &[]).await.expect("activity");
    assert_eq!(rows.len(), 1);
    assert_ne!(rows[0].get::<_, i32>(0), pid, "a new connection");
}

#[tokio::test]
async fn an_exhausted_pool_is_unavailable() {
    let db = TestDb::new().await;
    let config = db
        .config_builder()
        .max_conns(1)
        .checkout_timeout(Duration::from_millis(200))
        .build()
        .expect("config");
    let store = aura_store::PgStore::new(aura_db::open(&config).await.expect("pool"));
    let c = conversation(&store).await.id;
    let held = store.pool().get().await.expect("the only connection");
    let err = store.get_conversation(c).await.expect_err("exhausted");
    assert!(
        matches!(
            &err,
            StoreError::Unavailable(aura_db::Error::PoolExhausted { .. })
        ),
        "{err:?}"
    );
    assert!(err.is_retryable());
    drop(held);
    store.get_conversation(c).await.expect("free again");
}
