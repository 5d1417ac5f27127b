//! [`TurnStore`] for [`PgStore`].

use async_trait::async_trait;
use aura_schema::{ConversationId, Turn, TurnId, turns};
use chrono::{DateTime, Utc};
use diesel::{OptionalExtension, QueryDsl, SelectableHelper};
use diesel_async::RunQueryDsl;

use super::{PgStore, settle};
use crate::error::{Entity, StoreError, Subject};
use crate::input::NewTurn;
use crate::keys::TurnKey;
use crate::limits;
use crate::sql::AppendTurn;
use crate::traits::TurnStore;

#[async_trait]
impl TurnStore for PgStore {
    async fn append_turn(
        &self,
        conversation_id: ConversationId,
        turn: NewTurn<'_>,
    ) -> Result<Turn, StoreError> {
        limits::required_text("content", turn.content)?;
        limits::tokens("input_tokens", turn.input_tokens)?;
        limits::tokens("output_tokens", turn.output_tokens)?;
        let statement = AppendTurn {
            conversation_id,
            id: TurnId::new(),
            role: turn.role,
            content: turn.content,
            input_tokens: turn.input_tokens,
            output_tokens: turn.output_tokens,
        };
        let id = statement.id;
        let mut conn = self.conn().await?;
        let row: Result<Option<(i32, DateTime<Utc>)>, StoreError> = statement
            .get_result(&mut *conn)
            .await
            .optional()
            .map_err(|e| StoreError::from(e).about(&Subject::conversation(conversation_id)));
        let (seq, created_at) = settle(&mut conn, row)?
            .ok_or_else(|| StoreError::not_found(Entity::Conversation, conversation_id))?;
        Ok(Turn {
            conversation_id,
            id,
            seq,
            role: turn.role,
            content: turn.content.to_owned(),
            input_tokens: turn.input_tokens,
            output_tokens: turn.output_tokens,
            created_at,
        })
    }

    async fn get_turn(&self, key: TurnKey) -> Result<Turn, StoreError> {
        let mut conn = self.conn().await?;
        let turn = turns::table
            .find((key.conversation_id, key.id))
            .select(Turn::as_select())
            .first(&mut *conn)
            .await
            .optional()
            .map_err(StoreError::from);
        settle(&mut conn, turn)?.ok_or_else(|| StoreError::not_found(Entity::Turn, key))
    }
}
