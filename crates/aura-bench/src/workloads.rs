//! The workloads of issue 6, each as rows of the report:
//!
//! - W1 get_conversation of a conversation without turns; W2 append_turn; W3
//!   get_conversation with 50 turns; W4 list_conversations, first and deep page, at 10k
//!   and 1M conversations: aura-store against raw tokio-postgres, A B A B.
//! - W5 pool checkout + return; W6 migrate a fresh database; W7 `TestDb::new`.
//! - W8 W1 over TLS (verify-full), on the TLS-only test cluster.
//! - W9 (in `crate::spans`) W1 and W2 with spans against the same with spans bypassed.
//!
//! Before measuring, each compared row runs both sides once and checks they return the same
//! thing, so the raw side is an equivalent and not a shortcut.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use aura_schema::{ConversationId, TurnRole};
use aura_store::{ConversationStore, Cursor, ListQuery, PgStore, TurnDraft, TurnStore};
use aura_testkit::TestDb;
use secrecy::SecretString;

use crate::harness::{Plan, Side, compare, mix, side};
use crate::raw::RawPool;
use crate::report::{Check, CompareRow, DerivedRow, Row, SamplesRow};
use crate::seed;
use crate::stats::{Samples, SideSummary, paired_ratio};

/// Connections in each side's pool.
pub const POOL: usize = 8;
/// Tasks of the concurrent rows.
pub const TASKS: usize = 16;
/// Page size of W4.
pub const PAGE: u32 = 50;
/// Turns per conversation in W3.
pub const TURNS: i32 = 50;
/// W1–W3 rows must reach this fraction of raw's throughput.
pub const MIN_RATIO: f64 = 0.95;
/// Most/least per-task operations allowed at 16 tasks on 8 connections.
pub const MAX_SPREAD: f64 = 2.0;

/// The text of every turn written or read: a paragraph of an assistant's answer.
pub const CONTENT: &str = "Postgres keeps each conversation's turns in order; the store \
    appends one in a single statement that bumps the counter, adds the tokens and inserts \
    the row, so the sequence never has a gap and the totals always match. This paragraph \
    is about as long as a short chat message (some 300 bytes).";

/// How the run is set up.
#[derive(Debug, Clone, Copy)]
pub struct Bench {
    /// Durations and rounds of compared rows.
    pub plan: Plan,
    /// Repetitions of W6 and W7.
    pub samples: usize,
    /// W1–W3 also run a `raw-fifo` side: raw on a pool that rotates through its idle
    /// connections (bb8's default queue order; aura-db sets LIFO) instead of reusing the
    /// one returned last. The targets are checked against the stricter of the two.
    pub raw_fifo: bool,
}

/// aura's store and the raw pool on one database, both `POOL` connections as the app role.
pub struct Sides {
    /// aura-store over aura-db's pool.
    pub store: PgStore,
    /// Raw tokio-postgres.
    pub raw: Arc<RawPool>,
    /// Server process ids of aura's connections (the raw pools know their own).
    pub aura_backends: Arc<Vec<u32>>,
    /// A second raw pool that rotates through its idle connections (bb8's default queue
    /// order), for the `raw-fifo` sides.
    pub raw_fifo: Option<Arc<RawPool>>,
}

impl Sides {
    /// Opens both pools on `db`, every connection made up front.
    pub async fn open(db: &TestDb, raw_fifo: bool) -> anyhow::Result<Sides> {
        Sides::open_with(db, db.config_builder(), "aura-bench", raw_fifo, &[]).await
    }

    /// [`Sides::open`] with the connections `builder` describes (through a proxy, say),
    /// aura's named `app` (its backends are found by that name), the raw pools also
    /// preparing `extra` statements on every connection ([`crate::raw::RawConn::extra`]).
    pub async fn open_with(
        db: &TestDb,
        builder: aura_db::ConfigBuilder,
        app: &str,
        raw_fifo: bool,
        extra: &[String],
    ) -> anyhow::Result<Sides> {
        let config = builder
            .max_conns(POOL as u32)
            .min_conns(POOL as u32)
            // The raw pools never close a connection: neither may aura's while it is timed
            // (reconnects would cost it time and lose its backends' CPU accounting).
            .max_conn_idle(Duration::from_secs(24 * 3600))
            .application_name(app)
            .build()?;
        let store = PgStore::open(&config).await?;
        let raw = RawPool::open_with(config.app_url(), POOL, false, extra).await?;
        let raw_fifo = if raw_fifo {
            Some(RawPool::open_with(config.app_url(), POOL, true, extra).await?)
        } else {
            None
        };
        // Make sure every aura connection exists, then find their backends.
        let held = futures_all(&store, POOL).await?;
        drop(held);
        let su = db.superuser_client().await;
        let rows = su
            .query(
                "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND application_name = $2",
                &[&db.name(), &app],
            )
            .await?;
        let aura_backends = rows
            .iter()
            .map(|r| Ok(u32::try_from(r.try_get::<_, i32>(0)?)?))
            .collect::<anyhow::Result<Vec<u32>>>()?;
        ensure!(
            aura_backends.len() == POOL,
            "aura pool has {} connections, expected {POOL}",
            aura_backends.len()
        );
        Ok(Sides {
            store,
            raw,
            aura_backends: Arc::new(aura_backends),
            raw_fifo,
        })
    }
}

