//! Existence checks, for telling an empty result from a missing parent.

use aura_db::AsyncPgConnection;
use aura_schema::{ConversationId, conversations, runs};
use diesel::{QueryDsl, QueryResult};

use super::one_row::OneRowDsl;
use crate::keys::RunKey;

/// Whether the conversation exists.
pub(super) async fn conversation(
    mut conn: &AsyncPgConnection,
    id: ConversationId,
) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(conversations::table.find(id)))
        .one_row(&mut conn)
        .await
}

/// Whether the run exists.
pub(super) async fn run(mut conn: &AsyncPgConnection, key: RunKey) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        runs::table.find((key.conversation_id, key.id)),
    ))
    .one_row(&mut conn)
    .await
}
