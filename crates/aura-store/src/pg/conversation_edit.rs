//! [`ConversationStore::update_conversation`](crate::ConversationStore::update_conversation)
//! for [`PgStore`].

use aura_schema::{Conversation, ConversationId, conversations};
use chrono::{DateTime, Utc};
use diesel::{OptionalExtension, QueryDsl};

use super::one_row::OneRowDsl;
use super::{PgStore, settle};
use crate::edit::ConversationEdit;
use crate::error::{ConflictKind, Entity, StoreError};
use crate::limits::{self, MAX_MODEL_CHARS, MAX_TITLE_CHARS};
use crate::sql::EditConversation;
use crate::telemetry::query_text;

/// The operation, run inside its span by `super::traced`.
impl PgStore {
    /// One statement (a cached `UPDATE … WHERE id = $ AND updated_at = $expected`); when it
    /// changes nothing, a second one tells a missing conversation from one that moved on.
    pub(super) async fn update_conversation_body(
        &self,
        id: ConversationId,
        edit: ConversationEdit<'_>,
    ) -> Result<Conversation, StoreError> {
        if edit.title.is_none() && edit.model.is_none() {
            return Err(StoreError::invalid(
                "edit",
                "changes nothing: set the title, clear it, or set the model",
            ));
        }
        if let Some(Some(title)) = edit.title {
            if title.is_empty() {
                return Err(StoreError::invalid(
                    "title",
                    "must not be empty (clear it with ConversationEdit::clear_title)",
                ));
            }
            limits::label("title", title, MAX_TITLE_CHARS)?;
        }
        if let Some(model) = edit.model {
            limits::label("model", model, MAX_MODEL_CHARS)?;
        }
        let mut conn = self.conn().await?;
        let updated = async {
            let updated = query_text(EditConversation {
                id,
                set_title: edit.title.is_some(),
                title: edit.title.flatten(),
                model: edit.model,
                expected: edit.expected_updated_at,
            })
            .one_row::<Conversation>(&mut *conn)
            .await
            .optional()?;
            if let Some(updated) = updated {
                return Ok(updated);
            }
            let now: Option<DateTime<Utc>> = conversations::table
                .find(id)
                .select(conversations::updated_at)
                .one_row(&mut *conn)
                .await
                .optional()?;
            Err(match now {
                None => StoreError::not_found(Entity::Conversation, id),
                Some(updated_at) => StoreError::conflict(
                    ConflictKind::ConversationChanged { updated_at },
                    Entity::Conversation,
                    id,
                ),
            })
        }
        .await;
        settle(&mut conn, updated)
    }
}
