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
use aura_store::{ConversationStore, PgStore, TurnStore};
use aura_testkit::{FaultProxy, TestDb};

use crate::harness::Side;
use crate::raw::RawPool;
use crate::report::Row;
use crate::workloads::{Bench, MIN_RATIO, MainData, POOL, TASKS, compared, new_turn, side_over};

/// Added by the proxy in each direction.
pub const LATENCY: Duration = Duration::from_micros(500);
/// The pools' application_name here (their backends are found by it).
const APP: &str = "aura-bench-proxied";

/// The W10 rows: append_turn (1,000 conversations) and get_conversation (50 turns), 1 and
/// 16 tasks, through the proxy.
pub async fn w10(b: &Bench, db: &TestDb, d: &MainData) -> anyhow::Result<Vec<Row>> {
    let proxy = FaultProxy::for_db(db).await;
    let config = proxy
        .config_builder(db)
        .max_conns(POOL as u32)
        .min_conns(POOL as u32)
        .max_conn_idle(Duration::from_secs(24 * 3600))
        .application_name(APP)
        .build()?;
    let store = PgStore::open(&config).await?;
    let raw = RawPool::open(config.app_url(), POOL, false).await?;
    let aura_backends = backends(db, &store).await?;
    proxy.set_latency(LATENCY);
    let rtt = round_trip(&raw).await?;
    eprintln!("  W10: a round trip through the proxy takes {rtt:.2?} (median of 21 SELECT 1)");

    let full = d.full[0];
    let (a, r, n) = (
        store.get_conversation(full).await?,
        raw.get().await?.get_conversation(full).await?,
        raw.get().await?.get_conversation_sequential(full).await?,
    );
    ensure!(
        r.as_ref() == n.as_ref()
            && r.as_ref()
                .is_some_and(|(c, t)| *c == a.conversation && *t == a.turns),
        "W10: aura, raw and raw-seq reads differ"
    );

    let name = |what: &str| format!("{what}, proxy +0.5 ms each way (RTT {rtt:.1?})");
    let mut rows = Vec::new();
    let append = append_sides(&store, &raw, &aura_backends, d);
    let get = get_sides(&store, &raw, &aura_backends, d);
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

/// Server process ids of the store's connections (every one opened first).
async fn backends(db: &TestDb, store: &PgStore) -> anyhow::Result<Arc<Vec<u32>>> {
    let mut held = Vec::new();
    for _ in 0..POOL {
        held.push(store.pool().get().await?);
    }
    drop(held);
    let rows = db
        .superuser_client()
        .await
        .query(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND application_name = $2",
            &[&db.name(), &APP],
        )
        .await?;
    let pids = rows
        .iter()
        .map(|r| Ok(u32::try_from(r.try_get::<_, i32>(0)?)?))
        .collect::<anyhow::Result<Vec<u32>>>()?;
    ensure!(pids.len() == POOL, "W10: {} aura connections", pids.len());
    Ok(Arc::new(pids))
}

fn append_sides(
    store: &PgStore,
    raw: &Arc<RawPool>,
    aura_backends: &Arc<Vec<u32>>,
    d: &MainData,
) -> Vec<Side> {
    let s = store.clone();
    let aura = side_over("aura", &d.append, move |id| {
        let store = s.clone();
        async move {
            store.append_turn(id, new_turn()).await?;
            Ok(())
        }
    });
    let pool = raw.clone();
    let one = side_over("raw", &d.append, move |id| {
        let pool = pool.clone();
        async move {
            let t = new_turn();
            pool.get()
                .await?
                .append(id, t.role, t.content, t.input_tokens, t.output_tokens)
                .await?;
            Ok(())
        }
    });
    let pool = raw.clone();
    let naive = side_over("raw-3stmt", &d.append, move |id| {
        let pool = pool.clone();
        async move {
            let t = new_turn();
            pool.get()
                .await?
                .append_naive(id, t.role, t.content, t.input_tokens, t.output_tokens)
                .await?;
            Ok(())
        }
    });
    vec![
        aura.on(aura_backends),
        one.on(&raw.backends),
        naive.on(&raw.backends),
    ]
}

fn get_sides(
    store: &PgStore,
    raw: &Arc<RawPool>,
    aura_backends: &Arc<Vec<u32>>,
    d: &MainData,
) -> Vec<Side> {
    let s = store.clone();
    let aura = side_over("aura", &d.full, move |id| {
        let store = s.clone();
        async move {
            store.get_conversation(id).await?;
            Ok(())
        }
    });
    let pool = raw.clone();
    let pipelined = side_over("raw", &d.full, move |id| {
        let pool = pool.clone();
        async move {
            pool.get()
                .await?
                .get_conversation(id)
                .await?
                .context("missing")?;
            Ok(())
        }
    });
    let pool = raw.clone();
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
    vec![
        aura.on(aura_backends),
        pipelined.on(&raw.backends),
        sequential.on(&raw.backends),
    ]
}