/// Checks out `n` connections at once (so the pool opens them all) and returns them.
async fn futures_all(store: &PgStore, n: usize) -> anyhow::Result<Vec<aura_db::PooledConn>> {
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        held.push(store.pool().get().await?);
    }
    Ok(held)
}

/// The database of W1–W3 and W5: its conversations, by use.
pub struct MainData {
    /// Conversations without turns (W1).
    pub empty: Arc<Vec<ConversationId>>,
    /// Conversations that W2 appends to.
    pub append: Arc<Vec<ConversationId>>,
    /// The one conversation of W2's contended row.
    pub hot: ConversationId,
    /// Conversations with 50 turns (W3).
    pub full: Arc<Vec<ConversationId>>,
}

impl MainData {
    /// Seeds the main database: 1,000 empty conversations, 1,000 to append to, 1 hot one,
    /// 200 with 50 turns; then VACUUM ANALYZE.
    pub async fn seed(db: &TestDb) -> anyhow::Result<MainData> {
        let su = db.superuser_client().await;
        let empty = seed::conversations(&su, 1000, 1000, 40_000, true).await?;
        let append = seed::conversations(&su, 1000, 1000, 30_000, true).await?;
        let hot = seed::conversations(&su, 1, 1000, 20_000, true).await?;
        let full = seed::conversations(&su, 200, 1000, 10_000, true).await?;
        seed::turns(&su, &full, TURNS, CONTENT).await?;
        seed::vacuum(&su).await?;
        Ok(MainData {
            empty: Arc::new(empty),
            append: Arc::new(append),
            hot: *hot.first().context("the hot conversation")?,
            full: Arc::new(full),
        })
    }
}

pub(crate) fn pick(ids: &[ConversationId], task: usize, i: u64) -> ConversationId {
    ids[(mix(task, i) % ids.len() as u64) as usize]
}

pub(crate) fn new_turn() -> TurnDraft<'static> {
    TurnDraft::new(TurnRole::Assistant, CONTENT).tokens(12, 34)
}

/// Runs the sides alternately and makes a row: `min_ratio` checks aura against the stricter
/// of `raw` and `raw-fifo`; rows with more tasks than connections check aura's fairness.
pub(crate) async fn compared(
    id: &str,
    name: &str,
    tasks: usize,
    plan: Plan,
    sides: &[Side],
    min_ratio: Option<f64>,
) -> anyhow::Result<CompareRow> {
    eprintln!("  {id} {name}, {tasks} task(s): {}", names(sides));
    let rounds = compare(sides, tasks, plan).await?;
    let summaries: Vec<SideSummary> = sides
        .iter()
        .zip(rounds)
        .map(|(s, r)| SideSummary::new(s.name, r))
        .collect();
    Ok(row_of(id, name, tasks, summaries, min_ratio))
}

