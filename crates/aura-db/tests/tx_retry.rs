//! `with_tx_retry` against real conflicts: a deadlock (two transactions locking two rows in
//! opposite orders) and a serialization failure (a REPEATABLE READ update of a row another
//! transaction changed) are retried and succeed on the second attempt; with one attempt
//! the error comes back as it is (40P01 / 40001, retryable); a constraint violation is
//! never retried; a connection lost before COMMIT is retried, a COMMIT whose answer was
//! lost never is. Each retry is an event with the attempt and the SQLSTATE.
//!
//! A test binary of its own: one test reads the retry events of a process-wide subscriber.

mod common;

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aura_db::{Error, Isolation, Pool, RetryPolicy, Transient, TxOptions, with_tx_retry};
use aura_testkit::{CapturedLog, FaultProxy, TestDb};
use common::app_table;
use diesel::sql_query;
use diesel_async::RunQueryDsl;
use tokio::sync::{Barrier, Notify};

/// The events of every test in this binary (INFO and above), installed once.
fn events() -> &'static CapturedLog {
    static CAPTURED: OnceLock<CapturedLog> = OnceLock::new();
    CAPTURED.get_or_init(|| {
        let captured = CapturedLog::default();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_writer(captured.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("one global subscriber");
        captured
    })
}

fn policy(attempts: u32) -> RetryPolicy {
    RetryPolicy::new(
        attempts,
        Duration::from_millis(5),
        Duration::from_millis(50),
    )
    .expect("policy")
}

const SERIALIZABLE_RR: TxOptions = TxOptions {
    isolation: Isolation::RepeatableRead,
    read_only: false,
};

/// A table `t (id int primary key, v int)` with rows 1 and 2 (v = 0), and a pool of 4.
async fn two_rows() -> (TestDb, Pool) {
    let db = TestDb::new().await;
    app_table(
        &db,
        "t",
        "id int primary key, v int not null check (v < 100)",
    )
    .await;
    db.superuser_client()
        .await
        .batch_execute("INSERT INTO aura.t VALUES (1, 0), (2, 0)")
        .await
        .expect("rows");
    let config = db
        .config_builder()
        .max_conns(4)
        .min_conns(2)
        .build()
        .expect("config");
    let pool = aura_db::open(&config).await.expect("pool");
    (db, pool)
}

async fn value(db: &TestDb, id: i32) -> i32 {
    db.superuser_client()
        .await
        .query_one("SELECT v FROM aura.t WHERE id = $1", &[&id])
        .await
        .expect("value")
        .get(0)
}

/// One side of the deadlock: updates row `first`, waits (first attempt only) until the
/// other side holds its row, then updates row `second`. Counts the body's runs in `runs`.
async fn lock_in_order(
    pool: &Pool,
    policy: &RetryPolicy,
    (first, second): (i32, i32),
    barrier: &Barrier,
    runs: &AtomicUsize,
) -> Result<(), Error> {
    with_tx_retry(pool, TxOptions::default(), policy, async |conn| {
        let run = runs.fetch_add(1, Ordering::SeqCst) + 1;
        sql_query(format!("UPDATE t SET v = v + 1 WHERE id = {first}"))
            .execute(conn)
            .await?;
        if run == 1 {
            barrier.wait().await;
        }
        sql_query(format!("UPDATE t SET v = v + 1 WHERE id = {second}"))
            .execute(conn)
            .await?;
        Ok::<_, Error>(())
    })
    .await
}

/// Two transactions lock rows 1 and 2 in opposite orders; the server kills one as the
/// deadlock's victim (40P01). With 3 attempts the victim's body runs again and both
/// succeed: the bodies ran 1 and 2 times, and each row was updated by both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadlock_is_retried_and_both_transactions_succeed() {
    let captured = events();
    let (db, pool) = two_rows().await;
    let barrier = Barrier::new(2);
    let (a_runs, b_runs) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let retry = policy(3);
    let (a, b) = tokio::join!(
        lock_in_order(&pool, &retry, (1, 2), &barrier, &a_runs),
        lock_in_order(&pool, &retry, (2, 1), &barrier, &b_runs),
    );
    a.expect("transaction a");
    b.expect("transaction b");
    let mut runs = [
        AtomicUsize::load(&a_runs, Ordering::SeqCst),
        AtomicUsize::load(&b_runs, Ordering::SeqCst),
    ];
    runs.sort_unstable();
    assert_eq!(runs, [1, 2], "the victim ran twice, the other once");
    assert_eq!((value(&db, 1).await, value(&db, 2).await), (2, 2));

    // The retry was an event naming the attempt and the SQLSTATE, not the server's message.
    let text = captured.text();
    let line = text
        .lines()
        .find(|l| l.contains("retrying database operation") && l.contains("40P01"))
        .unwrap_or_else(|| panic!("no retry event for the deadlock in:\n{text}"));
    for field in [
        "retry.attempt=1",
        "retry.max_attempts=3",
        "retry.reason=\"deadlock\"",
        "db.operation.name=\"transaction\"",
        "error.type=\"Query\"",
    ] {
        assert!(line.contains(field), "{field} missing in: {line}");
    }
    assert!(
        !line.contains("deadlock detected"),
        "the message leaked: {line}"
    );
    assert!(!line.contains("UPDATE"), "the statement leaked: {line}");
}

