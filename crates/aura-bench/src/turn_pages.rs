//! W11 (issue 15): a conversation's turns read a page at a time. Three reads, each at 100
//! and at 10,000 turns per conversation, aura-store against raw tokio-postgres (the same
//! SQL, prepared once per connection) in one alternation (aura@100, raw@100, aura@10k,
//! raw@10k, …):
//!
//! - the last 40 turns (`list_turns(TurnQuery::latest(40))`: a model's context window);
//! - a page of 50 turns after a seq (`list_turns(TurnQuery::after(seq, 50))`, the seq
//!   spread over the conversation);
//! - the conversation with its last 40 turns (`get_conversation_with_last_turns`: two
//!   loads pipelined, against raw pipelined).
//!
//! Rows: each read at each size (aura/raw at least 0.95x), its p50 at 10k over its p50 at
//! 100 (flat: at most 1.2x for aura, an index walk whatever the length), and each read
//! at 10k with 16 tasks (0.95x).

use std::sync::Arc;

use anyhow::{Context, bail, ensure};
use aura_schema::{Conversation, ConversationId, Turn};
use aura_store::{ConversationStore, TurnQuery, TurnStore};
use aura_testkit::TestDb;

use crate::harness::{Side, compare, mix};
use crate::raw::{CONVERSATION_COLUMNS, RawPool, TURN_COLUMNS, conversation, turn};
use crate::report::{Check, DerivedRow, Row};
use crate::seed;
use crate::stats::SideSummary;
use crate::workloads::{
    Bench, CONTENT, MIN_RATIO, Sides, TASKS, compared, median_ratio, pick, row_of,
};

/// Turns of the long conversations.
const LONG: i32 = 10_000;
/// Turns of the short ones.
const SHORT: i32 = 100;
/// The context window.
const LAST: u32 = 40;
/// A page.
const PAGE: u32 = 50;

/// The raw side's statements ([`crate::raw::RawConn::extra`]), by index.
const AFTER: usize = 0;
const LATEST: usize = 1;
const CONVERSATION: usize = 2;

fn statements() -> Vec<String> {
    vec![
        format!(
            "SELECT {TURN_COLUMNS} FROM aura.turns WHERE conversation_id = $1 AND seq > $2 \
             ORDER BY seq ASC LIMIT $3"
        ),
        format!(
            "SELECT {TURN_COLUMNS} FROM aura.turns WHERE conversation_id = $1 \
             ORDER BY seq DESC LIMIT $2"
        ),
        format!("SELECT {CONVERSATION_COLUMNS} FROM aura.conversations WHERE id = $1"),
    ]
}

/// The three reads.
#[derive(Debug, Clone, Copy)]
enum Read {
    Last,
    Page,
    WithLast,
}

impl Read {
    fn name(self) -> &'static str {
        match self {
            Read::Last => "last 40 turns (list_turns latest)",
            Read::Page => "page of 50 turns after a seq (list_turns after)",
            Read::WithLast => "conversation + last 40 turns",
        }
    }
}

/// The seq a page starts after, for call `i` of `task`: spread over the conversation.
fn page_start(task: usize, i: u64, turns: i32) -> i32 {
    let span = u64::try_from(turns - PAGE as i32).unwrap_or(1).max(1);
    i32::try_from(mix(task + 7, i) % span).unwrap_or(0)
}

/// Raw: the last `n` turns, as the store reads them (`n + 1` newest first, cut, reversed).
async fn raw_last(pool: &Arc<RawPool>, id: ConversationId, n: u32) -> anyhow::Result<Vec<Turn>> {
    let conn = pool.get().await?;
    let rows = conn
        .client
        .query(&conn.extra[LATEST], &[&id.as_uuid(), &(i64::from(n) + 1)])
        .await?;
    let mut turns = rows.iter().map(turn).collect::<anyhow::Result<Vec<_>>>()?;
    turns.truncate(n as usize);
    turns.reverse();
    Ok(turns)
}

