//! [`DecodedTurn`]: a [`Turn`] decoded from a row of [`TURN_COLUMNS`](super::reads::TURN_COLUMNS)
//! field by field.
//!
//! diesel's `Queryable` decodes a row into a tuple first, one partial row per element, then
//! moves the tuple into the struct: 28k of the client's 215k instructions per W11 read
//! (callgrind). Here each field is read once, by position, with the same `FromSql` impls:
//! 13k. A unit test checks that both decode the same rows to the same turns.

use aura_schema::{ConversationId, Turn, TurnId, TurnRole, turns};
use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::pg::Pg;
use diesel::result::{UnexpectedEndOfRow, UnexpectedNullError};
use diesel::row::{Field, Row};
use diesel::sql_types::{Int4, Jsonb, Nullable, Text, Timestamptz, Uuid};

/// A turn read from a row of `turns::SqlType` (see the module docs).
pub(crate) struct DecodedTurn(pub(crate) Turn);

impl FromSqlRow<turns::SqlType, Pg> for DecodedTurn {
    fn build_from_row<'a>(row: &impl Row<'a, Pg>) -> deserialize::Result<Self> {
        Ok(DecodedTurn(Turn {
            conversation_id: field::<Uuid, ConversationId>(row, 0)?,
            id: field::<Uuid, TurnId>(row, 1)?,
            seq: field::<Int4, i32>(row, 2)?,
            role: field::<Text, TurnRole>(row, 3)?,
            content: field::<Text, String>(row, 4)?,
            input_tokens: field::<Int4, i32>(row, 5)?,
            output_tokens: field::<Int4, i32>(row, 6)?,
            created_at: field::<Timestamptz, _>(row, 7)?,
            data: field::<Nullable<Jsonb>, _>(row, 8)?,
        }))
    }
}

/// Field `index` of `row`, as a `T` read from SQL type `ST`; an error names the column, as
/// diesel's does.
fn field<'a, ST, T: FromSql<ST, Pg>>(
    row: &impl Row<'a, Pg>,
    index: usize,
) -> deserialize::Result<T> {
    let field = row.get(index).ok_or(UnexpectedEndOfRow)?;
    T::from_nullable_sql(field.value()).map_err(|err| {
        if err.is::<UnexpectedNullError>() {
            err
        } else {
            format!("column {}: {err}", field.field_name().unwrap_or("?")).into()
        }
    })
}

impl DecodedTurn {
    /// The turns of `rows` (in place: a `DecodedTurn` is a `Turn`).
    pub(crate) fn turns(rows: Vec<DecodedTurn>) -> Vec<Turn> {
        rows.into_iter().map(|row| row.0).collect()
    }
}

#[cfg(test)]
mod tests {
    use aura_schema::Turn;
    use diesel_async::RunQueryDsl;
    use serde_json::json;

    use super::DecodedTurn;
    use crate::sql::LoadTurns;
    use crate::{ConversationDraft, ConversationStore, PgStore, TurnDraft, TurnStore};

    /// The same rows, decoded by diesel's `Queryable` and by `DecodedTurn`, give the same
    /// turns: every role, token counts, a NULL and a nested `data`, non-ASCII content.
    #[tokio::test]
    async fn decodes_rows_as_diesel_does() {
        let db = aura_testkit::TestDb::new().await;
        let store = PgStore::new(db.pool().await);
        let c = store
            .create_conversation(ConversationDraft::default())
            .await
            .expect("conversation");
        let data = json!({"tool_calls": [{"name": "search", "args": {"q": "ü", "n": 3}}],
                          "finish_reason": null, "score": 0.5});
        for (i, role) in ["user", "assistant", "system", "tool"]
            .into_iter()
            .enumerate()
        {
            let i = i32::try_from(i).expect("small");
            let draft = TurnDraft {
                input_tokens: i * 7,
                output_tokens: i * 11,
                data: (i % 2 == 1).then_some(&data),
                ..TurnDraft::new(role.parse().expect("role"), "héllo, wörld ✓")
            };
            store.append_turn(c.id, draft).await.expect("append");
        }
        let mut conn = store.pool().get().await.expect("checkout");
        let by_diesel: Vec<Turn> = LoadTurns {
            conversation_id: c.id,
        }
        .load(&mut *conn)
        .await
        .expect("diesel");
        let decoded: Vec<DecodedTurn> = LoadTurns {
            conversation_id: c.id,
        }
        .load(&mut *conn)
        .await
        .expect("decoded");
        assert_eq!(by_diesel.len(), 4);
        assert_eq!(DecodedTurn::turns(decoded), by_diesel);
    }
}
