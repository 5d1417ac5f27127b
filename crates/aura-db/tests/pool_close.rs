//! `Pool::close`: stops handing out connections at once, waits (bounded) for the ones in
//! use, and closes every connection.

use std::time::{Duration, Instant};

use aura_db::{Error, Pool};
use aura_testkit::TestDb;

/// A pool of `max` connections, all opened up front.
async fn pool(db: &TestDb, max: u32) -> Pool {
    let config = db
        .config_builder()
        .max_conns(max)
        .min_conns(max)
        .build()
        .expect("test config");
    aura_db::open(&config).await.expect("pool")
}

/// The app role's sessions on the test database, waiting up to 3 s for the count to reach
/// `want` (a closed connection's backend exits a moment after the socket closes).
async fn app_sessions(db: &TestDb, want: i64) -> i64 {
    let client = db.superuser_client().await;
    let mut n = -1;
    for _ in 0..60 {
        n = client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE datname = current_database() AND usename = 'aura_app'",
                &[],
            )
            .await
            .expect("pg_stat_activity")
            .get(0);
        if n == want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    n
}

#[track_caller]
fn assert_closed<T>(result: Result<T, Error>) {
    match result {
        Err(err @ Error::PoolClosed { .. }) => {
            assert!(!err.is_retryable());
            assert!(err.to_string().ends_with(" is closed"), "{err}");
        }
        Err(other) => panic!("expected the closed error, got {other:?}"),
        Ok(_) => panic!("expected the closed error, got a connection"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_fails_waiters_at_once_and_waits_for_connections_in_use() {
    let db = TestDb::new().await;
    let pool = pool(&db, 2).await;
    assert_eq!(app_sessions(&db, 2).await, 2);
    let first = pool.get().await.expect("first");
    let second = pool.get().await.expect("second");
    let waiter = tokio::spawn({
        let pool = pool.clone();
        async move { pool.get().await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !waiter.is_finished(),
        "the third caller waits for a connection"
    );

    let closing = tokio::spawn({
        let pool = pool.clone();
        async move { pool.close(Duration::from_secs(10)).await }
    });
    let started = Instant::now();
    assert_closed(waiter.await.expect("task"));
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the waiter failed at once"
    );
    assert!(pool.is_closed());
    assert_closed(pool.get().await);

    drop(first);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !closing.is_finished(),
        "close waits for the connection still in use"
    );
    drop(second);
    let still_in_use = tokio::time::timeout(Duration::from_secs(2), closing)
        .await
        .expect("close returns once the last connection is back")
        .expect("task");
    assert_eq!(still_in_use, 0);
    assert_eq!(pool.state().in_use, 0);
    assert_eq!(app_sessions(&db, 0).await, 0, "every connection is closed");
    assert_closed(pool.get().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_gives_up_at_its_bound_and_closes_late_returns() {
    let db = TestDb::new().await;
    let pool = pool(&db, 2).await;
    let held = pool.get().await.expect("held");
    let started = Instant::now();
    let still_in_use = pool.close(Duration::from_millis(300)).await;
    let waited = started.elapsed();
    assert_eq!(still_in_use, 1);
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(2),
        "{waited:?}"
    );
    assert_eq!(app_sessions(&db, 1).await, 1, "the idle one is closed");
    drop(held);
    assert_eq!(
        app_sessions(&db, 0).await,
        0,
        "the late one is closed on return"
    );
    // A second close has nothing left to wait for.
    assert_eq!(pool.close(Duration::from_secs(1)).await, 0);
}
