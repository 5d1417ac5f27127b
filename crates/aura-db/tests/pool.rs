//! The pool: real connect errors fast, exhaustion said as such, killed connections
//! replaced, waiters served fairly.

mod common;

use std::time::{Duration, Instant};

use aura_db::{Error, ping};
use aura_testkit::TestDb;
use diesel::sql_query;
use diesel_async::RunQueryDsl;
use secrecy::SecretString;

#[derive(diesel::QueryableByName)]
struct Pid {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pid: i32,
}

async fn backend_pid(conn: &mut aura_db::AsyncPgConnection) -> Result<i32, Error> {
    let row: Pid = sql_query("SELECT pg_backend_pid() AS pid")
        .get_result(conn)
        .await?;
    Ok(row.pid)
}

#[tokio::test]
async fn ping_reports_a_round_trip() {
    let db = TestDb::new().await;
    let pool = db.pool().await;
    let rtt = ping(&pool).await.unwrap();
    assert!(
        rtt > Duration::ZERO && rtt < Duration::from_secs(2),
        "{rtt:?}"
    );
}

#[tokio::test]
async fn connections_carry_application_name_and_statement_timeout() {
    let db = TestDb::new().await;
    let pool = aura_db::open(
        &db.config_builder()
            .statement_timeout(Duration::from_millis(1234))
            .idle_in_transaction_timeout(Duration::from_millis(4321))
            .build()
            .unwrap(),
    )
    .await
    .unwrap();
    #[derive(diesel::QueryableByName)]
    struct S {
        #[diesel(sql_type = diesel::sql_types::Text)]
        app: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        timeout: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        idle: String,
    }
    let mut conn = pool.get().await.unwrap();
    let s: S = sql_query(
        "SELECT current_setting('application_name') AS app, current_setting('statement_timeout') AS timeout, \
         current_setting('idle_in_transaction_session_timeout') AS idle",
    )
    .get_result(&mut *conn)
    .await
    .unwrap();
    assert_eq!(s.app, "aura-test");
    assert_eq!(s.timeout, "1234ms");
    assert_eq!(
        s.idle, "4321ms",
        "set per connection, whatever the role's setting"
    );

    // The timeout fires, and the error keeps its SQLSTATE although diesel-async drops it.
    let err = Error::from(
        sql_query("SELECT pg_sleep(5)")
            .execute(&mut *conn)
            .await
            .unwrap_err(),
    );
    assert_eq!(err.sqlstate(), Some("57014"), "{err}");
    assert!(!err.is_retryable(), "{err}");
}

fn assert_fast(started: Instant) {
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "took {took:?}");
}

#[tokio::test]
async fn wrong_password_fails_fast_as_an_auth_error() {
    let db = TestDb::new().await;
    let planted = "Wr0ng-Pl4nted-Passw0rd";
    for min_conns in [1, 0] {
        let config = db
            .config_builder()
            .role_password(SecretString::from(planted.to_owned()))
            .min_conns(min_conns)
            .build()
            .unwrap();
        let started = Instant::now();
        let err = match aura_db::open(&config).await {
            Err(e) => e,
            Ok(pool) => pool.get().await.err().expect("a wrong password must fail"),
        };
        assert_fast(started);
        match &err {
            Error::Auth {
                sqlstate, target, ..
            } => {
                assert_eq!(sqlstate, "28P01");
                assert!(target.contains("aura_app:***@"), "{target}");
            }
            other => panic!("expected an auth error, got {other:?}"),
        }
        let text = format!("{err} {err:?}");
        assert!(text.contains("password authentication failed"), "{text}");
        assert!(!text.contains(planted), "{text}");
        // The driver's error is in the chain, also when the pool shared one failure among
        // its waiters (min_conns 0: the connect ran in bb8's task).
        let driver = driver_error(&err).expect("the driver's error in the chain");
        assert_eq!(driver.code().map(|c| c.code()), Some("28P01"));
    }
}