/// Raw: `n` turns after `seq`, as the store reads them (`n + 1`, cut).
async fn raw_page(
    pool: &Arc<RawPool>,
    id: ConversationId,
    seq: i32,
    n: u32,
) -> anyhow::Result<Vec<Turn>> {
    let conn = pool.get().await?;
    let rows = conn
        .client
        .query(
            &conn.extra[AFTER],
            &[&id.as_uuid(), &seq, &(i64::from(n) + 1)],
        )
        .await?;
    let mut turns = rows.iter().map(turn).collect::<anyhow::Result<Vec<_>>>()?;
    turns.truncate(n as usize);
    Ok(turns)
}

/// Raw: the conversation and its last `n` turns, pipelined, with the store's consistency
/// check (torn is an error here: nothing appends during the bench).
async fn raw_with_last(
    pool: &Arc<RawPool>,
    id: ConversationId,
    n: u32,
) -> anyhow::Result<(Conversation, Vec<Turn>)> {
    let conn = pool.get().await?;
    let uuid = id.as_uuid();
    let limit = i64::from(n);
    let one: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&uuid];
    let two: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&uuid, &limit];
    let (row, rows) = tokio::try_join!(
        biased;
        conn.client.query_opt(&conn.extra[CONVERSATION], &one),
        conn.client.query(&conn.extra[LATEST], &two),
    )?;
    let conversation = conversation(&row.context("missing")?)?;
    let t = conversation.turn_count;
    let mut turns = rows
        .iter()
        .map(turn)
        .filter(|r| r.as_ref().map_or(true, |turn| turn.seq <= t))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let want = usize::try_from(t.min(i32::try_from(n)?))?;
    if turns.len() != want || turns.first().is_some_and(|newest| newest.seq != t) {
        bail!("torn read of conversation {id}");
    }
    turns.reverse();
    Ok((conversation, turns))
}

