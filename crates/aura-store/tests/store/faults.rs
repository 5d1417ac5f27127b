//! Faults between the caller and the server: a call its caller abandons (a timeout drops
//! it) while its statement waits on a lock, and a connection cut (fault proxy) after the
//! append statement reached the server, before its reply.

// Reads through the pool, as a sibling crate would write them: `get_result` (which
// clippy.toml keeps out of the store's own writes, see src/pg/one_row.rs) is fine there.
#![allow(clippy::disallowed_methods)]

use std::time::Duration;

use aura_store::{
    ConversationId, ConversationStore, PgStore, StoreError, TurnDraft, TurnId, TurnRole, TurnStore,
};
use aura_testkit::{FaultProxy, TestDb};
use tokio::time::{Instant, timeout};

use crate::common::{conversation, scalar};

const TURNS: &str = "SELECT count(*) FROM aura.turns WHERE conversation_id = $1::text::uuid";
const TURN_COUNT: &str =
    "SELECT turn_count::bigint FROM aura.conversations WHERE id = $1::text::uuid";
/// App-role backends of this database waiting on a lock.
const LOCK_WAITERS: &str = "SELECT count(*) FROM pg_stat_activity WHERE datname = \
     current_database() AND usename = 'aura_app' AND wait_event_type = 'Lock'";

/// Polls `sql` (one bigint) as the superuser until it equals `expected` or `bound` passes;
/// returns the last value.
async fn wait_for(
    admin: &tokio_postgres::Client,
    sql: &str,
    expected: i64,
    bound: Duration,
) -> i64 {
    let deadline = Instant::now() + bound;
    loop {
        let n: i64 = admin.query_one(sql, &[]).await.expect(sql).get(0);
        if n == expected || Instant::now() > deadline {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Takes the row lock of conversation `id` in an open transaction of `admin`.
async fn lock_conversation(admin: &tokio_postgres::Client, id: ConversationId) {
    admin
        .batch_execute(&format!(
            "BEGIN; SELECT 1 FROM aura.conversations WHERE id = '{id}' FOR UPDATE"
        ))
        .await
        .expect("lock the conversation");
}

/// A store on `db` whose pool keeps two connections open (one stays idle while the other
/// runs the abandoned call).
async fn store_of_two(db: &TestDb) -> PgStore {
    let config = db
        .config_builder()
        .max_conns(2)
        .min_conns(2)
        .build()
        .expect("test config");
    PgStore::new(aura_db::open(&config).await.expect("pool"))
}

/// The caller drops `append_turn` while its statement waits on the conversation's row lock
/// (another session holds it). The next, unrelated call must not be handed that busy
/// connection (the pool is LIFO: without the fix it is, and waits behind the lock); the
/// abandoned append is cancelled on the server and never commits, even after the lock goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_append_never_commits_and_never_blocks_the_next_call() {
    let db = TestDb::new().await;
    let store = std::sync::Arc::new(store_of_two(&db).await);
    let locked = conversation(&store).await.id;
    let other = conversation(&store).await.id;
    let admin = db.superuser_client().await;
    let holder = db.superuser_client().await;
    lock_conversation(&holder, locked).await;

    let id = TurnId::new();
    let abandoned = tokio::spawn({
        let store = store.clone();
        async move {
            store
                .append_turn(
                    locked,
                    TurnDraft::new(TurnRole::User, "too late").with_id(id),
                )
                .await
        }
    });
    assert_eq!(
        wait_for(&admin, LOCK_WAITERS, 1, Duration::from_secs(20)).await,
        1,
        "the append never waited on the lock"
    );
    // The caller gives up (what a timeout does): the future is dropped mid-statement.
    abandoned.abort();
    assert!(abandoned.await.expect_err("aborted").is_cancelled());

    // The next, unrelated call answers promptly though the lock is still held.
    let start = Instant::now();
    let read = timeout(Duration::from_secs(10), store.get_conversation(other))
        .await
        .expect("the unrelated call waited behind the abandoned statement")
        .expect("get_conversation");
    let took = start.elapsed();
    assert_eq!(read.conversation.id, other);
    assert!(
        took < Duration::from_secs(2),
        "the unrelated call took {took:?}"
    );

    // The abandoned statement was cancelled on the server, the lock still held.
    assert_eq!(
        wait_for(&admin, LOCK_WAITERS, 0, Duration::from_secs(5)).await,
        0,
        "the abandoned statement still waits on the lock"
    );
    holder
        .batch_execute("COMMIT")
        .await
        .expect("release the lock");
    // Had it survived, it would commit now: give it the time to.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        scalar(&db, TURNS, locked).await,
        0,
        "the abandoned append committed"
    );
    assert_eq!(scalar(&db, TURN_COUNT, locked).await, 0);

    // The store goes on: the same id appends now, as seq 1.
    let turn = store
        .append_turn(
            locked,
            TurnDraft::new(TurnRole::User, "too late").with_id(id),
        )
        .await
        .expect("append after the lock went");
    assert_eq!(turn.seq, 1);
}

/// The same through `with_tx`: a transaction body dropped while its statement waits on a
/// lock commits nothing, its statement is cancelled, and the next transaction is prompt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_transaction_is_cancelled_and_never_commits() {
    let db = TestDb::new().await;
    let store = store_of_two(&db).await;
    let locked = conversation(&store).await.id;
    let pool = store.pool().clone();
    let admin = db.superuser_client().await;
    let holder = db.superuser_client().await;
    lock_conversation(&holder, locked).await;

    let sql = format!("UPDATE aura.conversations SET title = 'abandoned' WHERE id = '{locked}'");
    let body_pool = pool.clone();
    let abandoned = tokio::spawn(async move {
        aura_db::with_tx(&body_pool, async |conn| {
            use diesel_async::SimpleAsyncConnection;
            conn.batch_execute(&sql).await?;
            Ok::<_, aura_db::Error>(())
        })
        .await
    });
    assert_eq!(
        wait_for(&admin, LOCK_WAITERS, 1, Duration::from_secs(20)).await,
        1
    );
    abandoned.abort();
    let _ = abandoned.await;

    let start = Instant::now();
    let n: i32 = timeout(
        Duration::from_secs(10),
        aura_db::with_tx(&pool, async |conn| {
            use diesel_async::RunQueryDsl;
            diesel::select(diesel::dsl::sql::<diesel::sql_types::Integer>("1"))
                .get_result::<i32>(conn)
                .await
                .map_err(aura_db::Error::from)
        }),
    )
    .await
    .expect("the next transaction waited")
    .expect("the next transaction");
    assert_eq!(n, 1);
    let took = start.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "the next transaction took {took:?}"
    );
    assert_eq!(
        wait_for(&admin, LOCK_WAITERS, 0, Duration::from_secs(5)).await,
        0,
        "the abandoned statement still waits on the lock"
    );
    holder
        .batch_execute("COMMIT")
        .await
        .expect("release the lock");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let title: Option<String> = admin
        .query_one(
            "SELECT title FROM aura.conversations WHERE id = $1::text::uuid",
            &[&locked.to_string()],
        )
        .await
        .expect("title")
        .get(0);
    assert_ne!(
        title.as_deref(),
        Some("abandoned"),
        "the abandoned transaction committed"
    );
}