/// A row from its sides' summaries (aura first, raw second, extras after): paired ratios
/// against raw, and the checks.
pub(crate) fn row_of(
    id: &str,
    name: &str,
    tasks: usize,
    summaries: Vec<SideSummary>,
    min_ratio: Option<f64>,
) -> CompareRow {
    let mut ratios = Vec::new();
    if summaries.len() >= 2 {
        ratios.push((
            format!("{}/{}", summaries[0].side, summaries[1].side),
            paired_ratio(&summaries[0], &summaries[1]),
        ));
        for extra in &summaries[2..] {
            ratios.push((
                format!("{}/{}", extra.side, summaries[1].side),
                paired_ratio(extra, &summaries[1]),
            ));
        }
    }
    let mut checks = Vec::new();
    if let Some(limit) = min_ratio {
        // Against the best raw version (of `raw` and `raw-fifo`) and by the lower of the
        // two estimates (median of per-round ratios, ratio of the median rates): a row is
        // met only when the paired and the unpaired view both say so.
        let aura = &summaries[0];
        let strictest = summaries
            .iter()
            .skip(1)
            .filter(|s| s.side == "raw" || s.side == "raw-fifo")
            .map(|raw| {
                let paired = paired_ratio(aura, raw);
                let of_medians = aura.ops_per_sec / raw.ops_per_sec;
                (raw, paired, of_medians)
            })
            .min_by(|a, b| a.1.min(a.2).total_cmp(&b.1.min(b.2)));
        if let Some((raw, paired, of_medians)) = strictest {
            checks.push(Check::at_least(
                &format!(
                    "aura/{} (paired {paired:.2}x, of medians {of_medians:.2}x)",
                    raw.side
                ),
                paired.min(of_medians),
                limit,
            ));
        }
    }
    if POOL < tasks {
        let a = &summaries[0];
        checks.push(Check {
            what: format!(
                "aura per-task ops {}..{} (worst round {:.2}x) within {MAX_SPREAD:.0}x",
                a.per_task_min, a.per_task_max, a.worst_spread
            ),
            ok: a.worst_spread <= MAX_SPREAD,
        });
    }
    CompareRow {
        id: id.to_owned(),
        name: name.to_owned(),
        tasks,
        pool: POOL,
        sides: summaries,
        ratios,
        checks,
    }
}

fn names(sides: &[Side]) -> String {
    sides.iter().map(|s| s.name).collect::<Vec<_>>().join(" / ")
}

/// W1: get_conversation of a conversation without turns, 1 and 16 tasks.
pub async fn w1(b: &Bench, s: &Sides, d: &MainData) -> anyhow::Result<Vec<Row>> {
    get_rows(b, s, "W1", "get_conversation, no turns", &d.empty, 0).await
}

/// A side whose every call works on one conversation of `ids`, picked by task and call.
pub(crate) fn side_over<F, Fut>(name: &'static str, ids: &Arc<Vec<ConversationId>>, op: F) -> Side
where
    F: Fn(ConversationId) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let ids = ids.clone();
    side(name, move |task, i| op(pick(&ids, task, i)))
}

