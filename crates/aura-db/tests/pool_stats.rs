//! `Pool::stats()`: the counters add up after a known sequence of checkouts, a timeout and
//! a failed connect.

use std::time::Duration;

use aura_db::{Error, PoolStats};
use aura_testkit::TestDb;
use secrecy::SecretString;

#[tokio::test]
async fn stats_add_up_after_checkouts_a_timeout_and_a_failed_connect() {
    let db = TestDb::new().await;
    let config = db
        .config_builder()
        .max_conns(2)
        .min_conns(0)
        .checkout_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let pool = aura_db::open(&config).await.unwrap();
    let fresh = pool.stats();
    assert_eq!(
        (fresh.size, fresh.max_size, fresh.connects, fresh.checkouts),
        (0, 2, 0, 0),
        "{fresh:?}"
    );

    // Five checkouts one after another: the first makes the connection (and so waits for
    // it), the other four find it idle.
    for _ in 0..5 {
        let conn = pool.get().await.unwrap();
        drop(conn);
    }
    let s = pool.stats();
    assert_eq!(s.checkouts, 5, "{s:?}");
    assert_eq!(s.connects, 1, "{s:?}");
    assert_eq!(s.checkout_waits, 1, "{s:?}");
    assert_eq!((s.size, s.idle, s.in_use, s.waiters), (1, 1, 0, 0), "{s:?}");

    // Both connections held: a second one is made, then a third checkout waits out the
    // checkout timeout.
    let a = pool.get().await.unwrap();
    let b = pool.get().await.unwrap();
    let s = pool.stats();
    assert_eq!((s.size, s.idle, s.in_use), (2, 0, 2), "{s:?}");
    assert_eq!(
        (s.connects, s.checkouts, s.checkout_waits),
        (2, 7, 2),
        "{s:?}"
    );
    let waiter = tokio::spawn({
        let pool = pool.clone();
        async move { pool.get().await.map(|_| ()) }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(pool.stats().waiters, 1, "{:?}", pool.stats());
    let err = waiter.await.unwrap().unwrap_err();
    assert!(matches!(err, Error::PoolExhausted { .. }), "{err:?}");
    let s = pool.stats();
    assert_eq!(s.timeouts, 1, "{s:?}");
    assert_eq!(s.waiters, 0, "{s:?}");
    assert_eq!(s.checkout_waits, 3, "{s:?}");
    assert_eq!(
        s.checkouts, 7,
        "a timed-out checkout is not a checkout: {s:?}"
    );
    assert!(
        s.checkout_wait_time >= Duration::from_millis(300),
        "the timed-out wait alone was 300ms: {s:?}"
    );
    assert_eq!(s.connect_errors, 0, "{s:?}");
    drop((a, b));
    assert_eq!(pool.stats().in_use, 0);

    // A pool whose connections are refused (wrong password): one failed connect, no
    // connection, no checkout.
    let wrong = db
        .config_builder()
        .role_password(SecretString::from("not-the-password".to_owned()))
        .min_conns(0)
        .build()
        .unwrap();
    let refused = aura_db::open(&wrong).await.unwrap();
    let err = refused.get().await.err().expect("wrong password");
    assert!(matches!(err, Error::Auth { .. }), "{err:?}");
    let s: PoolStats = refused.stats();
    assert_eq!(
        (s.connects, s.connect_errors, s.checkouts, s.size, s.in_use),
        (0, 1, 0, 0, 0),
        "{s:?}"
    );
}
