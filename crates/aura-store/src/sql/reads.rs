//! The two loads of `get_conversation`, as fixed SQL texts.
//!
//! diesel's DSL caches these statements too, but rebuilds their SQL text on every call
//! (quoting each of the 18 qualified column names) to look the statement up: about a tenth
//! of the client's own CPU per point read in `perf`. Here the text is a constant. The
//! columns are the tables' in `schema.rs` order, which is what `Queryable` reads; a unit
//! test checks each text against the one diesel builds from `schema.rs`.

use aura_schema::{ConversationId, conversations, turns};
use diesel::QueryResult;
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, QueryFragment};
use diesel::sql_types::Uuid;

use super::cached_statement;

/// Every column of `aura.turns`, in `schema.rs` order (what [`aura_schema::Turn`] reads).
pub(crate) const TURN_COLUMNS: &str =
    "conversation_id, id, seq, role, content, input_tokens, output_tokens, created_at, data";

/// `SELECT <every column> FROM aura.conversations WHERE id = $1`, read as a
/// [`aura_schema::Conversation`].
pub(crate) struct LoadConversation {
    pub(crate) id: ConversationId,
}

cached_statement!(LoadConversation, id = LoadConversation, returns conversations::SqlType);

impl QueryFragment<Pg> for LoadConversation {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql(
            "SELECT id, title, model, started_at, updated_at, turn_count, input_tokens, \
             output_tokens, last_turn_at, last_activity_at FROM aura.conversations WHERE id = ",
        );
        out.push_bind_param::<Uuid, _>(&self.id)
    }
}

/// `SELECT <every column> FROM aura.turns WHERE conversation_id = $1 ORDER BY seq`, read
/// as [`aura_schema::Turn`]s.
pub(crate) struct LoadTurns {
    pub(crate) conversation_id: ConversationId,
}

cached_statement!(LoadTurns, id = LoadTurns, returns turns::SqlType);

impl QueryFragment<Pg> for LoadTurns {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("SELECT ");
        out.push_sql(TURN_COLUMNS);
        out.push_sql(" FROM aura.turns WHERE conversation_id = ");
        out.push_bind_param::<Uuid, _>(&self.conversation_id)?;
        out.push_sql(" ORDER BY seq ASC");
        Ok(())
    }
}
