//! The checks after the soak, read as the superuser: each names what must hold and, when
//! it does not, a few of the offending rows.

use std::collections::{HashMap, HashSet};

use aura_store::{PoolStats, RunStatus};
use tokio_postgres::Client;

use crate::ledger::Writes;

/// One invariant and how it came out.
pub struct Check {
    /// What must hold.
    pub name: &'static str,
    /// Offending rows, described (empty: it holds).
    pub offences: Vec<String>,
}

impl Check {
    fn new(name: &'static str, offences: Vec<String>) -> Check {
        Check { name, offences }
    }

    /// True when it holds.
    pub fn holds(&self) -> bool {
        self.offences.is_empty()
    }
}

/// Runs every check against the database and the ledger.
pub async fn check(
    admin: &Client,
    writes: &Writes,
    stats: PoolStats,
) -> anyhow::Result<Vec<Check>> {
    let mut checks = Vec::new();
    let rows = admin
        .query(
            "SELECT conversation_id::text, count(*), min(seq), max(seq) FROM aura.turns \
             GROUP BY conversation_id HAVING min(seq) <> 1 OR count(*) <> max(seq)",
            &[],
        )
        .await?;
    checks.push(Check::new(
        "seq gap-free per conversation (1..n, n turns)",
        rows.iter()
            .map(|r| {
                let (c, n, lo, hi): (String, i64, i32, i32) =
                    (r.get(0), r.get(1), r.get(2), r.get(3));
                format!("{c}: {n} turns, seq {lo}..{hi}")
            })
            .collect(),
    ));

    let rows = admin
        .query(
            "SELECT c.id::text, c.turn_count::bigint, count(t.id), c.input_tokens, \
                    coalesce(sum(t.input_tokens), 0)::bigint, c.output_tokens, \
                    coalesce(sum(t.output_tokens), 0)::bigint \
             FROM aura.conversations c LEFT JOIN aura.turns t ON t.conversation_id = c.id \
             GROUP BY c.id \
             HAVING c.turn_count <> count(t.id) \
                 OR c.input_tokens <> coalesce(sum(t.input_tokens), 0) \
                 OR c.output_tokens <> coalesce(sum(t.output_tokens), 0) \
                 OR c.last_turn_at IS DISTINCT FROM max(t.created_at)",
            &[],
        )
        .await?;
    checks.push(Check::new(
        "aggregates equal their turns (count, token sums, last turn time)",
        rows.iter()
            .map(|r| {
                format!(
                    "{}: turn_count {} vs {} turns, tokens {}/{} vs {}/{}",
                    r.get::<_, String>(0),
                    r.get::<_, i64>(1),
                    r.get::<_, i64>(2),
                    r.get::<_, i64>(3),
                    r.get::<_, i64>(5),
                    r.get::<_, i64>(4),
                    r.get::<_, i64>(6)
                )
            })
            .collect(),
    ));

    let mut dups = Vec::new();
    for table in ["conversations", "turns", "runs", "ask_user_requests"] {
        let rows = admin
            .query(
                &format!(
                    "SELECT id::text, count(*) FROM aura.{table} GROUP BY id HAVING count(*) > 1"
                ),
                &[],
            )
            .await?;
        dups.extend(
            rows.iter()
                .map(|r| format!("{table} {} x{}", r.get::<_, String>(0), r.get::<_, i64>(1))),
        );
    }
    checks.push(Check::new("no duplicate idempotency keys (ids)", dups));

    let turns: HashMap<String, (String, i32)> = admin
        .query(
            "SELECT id::text, conversation_id::text, seq FROM aura.turns",
            &[],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2))))
        .collect();
    let conversations: HashSet<String> = admin
        .query("SELECT id::text FROM aura.conversations", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let runs: HashMap<String, String> = admin
        .query("SELECT id::text, status FROM aura.runs", &[])
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let requests: HashSet<String> = admin
        .query("SELECT id::text FROM aura.ask_user_requests", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut missing = Vec::new();
    for id in &writes.conversations {
        if !conversations.contains(&id.to_string()) {
            missing.push(format!("conversation {id}"));
        }
    }
    for (id, (c, seq)) in &writes.turns {
        match turns.get(&id.to_string()) {
            Some((sc, sseq)) if *sc == c.to_string() && sseq == seq => {}
            other => missing.push(format!("turn {c}/{id} seq {seq}: stored as {other:?}")),
        }
    }
    for (id, (c, status)) in &writes.runs {
        match runs.get(&id.to_string()) {
            None => missing.push(format!("run {c}/{id}")),
            // A run acknowledged as running may have been ended by a call whose outcome
            // stayed unknown: only the ends acknowledged are compared.
            Some(s) if *status != RunStatus::Running && s != status.as_str() => {
                missing.push(format!("run {c}/{id} is {s}, acknowledged {status}"));
            }
            Some(_) => {}
        }
    }
    for (id, c) in &writes.requests {
        if !requests.contains(&id.to_string()) {
            missing.push(format!("request {c}/{id}"));
        }
    }
    checks.push(Check::new("every acknowledged write is stored", missing));

    let sent: HashSet<String> = writes
        .turns
        .keys()
        .chain(&writes.maybe_turns)
        .map(ToString::to_string)
        .collect();
    let phantoms = turns
        .keys()
        .filter(|id| !sent.contains(*id))
        .cloned()
        .collect();
    checks.push(Check::new(
        "no turn stored that no call sent (a failed append landed at most once)",
        phantoms,
    ));

    let rows = admin
        .query(
            "SELECT r.id::text, r.status, q.id::text FROM aura.ask_user_requests q \
             JOIN aura.runs r ON r.conversation_id = q.conversation_id AND r.id = q.run_id \
             WHERE r.status = 'stopped' AND q.status = 'pending'",
            &[],
        )
        .await?;
    checks.push(Check::new(
        "a stopped run has no pending request (stop_run is all or nothing)",
        rows.iter()
            .map(|r| {
                format!(
                    "run {} has pending request {}",
                    r.get::<_, String>(0),
                    r.get::<_, String>(2)
                )
            })
            .collect(),
    ));

    let mut pool = Vec::new();
    if stats.in_use != 0 || stats.size != stats.idle + stats.in_use || stats.size > stats.max_size {
        pool.push(format!("{stats:?}"));
    }
    checks.push(Check::new(
        "pool stats add up after quiescing (size = idle, none in use, within max)",
        pool,
    ));
    Ok(checks)
}
