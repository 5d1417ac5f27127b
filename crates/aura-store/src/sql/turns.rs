//! Appending a turn in one statement; with a caller-supplied id, idempotent by it.

use aura_schema::{ConversationId, TurnId, TurnRole};
use diesel::QueryResult;
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, QueryFragment};
use diesel::sql_types::{Bool, Int4, Jsonb, Nullable, Text, Timestamptz, Uuid};

use super::cached_statement;
use crate::turn_data::JsonData;

/// The turn an append writes: the conversation, the id and the caller's content.
#[derive(Clone, Copy)]
pub(crate) struct TurnRow<'a> {
    pub(crate) conversation_id: ConversationId,
    pub(crate) id: TurnId,
    pub(crate) role: TurnRole,
    pub(crate) content: &'a str,
    pub(crate) input_tokens: i32,
    pub(crate) output_tokens: i32,
    pub(crate) data: Option<JsonData<'a>>,
}

/// Appends a turn whose id the store just made (a new UUIDv7: nothing can be stored under
/// it yet) and updates its conversation's aggregates, in one statement:
///
/// ```sql
/// WITH c AS (UPDATE aura.conversations
///               SET turn_count = turn_count + 1,
///                   input_tokens = input_tokens + $1, output_tokens = output_tokens + $2,
///                   last_turn_at = GREATEST(last_turn_at, now()), updated_at = now()
///             WHERE id = $3
///         RETURNING id, turn_count, last_turn_at)
/// INSERT INTO aura.turns (conversation_id, id, seq, role, content, input_tokens,
///                         output_tokens, created_at, data)
/// SELECT c.id, $4, c.turn_count, $5, $6, $7, $8, c.last_turn_at, $9 FROM c
/// RETURNING seq, created_at, true
/// ```
///
/// - `seq`: the `UPDATE` takes the conversation's row lock, so appends to one conversation
///   run one after the other, each reading the counter its predecessor committed: seq is
///   1, 2, … without gap or duplicate, and the aggregates always equal the turns' sums.
/// - No row (a missing conversation updates nothing, so nothing is inserted): the caller
///   reports NotFound.
/// - `created_at` is the `last_turn_at` just written, so the two always agree. It is `now()`
///   (the statement's start), or the previous turn's time when that is later: a statement
///   that started first can get the row lock second, and a plain `now()` would then give
///   the higher seq the earlier time and move `last_turn_at` backwards. Under the row lock
///   `last_turn_at` is the latest committed value, so turn times never decrease with seq.
///
/// Returns `(seq, created_at, true)`, the shape of [`AppendKeyedTurn`]'s answer: the rest
/// of the turn is what the caller sent, and echoing up to 1 MiB of content back over the
/// wire would be waste.
pub(crate) struct AppendTurn<'a>(pub(crate) TurnRow<'a>);

cached_statement!(
    AppendTurn<'_>,
    id = AppendTurn<'static>,
    returns (Int4, Timestamptz, Bool)
);

impl QueryFragment<Pg> for AppendTurn<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let row = &self.0;
        out.push_sql("WITH c AS (");
        bump(row, out.reborrow(), "")?;
        out.push_sql(") ");
        insert(row, out.reborrow())?;
        out.push_sql(", true");
        Ok(())
    }
}

/// Appends a turn under a caller-supplied id, its idempotency key: as [`AppendTurn`],
/// unless a turn with this id is already stored (a repeated append):
///
/// ```sql
/// WITH prior AS (SELECT seq, created_at,
///                       role = $1 AND content = $2 AND input_tokens = $3
///                         AND output_tokens = $4
///                         AND data::text IS NOT DISTINCT FROM $5::text AS same
///                  FROM aura.turns WHERE conversation_id = $6 AND id = $7),
///      c AS (UPDATE aura.conversations SET … (as AppendTurn)
///             WHERE id = $10 AND NOT EXISTS (SELECT 1 FROM prior)
///         RETURNING id, turn_count, last_turn_at),
///      ins AS (INSERT INTO aura.turns … (as AppendTurn) RETURNING seq, created_at)
/// SELECT seq, created_at, true FROM ins
/// UNION ALL SELECT seq, created_at, same FROM prior
/// ```
///
/// - `prior`: when the id is stored already, the counter is not touched (`NOT EXISTS`),
///   nothing is inserted, and the stored turn's `seq` and time come back with whether its
///   content equals this one (`same`). The data are compared as JSONB's text, not with
///   JSONB's `=`, for which `1` and `1.0` are equal (they read back as different values).
/// - Two appends of one id at the same moment both miss `prior` (their snapshots predate
///   each other's insert); the second then fails on `turns_pkey` and the whole statement,
///   counter bump included, is undone: the caller runs it again, and `prior` finds the
///   first one's turn.
/// - The check costs a primary-key probe and a few plan nodes: about 14% of throughput at 8
///   clients on a saturated server (pgbench, see the crate README), which is why an append
///   without a caller id uses [`AppendTurn`].
pub(crate) struct AppendKeyedTurn<'a>(pub(crate) TurnRow<'a>);

