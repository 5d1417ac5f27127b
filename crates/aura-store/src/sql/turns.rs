//! Appending a turn in one statement, idempotent by the turn's id.

use aura_schema::{ConversationId, TurnId, TurnRole};
use diesel::QueryResult;
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, QueryFragment};
use diesel::sql_types::{Bool, Int4, Text, Timestamptz, Uuid};

use super::cached_statement;

/// Appends a turn and updates its conversation's aggregates, in one statement, unless a
/// turn with this id is already stored (a repeated append):
///
/// ```sql
/// WITH prior AS (SELECT seq, created_at,
///                       role = $1 AND content = $2 AND input_tokens = $3
///                         AND output_tokens = $4 AS same
///                  FROM aura.turns WHERE conversation_id = $5 AND id = $6),
///      c AS (UPDATE aura.conversations
///               SET turn_count = turn_count + 1,
///                   input_tokens = input_tokens + $7, output_tokens = output_tokens + $8,
///                   last_turn_at = GREATEST(last_turn_at, now()), updated_at = now()
///             WHERE id = $9 AND NOT EXISTS (SELECT 1 FROM prior)
///         RETURNING id, turn_count, last_turn_at),
///      ins AS (INSERT INTO aura.turns (conversation_id, id, seq, role, content,
///                                      input_tokens, output_tokens, created_at)
///              SELECT c.id, $10, c.turn_count, $11, $12, $13, $14, c.last_turn_at FROM c
///              RETURNING seq, created_at)
/// SELECT seq, created_at, true FROM ins
/// UNION ALL SELECT seq, created_at, same FROM prior
/// ```
///
/// - `seq`: the `UPDATE` takes the conversation's row lock, so appends to one conversation
///   run one after the other, each reading the counter its predecessor committed: seq is
///   1, 2, … without gap or duplicate, and the aggregates always equal the turns' sums.
/// - `prior`: the turn's id is its idempotency key. When it is stored already, the counter
///   is not touched (`NOT EXISTS`), nothing is inserted, and the stored turn's `seq` and
///   time come back with whether its content equals this one. Two appends of one id at the
///   same moment both miss `prior` (their snapshots predate each other's insert); the
///   second then fails on `turns_pkey` and the whole statement, counter bump included, is
///   undone: the caller runs it again, and `prior` finds the first one's turn.
/// - No row (a missing conversation updates nothing, so nothing is inserted): the caller
///   reports NotFound.
/// - `created_at` is the `last_turn_at` just written, so the two always agree. It is `now()`
///   (the statement's start), or the previous turn's time when that is later: a statement
///   that started first can get the row lock second, and a plain `now()` would then give
///   the higher seq the earlier time and move `last_turn_at` backwards. Under the row lock
///   `last_turn_at` is the latest committed value, so turn times never decrease with seq.
///
/// Returns `(seq, created_at, same)`: the rest of the turn is what the caller sent (`same`
/// says the stored one has that content), and echoing up to 1 MiB of content back over the
/// wire would be waste.
#[derive(Clone, Copy)]
pub(crate) struct AppendTurn<'a> {
    pub(crate) conversation_id: ConversationId,
    pub(crate) id: TurnId,
    pub(crate) role: TurnRole,
    pub(crate) content: &'a str,
    pub(crate) input_tokens: i32,
    pub(crate) output_tokens: i32,
}

cached_statement!(
    AppendTurn<'_>,
    id = AppendTurn<'static>,
    returns (Int4, Timestamptz, Bool)
);

impl QueryFragment<Pg> for AppendTurn<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("WITH prior AS (SELECT seq, created_at, role = ");
        out.push_bind_param::<Text, _>(&self.role)?;
        out.push_sql(" AND content = ");
        out.push_bind_param::<Text, _>(self.content)?;
        out.push_sql(" AND input_tokens = ");
        out.push_bind_param::<Int4, _>(&self.input_tokens)?;
        out.push_sql(" AND output_tokens = ");
        out.push_bind_param::<Int4, _>(&self.output_tokens)?;
        out.push_sql(" AS same FROM aura.turns WHERE conversation_id = ");
        out.push_bind_param::<Uuid, _>(&self.conversation_id)?;
        out.push_sql(" AND id = ");
        out.push_bind_param::<Uuid, _>(&self.id)?;
        out.push_sql(
            "), c AS (UPDATE aura.conversations SET turn_count = turn_count + 1, \
             input_tokens = input_tokens + ",
        );
        out.push_bind_param::<Int4, _>(&self.input_tokens)?;
        out.push_sql(", output_tokens = output_tokens + ");
        out.push_bind_param::<Int4, _>(&self.output_tokens)?;
        out.push_sql(
            ", last_turn_at = GREATEST(last_turn_at, now()), updated_at = now() WHERE id = ",
        );
        out.push_bind_param::<Uuid, _>(&self.conversation_id)?;
        out.push_sql(
            " AND NOT EXISTS (SELECT 1 FROM prior) RETURNING id, turn_count, last_turn_at), \
             ins AS (INSERT INTO aura.turns (conversation_id, id, seq, role, content, \
             input_tokens, output_tokens, created_at) SELECT c.id, ",
        );
        out.push_bind_param::<Uuid, _>(&self.id)?;
        out.push_sql(", c.turn_count, ");
        out.push_bind_param::<Text, _>(&self.role)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(self.content)?;
        out.push_sql(", ");
        out.push_bind_param::<Int4, _>(&self.input_tokens)?;
        out.push_sql(", ");
        out.push_bind_param::<Int4, _>(&self.output_tokens)?;
        out.push_sql(
            ", c.last_turn_at FROM c RETURNING seq, created_at) \
             SELECT seq, created_at, true FROM ins \
             UNION ALL SELECT seq, created_at, same FROM prior",
        );
        Ok(())
    }
}
