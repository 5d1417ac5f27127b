//! The server restarts (`pg_ctl restart -m fast`) under load, on the testkit's private
//! restartable cluster (the shared test cluster is never restarted): 32 tasks append turns
//! (with caller-supplied ids) and read conversations for several seconds, the server
//! restarts in the middle. Every operation succeeds or fails as `Unavailable`, none hangs,
//! the pool serves again within 2 s of the server accepting connections, every
//! acknowledged append is stored and every conversation's aggregates equal its turns.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aura_store::{
    ConversationId, ConversationStore, PgStore, StoreError, TurnDraft, TurnId, TurnRole, TurnStore,
};
use aura_testkit::RestartCluster;
use tokio::time::{Instant, sleep, timeout};

use crate::common::conversation;
use crate::invariants::assert_aggregates_match;

const TASKS: usize = 32;
const CONVERSATIONS: usize = 8;
/// Load before the restart, and after the server is back.
const BEFORE: Duration = Duration::from_secs(2);
const AFTER: Duration = Duration::from_secs(4);
/// No operation may take longer (a hang fails the test); generous for a loaded machine.
const OP_BOUND: Duration = Duration::from_secs(30);
/// The pool must serve again within this of the server accepting connections (issue 12).
const RECOVERY: Duration = Duration::from_secs(2);

/// One operation of one task.
struct Op {
    started: Instant,
    ended: Instant,
    outcome: Result<(), String>,
}

