//! W12: reads from the streaming replica (aura-testkit's `Replica` of the local cluster)
//! against the same reads on the primary, same run, same store (`Consistency::Replica`
//! against `Consistency::Primary`), 16 tasks: get_conversation of a conversation with 50
//! turns, and the first page of list_conversations. The ratio is replica/primary.

use std::time::{Duration, Instant};

use anyhow::ensure;
use aura_store::{Consistency, ConversationStore, ListQuery, PgStore};
use aura_testkit::{Replica, TestDb};

use crate::harness::{Side, side};
use crate::report::Row;
use crate::workloads::{Bench, MainData, PAGE, POOL, TASKS, compared, side_over};

/// W12's rows.
pub async fn w12(b: &Bench, db: &TestDb, d: &MainData) -> anyhow::Result<Vec<Row>> {
    let replica = Replica::shared();
    let read_url = replica.read_url(db).await;
    let config = db
        .config_builder()
        .read_url(read_url)
        .max_conns(POOL as u32)
        .min_conns(POOL as u32)
        .max_conn_idle(Duration::from_secs(24 * 3600))
        .application_name("aura-bench")
        .build()?;
    let store = PgStore::open(&config).await?;
    let on_replica = store.with_consistency(Consistency::Replica);
    let on_primary = store.with_consistency(Consistency::Primary);
    caught_up(&on_replica, &on_primary, d).await?;
    ensure!(
        store.read_pool().is_some(),
        "W12: the read pool did not open (see the warnings above)"
    );

    let get = |name: &'static str, store: &PgStore| {
        let store = store.clone();
        side_over(name, &d.full, move |id| {
            let store = store.clone();
            async move {
                store.get_conversation(id).await?;
                Ok(())
            }
        })
    };
    let list = |name: &'static str, store: &PgStore| -> Side {
        let store = store.clone();
        side(name, move |_, _| {
            let store = store.clone();
            async move {
                store
                    .list_conversations(ListQuery {
                        limit: Some(PAGE),
                        after: None,
                    })
                    .await?;
                Ok(())
            }
        })
    };
    let mut rows = Vec::new();
    let sides = [get("replica", &on_replica), get("primary", &on_primary)];
    rows.push(Row::Compare(
        compared(
            "W12",
            "get_conversation, 50 turns",
            TASKS,
            b.plan,
            &sides,
            None,
        )
        .await?,
    ));
    let sides = [list("replica", &on_replica), list("primary", &on_primary)];
    rows.push(Row::Compare(
        compared("W12", "list first page", TASKS, b.plan, &sides, None).await?,
    ));
    Ok(rows)
}

/// Waits until the replica reads what the primary does (the seeded data is replayed), and
/// proves the replica side reads from the read pool.
async fn caught_up(on_replica: &PgStore, on_primary: &PgStore, d: &MainData) -> anyhow::Result<()> {
    let last = *d.full.last().unwrap_or(&d.hot);
    let want = on_primary.get_conversation(last).await?;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(got) = on_replica.get_conversation(last).await
            && got.turns.len() == want.turns.len()
        {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "W12: the replica did not replay the seeded data within 2 minutes"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let read_pool = on_replica.read_pool();
    let before = read_pool.as_ref().map(|p| p.stats().checkouts);
    on_replica.get_conversation(last).await?;
    let after = read_pool.as_ref().map(|p| p.stats().checkouts);
    ensure!(
        after > before,
        "W12: the replica side did not read from the replica"
    );
    Ok(())
}
