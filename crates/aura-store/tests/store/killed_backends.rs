//! Fifty killed backends: `pg_terminate_backend` on the pool's connections 50 times while
//! `with_tx` bodies (a three-statement append done by hand) and store operations
//! (appends with caller ids, runs started and stopped with a request pending, reads) run.
//! Each affected call fails cleanly (Unavailable), nothing is half-committed (the
//! aggregates equal the turns; a stopped run has no pending request), the next checkouts
//! are healthy, and no connection leaks: the pool's stats add up and match the server's
//! sessions of the application.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aura_store::aura_db;
use aura_store::{
    ConflictKind, ConversationId, ConversationStore, PgStore, RequestDraft, RequestStore, RunDraft,
    RunKey, RunStore, StoreError, TurnDraft, TurnId, TurnRole, TurnStore,
};
use aura_testkit::TestDb;
use diesel_async::SimpleAsyncConnection;
use tokio::time::{sleep, timeout};

use crate::common::conversation;
use crate::invariants::assert_aggregates_match;

const APP: &str = "aura-kill-test";
const KILLS: usize = 50;
const POOL: u32 = 8;
const TX_TASKS: usize = 4;
const STORE_TASKS: usize = 4;
/// Longest any call may take (a hang fails the test); generous for a loaded machine.
const OP_BOUND: Duration = Duration::from_secs(30);
/// Attempts of a call repeated with the same id after Unavailable.
const ATTEMPTS: usize = 20;

/// What the tasks saw.
#[derive(Default)]
struct Tally {
    ok: usize,
    unavailable: usize,
    /// `with_tx` whose `COMMIT` failed with the connection: outcome unknown.
    commit_unknown: usize,
    /// Turns acknowledged: (conversation, id, seq).
    acked: Vec<(ConversationId, TurnId, i32)>,
    /// Turns of `with_tx` bodies that committed: (conversation, id).
    acked_tx: Vec<(ConversationId, TurnId)>,
    /// Turns whose `with_tx` failed at COMMIT: may or may not be there.
    maybe: Vec<(ConversationId, TurnId)>,
    /// Anything else: the test fails with these.
    other: Vec<String>,
}

impl Tally {
    fn merge(&mut self, o: Tally) {
        self.ok += o.ok;
        self.unavailable += o.unavailable;
        self.commit_unknown += o.commit_unknown;
        self.acked.extend(o.acked);
        self.acked_tx.extend(o.acked_tx);
        self.maybe.extend(o.maybe);
        self.other.extend(o.other);
    }

