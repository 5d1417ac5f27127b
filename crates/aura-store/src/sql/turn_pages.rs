//! The reads of a conversation's turns by `seq`: a page forward, a page backward, the
//! latest ones. Each is one statement on `turns_conversation_id_seq_key` (`conversation_id,
//! seq`): an index range scan of `limit` rows, forward or backward, whatever the
//! conversation's length (no `OFFSET`, no sort). One statement is one snapshot, so a page
//! is exactly the turns of its range at that moment: seqs without gaps.

use aura_schema::{ConversationId, turns};
use diesel::QueryResult;
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, QueryFragment};
use diesel::sql_types::{BigInt, Int4, Uuid};

use super::cached_statement;
use super::reads::TURN_COLUMNS;

/// `SELECT <every column> FROM aura.turns WHERE conversation_id = $1 AND seq > $2
/// ORDER BY seq ASC LIMIT $3`.
pub(crate) struct TurnsAfter {
    pub(crate) conversation_id: ConversationId,
    pub(crate) seq: i32,
    pub(crate) limit: i64,
}

cached_statement!(TurnsAfter, id = TurnsAfter, returns turns::SqlType);

impl QueryFragment<Pg> for TurnsAfter {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        select(&self.conversation_id, out.reborrow())?;
        out.push_sql(" AND seq > ");
        out.push_bind_param::<Int4, _>(&self.seq)?;
        out.push_sql(" ORDER BY seq ASC LIMIT ");
        out.push_bind_param::<BigInt, _>(&self.limit)
    }
}

/// `SELECT <every column> FROM aura.turns WHERE conversation_id = $1 AND seq < $2
/// ORDER BY seq DESC LIMIT $3` (newest first: the caller reverses them).
pub(crate) struct TurnsBefore {
    pub(crate) conversation_id: ConversationId,
    pub(crate) seq: i32,
    pub(crate) limit: i64,
}

cached_statement!(TurnsBefore, id = TurnsBefore, returns turns::SqlType);

impl QueryFragment<Pg> for TurnsBefore {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        select(&self.conversation_id, out.reborrow())?;
        out.push_sql(" AND seq < ");
        out.push_bind_param::<Int4, _>(&self.seq)?;
        out.push_sql(" ORDER BY seq DESC LIMIT ");
        out.push_bind_param::<BigInt, _>(&self.limit)
    }
}

/// `SELECT <every column> FROM aura.turns WHERE conversation_id = $1
/// ORDER BY seq DESC LIMIT $2` (newest first: the caller reverses them).
pub(crate) struct LatestTurns {
    pub(crate) conversation_id: ConversationId,
    pub(crate) limit: i64,
}

cached_statement!(LatestTurns, id = LatestTurns, returns turns::SqlType);

impl QueryFragment<Pg> for LatestTurns {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        select(&self.conversation_id, out.reborrow())?;
        out.push_sql(" ORDER BY seq DESC LIMIT ");
        out.push_bind_param::<BigInt, _>(&self.limit)
    }
}

/// `SELECT <every column> FROM aura.turns WHERE conversation_id = $1`, shared by the three.
fn select<'b>(
    conversation_id: &'b ConversationId,
    mut out: AstPass<'_, 'b, Pg>,
) -> QueryResult<()> {
    out.push_sql("SELECT ");
    out.push_sql(TURN_COLUMNS);
    out.push_sql(" FROM aura.turns WHERE conversation_id = ");
    out.push_bind_param::<Uuid, _>(conversation_id)
}
