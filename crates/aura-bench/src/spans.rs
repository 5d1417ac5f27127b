//! W9: what the `tracing` spans cost when no subscriber listens (none is installed in
//! aura-bench): W1's get_conversation and W2's append_turn on a store with its spans (the
//! default) against a second store on the same database with every span bypassed
//! (`PgStore::with_tracing(false)`: no operation, checkout or transaction span is made).
//! Each store has its own pool of `POOL` connections; both are measured on their own
//! backends. Target: spans/no-spans within 3% (at least 0.97x).

use std::sync::Arc;
use std::time::Duration;

use anyhow::ensure;
use aura_store::{ConversationStore, PgStore, StoreError, TurnDraft, TurnRole, TurnStore};
use aura_testkit::TestDb;

use crate::harness::side;
use crate::report::{Check, Row};
use crate::workloads::{Bench, MainData, POOL, Sides, TASKS, compared, new_turn, side_over};

/// spans/no-spans must reach this (the spans cost at most 3%).
pub const MIN_SPAN_RATIO: f64 = 0.97;

/// The W9 rows: get_conversation (no turns) and append_turn (1,000 conversations), 1 and
/// 16 tasks, spans on against off.
pub async fn w9(b: &Bench, db: &TestDb, s: &Sides, d: &MainData) -> anyhow::Result<Vec<Row>> {
    let (off, off_backends) = open_untraced(db).await?;
    ensure!(s.store.tracing() && !off.tracing(), "W9: span switches");
    let on = s.store.clone();
    let get = {
        let (on, off) = (on.clone(), off.clone());
        vec![
            side_over("spans", &d.empty, move |id| {
                let store = on.clone();
                async move {
                    store.get_conversation(id).await?;
                    Ok(())
                }
            })
            .on(&s.aura_backends),
            side_over("no-spans", &d.empty, move |id| {
                let store = off.clone();
                async move {
                    store.get_conversation(id).await?;
                    Ok(())
                }
            })
            .on(&off_backends),
        ]
    };
    let append = vec![
        side_over("spans", &d.append, {
            let on = on.clone();
            move |id| {
                let store = on.clone();
                async move {
                    store.append_turn(id, new_turn()).await?;
                    Ok(())
                }
            }
        })
        .on(&s.aura_backends),
        side_over("no-spans", &d.append, {
            let off = off.clone();
            move |id| {
                let store = off.clone();
                async move {
                    store.append_turn(id, new_turn()).await?;
                    Ok(())
                }
            }
        })
        .on(&off_backends),
    ];
    // The wrapper alone: an append refused by its input check, before any SQL or checkout,
    // so the difference between the sides is the span machinery (no check: the ratio is
    // against a call that does next to nothing; read the cpu/op columns).
    let target = d.empty[0];
    let refused = |name: &'static str, store: &PgStore| {
        let store = store.clone();
        side(name, move |_, _| {
            let store = store.clone();
            async move {
                let refused = store
                    .append_turn(target, TurnDraft::new(TurnRole::User, ""))
                    .await;
                ensure!(matches!(refused, Err(StoreError::InvalidInput { .. })));
                Ok(())
            }
        })
    };
    let wrapper = vec![refused("spans", &on), refused("no-spans", &off)];
    let mut rows = vec![Row::Compare(
        compared(
            "W9",
            "append_turn refused before SQL (the wrapper alone), spans on/off",
            1,
            b.plan,
            &wrapper,
            None,
        )
        .await?,
    )];
    for (name, sides) in [
        ("get_conversation (W1), spans on/off", &get),
        ("append_turn (W2), spans on/off", &append),
    ] {
        for tasks in [1, TASKS] {
            let mut row = compared("W9", name, tasks, b.plan, sides, None).await?;
            if row.sides.len() == 2 {
                let (with, without) = (&row.sides[0], &row.sides[1]);
                let paired = crate::stats::paired_ratio(with, without);
                let of_medians = with.ops_per_sec / without.ops_per_sec;
                row.checks.push(Check::at_least(
                    &format!("spans/no-spans (paired {paired:.3}x, of medians {of_medians:.3}x)"),
                    paired.min(of_medians),
                    MIN_SPAN_RATIO,
                ));
            }
            rows.push(Row::Compare(row));
        }
    }
    off.close(Duration::from_secs(5)).await;
    Ok(rows)
}

/// A second store on `db` with its spans off, every connection made up front, and its
/// backends' process ids.
async fn open_untraced(db: &TestDb) -> anyhow::Result<(PgStore, Arc<Vec<u32>>)> {
    const APP: &str = "aura-bench-nospans";
    let config = db
        .config_builder()
        .max_conns(POOL as u32)
        .min_conns(POOL as u32)
        .max_conn_idle(Duration::from_secs(24 * 3600))
        .application_name(APP)
        .build()?;
    let store = PgStore::open(&config).await?.with_tracing(false);
    let mut held = Vec::with_capacity(POOL);
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
    let backends = rows
        .iter()
        .map(|r| Ok(u32::try_from(r.try_get::<_, i32>(0)?)?))
        .collect::<anyhow::Result<Vec<u32>>>()?;
    ensure!(backends.len() == POOL, "W9: {} connections", backends.len());
    Ok((store, Arc::new(backends)))
}