/// The same deadlock with one attempt: the victim's error comes back as it is (40P01,
/// transient, retryable) and its body ran once; the other transaction succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_one_attempt_the_deadlock_is_returned() {
    let (db, pool) = two_rows().await;
    let barrier = Barrier::new(2);
    let (a_runs, b_runs) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let once = RetryPolicy::none();
    let (a, b) = tokio::join!(
        lock_in_order(&pool, &once, (1, 2), &barrier, &a_runs),
        lock_in_order(&pool, &once, (2, 1), &barrier, &b_runs),
    );
    let (a_runs, b_runs) = (
        AtomicUsize::load(&a_runs, Ordering::SeqCst),
        AtomicUsize::load(&b_runs, Ordering::SeqCst),
    );
    assert_eq!((a_runs, b_runs), (1, 1));
    let err = match (a, b) {
        (Ok(()), Err(err)) | (Err(err), Ok(())) => err,
        other => panic!("expected one victim, got {other:?}"),
    };
    assert_eq!(err.sqlstate(), Some("40P01"), "{err:?}");
    assert_eq!(err.transient(), Some(Transient::Deadlock));
    assert!(err.is_retryable());
    // The winner's two updates committed; the victim's were rolled back.
    assert_eq!(value(&db, 1).await + value(&db, 2).await, 2);
}

/// With `policy`, a REPEATABLE READ transaction reads row 1 (taking its snapshot); on the
/// body's first run another session then adds 10 to the row and commits, and the body adds
/// 1: 40001. Returns the transaction's result and how many times the body ran.
async fn update_after_a_concurrent_update(
    db: &TestDb,
    pool: &Pool,
    policy: &RetryPolicy,
) -> (Result<usize, Error>, usize) {
    let runs = AtomicUsize::new(0);
    let (snapshot, committed) = (Notify::new(), Notify::new());
    let tx = with_tx_retry(pool, SERIALIZABLE_RR, policy, async |conn| {
        let run = runs.fetch_add(1, Ordering::SeqCst) + 1;
        // The first statement takes the snapshot.
        sql_query("SELECT v FROM t WHERE id = 1")
            .execute(conn)
            .await?;
        if run == 1 {
            snapshot.notify_one();
            committed.notified().await;
        }
        sql_query("UPDATE t SET v = v + 1 WHERE id = 1")
            .execute(conn)
            .await?;
        Ok::<_, Error>(run)
    });
    let concurrent = async {
        snapshot.notified().await;
        db.superuser_client()
            .await
            .batch_execute("UPDATE aura.t SET v = v + 10 WHERE id = 1")
            .await
            .expect("concurrent update");
        committed.notify_one();
    };
    let (result, ()) = tokio::join!(tx, concurrent);
    (result, AtomicUsize::load(&runs, Ordering::SeqCst))
}

/// Retried, the body runs again in a new snapshot and succeeds: both increments are in the
/// row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_serialization_failure_is_retried_in_a_new_snapshot() {
    let (db, pool) = two_rows().await;
    let (result, runs) = update_after_a_concurrent_update(&db, &pool, &policy(3)).await;
    assert_eq!(result.expect("the retry succeeds"), 2, "the body ran twice");
    assert_eq!(runs, 2);
    assert_eq!(value(&db, 1).await, 11);
}

/// With one attempt: 40001 comes back, the body ran once, only the concurrent update is in
/// the row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_one_attempt_the_serialization_failure_is_returned() {
    let (db, pool) = two_rows().await;
    let (result, runs) = update_after_a_concurrent_update(&db, &pool, &RetryPolicy::none()).await;
    let err = result.expect_err("40001");
    assert_eq!(err.sqlstate(), Some("40001"), "{err:?}");
    assert_eq!(err.transient(), Some(Transient::SerializationFailure));
    assert!(err.is_retryable());
    assert_eq!(runs, 1);
    assert_eq!(value(&db, 1).await, 10);
}

