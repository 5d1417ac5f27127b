//! The store over TLS: a database on the TLS-only test cluster, every URL `verify-full`.

use std::sync::Arc;

use aura_store::{ConversationStore, PgStore, TurnStore};
use aura_testkit::TestDb;

use crate::common::{conversation, turn};

#[tokio::test]
async fn create_append_and_get_over_verified_tls() {
    let db = TestDb::new_tls().await;
    let pool = db.pool().await;
    let mut conn = pool.get().await.expect("checkout");
    let encryption = aura_db::encryption(&mut conn).await.expect("pg_stat_ssl");
    assert!(
        matches!(encryption, aura_db::Encryption::Tls { .. }),
        "{encryption}"
    );
    drop(conn);
    let store = Arc::new(PgStore::new(pool));

    let id = conversation(&store).await.id;
    for (i, content) in ["hello", "over", "tls"].into_iter().enumerate() {
        let seq = store
            .append_turn(id, turn(content, 1, 2))
            .await
            .expect("append over TLS")
            .seq;
        assert_eq!(i64::from(seq), i64::try_from(i).expect("small") + 1);
    }
    let got = store.get_conversation(id).await.expect("get over TLS");
    assert_eq!(got.conversation.turn_count, 3);
    assert_eq!(
        got.turns
            .iter()
            .map(|t| t.content.as_str())
            .collect::<Vec<_>>(),
        ["hello", "over", "tls"]
    );
}
