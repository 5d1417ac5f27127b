//! W10: append_turn and get_conversation with a network between client and server: every
//! side's connections go through aura-testkit's `FaultProxy` adding 0.5 ms each way (1 ms
//! per round trip), where round trips, not CPU, decide. aura-store against raw
//! tokio-postgres with the same one-round-trip SQL (`raw`), and against the straightforward
//! versions: the naive append transaction (`raw-3stmt`: BEGIN; SELECT … FOR UPDATE;
//! INSERT; UPDATE; COMMIT, five round trips) and the conversation then its turns, one
//! query after the other (`raw-seq`, two round trips instead of one pipelined).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, ensure};
use aura_store::ConversationStore;
use aura_testkit::{FaultProxy, TestDb};

use crate::raw::RawPool;
use crate::report::Row;
use crate::workloads::{
    Bench, MIN_RATIO, MainData, Sides, TASKS, append_sides, compared, get_sides, side_over,
};

/// Added by the proxy in each direction.
pub const LATENCY: Duration = Duration::from_micros(500);
/// The pools' application_name here (their backends are found by it).
const APP: &str = "aura-bench-proxied";

/// The W10 rows: append_turn (1,000 conversations) and get_conversation (50 turns), 1 and
/// 16 tasks, through the proxy.
pub async fn w10(b: &Bench, db: &TestDb, d: &MainData) -> anyhow::Result<Vec<Row>> {
    let proxy = FaultProxy::for_db(db).await;
    let sides = Sides::open_with(db, proxy.config_builder(db), APP, false, &[]).await?;
    proxy.set_latency(LATENCY);
    let rtt = round_trip(&sides.raw).await?;
    eprintln!("  W10: a round trip through the proxy takes {rtt:.2?} (median of 21 SELECT 1)");

    let full = d.full[0];
    let (a, r, n) = (
        sides.store.get_conversation(full).await?,
        sides.raw.get().await?.get_conversation(full).await?,
        sides
            .raw
            .get()
            .await?
            .get_conversation_sequential(full)
            .await?,
    );
    ensure!(
        r.as_ref() == n.as_ref()
            && r.as_ref()
                .is_some_and(|(c, t)| *c == a.conversation && *t == a.turns),
        "W10: aura, raw and raw-seq reads differ"
    );

    let name = |what: &str| format!("{what}, proxy +0.5 ms each way (RTT {rtt:.1?})");
    let append = append_sides(&sides, d.append.clone());
    let mut get = get_sides(&sides, &d.full);
    let pool = sides.raw.clone();
    let sequential = side_over("raw-seq", &d.full, move |id| {
        let pool = pool.clone();
        async move {
            pool.get()
                .await?
                .get_conversation_sequential(id)
                .await?
                .context("missing")?;
            Ok(())
        }
    });
    get.push(sequential.on(&sides.raw.backends));
    let mut rows = Vec::new();
    for (what, sides) in [
        ("append_turn, 1,000 conversations", &append),
        ("get_conversation, 50 turns", &get),
    ] {
        for tasks in [1, TASKS] {
            rows.push(Row::Compare(
                compared("W10", &name(what), tasks, b.plan, sides, Some(MIN_RATIO)).await?,
            ));
        }
    }
    Ok(rows)
}

/// The median time of `SELECT 1` on a raw connection: one round trip through the proxy
/// (its sleeps run on tokio's millisecond timer, so each way takes more than the 0.5 ms
/// asked for).
async fn round_trip(raw: &Arc<RawPool>) -> anyhow::Result<Duration> {
    let conn = raw.get().await?;
    let mut times = Vec::new();
    for _ in 0..21 {
        let start = std::time::Instant::now();
        conn.client.simple_query("SELECT 1").await?;
        times.push(start.elapsed());
    }
    times.sort();
    Ok(times[times.len() / 2])
}
