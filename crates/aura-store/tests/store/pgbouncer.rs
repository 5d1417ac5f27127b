//! The store through PgBouncer (aura-testkit's `Pgbouncer`: Debian's package, SCRAM auth).
//! Session mode: the representative operations work, prepared statements included, across
//! several pooled connections. Transaction mode with PgBouncer 1.18 (what Debian 12
//! ships): diesel-async caches named prepared statements per client connection, and a
//! client's next transaction may run on a server connection that never saw them (SQLSTATE
//! 26000), so the store does not work there.

// Reads through the pool, as a sibling crate would write them: `get_result` (which
// clippy.toml keeps out of the store's own writes, see src/pg/one_row.rs) is fine there.
#![allow(clippy::disallowed_methods)]

use std::sync::Arc;

use aura_db::with_tx;
use aura_store::{ConversationDraft, ConversationStore, ListQuery, PgStore, StoreError, TurnStore};
use aura_testkit::{Pgbouncer, PoolMode, TestDb};
use diesel::QueryDsl;
use diesel_async::{RunQueryDsl, SimpleAsyncConnection};

use crate::common::turn;

#[tokio::test]
async fn the_store_works_through_pgbouncer_in_session_mode() {
    let db = TestDb::new().await;
    let bouncer = Pgbouncer::start(&db, PoolMode::Session, 8).await;
    let config = bouncer
        .config_builder(&db)
        .max_conns(4)
        .build()
        .expect("config");
    let store = Arc::new(
        PgStore::open(&config)
            .await
            .expect("open through pgbouncer"),
    );
    assert!(
        store
            .pool()
            .target()
            .contains(&format!(":{}/", bouncer.port()))
    );

    // The pool's session settings hold through PgBouncer with a stock configuration (no
    // `ignore_startup_parameters = options`): they are SET on each new connection, not
    // sent as startup options, which PgBouncer refuses or drops.
    {
        let mut conn = store.pool().get().await.expect("checkout");
        let (timeout, check): (String, String) =
            diesel::dsl::sql::<(diesel::sql_types::Text, diesel::sql_types::Text)>(
                "SELECT current_setting('statement_timeout'), \
                 current_setting('client_connection_check_interval')",
            )
            .get_result(&mut *conn)
            .await
            .expect("session settings");
        let expected = config.pool().statement_timeout;
        assert_eq!(
            timeout,
            format!("{}s", expected.as_secs()),
            "statement_timeout"
        );
        assert_eq!(check, "1s", "client_connection_check_interval");
    }

    // Four tasks, each on its own pooled connection at times: every statement is prepared
    // once per server connection and reused.
    let mut tasks = Vec::new();
    for t in 0..4 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let title = format!("through pgbouncer {t}");
            let c = store
                .create_conversation(ConversationDraft::new("m").titled(&title))
                .await?;
            for i in 0..5 {
                store
                    .append_turn(c.id, turn(&format!("turn {i}"), 1, 2))
                    .await?;
            }
            let got = store.get_conversation(c.id).await?;
            assert_eq!(got.turns.len(), 5);
            assert_eq!(got.conversation.input_tokens, 5);
            Ok::<_, StoreError>(c.id)
        }));
    }
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(task.await.expect("task").expect("store operations"));
    }
    let page = store
        .list_conversations(ListQuery::default())
        .await
        .expect("list");
    for id in &ids {
        assert!(page.items.iter().any(|c| c.id == *id));
    }

    // A transaction of the caller's own, rolled back by its error.
    let id = ids[0];
    let result: Result<(), aura_db::Error> = with_tx(store.pool(), async |conn| {
        let deleted = diesel::delete(aura_store::aura_schema::turns::table.filter(
            diesel::ExpressionMethods::eq(aura_store::aura_schema::turns::conversation_id, id),
        ))
        .execute(conn)
        .await?;
        assert_eq!(deleted, 5);
        Err(diesel::result::Error::RollbackTransaction.into())
    })
    .await;
    assert!(result.is_err());
    assert_eq!(
        store.get_conversation(id).await.expect("get").turns.len(),
        5,
        "rolled back"
    );
}

#[tokio::test]
async fn transaction_mode_pgbouncer_1_18_breaks_diesel_async_prepared_statements() {
    let db = TestDb::new().await;
    // Two server connections. B holds one in an open transaction while A prepares its
    // statement on the other; B's is released last, so (LIFO) A's next transaction gets it,
    // where A's cached statement was never prepared.
    let bouncer = Pgbouncer::start(&db, PoolMode::Transaction, 2).await;
    let config = bouncer
        .config_builder(&db)
        .max_conns(2)
        .min_conns(0)
        .build()
        .expect("config");
    let pool = aura_db::open(&config).await.expect("open");
    let mut a = pool.get().await.expect("first connection");
    let mut b = pool.get().await.expect("second connection");
    let count = || aura_store::aura_schema::conversations::table.count();
    b.batch_execute("BEGIN")
        .await
        .expect("B holds a server connection");
    count()
        .get_result::<i64>(&mut *a)
        .await
        .expect("A prepares and runs its statement on the other one");
    b.batch_execute("COMMIT")
        .await
        .expect("B releases its server connection");
    let err = count()
        .get_result::<i64>(&mut *a)
        .await
        .expect_err("A's cached statement on the server connection B released");
    assert!(
        err.to_string().contains("prepared statement")
            && err.to_string().contains("does not exist"),
        "expected 26000 (prepared statement … does not exist), got: {err}"
    );
}
