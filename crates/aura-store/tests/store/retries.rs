//! `PgStore::with_retry`: the store makes its own operations again where that cannot apply
//! them twice. A keyed append whose reply was cut is retried and lands once; an unkeyed one
//! is not retried (it may have committed: it did); a read whose connection was cut is
//! retried; a `stop_run` chosen as a real deadlock's victim is retried and succeeds, and
//! without a policy its 40P01 comes back; a conflict is never retried. Attempts are counted
//! as pool checkouts (one per attempt).

use std::time::Duration;

use aura_store::{
    ConflictKind, ConversationId, PgStore, RequestDraft, RequestStore, RetryPolicy, RunDraft,
    RunKey, RunStore, StoreError, Transient, Turn, TurnDraft, TurnId, TurnKey, TurnRole, TurnStore,
};
use aura_testkit::{FaultProxy, TestDb};
use tokio::time::Instant;

use crate::common::{conversation, scalar};

fn policy() -> RetryPolicy {
    RetryPolicy::new(3, Duration::from_millis(5), Duration::from_millis(50)).expect("policy")
}

/// Checkouts the store's pool made so far: one per attempt of a store operation.
fn checkouts(store: &PgStore) -> u64 {
    store.pool().stats().checkouts
}

/// A store on `db` through `proxy`, retrying as `policy` says.
async fn store_through(db: &TestDb, proxy: &FaultProxy, policy: RetryPolicy) -> PgStore {
    let config = proxy
        .config_builder(db)
        .max_conns(2)
        .min_conns(1)
        .build()
        .expect("test config");
    PgStore::new(aura_db::open(&config).await.expect("pool")).with_retry(policy)
}

const TURNS: &str = "SELECT count(*) FROM aura.turns WHERE conversation_id = $1::text::uuid";

/// An append (`keyed`: with a caller-supplied id) through a proxy that cuts its connection
/// right after the append statement went through (the server commits it), by a store
/// retrying as [`policy`] says. Returns the database, the conversation, the append's
/// result and the checkouts it made (its attempts).
async fn append_cut_after_its_statement(
    keyed: bool,
) -> (TestDb, ConversationId, Result<Turn, StoreError>, u64) {
    let db = TestDb::new().await;
    let proxy = FaultProxy::for_db(&db).await;
    let store = store_through(&db, &proxy, policy()).await;
    let c = conversation(&store).await.id;
    proxy.cut_after_query_containing("INSERT INTO aura.turns");
    let draft = TurnDraft::new(TurnRole::User, "hello");
    let draft = if keyed {
        draft.with_id(TurnId::new())
    } else {
        draft
    };
    let before = checkouts(&store);
    let result = store.append_turn(c, draft).await;
    assert_eq!(proxy.cuts(), 1, "the cut fired");
    let attempts = checkouts(&store) - before;
    (db, c, result, attempts)
}

/// A keyed append whose reply was cut: the store retries on its own, and the retry returns
/// the stored turn (seq 1); exactly one turn is stored; two attempts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyed_append_whose_reply_was_cut_is_retried_and_lands_once() {
    let (db, c, result, attempts) = append_cut_after_its_statement(true).await;
    let turn = result.expect("the store's retry returns the stored turn");
    assert_eq!(turn.seq, 1);
    assert_eq!(attempts, 2, "two attempts");
    assert_eq!(scalar(&db, TURNS, c).await, 1, "exactly one turn");
}

/// The same cut on an append without an id: it may have committed (it did), so the store
/// does not repeat it: one attempt, `Unavailable` (ambiguous) to the caller, one turn stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unkeyed_append_whose_reply_was_cut_is_not_retried() {
    let (db, c, result, attempts) = append_cut_after_its_statement(false).await;
    match result.expect_err("the reply was cut") {
        StoreError::Unavailable(err) => assert_eq!(err.transient(), Some(Transient::Ambiguous)),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert_eq!(attempts, 1, "one attempt");
    assert_eq!(
        scalar(&db, TURNS, c).await,
        1,
        "the cut append committed once"
    );
}

/// A read whose connection is cut after the query went through is made again: Ok, two
/// attempts. Without a policy the caller gets `Unavailable`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_whose_connection_was_cut_is_retried() {
    let db = TestDb::new().await;
    let proxy = FaultProxy::for_db(&db).await;
    let store = store_through(&db, &proxy, policy()).await;
    let c = conversation(&store).await.id;
    let turn = store
        .append_turn(c, TurnDraft::new(TurnRole::User, "hello"))
        .await
        .expect("append");
    let key = TurnKey::from(&turn);

    proxy.cut_after_query_containing("FROM \"aura\".\"turns\"");
    let before = checkouts(&store);
    let read = store.get_turn(key).await.expect("the retried read");
    assert_eq!(proxy.cuts(), 1, "the cut fired");
    assert_eq!(read.content, "hello");
    assert_eq!(checkouts(&store) - before, 2, "two attempts");

    let plain = store_through(&db, &proxy, RetryPolicy::none()).await;
    proxy.cut_after_query_containing("FROM \"aura\".\"turns\"");
    let err = plain.get_turn(key).await.expect_err("not retried");
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
}