/// An append whose reply said Ok, or whose outcome is unknown (it failed).
struct Appended {
    conversation: ConversationId,
    id: TurnId,
    seq: Option<i32>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restart_under_load_loses_no_acknowledged_write() {
    let cluster = RestartCluster::lock().await;
    let db = cluster.test_db().await;
    let config = db
        .config_builder()
        .max_conns(16)
        .build()
        .expect("test config");
    let store = Arc::new(PgStore::open(&config).await.expect("store"));
    let mut ids = Vec::new();
    for _ in 0..CONVERSATIONS {
        ids.push(conversation(&store).await.id);
    }
    let ids = Arc::new(ids);
    let started_at: String = db
        .superuser_client()
        .await
        .query_one("SELECT pg_postmaster_start_time()::text", &[])
        .await
        .expect("start time")
        .get(0);

    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let (store, ids, stop) = (store.clone(), ids.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut ops = Vec::new();
            let mut appended = Vec::new();
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let id = ids[(task + i) % ids.len()];
                let started = Instant::now();
                let outcome = if i.is_multiple_of(2) {
                    let turn = TurnId::new();
                    let draft = TurnDraft::new(TurnRole::User, "under restart")
                        .tokens(3, 5)
                        .with_id(turn);
                    let result = bounded(store.append_turn(id, draft)).await;
                    appended.push(Appended {
                        conversation: id,
                        id: turn,
                        seq: result.as_ref().ok().map(|t| t.seq),
                    });
                    result.map(drop)
                } else {
                    bounded(store.get_conversation(id))
                        .await
                        .and_then(|c| check_read(&c))
                };
                let failed = outcome.is_err();
                ops.push(Op {
                    started,
                    ended: Instant::now(),
                    outcome,
                });
                if failed {
                    // No busy loop while the server is down.
                    sleep(Duration::from_millis(10)).await;
                }
                i += 1;
            }
            (ops, appended)
        }));
    }

    sleep(BEFORE).await;
    // The first instant a fresh connection succeeds after one failed: the server accepts
    // connections again.
    let url = db.superuser_url().clone();
    let prober = tokio::spawn(async move {
        let mut failed = false;
        loop {
            match timeout(Duration::from_secs(5), aura_db::connect_raw(&url)).await {
                Ok(Ok(_client)) if failed => return Instant::now(),
                Ok(Ok(_client)) => {}
                _ => failed = true,
            }
            sleep(Duration::from_millis(10)).await;
        }
    });
    cluster.restart().await.expect("pg_ctl restart");
    let up = timeout(Duration::from_secs(60), prober)
        .await
        .expect("the server never accepted connections after the restart")
        .expect("prober");
    sleep(AFTER).await;
    stop.store(true, Ordering::Relaxed);

    let mut ops = Vec::new();
    let mut appended = Vec::new();
    for task in tasks {
        let (o, a) = timeout(OP_BOUND * 2, task)
            .await
            .expect("a task hung")
            .expect("task");
        ops.extend(o);
        appended.extend(a);
    }

    // Every operation succeeded or failed as Unavailable (`bounded` turns a hang into an
    // error that is not).
    let failures: Vec<&String> = ops
        .iter()
        .filter_map(|o| o.outcome.as_ref().err())
        .collect();
    let other: Vec<&&String> = failures
        .iter()
        .filter(|e| !e.starts_with("unavailable"))
        .collect();
    assert!(
        other.is_empty(),
        "{} of {} failures were not Unavailable, e.g. {:?}",
        other.len(),
        failures.len(),
        other.iter().take(5).collect::<Vec<_>>()
    );
    assert!(
        !failures.is_empty(),
        "no operation failed: did the server restart?"
    );
    // The superuser's session of before ended with the restart: a new one.
    let admin = db.superuser_client().await;
    let now_started: String = admin
        .query_one("SELECT pg_postmaster_start_time()::text", &[])
        .await
        .expect("start time")
        .get(0);
    assert_ne!(started_at, now_started, "the server did not restart");

    // The pool serves again within RECOVERY of the server accepting connections, and
    // every operation started after that succeeds.
    let first_ok = ops
        .iter()
        .filter(|o| o.started >= up && o.outcome.is_ok())
        .map(|o| o.ended)
        .min()
        .expect("no operation succeeded after the restart");
    let recovery = first_ok.saturating_duration_since(up);
    assert!(
        recovery <= RECOVERY,
        "the pool served again {recovery:?} after the server accepted connections"
    );
    let late_failures: Vec<&String> = ops
        .iter()
        .filter(|o| o.started >= up + RECOVERY)
        .filter_map(|o| o.outcome.as_ref().err())
        .collect();
    assert!(
        late_failures.is_empty(),
        "{} operations failed more than {RECOVERY:?} after the server was back, e.g. {:?}",
        late_failures.len(),
        late_failures.first()
    );
    let ok_appends_after = appended.iter().filter(|a| a.seq.is_some()).count();
    eprintln!(
        "restart under load: {} operations, {} failed (Unavailable), {} appends acknowledged, \
         pool served again {recovery:?} after the server did",
        ops.len(),
        failures.len(),
        ok_appends_after
    );

    // Every acknowledged append is stored with its seq; nothing else is stored but the
    // appends whose outcome was unknown; each conversation's aggregates equal its turns.
    let rows = admin
        .query(
            "SELECT conversation_id::text, id::text, seq FROM aura.turns",
            &[],
        )
        .await
        .expect("turns");
    let stored: HashMap<(String, String), i32> = rows
        .iter()
        .map(|r| ((r.get(0), r.get(1)), r.get(2)))
        .collect();
    let sent: HashMap<(String, String), Option<i32>> = appended
        .iter()
        .map(|a| ((a.conversation.to_string(), a.id.to_string()), a.seq))
        .collect();
    for a in &appended {
        let key = (a.conversation.to_string(), a.id.to_string());
        if let Some(seq) = a.seq {
            assert_eq!(
                stored.get(&key),
                Some(&seq),
                "acknowledged turn {}/{} (seq {seq}) is missing or moved",
                a.conversation,
                a.id
            );
        }
    }
    for key in stored.keys() {
        assert!(sent.contains_key(key), "a turn nobody appended: {key:?}");
    }
    assert_aggregates_match(&admin).await;
}

/// Runs `op` under [`OP_BOUND`]; the error's text starts with its class (`unavailable`).
async fn bounded<T>(op: impl Future<Output = Result<T, StoreError>>) -> Result<T, String> {
    match timeout(OP_BOUND, op).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e @ StoreError::Unavailable(_))) => Err(format!("unavailable: {e}")),
        Ok(Err(e)) => Err(format!("other: {e}")),
        Err(_) => Err(format!("hung: no answer within {OP_BOUND:?}")),
    }
}

/// A read is consistent: turns numbered 1..=turn_count.
fn check_read(c: &aura_store::ConversationWithTurns) -> Result<(), String> {
    let seqs: Vec<i32> = c.turns.iter().map(|t| t.seq).collect();
    let expected: Vec<i32> = (1..=c.conversation.turn_count).collect();
    if seqs == expected {
        Ok(())
    } else {
        Err(format!("other: torn read {seqs:?}"))
    }
}