/// Compiles only for a `Send` future: `with_tx_retry` can run inside `tokio::spawn`.
fn is_send<T: Send>(_: &T) {}

/// A check violation (and a unique violation) is not transient: the body runs once
/// whatever the policy allows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_constraint_violation_is_never_retried() {
    let (db, pool) = two_rows().await;
    let retry = policy(5);
    for (sql, code) in [
        ("UPDATE t SET v = 100 WHERE id = 1", "23514"),
        ("INSERT INTO t VALUES (1, 0)", "23505"),
    ] {
        let runs = AtomicUsize::new(0);
        let tx = with_tx_retry(&pool, TxOptions::default(), &retry, async |conn| {
            runs.fetch_add(1, Ordering::SeqCst);
            sql_query(sql).execute(conn).await?;
            Ok::<_, Error>(())
        });
        is_send(&tx);
        let err = tx.await.expect_err(sql);
        assert_eq!(err.sqlstate(), Some(code), "{err:?}");
        assert_eq!(
            AtomicUsize::load(&runs, Ordering::SeqCst),
            1,
            "{sql} ran again"
        );
    }
    assert_eq!(value(&db, 1).await, 0);
}

/// The body's session is ended (`pg_terminate_backend`) before COMMIT was sent: nothing
/// could commit, so the transaction runs again on a new connection and succeeds, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_lost_before_commit_is_retried() {
    let (db, pool) = two_rows().await;
    let admin = db.superuser_client().await;
    let runs = AtomicUsize::new(0);
    let retry = policy(3);
    with_tx_retry(&pool, TxOptions::default(), &retry, async |conn| {
        let run = runs.fetch_add(1, Ordering::SeqCst) + 1;
        sql_query("UPDATE t SET v = v + 1 WHERE id = 1")
            .execute(conn)
            .await?;
        if run == 1 {
            admin
                .batch_execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE datname = current_database() AND usename = 'aura_app' \
                     AND state LIKE 'idle in transaction%'",
                )
                .await
                .expect("terminate");
        }
        sql_query("UPDATE t SET v = v + 1 WHERE id = 2")
            .execute(conn)
            .await?;
        Ok::<_, Error>(())
    })
    .await
    .expect("the retry succeeds");
    assert_eq!(AtomicUsize::load(&runs, Ordering::SeqCst), 2);
    assert_eq!((value(&db, 1).await, value(&db, 2).await), (1, 1));
}

/// The connection is cut right after COMMIT went through (fault proxy): the server
/// commits, the client never hears it. That outcome is unknown to the caller, so it is
/// never retried, whatever the policy: the body ran once, the error is returned, and the
/// row holds exactly one increment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_whose_answer_was_lost_is_never_retried() {
    let (db, _) = two_rows().await;
    let proxy = FaultProxy::for_db(&db).await;
    let config = proxy
        .config_builder(&db)
        .max_conns(2)
        .min_conns(1)
        .build()
        .expect("config");
    let pool = aura_db::open(&config).await.expect("pool");
    proxy.cut_after_message(|tag, body| tag == b'Q' && body.starts_with(b"COMMIT"));
    let runs = AtomicUsize::new(0);
    let retry = policy(5);
    let err = with_tx_retry(&pool, TxOptions::default(), &retry, async |conn| {
        runs.fetch_add(1, Ordering::SeqCst);
        sql_query("UPDATE t SET v = v + 1 WHERE id = 1")
            .execute(conn)
            .await?;
        Ok::<_, Error>(())
    })
    .await
    .expect_err("the COMMIT's answer was cut");
    assert_eq!(proxy.cuts(), 1, "the cut fired");
    assert!(
        matches!(
            err,
            Error::Commit {
                connection_lost: true,
                ..
            }
        ),
        "{err:?}"
    );
    // Its outcome is unknown: retryable, but only where a repeat cannot apply it twice.
    assert_eq!(err.transient(), Some(Transient::Ambiguous), "{err:?}");
    assert!(err.to_string().contains("may have committed"), "{err}");
    assert_eq!(
        AtomicUsize::load(&runs, Ordering::SeqCst),
        1,
        "the transaction ran again"
    );
    assert_eq!(value(&db, 1).await, 1, "committed once");
}
