//! The store does not lean on the database's defaults: an operator may have set
//! `default_transaction_isolation = serializable` on the database (for another application,
//! or as a hardening), and the store's single-statement writes, which are written for READ
//! COMMITTED (the conversation's row lock orders concurrent appends), must keep working
//! under concurrency.

use std::sync::Arc;

use aura_store::{ConversationStore, PgStore, TurnStore};
use diesel::sql_types::Text;
use diesel_async::RunQueryDsl;

use crate::common::{append_in_background, conversation, scalar, turn};
use crate::invariants::assert_aggregates_match;

#[tokio::test]
async fn concurrent_appends_succeed_under_a_serializable_database_default() {
    let db = aura_testkit::TestDb::new().await;
    let admin = db.superuser_client().await;
    db.set_database_default("default_transaction_isolation = 'serializable'")
        .await;
    // Opened after the ALTER: every session of this pool starts with the hostile default.
    let store = Arc::new(PgStore::new(db.pool().await));
    {
        let mut conn = store.pool().get().await.expect("checkout");
        #[allow(clippy::disallowed_methods, reason = "a read")]
        let isolation: String =
            diesel::dsl::sql::<Text>("SELECT current_setting('transaction_isolation')")
                .get_result(&mut *conn)
                .await
                .expect("isolation");
        assert_eq!(
            isolation, "read committed",
            "the pool's sessions pin their isolation"
        );
    }
    let c = conversation(&store).await;
    for handle in append_in_background(&store, c.id, 8, 25) {
        handle.await.expect("every append succeeds");
    }
    let read = store.get_conversation(c.id).await.expect("get");
    assert_eq!(read.turns.len(), 200);
    assert_eq!(
        scalar(
            &db,
            "SELECT count(*) FROM aura.turns WHERE conversation_id = $1::text::uuid",
            c.id
        )
        .await,
        200
    );
    assert_aggregates_match(&admin).await;
}

/// `idle_session_timeout` on the database (an operator reclaiming idle connections): the
/// server closes every pooled connection that sits idle longer, and the next calls still
/// succeed, on new connections, without a retry policy.
#[tokio::test]
async fn calls_succeed_after_the_server_closed_idle_pooled_connections() {
    let db = aura_testkit::TestDb::new().await;
    db.set_database_default("idle_session_timeout = '200ms'")
        .await;
    let store = PgStore::new(db.pool().await);
    let c = conversation(&store).await;
    let before = store.pool().stats().connects;
    for round in 0..3 {
        // Longer than the timeout: the server has ended every idle session of the pool.
        tokio::time::sleep(std::time::Duration::from_millis(600)).await;
        let got = store.get_conversation(c.id).await;
        assert!(got.is_ok(), "round {round}: {got:?}");
        let turn = store.append_turn(c.id, turn("hi", 1, 1)).await;
        assert!(turn.is_ok(), "round {round}: {turn:?}");
    }
    let read = store.get_conversation(c.id).await.expect("get");
    assert_eq!(read.turns.len(), 3);
    // Each round found its idle connections closed by the server and made a new one.
    let made = store.pool().stats().connects - before;
    assert!(made >= 3, "{made} new connections in 3 rounds");
}
