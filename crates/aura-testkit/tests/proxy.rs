//! The fault proxy against the real test server: forwarding, latency, cuts, blackhole.

use std::time::Duration;

use aura_testkit::{FaultProxy, TestDb};
use tokio::time::{Instant, timeout};

/// A plain client through `proxy` as the superuser of `db`.
async fn client_via(proxy: &FaultProxy, db: &TestDb) -> tokio_postgres::Client {
    aura_db::connect_raw(&proxy.route(db.superuser_url()))
        .await
        .expect("connect through the proxy")
}

/// Rows of `t`, read directly (not through the proxy), waiting up to 5 s for `expected`.
async fn wait_rows(db: &TestDb, expected: i64) -> i64 {
    let direct = db.superuser_client().await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let n: i64 = direct
            .query_one("SELECT count(*) FROM t", &[])
            .await
            .expect("count")
            .get(0);
        if n == expected || Instant::now() > deadline {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn db_with_table() -> TestDb {
    let db = TestDb::empty().await;
    db.superuser_client()
        .await
        .batch_execute("CREATE TABLE t (x int)")
        .await
        .expect("create table");
    db
}

#[tokio::test]
async fn forwards_and_adds_latency_each_way() {
    let db = TestDb::empty().await;
    let proxy = FaultProxy::for_db(&db).await;
    let client = client_via(&proxy, &db).await;
    let one: i32 = client.query_one("SELECT 1", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);
    assert_eq!(proxy.open_connections(), 1);

    proxy.set_latency(Duration::from_millis(150));
    let start = Instant::now();
    client.simple_query("SELECT 2").await.unwrap();
    let took = start.elapsed();
    // One round trip: 150 ms there and 150 ms back, at least.
    assert!(
        took >= Duration::from_millis(300),
        "round trip took {took:?}"
    );
    proxy.set_latency(Duration::ZERO);
}

#[tokio::test]
async fn cut_all_closes_every_connection_and_new_ones_work() {
    let db = TestDb::empty().await;
    let proxy = FaultProxy::for_db(&db).await;
    let a = client_via(&proxy, &db).await;
    let b = client_via(&proxy, &db).await;
    proxy.cut_all();
    for client in [&a, &b] {
        let err = timeout(Duration::from_secs(10), client.simple_query("SELECT 1"))
            .await
            .expect("a cut connection answers at once")
            .expect_err("the connection was cut");
        assert!(err.is_closed(), "{err}");
    }
    let c = client_via(&proxy, &db).await;
    c.simple_query("SELECT 1")
        .await
        .expect("a new connection works");
    assert_eq!(proxy.accepted(), 3);
}

#[tokio::test]
async fn blackhole_never_answers_and_keeps_the_socket_open() {
    let db = TestDb::empty().await;
    let proxy = FaultProxy::for_db(&db).await;
    let client = client_via(&proxy, &db).await;
    proxy.blackhole(true);
    let waited = timeout(Duration::from_secs(1), client.simple_query("SELECT 1")).await;
    assert!(waited.is_err(), "a blackholed server answered: {waited:?}");
    assert!(!client.is_closed(), "the blackhole closed the connection");
    // A new connection is accepted but never gets past the startup.
    let dsn = proxy.route(db.superuser_url());
    let connect = timeout(Duration::from_secs(1), aura_db::connect_raw(&dsn)).await;
    assert!(
        connect.is_err(),
        "connected through a blackhole: {:?}",
        connect.map(|_| ())
    );
    proxy.blackhole(false);
    let fresh = client_via(&proxy, &db).await;
    fresh
        .simple_query("SELECT 1")
        .await
        .expect("forwarding again");
}

#[tokio::test]
async fn cut_after_a_simple_query_runs_it_but_loses_the_reply() {
    let db = db_with_table().await;
    let proxy = FaultProxy::for_db(&db).await;
    let client = client_via(&proxy, &db).await;
    proxy.cut_after_query_containing("INSERT INTO t");
    let err = client
        .batch_execute("INSERT INTO t VALUES (1)")
        .await
        .expect_err("the reply was cut");
    assert!(err.is_closed(), "{err}");
    assert_eq!(proxy.cuts(), 1);
    assert_eq!(
        wait_rows(&db, 1).await,
        1,
        "the statement reached the server"
    );
    // One-shot: the next connection is not cut.
    let again = client_via(&proxy, &db).await;
    again
        .batch_execute("INSERT INTO t VALUES (2)")
        .await
        .unwrap();
    assert_eq!(wait_rows(&db, 2).await, 2);
}

#[tokio::test]
async fn cut_after_a_cached_prepared_statement() {
    let db = db_with_table().await;
    let proxy = FaultProxy::for_db(&db).await;
    let client = client_via(&proxy, &db).await;
    // Prepared (Parse) once, executed by name afterwards (Bind/Execute/Sync only).
    let insert = client.prepare("INSERT INTO t VALUES ($1)").await.unwrap();
    client.execute(&insert, &[&1i32]).await.unwrap();
    proxy.cut_after_query_containing("INSERT INTO t");
    // A statement not matching is not cut.
    client.simple_query("SELECT 1").await.unwrap();
    let err = client
        .execute(&insert, &[&2i32])
        .await
        .expect_err("the reply was cut");
    assert!(err.is_closed(), "{err}");
    assert_eq!(wait_rows(&db, 2).await, 2, "the cut execution committed");
}

#[tokio::test]
async fn cut_after_message_predicate() {
    let db = db_with_table().await;
    let proxy = FaultProxy::for_db(&db).await;
    let client = client_via(&proxy, &db).await;
    client
        .batch_execute("BEGIN; INSERT INTO t VALUES (1)")
        .await
        .unwrap();
    // Cut right after COMMIT went through: the transaction commits, the client never knows.
    proxy.cut_after_message(|tag, body| tag == b'Q' && body.starts_with(b"COMMIT"));
    let err = client.batch_execute("COMMIT").await.expect_err("cut");
    assert!(err.is_closed(), "{err}");
    assert_eq!(wait_rows(&db, 1).await, 1);
}