/// The `tokio_postgres::Error` in `err`'s source chain.
fn driver_error(err: &Error) -> Option<&tokio_postgres::Error> {
    let mut source = std::error::Error::source(err);
    while let Some(e) = source {
        if let Some(pg) = e.downcast_ref::<tokio_postgres::Error>() {
            return Some(pg);
        }
        source = e.source();
    }
    None
}

/// A server that is there but takes no session now (here: the database's connection limit,
/// 53300; a shutting-down or starting server answers 57P03 the same way) is a connect
/// failure: `Error::Connect` naming the server's words and code, retryable, nothing sent.
#[tokio::test]
async fn a_server_refusing_sessions_is_a_connect_failure() {
    let db = TestDb::new().await;
    db.superuser_client()
        .await
        .batch_execute(&format!(
            "ALTER DATABASE \"{}\" CONNECTION LIMIT 0",
            db.name()
        ))
        .await
        .expect("connection limit");
    let config = db.config_builder().min_conns(1).build().unwrap();
    let started = Instant::now();
    let err = aura_db::open(&config)
        .await
        .expect_err("no session allowed");
    assert_fast(started);
    match &err {
        Error::Connect { cause, .. } => assert!(
            cause.contains("too many connections") && cause.ends_with("(SQLSTATE 53300)"),
            "{cause}"
        ),
        other => panic!("expected a connect failure, got {other:?}"),
    }
    assert_eq!(err.transient(), Some(aura_db::Transient::NotSent));
    let driver = driver_error(&err).expect("the driver's error in the chain");
    assert_eq!(driver.code().map(|c| c.code()), Some("53300"));
}

#[tokio::test]
async fn refused_port_fails_fast_with_its_cause() {
    let db = TestDb::new().await;
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    for min_conns in [1, 0] {
        let config = db
            .config_builder()
            .port(port)
            .min_conns(min_conns)
            .build()
            .unwrap();
        let started = Instant::now();
        let err = match aura_db::open(&config).await {
            Err(e) => e,
            Ok(pool) => pool.get().await.err().expect("a refused port must fail"),
        };
        assert_fast(started);
        assert!(matches!(err, Error::Connect { .. }), "{err:?}");
        assert!(err.to_string().to_lowercase().contains("refused"), "{err}");
        assert!(driver_error(&err).is_some(), "{err:?}");
    }
}

#[tokio::test]
async fn unknown_host_fails_fast_with_its_cause() {
    let db = TestDb::new().await;
    let config = db
        .config_builder()
        .host("no-such-host.invalid")
        .min_conns(0)
        .build()
        .unwrap();
    let started = Instant::now();
    let pool = aura_db::open(&config).await.unwrap();
    let err = pool.get().await.err().expect("an unknown host must fail");
    assert_fast(started);
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("no-such-host.invalid") && text.contains("lookup"),
        "{text}"
    );
}