cached_statement!(
    AppendKeyedTurn<'_>,
    id = AppendKeyedTurn<'static>,
    returns (Int4, Timestamptz, Bool)
);

impl QueryFragment<Pg> for AppendKeyedTurn<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let row = &self.0;
        out.push_sql("WITH prior AS (SELECT seq, created_at, role = ");
        out.push_bind_param::<Text, _>(&row.role)?;
        out.push_sql(" AND content = ");
        out.push_bind_param::<Text, _>(row.content)?;
        out.push_sql(" AND input_tokens = ");
        out.push_bind_param::<Int4, _>(&row.input_tokens)?;
        out.push_sql(" AND output_tokens = ");
        out.push_bind_param::<Int4, _>(&row.output_tokens)?;
        out.push_sql(" AND data::text IS NOT DISTINCT FROM ");
        out.push_bind_param::<Nullable<Jsonb>, _>(&row.data)?;
        out.push_sql("::text AS same FROM aura.turns WHERE conversation_id = ");
        out.push_bind_param::<Uuid, _>(&row.conversation_id)?;
        out.push_sql(" AND id = ");
        out.push_bind_param::<Uuid, _>(&row.id)?;
        out.push_sql("), c AS (");
        bump(row, out.reborrow(), " AND NOT EXISTS (SELECT 1 FROM prior)")?;
        out.push_sql("), ins AS (");
        insert(row, out.reborrow())?;
        out.push_sql(
            ") SELECT seq, created_at, true FROM ins \
             UNION ALL SELECT seq, created_at, same FROM prior",
        );
        Ok(())
    }
}

/// `UPDATE aura.conversations …`, the counter bump both appends share; `condition` is
/// added to its `WHERE`.
fn bump<'b>(
    row: &'b TurnRow<'_>,
    mut out: AstPass<'_, 'b, Pg>,
    condition: &'static str,
) -> QueryResult<()> {
    out.push_sql(
        "UPDATE aura.conversations SET turn_count = turn_count + 1, \
         input_tokens = input_tokens + ",
    );
    out.push_bind_param::<Int4, _>(&row.input_tokens)?;
    out.push_sql(", output_tokens = output_tokens + ");
    out.push_bind_param::<Int4, _>(&row.output_tokens)?;
    out.push_sql(", last_turn_at = GREATEST(last_turn_at, now()), updated_at = now() WHERE id = ");
    out.push_bind_param::<Uuid, _>(&row.conversation_id)?;
    out.push_sql(condition);
    out.push_sql(" RETURNING id, turn_count, last_turn_at");
    Ok(())
}

/// `INSERT INTO aura.turns … SELECT … FROM c RETURNING seq, created_at`, the insert both
/// appends share.
fn insert<'b>(row: &'b TurnRow<'_>, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
    out.push_sql(
        "INSERT INTO aura.turns (conversation_id, id, seq, role, content, input_tokens, \
         output_tokens, created_at, data) SELECT c.id, ",
    );
    out.push_bind_param::<Uuid, _>(&row.id)?;
    out.push_sql(", c.turn_count, ");
    out.push_bind_param::<Text, _>(&row.role)?;
    out.push_sql(", ");
    out.push_bind_param::<Text, _>(row.content)?;
    out.push_sql(", ");
    out.push_bind_param::<Int4, _>(&row.input_tokens)?;
    out.push_sql(", ");
    out.push_bind_param::<Int4, _>(&row.output_tokens)?;
    out.push_sql(", c.last_turn_at, ");
    out.push_bind_param::<Nullable<Jsonb>, _>(&row.data)?;
    out.push_sql(" FROM c RETURNING seq, created_at");
    Ok(())
}
