//! `with_tx`: commit, rollback on error, rollback on panic, commit-time failure, and
//! cancellation at every await point.

mod common;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};

use aura_db::{Error, Isolation, Pool, TxOptions, with_tx, with_tx_opts};
use aura_testkit::TestDb;
use common::{app_table, count, idle_in_transaction};
use diesel::sql_query;
use diesel_async::RunQueryDsl;

#[derive(Debug, PartialEq)]
enum AppError {
    Db(String),
    Refused(&'static str),
}

impl From<Error> for AppError {
    fn from(e: Error) -> Self {
        AppError::Db(e.to_string())
    }
}

impl From<diesel::result::Error> for AppError {
    fn from(e: diesel::result::Error) -> Self {
        AppError::Db(Error::from(e).to_string())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ok_commits_and_returns_the_value() {
    let db = TestDb::new().await;
    app_table(&db, "t", "id int primary key").await;
    let pool = db.pool().await;
    let value = with_tx(&pool, async |conn| {
        sql_query("INSERT INTO t VALUES (1), (2)")
            .execute(conn)
            .await?;
        Ok::<_, Error>(42)
    })
    .await
    .unwrap();
    assert_eq!(value, 42);
    assert_eq!(count(&db, "t").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn err_rolls_back_and_returns_that_error() {
    let db = TestDb::new().await;
    app_table(&db, "t", "id int primary key").await;
    let pool = db.pool().await;
    let result: Result<(), AppError> = with_tx(&pool, async |conn| {
        sql_query("INSERT INTO t VALUES (1)").execute(conn).await?;
        Err(AppError::Refused("business rule"))
    })
    .await;
    assert_eq!(result, Err(AppError::Refused("business rule")));
    assert_eq!(count(&db, "t").await, 0);
    // The connection went back clean: nothing is left inside a transaction.
    assert_eq!(idle_in_transaction(&db).await, 0);
    aura_db::ping(&pool).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panic_rolls_back_and_the_panic_continues() {
    let db = TestDb::new().await;
    app_table(&db, "t", "id int primary key").await;
    let pool = db.pool().await;
    let task_pool = pool.clone();
    let joined = tokio::spawn(async move {
        with_tx(&task_pool, async |conn| {
            sql_query("INSERT INTO t VALUES (1)").execute(conn).await?;
            if conn_is_alive() {
                panic!("boom inside the transaction");
            }
            Ok::<_, Error>(())
        })
        .await
    })
    .await;
    let panic = joined
        .expect_err("the panic must reach the caller")
        .into_panic();
    assert_eq!(
        panic.downcast_ref::<&str>(),
        Some(&"boom inside the transaction")
    );
    assert_eq!(count(&db, "t").await, 0);
    assert_eq!(idle_in_transaction(&db).await, 0);
    // The pool still works and never hands out the broken connection.
    let n = with_tx(&pool, async |conn| {
        sql_query("INSERT INTO t VALUES (2)").execute(conn).await?;
        Ok::<_, Error>(1)
    })
    .await
    .unwrap();
    assert_eq!(n, 1);
    assert_eq!(count(&db, "t").await, 1);
}

fn conn_is_alive() -> bool {
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_time_failure_is_the_returned_error() {
    let db = TestDb::new().await;
    app_table(
        &db,
        "d",
        "id int, CONSTRAINT d_id_key UNIQUE (id) DEFERRABLE INITIALLY DEFERRED",
    )
    .await;
    let pool = db.pool().await;
    let err = with_tx(&pool, async |conn| {
        sql_query("INSERT INTO d VALUES (1)").execute(conn).await?;
        sql_query("INSERT INTO d VALUES (1)").execute(conn).await?;
        Ok::<_, Error>(())
    })
    .await
    .unwrap_err();
    match &err {
        Error::Commit {
            sqlstate,
            constraint,
            ..
        } => {
            assert_eq!(sqlstate.as_deref(), Some("23505"));
            assert_eq!(constraint.as_deref(), Some("d_id_key"));
        }
        other => panic!("expected a commit error, got {other:?}"),
    }
    assert!(
        err.to_string().starts_with("aura-db: commit failed"),
        "{err}"
    );
    assert_eq!(count(&db, "d").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_set_isolation_and_read_only() {
    let db = TestDb::new().await;
    app_table(&db, "t", "id int").await;
    let pool = db.pool().await;
    let opts = TxOptions {
        isolation: Isolation::Serializable,
        read_only: true,
    };
    let err = with_tx_opts(&pool, opts, async |conn| {
        sql_query("INSERT INTO t VALUES (1)").execute(conn).await?;
        Ok::<_, Error>(())
    })
    .await
    .unwrap_err();
    assert_eq!(err.sqlstate(), Some("25006"), "{err}");

    #[derive(diesel::QueryableByName)]
    struct Setting {
        #[diesel(sql_type = diesel::sql_types::Text)]
        value: String,
    }
    let level = with_tx_opts(&pool, opts, async |conn| {
        let s: Setting = sql_query("SELECT current_setting('transaction_isolation') AS value")
            .get_result(conn)
            .await?;
        Ok::<_, Error>(s.value)
    })
    .await
    .unwrap();
    assert_eq!(level, "serializable");
}

/// Drops the transaction future at a pending poll of each step in turn (checkout/BEGIN,
/// each statement of the body, COMMIT): the drop is aimed at a step, not at a time, because
/// a timer (1 ms resolution) is coarser than a warm round trip and the number of pending
/// polls per step varies from run to run. Whatever the step: the table holds all the rows
/// or none (none when dropped before COMMIT), and no session is left inside a transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_future_leaves_no_open_transaction_and_no_partial_commit() {
    let db = TestDb::new().await;
    app_table(&db, "c", "id int").await;
    let pool = db.pool().await;
    // Steps: 0 checkout/BEGIN, 1 first insert, 2 sleep, 3 second insert, 4 COMMIT.
    const STEPS: usize = 5;
    const ATTEMPTS: usize = 200;
    let mut dropped_at = [0usize; STEPS];
    for (target, dropped) in dropped_at.iter_mut().enumerate() {
        for attempt in 0..ATTEMPTS {
            let step = Arc::new(AtomicUsize::new(0));
            let mut run = Box::pin(stepped_tx(&pool, step.clone()));
            // Some(result) when the transaction ran to its end, None when dropped.
            let outcome = std::future::poll_fn(|cx| match run.as_mut().poll(cx) {
                Poll::Ready(result) => Poll::Ready(Some(result)),
                Poll::Pending if AtomicUsize::load(&step, Ordering::SeqCst) == target => {
                    Poll::Ready(None)
                }
                Poll::Pending => Poll::Pending,
            })
            .await;
            drop(run);
            let hit = outcome.is_none();
            match outcome {
                Some(result) => result.unwrap(),
                None => *dropped += 1,
            }
            let rows = count(&db, "c").await;
            assert!(
                rows == 0 || rows == 2,
                "partial commit: {rows} rows after a drop aimed at step {target}"
            );
            if hit && target < 4 {
                assert_eq!(
                    rows, 0,
                    "dropped before COMMIT at step {target}, yet committed"
                );
            }
            assert_eq!(
                idle_in_transaction(&db).await,
                0,
                "open transaction left after a drop aimed at step {target} (attempt {attempt})"
            );
            if rows == 2 {
                db.superuser_client()
                    .await
                    .batch_execute("DELETE FROM aura.c")
                    .await
                    .unwrap();
            }
            if hit {
                break;
            }
        }
    }
    for (step, n) in dropped_at.iter().enumerate() {
        assert!(
            *n > 0,
            "never pending at step {step} in {ATTEMPTS} attempts: {dropped_at:?}"
        );
    }
    // Nothing above stops a transaction that is allowed to run: it commits both rows.
    stepped_tx(&pool, Arc::new(AtomicUsize::new(0)))
        .await
        .unwrap();
    assert_eq!(count(&db, "c").await, 2);
    // Every connection the pool hands out afterwards is outside any transaction.
    for _ in 0..3 {
        let mut conn = pool.get().await.unwrap();
        assert!(!conn.is_broken());
    }
}

/// A future dropped while a long statement runs: the server notices the closed connection
/// (`client_connection_check_interval`) and ends that transaction, releasing its row lock
/// within a second or two instead of when the statement would have finished.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_future_dropped_during_a_long_statement_releases_its_locks_soon() {
    let db = TestDb::new().await;
    app_table(&db, "l", "id int primary key").await;
    let admin = db.superuser_client().await;
    admin
        .batch_execute("INSERT INTO aura.l VALUES (1)")
        .await
        .unwrap();
    let pool = db.pool().await;
    let locked = Arc::new(tokio::sync::Notify::new());
    let run = with_tx(&pool, {
        let locked = locked.clone();
        async move |conn| {
            sql_query("UPDATE l SET id = id WHERE id = 1")
                .execute(&mut *conn)
                .await?;
            locked.notify_one();
            sql_query("SELECT pg_sleep(25)").execute(&mut *conn).await?;
            Ok::<_, Error>(())
        }
    });
    tokio::select! {
        result = run => panic!("the sleep ended early: {result:?}"),
        () = async {
            locked.notified().await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        } => {}
    }
    let waited = Instant::now();
    admin
        .batch_execute("SET lock_timeout = '6s'; UPDATE aura.l SET id = id WHERE id = 1")
        .await
        .expect("the dropped transaction still holds its row lock");
    assert!(waited.elapsed() < Duration::from_secs(6));
    assert_eq!(idle_in_transaction(&db).await, 0);
}

/// Two inserts around a short sleep in one transaction; `step` says how far the body got:
/// 0 checkout/BEGIN, 1 first insert, 2 sleep, 3 second insert, 4 COMMIT.
fn stepped_tx(pool: &Pool, step: Arc<AtomicUsize>) -> impl Future<Output = Result<(), Error>> {
    with_tx(pool, async move |conn| {
        step.store(1, Ordering::SeqCst);
        sql_query("INSERT INTO c VALUES (1)")
            .execute(&mut *conn)
            .await?;
        step.store(2, Ordering::SeqCst);
        sql_query("SELECT pg_sleep(0.005)")
            .execute(&mut *conn)
            .await?;
        step.store(3, Ordering::SeqCst);
        sql_query("INSERT INTO c VALUES (2)")
            .execute(&mut *conn)
            .await?;
        step.store(4, Ordering::SeqCst);
        Ok::<_, Error>(())
    })
}

/// Two transactions lock two rows in opposite orders: the server breaks the deadlock (after
/// its deadlock_timeout, 1 s) by failing one of them, which comes back with SQLSTATE 40P01
/// and retryable; the other commits both its updates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadlock_is_40p01_and_retryable() {
    let db = TestDb::new().await;
    app_table(&db, "d", "id int primary key, n int not null default 0").await;
    db.superuser_client()
        .await
        .batch_execute("INSERT INTO aura.d (id) VALUES (1), (2)")
        .await
        .unwrap();
    let pool = db.pool().await;
    let both_hold_one = Arc::new(tokio::sync::Barrier::new(2));
    let lock_in_order = |first: i32, second: i32| {
        let pool = pool.clone();
        let both_hold_one = both_hold_one.clone();
        async move {
            with_tx(&pool, async move |conn| {
                sql_query(format!("UPDATE d SET n = n + 1 WHERE id = {first}"))
                    .execute(&mut *conn)
                    .await?;
                both_hold_one.wait().await;
                sql_query(format!("UPDATE d SET n = n + 1 WHERE id = {second}"))
                    .execute(&mut *conn)
                    .await?;
                Ok::<_, Error>(())
            })
            .await
        }
    };
    let (a, b) = tokio::join!(
        tokio::spawn(lock_in_order(1, 2)),
        tokio::spawn(lock_in_order(2, 1))
    );
    let results = [a.unwrap(), b.unwrap()];
    let failed: Vec<&Error> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert_eq!(failed.len(), 1, "{results:?}");
    assert_eq!(failed[0].sqlstate(), Some("40P01"), "{}", failed[0]);
    assert!(failed[0].is_retryable(), "{}", failed[0]);
    let total: i64 = db
        .superuser_client()
        .await
        .query_one("SELECT sum(n)::bigint FROM aura.d", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(total, 2, "the survivor's two updates, none of the victim's");
}
