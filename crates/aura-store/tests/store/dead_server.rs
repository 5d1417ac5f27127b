//! A server that stops answering without closing anything (the fault proxy's blackhole: the
//! proxy's kernel still acknowledges every segment, so TCP keepalives and
//! `tcp_user_timeout` cannot notice, as with a hung server or a middlebox that swallows
//! traffic): calls fail as `Unavailable` within the operation deadline, a checkout that
//! needs a new connection fails within the connect timeout, and once the path answers again
//! the same store serves again by itself.

use std::time::Duration;

use aura_store::{ConversationStore, DbError, PgStore, StoreError, TurnStore};
use aura_testkit::{FaultProxy, TestDb};
use tokio::time::{Instant, timeout};

use crate::common::{conversation, turn};

const DEADLINE: Duration = Duration::from_secs(2);
const CONNECT: Duration = Duration::from_secs(1);
/// Room for a loaded machine on top of each bound.
const MARGIN: Duration = Duration::from_secs(8);

/// `db`'s configuration through `proxy`, with the short bounds above.
fn through(db: &TestDb, proxy: &FaultProxy) -> aura_store::Config {
    proxy
        .config_builder(db)
        .max_conns(2)
        .min_conns(1)
        .connect_timeout(CONNECT)
        .operation_timeout(DEADLINE)
        .build()
        .expect("test config")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blackholed_server_fails_calls_within_the_deadline_and_the_pool_recovers() {
    let db = TestDb::new().await;
    let proxy = FaultProxy::for_db(&db).await;
    let config = through(&db, &proxy);
    let store = PgStore::new(aura_db::open(&config).await.expect("pool"));
    let c = conversation(&store).await.id;

    proxy.blackhole(true);

    // A call on the open connection: its statement goes out, no answer ever comes.
    let start = Instant::now();
    let err = timeout(DEADLINE + MARGIN, store.append_turn(c, turn("lost?", 1, 1)))
        .await
        .expect("the call hung past its deadline")
        .expect_err("no answer");
    let took = start.elapsed();
    assert!(
        matches!(&err, StoreError::Unavailable(DbError::Timeout { after, .. }) if *after == DEADLINE),
        "expected Unavailable(Timeout), got {err:?}"
    );
    assert!(err.is_retryable());
    assert!(
        took >= DEADLINE - Duration::from_millis(50),
        "failed early: {took:?}"
    );
    assert!(
        err.to_string()
            .contains("no answer from postgres://aura_app:***@127.0.0.1"),
        "{err}"
    );
    assert_eq!(store.pool().stats().in_use, 0);

    // The timed-out connection was discarded; the next call needs a new one, whose
    // connect goes unanswered: Unavailable within the connect timeout.
    let start = Instant::now();
    let err = timeout(CONNECT + MARGIN, store.get_conversation(c))
        .await
        .expect("the checkout hung past the connect timeout")
        .expect_err("no new connection");
    let took = start.elapsed();
    assert!(
        matches!(&err, StoreError::Unavailable(DbError::Connect { .. })),
        "expected Unavailable(Connect), got {err:?}"
    );
    assert!(took < CONNECT + MARGIN, "took {took:?}");
    assert!(
        store.pool().stats().closed_broken >= 1,
        "the timed-out connection was kept"
    );

    // The path answers again: the same store serves without being reopened (connections
    // begun during the blackhole end within the connect timeout: wait for them first). A
    // new connection's handshake (SCRAM in a debug build, on a machine busy with the rest
    // of the suite) may still take longer than the 1 s connect timeout: calls may fail
    // `Unavailable` for a while, never anything else, and one succeeds within the bound.
    proxy.blackhole(false);
    tokio::time::sleep(CONNECT + Duration::from_millis(500)).await;
    let recovering = Instant::now();
    let got = loop {
        match timeout(DEADLINE + MARGIN, store.get_conversation(c))
            .await
            .expect("a call after the blackhole hung")
        {
            Ok(got) => break got,
            Err(StoreError::Unavailable(e)) if recovering.elapsed() < MARGIN => {
                eprintln!("not recovered yet after {:?}: {e}", recovering.elapsed());
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("the pool did not recover by itself within {MARGIN:?}: {e:?}"),
        }
    };
    assert_eq!(got.conversation.turn_count, got.turns.len() as i32);
    store
        .append_turn(c, turn("back", 1, 1))
        .await
        .expect("appends again");
}

/// `with_tx` under the same blackhole fails as `Error::Timeout` within the deadline
/// (retryable, and `Ambiguous`: a statement had gone out).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_under_a_blackhole_fails_within_the_deadline() {
    let db = TestDb::new().await;
    let proxy = FaultProxy::for_db(&db).await;
    let config = through(&db, &proxy);
    let pool = aura_db::open(&config).await.expect("pool");
    aura_db::ping(&pool).await.expect("ping");
    proxy.blackhole(true);
    let start = Instant::now();
    let result = timeout(
        DEADLINE + MARGIN,
        aura_db::with_tx(&pool, async |conn| {
            use diesel_async::SimpleAsyncConnection;
            conn.batch_execute("SELECT 1").await?;
            Ok::<_, DbError>(())
        }),
    )
    .await
    .expect("with_tx hung past its deadline");
    let took = start.elapsed();
    let err = result.expect_err("no answer");
    assert!(matches!(err, DbError::Timeout { .. }), "{err:?}");
    assert_eq!(err.transient(), Some(aura_store::Transient::Ambiguous));
    assert!(
        took >= DEADLINE - Duration::from_millis(50),
        "failed early: {took:?}"
    );
    assert_eq!(pool.stats().in_use, 0);
}