#[tokio::test]
async fn exhaustion_says_so_and_differs_from_a_connect_failure() {
    let db = TestDb::new().await;
    let config = db
        .config_builder()
        .max_conns(2)
        // Both connections made by `open` (which waits for min_conns): the 300 ms below
        // times only the wait for one, never a connect on a loaded machine.
        .min_conns(2)
        .checkout_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let pool = aura_db::open(&config).await.unwrap();
    let _a = pool.get().await.unwrap();
    let _b = pool.get().await.unwrap();
    let started = Instant::now();
    let err = pool.get().await.err().expect("the pool is exhausted");
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(
        matches!(err, Error::PoolExhausted { max: 2, .. }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "aura-db: pool exhausted: all 2 connections in use, waited 300ms"
    );
    assert!(err.is_retryable());
    drop(_a);
    pool.get().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_backend_is_replaced_and_never_handed_out_again() {
    let db = TestDb::new().await;
    let config = db.config_builder().max_conns(1).build().unwrap();
    let pool = aura_db::open(&config).await.unwrap();
    let admin = db.superuser_client().await;

    // Killed while idle in the pool: the checkout notices the closed socket.
    let first = backend_pid(&mut pool.get().await.unwrap()).await.unwrap();
    admin
        .query("SELECT pg_terminate_backend($1)", &[&first])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let second = backend_pid(&mut pool.get().await.unwrap()).await.unwrap();
    assert_ne!(first, second);

    // Killed while checked out: that query fails as a lost connection, the next checkout
    // gets a fresh one.
    let mut conn = pool.get().await.unwrap();
    admin
        .query("SELECT pg_terminate_backend($1)", &[&second])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let err = backend_pid(&mut conn).await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    drop(conn);
    let third = backend_pid(&mut pool.get().await.unwrap()).await.unwrap();
    assert!(third != first && third != second);
    let alive: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE usename = 'aura_app' AND datname = current_database()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(alive, 1);
}

/// 32 tasks on a pool of 4 for 3 seconds: every task gets its turn. Each operation holds its
/// connection for ~1 ms, so tasks outnumber connections 8 to 1 all the time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_are_served_in_arrival_order() {
    let db = TestDb::new().await;
    let config = db
        .config_builder()
        .max_conns(4)
        .min_conns(4)
        .checkout_timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let pool = aura_db::open(&config).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(3);
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let mut ops = 0u32;
                let mut worst = Duration::ZERO;
                let mut waits = Vec::new();
                while Instant::now() < deadline {
                    let asked = Instant::now();
                    let mut conn = pool.get().await.unwrap();
                    let waited = asked.elapsed();
                    worst = worst.max(waited);
                    waits.push(waited);
                    sql_query("SELECT pg_sleep(0.001)")
                        .execute(&mut *conn)
                        .await
                        .unwrap();
                    ops += 1;
                }
                (ops, worst, waits)
            })
        })
        .collect();
    let mut ops = Vec::new();
    let mut worst = Duration::ZERO;
    let mut all_waits = Vec::new();
    for t in tasks {
        let (n, w, waits) = t.await.unwrap();
        ops.push(n);
        worst = worst.max(w);
        all_waits.extend(waits);
    }
    ops.sort_unstable();
    all_waits.sort_unstable();
    let median_ops = ops[ops.len() / 2];
    let median_wait = all_waits[all_waits.len() / 2];
    eprintln!("ops per task {ops:?}; median wait {median_wait:?}, worst {worst:?}");
    assert!(ops[0] > 0, "a task completed nothing: {ops:?}");
    assert!(ops[0] * 2 >= median_ops, "unfair: {ops:?}");
    assert!(
        worst <= median_wait * 4 + Duration::from_millis(20),
        "worst wait {worst:?} vs median {median_wait:?}"
    );
}

/// SQLSTATEs diesel-async drops are recognised by their English message: a pool reads the
/// server's `lc_messages` once, on its first connection (and warns when it is not English).
/// A server accepts only the locales its machine has (here only C, POSIX, C.UTF-8), so the
/// warning itself is tested on the decision, in `lc_messages.rs`, and the classifier on
/// the server's own translations, in `sqlstate.rs`.
#[tokio::test]
async fn a_pool_reads_the_servers_lc_messages_on_its_first_connection() {
    let db = TestDb::new().await;
    let admin = db.superuser_client().await;
    let app = db.config().app_role().to_owned();
    let pin = |value: &str| {
        format!(
            "ALTER ROLE \"{app}\" IN DATABASE \"{}\" SET lc_messages = '{value}'",
            db.name()
        )
    };
    let config = db.config_builder().min_conns(0).build().unwrap();
    for value in ["POSIX", "C"] {
        admin.batch_execute(&pin(value)).await.expect("pin");
        let pool = aura_db::open(&config).await.unwrap();
        assert_eq!(pool.server_lc_messages(), None, "no connection yet");
        drop(pool.get().await.unwrap());
        assert_eq!(pool.server_lc_messages(), Some(value));
    }
}
