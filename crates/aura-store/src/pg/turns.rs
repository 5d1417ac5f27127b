//! [`TurnStore`](crate::TurnStore) for [`PgStore`].

use aura_schema::{ConversationId, RunId, Turn, TurnId, turns};
use chrono::{DateTime, Utc};
use diesel::{OptionalExtension, QueryDsl, SelectableHelper};

use super::one_row::OneRowDsl;
use super::{PgStore, settle};
use crate::classify::{classify_diesel, is_violation};
use crate::error::{ConflictKind, Entity, StoreError, Subject};
use crate::input::TurnDraft;
use crate::keys::TurnKey;
use crate::limits;
use crate::sql::{AppendKeyedTurn, AppendTurn, TurnRow};
use crate::telemetry::query_text;
use crate::turn_data::{self, JsonData};

/// The operations of [`TurnStore`](crate::TurnStore), each run inside its span by `super::traced`.
impl PgStore {
    pub(super) async fn append_turn_body(
        &self,
        conversation_id: ConversationId,
        draft: TurnDraft<'_>,
    ) -> Result<Turn, StoreError> {
        limits::caller_id(draft.id.map(|id| id.as_uuid()))?;
        limits::required_text("content", draft.content)?;
        limits::tokens("input_tokens", draft.input_tokens)?;
        limits::tokens("output_tokens", draft.output_tokens)?;
        if let Some(data) = draft.data {
            turn_data::check(data)?;
        }
        let row = TurnRow {
            conversation_id,
            id: draft.id.unwrap_or_else(TurnId::new),
            role: draft.role,
            content: draft.content,
            input_tokens: draft.input_tokens,
            output_tokens: draft.output_tokens,
            data: draft.data.map(JsonData),
        };
        let key = TurnKey::new(conversation_id, row.id);
        let subject = Subject::row(conversation_id, key, None::<RunId>);
        let mut conn = self.conn().await?;
        let result = async {
            if draft.id.is_none() {
                // A new id: nothing can be stored under it, no check needed.
                return query_text(AppendTurn(row))
                    .one_row(&mut *conn)
                    .await
                    .optional();
            }
            match query_text(AppendKeyedTurn(row))
                .one_row(&mut *conn)
                .await
                .optional()
            {
                // A concurrent append of the same id committed first (see
                // `AppendKeyedTurn`): this statement was undone; made again, it finds that
                // turn.
                Err(err) if is_violation(&err, "turns_pkey") => {
                    AppendKeyedTurn(row).one_row(&mut *conn).await.optional()
                }
                other => other,
            }
        }
        .await
        .map_err(|e| classify_diesel(e, &subject));
        let (seq, created_at, same): (i32, DateTime<Utc>, bool) = settle(&mut conn, result)?
            .ok_or_else(|| StoreError::not_found(Entity::Conversation, conversation_id))?;
        if !same {
            return Err(StoreError::conflict(
                ConflictKind::IdempotencyMismatch,
                Entity::Turn,
                key,
            ));
        }
        Ok(Turn {
            conversation_id,
            id: key.id,
            seq,
            role: draft.role,
            content: draft.content.to_owned(),
            input_tokens: draft.input_tokens,
            output_tokens: draft.output_tokens,
            created_at,
            data: draft.data.cloned(),
        })
    }

    pub(super) async fn get_turn_body(&self, key: TurnKey) -> Result<Turn, StoreError> {
        let mut conn = self.read_conn().await?;
        let turn = turns::table
            .find((key.conversation_id, key.id))
            .select(Turn::as_select())
            .one_row(&mut *conn)
            .await
            .optional()
            .map_err(StoreError::from);
        settle(&mut conn, turn)?.ok_or_else(|| StoreError::not_found(Entity::Turn, key))
    }
}