/// The aura and raw sides of `read` over the conversations `ids` of `turns` turns each;
/// names suffixed `@label` (stripped in the rows).
fn sides(
    s: &Sides,
    read: Read,
    ids: &Arc<Vec<ConversationId>>,
    turns: i32,
    label: &str,
) -> [Side; 2] {
    let store = s.store.clone();
    let aura_ids = ids.clone();
    let aura = crate::harness::side(leak(format!("aura@{label}")), move |task, i| {
        let store = store.clone();
        let id = pick(&aura_ids, task, i);
        async move {
            match read {
                Read::Last => {
                    store.list_turns(id, TurnQuery::latest(LAST)).await?;
                }
                Read::Page => {
                    let seq = page_start(task, i, turns);
                    store.list_turns(id, TurnQuery::after(seq, PAGE)).await?;
                }
                Read::WithLast => {
                    store.get_conversation_with_last_turns(id, LAST).await?;
                }
            }
            Ok(())
        }
    });
    let pool = s.raw.clone();
    let raw_ids = ids.clone();
    let raw = crate::harness::side(leak(format!("raw@{label}")), move |task, i| {
        let pool = pool.clone();
        let id = pick(&raw_ids, task, i);
        async move {
            match read {
                Read::Last => {
                    raw_last(&pool, id, LAST).await?;
                }
                Read::Page => {
                    raw_page(&pool, id, page_start(task, i, turns), PAGE).await?;
                }
                Read::WithLast => {
                    raw_with_last(&pool, id, LAST).await?;
                }
            }
            Ok(())
        }
    });
    [aura.on(&s.aura_backends), raw.on(&s.raw.backends)]
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// Both sides read the same turns (and conversation) for each read.
async fn same_results(s: &Sides, id: ConversationId, turns: i32) -> anyhow::Result<()> {
    let aura = s.store.list_turns(id, TurnQuery::latest(LAST)).await?.turns;
    let raw = raw_last(&s.raw, id, LAST).await?;
    ensure!(
        aura == raw && aura.len() == LAST as usize && aura.last().map(|t| t.seq) == Some(turns),
        "W11: last turns differ"
    );
    let seq = page_start(3, 5, turns);
    let aura = s
        .store
        .list_turns(id, TurnQuery::after(seq, PAGE))
        .await?
        .turns;
    let raw = raw_page(&s.raw, id, seq, PAGE).await?;
    ensure!(
        aura == raw && aura.first().map(|t| t.seq) == Some(seq + 1),
        "W11: pages differ"
    );
    let aura = s.store.get_conversation_with_last_turns(id, LAST).await?;
    let raw = raw_with_last(&s.raw, id, LAST).await?;
    ensure!(
        aura.conversation == raw.0 && aura.turns == raw.1,
        "W11: conversations with their last turns differ"
    );
    Ok(())
}

/// W11: see the module docs.
pub async fn w11(b: &Bench) -> anyhow::Result<Vec<Row>> {
    let db = TestDb::new().await;
    let su = db.superuser_client().await;
    let t0 = std::time::Instant::now();
    let long = seed::conversations(&su, 8, 1000, 5_000, true).await?;
    seed::turns(&su, &long, LONG, CONTENT).await?;
    let short = seed::conversations(&su, 200, 1000, 4_000, true).await?;
    seed::turns(&su, &short, SHORT, CONTENT).await?;
    seed::vacuum(&su).await?;
    eprintln!(
        "  W11: {} conversations of {LONG} turns and {} of {SHORT} seeded in {:.1?}",
        long.len(),
        short.len(),
        t0.elapsed()
    );
    let s = Sides::open_with(&db, db.config_builder(), "aura-bench", false, &statements()).await?;
    same_results(&s, long[0], LONG).await?;
    same_results(&s, short[0], SHORT).await?;
    let (long, short) = (Arc::new(long), Arc::new(short));

    let mut rows = Vec::new();
    let mut growth = Vec::new();
    for read in [Read::Last, Read::Page, Read::WithLast] {
        let mut all: Vec<Side> = sides(&s, read, &short, SHORT, "100").to_vec();
        all.extend(sides(&s, read, &long, LONG, "10k"));
        eprintln!("  W11 {} @100, @10k, 1 task", read.name());
        let rounds = compare(&all, 1, b.plan).await?;
        let summaries: Vec<SideSummary> = all
            .iter()
            .zip(rounds)
            .map(|(side, r)| SideSummary::new(side.name.split('@').next().unwrap_or(side.name), r))
            .collect();
        for (label, pair) in ["100 turns", "10,000 turns"]
            .iter()
            .zip(summaries.chunks(2))
        {
            rows.push(Row::Compare(row_of(
                "W11",
                &format!("{} @{label}", read.name()),
                1,
                pair.to_vec(),
                Some(MIN_RATIO),
            )));
        }
        for (small, big) in summaries[..2].iter().zip(&summaries[2..]) {
            let value = median_ratio(big, small);
            let checks = if small.side == "aura" {
                vec![Check::at_most("aura p50 10k/100", value, 1.2)]
            } else {
                Vec::new()
            };
            growth.push(Row::Derived(DerivedRow {
                id: "W11".to_owned(),
                name: format!("{} p50 10k/100, {}", read.name(), small.side),
                value,
                checks,
            }));
        }
        let [aura, raw] = sides(&s, read, &long, LONG, "10k");
        let renamed = [rename(aura, "aura"), rename(raw, "raw")];
        rows.push(Row::Compare(
            compared(
                "W11",
                &format!("{} @10,000 turns", read.name()),
                TASKS,
                b.plan,
                &renamed,
                Some(MIN_RATIO),
            )
            .await?,
        ));
    }
    rows.extend(growth);
    drop(s);
    drop(db);
    Ok(rows)
}

fn rename(mut side: Side, name: &'static str) -> Side {
    side.name = name;
    side
}
