//! Shared set-up.

use std::sync::Arc;

use aura_store::{Conversation, ConversationDraft, ConversationId, PgStore, TurnDraft, TurnRole};
use aura_testkit::TestDb;

/// A test database and a store on it (app role, default pool).
pub async fn store() -> (TestDb, Arc<PgStore>) {
    let db = TestDb::new().await;
    let store = Arc::new(PgStore::new(db.pool().await));
    (db, store)
}

/// A store on `db` whose pool has `max` connections.
pub async fn store_with_pool(db: &TestDb, max: u32) -> PgStore {
    let config = db
        .config_builder()
        .max_conns(max)
        .min_conns(1)
        .build()
        .expect("test config");
    PgStore::new(aura_db::open(&config).await.expect("pool"))
}

/// A new conversation without title.
pub async fn conversation(store: &PgStore) -> Conversation {
    use aura_store::ConversationStore;
    store
        .create_conversation(ConversationDraft::default())
        .await
        .expect("create conversation")
}

/// A user turn with these token counts.
pub fn turn(content: &str, input_tokens: i32, output_tokens: i32) -> TurnDraft<'_> {
    TurnDraft {
        id: None,
        role: TurnRole::User,
        content,
        input_tokens,
        output_tokens,
        data: None,
    }
}

/// `writers` tasks, each appending `each` turns to conversation `id` (task `w`'s turn `i`
/// spends `w + i` input tokens and 1 output token).
pub fn append_in_background(
    store: &Arc<PgStore>,
    id: ConversationId,
    writers: i32,
    each: i32,
) -> Vec<tokio::task::JoinHandle<()>> {
    use aura_store::TurnStore;
    (0..writers)
        .map(|w| {
            let store = Arc::clone(store);
            tokio::spawn(async move {
                for i in 0..each {
                    store
                        .append_turn(id, turn("x", w + i, 1))
                        .await
                        .expect("append");
                }
            })
        })
        .collect()
}

/// One bigint computed by `sql` as the superuser, `$1` being the conversation id (as
/// text: write `$1::text::uuid`).
pub async fn scalar(db: &TestDb, sql: &str, id: ConversationId) -> i64 {
    let client = db.superuser_client().await;
    client
        .query_one(sql, &[&id.to_string()])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get(0)
}