/// App-role backends of this database waiting on a lock.
const LOCK_WAITERS: &str = "SELECT count(*) FROM pg_stat_activity WHERE datname = \
     current_database() AND usename = 'aura_app' AND wait_event_type = 'Lock'";

/// A real deadlock around `stop_run`. Another session (deadlock_timeout 10 s, so the store's
/// session, at the server's 1 s, detects the cycle and is the victim) locks the run's
/// pending request; `stop_run` updates the run, then waits for the request; the other
/// session then updates the run: a cycle. Returns `stop_run`'s result, the checkouts it
/// made, and whether the other session committed.
async fn deadlocked_stop_run(
    db: &TestDb,
    store: &PgStore,
) -> (Result<u64, StoreError>, u64, RunKey) {
    let c: ConversationId = conversation(store).await.id;
    let run = store
        .start_run(c, RunDraft::default())
        .await
        .expect("start");
    let request = store
        .create_request(c, RequestDraft::new(Some(run.id), "still there?"))
        .await
        .expect("ask");
    let key = RunKey::from(&run);
    let other = db.superuser_client().await;
    other
        .batch_execute(&format!(
            "SET deadlock_timeout = '10s'; BEGIN; \
             SELECT 1 FROM aura.ask_user_requests \
             WHERE conversation_id = '{c}' AND id = '{}' FOR UPDATE",
            request.id
        ))
        .await
        .expect("lock the request");
    let admin = db.superuser_client().await;
    let before = checkouts(store);
    let (stopped, ()) = tokio::join!(store.stop_run(key, Some("user left")), async {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let n: i64 = admin
                .query_one(LOCK_WAITERS, &[])
                .await
                .expect("waiters")
                .get(0);
            if n == 1 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "stop_run never waited on the lock"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        other
            .batch_execute(&format!(
                "UPDATE aura.runs SET stop_reason = stop_reason \
                 WHERE conversation_id = '{c}' AND id = '{}'; COMMIT",
                run.id
            ))
            .await
            .expect("the other session commits once the victim is gone");
    });
    let stopped = stopped.map(|s| s.cancelled_requests);
    (stopped, checkouts(store) - before, key)
}

/// With a policy, the deadlock's victim (`stop_run`, a write that is retried only when
/// nothing of it was applied: 40P01 is such a failure) runs again and succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_run_chosen_as_a_deadlock_victim_is_retried() {
    let db = TestDb::new().await;
    let store = crate::common::store_with_pool(&db, 4)
        .await
        .with_retry(policy());
    let (stopped, attempts, key) = deadlocked_stop_run(&db, &store).await;
    assert_eq!(
        stopped.expect("the retry succeeds"),
        1,
        "the request cancelled"
    );
    assert_eq!(attempts, 2, "two attempts");
    let run = store.get_run(key).await.expect("run");
    assert_eq!(run.stop_reason.as_deref(), Some("user left"));
}

/// Without a policy the victim's error comes back: `Database` with 40P01, retryable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_policy_the_deadlock_is_returned() {
    let db = TestDb::new().await;
    let store = crate::common::store_with_pool(&db, 4).await;
    let (stopped, attempts, key) = deadlocked_stop_run(&db, &store).await;
    let err = stopped.expect_err("the deadlock's victim");
    assert!(matches!(err, StoreError::Database(_)), "{err:?}");
    assert_eq!(err.sqlstate(), Some("40P01"));
    assert!(err.is_retryable());
    assert_eq!(attempts, 1);
    let run = store.get_run(key).await.expect("run");
    assert_eq!(run.stop_reason, None, "the victim's stop was rolled back");
}

/// A conflict is not transient: one attempt whatever the policy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflict_is_never_retried() {
    let db = TestDb::new().await;
    let store = crate::common::store_with_pool(&db, 2)
        .await
        .with_retry(policy());
    let c = conversation(&store).await.id;
    store
        .start_run(c, RunDraft::default())
        .await
        .expect("start");
    let before = checkouts(&store);
    let err = store
        .start_run(c, RunDraft::default())
        .await
        .expect_err("a second running run");
    assert_eq!(err.conflict_kind(), Some(&ConflictKind::RunAlreadyRunning));
    assert_eq!(checkouts(&store) - before, 1, "one attempt");
}