/// `aura` (on aura's backends), then `raw` and, when opened, `raw-fifo`: each made by
/// `raw_side` over its pool and measured on that pool's backends.
fn raw_sides(
    s: &Sides,
    aura: Side,
    raw_side: impl Fn(&'static str, &Arc<RawPool>) -> Side,
) -> Vec<Side> {
    let mut sides = vec![
        aura.on(&s.aura_backends),
        raw_side("raw", &s.raw).on(&s.raw.backends),
    ];
    if let Some(fifo) = &s.raw_fifo {
        sides.push(raw_side("raw-fifo", fifo).on(&fifo.backends));
    }
    sides
}

/// The sides of get_conversation over `ids`: aura, raw (and raw-fifo).
pub(crate) fn get_sides(s: &Sides, ids: &Arc<Vec<ConversationId>>) -> Vec<Side> {
    let store = s.store.clone();
    let aura = side_over("aura", ids, move |id| {
        let store = store.clone();
        async move {
            store.get_conversation(id).await?;
            Ok(())
        }
    });
    raw_sides(s, aura, |name, pool| {
        let pool = pool.clone();
        side_over(name, ids, move |id| {
            let pool = pool.clone();
            async move {
                pool.get()
                    .await?
                    .get_conversation(id)
                    .await?
                    .context("missing")?;
                Ok(())
            }
        })
    })
}

/// W1 and W3: get_conversation over `ids` (each with `turns` turns), 1 and 16 tasks, after
/// checking both sides read the same.
async fn get_rows(
    b: &Bench,
    s: &Sides,
    id: &str,
    name: &str,
    ids: &Arc<Vec<ConversationId>>,
    turns: usize,
) -> anyhow::Result<Vec<Row>> {
    let first = ids[0];
    let aura = s.store.get_conversation(first).await?;
    let raw = s
        .raw
        .get()
        .await?
        .get_conversation(first)
        .await?
        .context("missing")?;
    ensure!(
        aura.conversation == raw.0 && aura.turns == raw.1 && raw.1.len() == turns,
        "{id}: aura and raw differ"
    );
    let sides = get_sides(s, ids);
    let mut rows = Vec::new();
    for tasks in [1, TASKS] {
        rows.push(Row::Compare(
            compared(id, name, tasks, b.plan, &sides, Some(MIN_RATIO)).await?,
        ));
    }
    Ok(rows)
}

/// W8: W1 on the TLS-only test cluster, every connection of both sides `verify-full`
/// (aura's pool, and raw tokio-postgres through the same rustls connector).
pub async fn w8(b: &Bench, s: &Sides, d: &MainData) -> anyhow::Result<Vec<Row>> {
    get_rows(
        b,
        s,
        "W8",
        "get_conversation over TLS (verify-full), no turns",
        &d.empty,
        0,
    )
    .await
}

/// W2: append_turn; 1 task and 16 tasks over 1,000 conversations, 16 tasks on one; aura
/// against the raw one-statement append, and the naive raw 3-statement transaction beside.
pub async fn w2(b: &Bench, s: &Sides, d: &MainData) -> anyhow::Result<Vec<Row>> {
    let t = new_turn();
    let a1 = s.store.append_turn(d.hot, t).await?;
    let r1 = s
        .raw
        .get()
        .await?
        .append(d.hot, t.role, t.content, t.input_tokens, t.output_tokens)
        .await?;
    let n1 = s
        .raw
        .get()
        .await?
        .append_naive(d.hot, t.role, t.content, t.input_tokens, t.output_tokens)
        .await?;
    ensure!(
        r1.seq == a1.seq + 1
            && n1.seq == r1.seq + 1
            && a1.content == n1.content
            && a1.role == r1.role,
        "W2: aura and raw appends disagree ({} {} {})",
        a1.seq,
        r1.seq,
        n1.seq
    );

    let make = |ids: Arc<Vec<ConversationId>>| append_sides(s, ids);
    let spread = make(d.append.clone());
    let hot = make(Arc::new(vec![d.hot]));
    let mut rows = Vec::new();
    for (name, tasks, sides) in [
        ("append_turn, 1,000 conversations", 1, &spread),
        ("append_turn, 1,000 conversations", TASKS, &spread),
        ("append_turn, one conversation", TASKS, &hot),
    ] {
        rows.push(Row::Compare(
            compared("W2", name, tasks, b.plan, sides, Some(MIN_RATIO)).await?,
        ));
    }
    Ok(rows)
}

/// The sides of append_turn over `ids`: aura, raw (and raw-fifo), and the naive raw
/// 3-statement transaction.
pub(crate) fn append_sides(s: &Sides, ids: Arc<Vec<ConversationId>>) -> Vec<Side> {
    let store = s.store.clone();
    let aura = side_over("aura", &ids, move |id| {
        let store = store.clone();
        async move {
            store.append_turn(id, new_turn()).await?;
            Ok(())
        }
    });
    let mut sides = raw_sides(s, aura, |name, pool| {
        let pool = pool.clone();
        side_over(name, &ids, move |id| {
            let pool = pool.clone();
            async move {
                let t = new_turn();
                pool.get()
                    .await?
                    .append(id, t.role, t.content, t.input_tokens, t.output_tokens)
                    .await?;
                Ok(())
            }
        })
    });
    let pool = s.raw.clone();
    let naive = side_over("raw-3stmt", &ids, move |id| {
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
    sides.push(naive.on(&s.raw.backends));
    sides
}

/// W3: get_conversation with 50 turns, 1 and 16 tasks, against raw pipelined.
pub async fn w3(b: &Bench, s: &Sides, d: &MainData) -> anyhow::Result<Vec<Row>> {
    get_rows(
        b,
        s,
        "W3",
        "get_conversation, 50 turns",
        &d.full,
        TURNS as usize,
    )
    .await
}

/// One W4 database: `n` conversations, both sides' pools, 64 deep-page cursors.
pub struct ListDb {
    /// `10k`, `1M`.
    pub label: &'static str,
    sides: Sides,
    deep: Arc<Vec<String>>,
    // Dropped last: the pools above close first.
    _db: TestDb,
}

impl ListDb {
    /// Seeds a database with `n` conversations (one a second, the newest a minute ago),
    /// VACUUM ANALYZE, picks deep positions over the older half, opens both sides and checks
    /// they return the same pages.
    pub async fn new(n: i64, label: &'static str) -> anyhow::Result<ListDb> {
        let db = TestDb::new().await;
        let su = db.superuser_client().await;
        let t0 = Instant::now();
        seed::conversations(&su, n, 1000, 60, false).await?;
        seed::vacuum(&su).await?;
        let deep = Arc::new(seed::deep_positions(&su, 64).await?);
        eprintln!("  W4: {label} conversations seeded in {:.1?}", t0.elapsed());
        ensure!(
            deep.len() >= 16,
            "W4: too few deep positions ({})",
            deep.len()
        );
        let sides = Sides::open(&db, false).await?;
        for after in [None, Some(deep[0].clone())] {
            let page = sides
                .store
                .list_conversations(ListQuery {
                    limit: Some(PAGE),
                    after: after.clone().map(Cursor::from),
                })
                .await?;
            let (items, next) = sides.raw.get().await?.list(after.as_deref(), PAGE).await?;
            let same = page.items.len() == PAGE as usize
                && page.items == items
                && page.next.as_ref().map(|c| c.as_str().to_owned()) == next;
            if !same {
                bail!("W4: aura and raw pages differ (is the cursor encoding still version 1?)");
            }
        }
        Ok(ListDb {
            label,
            sides,
            deep,
            _db: db,
        })
    }

    /// The aura and raw sides listing one page kind: the first page, or deep pages (the
    /// cursors used in turn).
    fn sides(&self, deep: bool) -> [Side; 2] {
        let cursors = deep.then(|| self.deep.clone());
        let store = self.sides.store.clone();
        let cs = cursors.clone();
        let a = side(leak(format!("aura@{}", self.label)), move |_task, i| {
            let store = store.clone();
            let after = cs
                .as_ref()
                .map(|c| Cursor::from(c[(i % c.len() as u64) as usize].as_str()));
            async move {
                store
                    .list_conversations(ListQuery {
                        limit: Some(PAGE),
                        after,
                    })
                    .await?;
                Ok(())
            }
        });
        let pool = self.sides.raw.clone();
        let r = side(leak(format!("raw@{}", self.label)), move |_task, i| {
            let pool = pool.clone();
            let after = cursors
                .as_ref()
                .map(|c| c[(i % c.len() as u64) as usize].clone());
            async move {
                pool.get().await?.list(after.as_deref(), PAGE).await?;
                Ok(())
            }
        });
        [
            a.on(&self.sides.aura_backends),
            r.on(&self.sides.raw.backends),
        ]
    }
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// W4: list_conversations, first page and deep pages, limit 50, 1 task, on every database
/// of `dbs` in one alternation (aura@10k, raw@10k, aura@1M, raw@1M, …) so that the growth
/// from the first database to each other is measured round by round; then the growth rows
/// (p50 at the bigger size over p50 at the first, median over rounds; aura's within 1.2x).
pub async fn w4(b: &Bench, dbs: &[ListDb]) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    let mut growth = Vec::new();
    for (page, deep) in [("first page", false), ("deep page", true)] {
        let sides: Vec<Side> = dbs.iter().flat_map(|d| d.sides(deep)).collect();
        let labels: Vec<&str> = dbs.iter().map(|d| d.label).collect();
        eprintln!(
            "  W4 list {page} @{}, 1 task: {}",
            labels.join(", @"),
            names(&sides)
        );
        let rounds = compare(&sides, 1, b.plan).await?;
        let mut summaries: Vec<SideSummary> = sides
            .iter()
            .zip(rounds)
            .map(|(s, r)| SideSummary::new(s.name.split('@').next().unwrap_or(s.name), r))
            .collect();
        let base: Vec<SideSummary> = summaries.iter().take(2).cloned().collect();
        for (d, pair) in dbs.iter().zip(summaries.chunks_mut(2)) {
            let pair = pair.to_vec();
            if d.label != dbs[0].label {
                for (small, big) in base.iter().zip(&pair) {
                    let value = median_ratio(big, small);
                    let checks = if small.side == "aura" {
                        vec![Check::at_most(
                            &format!("aura p50 {}/{}", d.label, dbs[0].label),
                            value,
                            1.2,
                        )]
                    } else {
                        Vec::new()
                    };
                    growth.push(Row::Derived(DerivedRow {
                        id: "W4".to_owned(),
                        name: format!("{page} p50 {}/{}, {}", d.label, dbs[0].label, small.side),
                        value,
                        checks,
                    }));
                }
            }
            rows.push(Row::Compare(row_of(
                "W4",
                &format!("list {page} @{}", d.label),
                1,
                pair,
                None,
            )));
        }
    }
    rows.extend(growth);
    Ok(rows)
}

/// Median over rounds of `a`'s p50 over `b`'s in the same round.
pub(crate) fn median_ratio(a: &SideSummary, b: &SideSummary) -> f64 {
    crate::stats::median(
        a.rounds
            .iter()
            .zip(&b.rounds)
            .map(|(x, y)| x.p50_ns as f64 / y.p50_ns as f64),
    )
}

/// W5: checkout and return with no query, 1 task, timed in batches of 100: every number is
/// per checkout, and p50/p99/max are those of the batch means (not of single checkouts);
/// aura-db's pool against the raw pool's semaphore + stack.
pub async fn w5(b: &Bench, s: &Sides) -> anyhow::Result<Row> {
    const BATCH: u64 = 100;
    let pool = s.store.pool().clone();
    let a = side("aura", move |_, _| {
        let pool = pool.clone();
        async move {
            for _ in 0..BATCH {
                drop(pool.get().await?);
            }
            Ok(())
        }
    });
    let raw = s.raw.clone();
    let r = side("raw", move |_, _| {
        let raw = raw.clone();
        async move {
            for _ in 0..BATCH {
                drop(raw.get().await?);
            }
            Ok(())
        }
    });
    let mut row = compared(
        "W5",
        "checkout + return, mean of 100",
        1,
        b.plan,
        &[a.on(&s.aura_backends), r.on(&s.raw.backends)],
        None,
    )
    .await?;
    for side in &mut row.sides {
        let per = BATCH as f64;
        side.ops_per_sec *= per;
        side.p50_ns /= per;
        side.p99_ns /= per;
        side.max_ns /= BATCH;
        side.client_cpu_ns /= per;
        side.server_cpu_ns = f64::NAN;
        for round in &mut side.rounds {
            round.client_cpu_ns /= per;
            round.server_cpu_ns = f64::NAN;
            round.ops *= BATCH;
            round.ops_per_sec *= per;
            round.p50_ns /= BATCH;
            round.p99_ns /= BATCH;
            round.max_ns /= BATCH;
        }
    }
    let aura = &row.sides[0];
    row.checks
        .push(Check::under("aura p50", aura.p50_ns, 1_000.0));
    Ok(Row::Compare(row))
}

/// W6: migrations on a fresh database (roles bootstrapped first, untimed; then timed:
/// `aura_db::migrate`), and the same with the role bootstrap (`aura db migrate`'s work).
pub async fn w6(b: &Bench) -> anyhow::Result<Vec<Row>> {
    eprintln!("  W6 migrate a fresh database, {} times", b.samples);
    let expected = aura_db::Migrations::embedded().len();
    let mut migrate = Vec::new();
    let mut both = Vec::new();
    for _ in 0..b.samples {
        let db = TestDb::empty().await;
        let t0 = Instant::now();
        aura_db::ensure_roles(db.config()).await?;
        let roles = t0.elapsed();
        let url = SecretString::from(
            db.config()
                .migrate_url()
                .context("no migrate URL")?
                .expose()
                .to_owned(),
        );
        let t1 = Instant::now();
        let applied = aura_db::migrate(&url).await?;
        let took = t1.elapsed();
        ensure!(
            applied == expected,
            "W6: applied {applied} of {expected} migrations"
        );
        migrate.push(took);
        both.push(roles + took);
        drop(db);
    }
    Ok(vec![
        samples_row(
            "W6",
            &format!("migrate a fresh database ({expected} migrations)"),
            &migrate,
            1e9,
        ),
        samples_row(
            "W6",
            "ensure_roles + migrate (aura db migrate)",
            &both,
            f64::NAN,
        ),
    ])
}

/// W7: `TestDb::new` (clone of the migrated template); the drop is not timed.
pub async fn w7(b: &Bench) -> anyhow::Result<Row> {
    let n = b.samples * 2;
    eprintln!("  W7 TestDb::new, {n} times");
    let mut took = Vec::new();
    for _ in 0..n {
        let t0 = Instant::now();
        let db = TestDb::new().await;
        took.push(t0.elapsed());
        drop(db);
    }
    Ok(samples_row(
        "W7",
        "TestDb::new (template clone)",
        &took,
        150e6,
    ))
}

fn samples_row(id: &str, name: &str, took: &[Duration], limit_ns: f64) -> Row {
    let samples = Samples::new(took);
    let checks = if limit_ns.is_finite() {
        vec![Check::under("median", samples.median_ns, limit_ns)]
    } else {
        Vec::new()
    };
    Row::Samples(SamplesRow {
        id: id.to_owned(),
        name: name.to_owned(),
        samples,
        checks,
    })
}