/// The connection is cut right after the append statement went through (the server runs
/// and commits it), before its reply: the caller sees Unavailable (retryable, it cannot
/// know whether the turn landed); the retry with the same caller-supplied id returns the
/// stored turn, same seq; the conversation holds exactly one such turn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_after_the_append_is_unavailable_and_the_retry_returns_the_same_seq() {
    let db = TestDb::new().await;
    let proxy = FaultProxy::for_db(&db).await;
    let config = proxy
        .config_builder(&db)
        .max_conns(2)
        .min_conns(1)
        .build()
        .expect("test config");
    let store = PgStore::new(aura_db::open(&config).await.expect("pool"));
    let c = conversation(&store).await.id;
    // A keyed append first: the statement is prepared and cached on the connection, so the
    // cut happens on a cached execution (Bind/Execute by name), as in production.
    let first = store
        .append_turn(
            c,
            TurnDraft::new(TurnRole::User, "first").with_id(TurnId::new()),
        )
        .await
        .expect("first append");
    assert_eq!(first.seq, 1);

    proxy.cut_after_query_containing("INSERT INTO aura.turns");
    let id = TurnId::new();
    let draft = TurnDraft::new(TurnRole::Assistant, "answer")
        .tokens(2, 3)
        .with_id(id);
    let err = store
        .append_turn(c, draft)
        .await
        .expect_err("the reply was cut");
    assert!(
        matches!(err, StoreError::Unavailable(_)) && err.is_retryable(),
        "expected a retryable Unavailable, got {err:?}"
    );
    assert_eq!(proxy.cuts(), 1, "the cut fired");

    let retried = store.append_turn(c, draft).await.expect("the retry");
    assert_eq!(
        (retried.id, retried.seq),
        (id, 2),
        "the stored turn, same seq"
    );
    let admin = db.superuser_client().await;
    let same: i64 = admin
        .query_one(
            "SELECT count(*) FROM aura.turns WHERE id = $1::text::uuid",
            &[&id.to_string()],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(same, 1, "exactly one turn under that id");
    assert_eq!(scalar(&db, TURNS, c).await, 2);
    assert_eq!(scalar(&db, TURN_COUNT, c).await, 2);
}