    /// Counts a store call's failure: Unavailable, or (for the store's own transactions)
    /// a `COMMIT` the connection died in, whose outcome is unknown (not retryable as is:
    /// the caller finds out, as `stop_run` below does). True when the call may be
    /// repeated.
    fn store_err(&mut self, what: &str, e: &StoreError) -> bool {
        match e {
            StoreError::Unavailable(aura_db::Error::Commit { .. }) => self.commit_unknown += 1,
            StoreError::Unavailable(_) => self.unavailable += 1,
            e => {
                self.other.push(format!("{what}: {e}"));
                return false;
            }
        }
        true
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_killed_backends_leave_nothing_half_done_and_leak_nothing() {
    let db = TestDb::new().await;
    let config = db
        .config_builder()
        .max_conns(POOL)
        .application_name(APP)
        .build()
        .expect("test config");
    let store = Arc::new(PgStore::open(&config).await.expect("store"));
    let stop = Arc::new(AtomicBool::new(false));

    let mut tasks = Vec::new();
    for _ in 0..TX_TASKS {
        let id = conversation(&store).await.id;
        let (store, stop) = (store.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            while !stop.load(Ordering::Relaxed) {
                tx_append(&store, id, &mut tally).await;
            }
            tally
        }));
    }
    for _ in 0..STORE_TASKS {
        let id = conversation(&store).await.id;
        let (store, stop) = (store.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            let mut i = 0u32;
            while !stop.load(Ordering::Relaxed) {
                store_ops(&store, id, i, &mut tally).await;
                i += 1;
            }
            tally
        }));
    }

    // Kill the pool's backends, busy ones first, until 50 were terminated.
    let killer = db.superuser_client().await;
    let mut killed = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while killed < KILLS {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {killed} backends killed in 120 s"
        );
        let row = killer
            .query_opt(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = current_database() AND application_name = $1 \
                 ORDER BY (state <> 'idle') DESC, random() LIMIT 1",
                &[&APP],
            )
            .await
            .expect("terminate a backend");
        if row.is_some_and(|r| r.get::<_, bool>(0)) {
            killed += 1;
        }
        sleep(Duration::from_millis(40)).await;
    }
    sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    let mut tally = Tally::default();
    for task in tasks {
        tally.merge(
            timeout(OP_BOUND * 4, task)
                .await
                .expect("a task hung")
                .expect("task"),
        );
    }
    eprintln!(
        "killed backends: {killed} kills, {} calls ok, {} Unavailable, {} commit outcome unknown",
        tally.ok, tally.unavailable, tally.commit_unknown
    );
    assert!(
        tally.other.is_empty(),
        "calls failed other than Unavailable: {:?}",
        &tally.other[..tally.other.len().min(5)]
    );
    assert!(tally.unavailable > 0, "no call saw a killed backend");

    // The next checkouts are healthy: every connection of the pool at once, each
    // answering a query (a dead one is replaced at checkout).
    let mut held = Vec::new();
    for _ in 0..POOL {
        held.push(
            timeout(OP_BOUND, store.pool().get())
                .await
                .expect("checkout hung")
                .expect("checkout after the kills"),
        );
    }
    for conn in &mut held {
        conn.batch_execute("SELECT 1")
            .await
            .expect("a checked-out connection is dead");
    }
    drop(held);

    // No leak: the pool's stats add up, and the server has exactly the pool's sessions.
    let stats = store.pool().stats();
    assert_eq!(stats.in_use, 0, "{stats:?}");
    assert_eq!(stats.size, stats.idle + stats.in_use, "{stats:?}");
    assert!(stats.size <= stats.max_size, "{stats:?}");
    assert_eq!(stats.size, POOL, "{stats:?}");
    assert_eq!(
        stats.connects - stats.closed_broken - stats.closed_idle,
        u64::from(stats.size),
        "connections made minus closed is not the pool's size: {stats:?}"
    );
    let admin = db.superuser_client().await;
    let mut sessions = 0;
    for _ in 0..100 {
        // Terminated backends leave pg_stat_activity when their process has exited.
        sessions = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                 AND application_name = $1",
                &[&APP],
            )
            .await
            .expect("sessions")
            .get::<_, i64>(0);
        if sessions == i64::from(stats.size) {
            break;
        }
        sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(sessions, i64::from(stats.size), "{stats:?}");

    // Nothing half-committed.
    assert_aggregates_match(&admin).await;
    let acked = tally
        .acked
        .iter()
        .map(|(c, id, seq)| (c, id, Some(*seq)))
        .chain(tally.acked_tx.iter().map(|(c, id)| (c, id, None)));
    for (c, id, seq) in acked {
        let stored: Option<i32> = admin
            .query_opt(
                "SELECT seq FROM aura.turns WHERE conversation_id = $1::text::uuid AND id = $2::text::uuid",
                &[&c.to_string(), &id.to_string()],
            )
            .await
            .expect("turn")
            .map(|r| r.get(0));
        assert!(
            stored.is_some() && (seq.is_none() || stored == seq),
            "acknowledged turn {c}/{id} (seq {seq:?}) is stored as {stored:?}"
        );
    }
    let turns: i64 = admin
        .query_one("SELECT count(*) FROM aura.turns", &[])
        .await
        .expect("turns")
        .get(0);
    let acked = (tally.acked.len() + tally.acked_tx.len()) as i64;
    let possible = acked + tally.maybe.len() as i64;
    assert!(
        turns >= acked && turns <= possible,
        "{turns} turns stored, {acked} acknowledged, {possible} possible"
    );
    let half_stopped: i64 = admin
        .query_one(
            "SELECT count(*) FROM aura.ask_user_requests q JOIN aura.runs r \
             ON r.conversation_id = q.conversation_id AND r.id = q.run_id \
             WHERE r.status <> 'running' AND q.status = 'pending'",
            &[],
        )
        .await
        .expect("requests")
        .get(0);
    assert_eq!(half_stopped, 0, "stopped runs with pending requests");
}

/// The naive append by hand in `with_tx`: three statements (aggregates, a pause that
/// widens the window, the turn at the new count).
async fn tx_append(store: &PgStore, c: ConversationId, tally: &mut Tally) {
    let id = TurnId::new();
    let statements = [
        format!(
            "UPDATE aura.conversations SET turn_count = turn_count + 1, input_tokens = \
             input_tokens + 2, output_tokens = output_tokens + 7, last_turn_at = \
             GREATEST(last_turn_at, now()), updated_at = now() WHERE id = '{c}'"
        ),
        "SELECT pg_sleep(0.002)".to_owned(),
        format!(
            "INSERT INTO aura.turns (conversation_id, id, seq, role, content, input_tokens, \
             output_tokens, created_at) SELECT id, '{id}', turn_count, 'assistant', 'by hand', \
             2, 7, last_turn_at FROM aura.conversations WHERE id = '{c}'"
        ),
    ];
    let result = timeout(
        OP_BOUND,
        aura_db::with_tx(store.pool(), async |conn| {
            for sql in &statements {
                conn.batch_execute(sql).await?;
            }
            Ok::<_, aura_db::Error>(())
        }),
    )
    .await;
    match result {
        Err(_) => tally.other.push(format!("with_tx hung for {OP_BOUND:?}")),
        Ok(Ok(())) => {
            tally.ok += 1;
            tally.acked_tx.push((c, id));
        }
        Ok(Err(aura_db::Error::Commit { .. })) => {
            tally.commit_unknown += 1;
            tally.maybe.push((c, id));
        }
        Ok(Err(e)) if e.is_retryable() => tally.unavailable += 1,
        Ok(Err(e)) => tally.other.push(format!("with_tx: {e}")),
    }
}

/// One round of store operations on conversation `c`: an append with a caller id
/// (repeated with the same id after Unavailable: exactly once), a read, and every fourth
/// round a run started, a request created and the run stopped (two statements in one
/// transaction: the run ends and its pending requests are cancelled together).
async fn store_ops(store: &PgStore, c: ConversationId, i: u32, tally: &mut Tally) {
    let id = TurnId::new();
    let draft = TurnDraft::new(TurnRole::User, "between kills")
        .tokens(1, 4)
        .with_id(id);
    if let Some(turn) = again(tally, "append_turn", || store.append_turn(c, draft)).await {
        tally.acked.push((c, id, turn.seq));
    }
    match timeout(OP_BOUND, store.get_conversation(c)).await {
        Ok(Ok(_)) => tally.ok += 1,
        Ok(Err(e)) => {
            tally.store_err("get_conversation", &e);
        }
        Err(_) => tally.other.push("get_conversation hung".to_owned()),
    }
    if !i.is_multiple_of(4) {
        return;
    }
    let run = RunKey::new(c, aura_store::RunId::new());
    let started = again(tally, "start_run", || {
        store.start_run(c, RunDraft::with_id(run.id))
    })
    .await;
    if started.is_none() {
        return;
    }
    let request = aura_store::RequestId::new();
    let draft = RequestDraft::new(Some(run.id), "go on?").with_id(request);
    let _ = again(tally, "create_request", || store.create_request(c, draft)).await;
    // Stop until it is stopped: after a failed attempt (Unavailable, or a COMMIT whose
    // outcome is unknown), "not running" means that attempt stopped it.
    for attempt in 0..ATTEMPTS {
        match timeout(OP_BOUND, store.stop_run(run, None)).await {
            Ok(Ok(_)) => {
                tally.ok += 1;
                return;
            }
            Ok(Err(e @ StoreError::Conflict { .. }))
                if attempt > 0
                    && matches!(e.conflict_kind(), Some(ConflictKind::RunNotRunning { .. })) =>
            {
                return;
            }
            Ok(Err(e)) => {
                if !tally.store_err("stop_run", &e) {
                    return;
                }
            }
            Err(_) => {
                tally.other.push("stop_run hung".to_owned());
                return;
            }
        }
    }
    tally
        .other
        .push(format!("stop_run {run:?} failed {ATTEMPTS} times"));
}

/// Calls `op` until it succeeds (the same id each time: idempotent), counting each
/// failure; `None` after a failure other than Unavailable or [`ATTEMPTS`] attempts.
async fn again<T, F, Fut>(tally: &mut Tally, what: &str, op: F) -> Option<T>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    for _ in 0..ATTEMPTS {
        match timeout(OP_BOUND, op()).await {
            Ok(Ok(v)) => {
                tally.ok += 1;
                return Some(v);
            }
            Ok(Err(e)) => {
                if !tally.store_err(what, &e) {
                    return None;
                }
            }
            Err(_) => {
                tally.other.push(format!("{what} hung for {OP_BOUND:?}"));
                return None;
            }
        }
    }
    tally.other.push(format!("{what} failed {ATTEMPTS} times"));
    None
}
