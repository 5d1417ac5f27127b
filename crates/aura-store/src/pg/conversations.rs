//! [`ConversationStore`](crate::ConversationStore) for [`PgStore`].

use aura_db::{AsyncPgConnection, Isolation, TxOptions};
use aura_schema::{Conversation, ConversationId, Turn, conversations};
use diesel::{
    BoolExpressionMethods, ExpressionMethods, OptionalExtension, QueryDsl, QueryResult,
    SelectableHelper,
};
use diesel_async::RunQueryDsl;

use super::one_row::OneRowDsl;
use super::{PgStore, settle};
use crate::classify::classify_diesel;
use crate::cursor::Cursor;
use crate::error::{ConflictKind, Entity, StoreError, Subject};
use crate::input::ConversationDraft;
use crate::limits::{self, MAX_MODEL_CHARS, MAX_TITLE_CHARS};
use crate::sql::{DecodedTurn, LoadConversation, LoadTurns};
use crate::telemetry::query_text;
use crate::views::{ConversationSummary, ConversationWithTurns, ListQuery, Page};

/// The operations of [`ConversationStore`](crate::ConversationStore), each run inside its span by `super::traced`.
impl PgStore {
    pub(super) async fn create_conversation_body(
        &self,
        draft: ConversationDraft<'_>,
    ) -> Result<Conversation, StoreError> {
        limits::caller_id(draft.id.map(|id| id.as_uuid()))?;
        if let Some(title) = draft.title {
            if title.is_empty() {
                return Err(StoreError::invalid(
                    "title",
                    "must not be empty (leave it None until there is one)",
                ));
            }
            limits::label("title", title, MAX_TITLE_CHARS)?;
        }
        limits::label("model", draft.model, MAX_MODEL_CHARS)?;
        let id = draft.id.unwrap_or_else(ConversationId::new);
        let subject = Subject::conversation(id);
        let mut conn = self.conn().await?;
        let created = async {
            // Taken and deleted again between the insert and the read: insert again (a
            // conversation deleted on every attempt is reported missing).
            for _ in 0..3 {
                // Column = value pairs rather than an `Insertable` struct: an `Option` field
                // of a derived `Insertable` renders `DEFAULT` for `None`, which diesel will
                // not cache.
                let inserted = query_text(
                    diesel::insert_into(conversations::table)
                        .values((
                            conversations::id.eq(id),
                            conversations::title.eq(draft.title),
                            conversations::model.eq(draft.model),
                        ))
                        .on_conflict(conversations::id)
                        .do_nothing()
                        .returning(Conversation::as_returning()),
                )
                .one_row(&mut *conn)
                .await
                .optional()
                .map_err(|e| classify_diesel(e, &subject))?;
                if let Some(created) = inserted {
                    return Ok(created);
                }
                // The id is taken: by this conversation (a repeated create) or another one.
                let stored = LoadConversation { id }
                    .one_row::<Conversation>(&mut *conn)
                    .await
                    .optional()
                    .map_err(|e| classify_diesel(e, &subject))?;
                match stored {
                    Some(stored) if same_conversation(&stored, &draft) => return Ok(stored),
                    Some(_) => {
                        return Err(StoreError::conflict(
                            ConflictKind::IdempotencyMismatch,
                            Entity::Conversation,
                            id,
                        ));
                    }
                    None => continue,
                }
            }
            Err(StoreError::not_found(Entity::Conversation, id))
        }
        .await;
        settle(&mut conn, created)
    }

    pub(super) async fn get_conversation_body(
        &self,
        id: ConversationId,
    ) -> Result<ConversationWithTurns, StoreError> {
        // Fast path, one round trip: both loads pipelined in autocommit, the conversation
        // first (see `Loaded::consistent` for why that is a snapshot).
        let mut conn = self.read_conn().await?;
        let loaded = load(&conn, id).await.map_err(StoreError::from);
        let loaded = settle(&mut conn, loaded)?;
        drop(conn);
        match loaded.consistent() {
            Some(found) => found.ok_or_else(|| StoreError::not_found(Entity::Conversation, id)),
            None => {
                // The turns did not reach turn_count: the conversation was deleted between
                // the two loads, or the loads ran out of order. Read again in one snapshot.
                tracing::debug!(%id, "get_conversation: torn read, retrying in a snapshot");
                let options = TxOptions {
                    isolation: Isolation::RepeatableRead,
                    read_only: true,
                };
                let loaded = self
                    .tx(options, async |conn| {
                        let loaded = load(conn, id).await.map_err(StoreError::from);
                        settle(conn, loaded)
                    })
                    .await?;
                loaded
                    .snapshot()
                    .ok_or_else(|| StoreError::not_found(Entity::Conversation, id))
            }
        }
    }

    pub(super) async fn list_conversations_body(
        &self,
        query: ListQuery,
    ) -> Result<Page<ConversationSummary>, StoreError> {
        use conversations::{id, last_activity_at};

        let limit = limits::page_limit(query.limit)?;
        let after = query.after.as_ref().map(Cursor::position).transpose()?;
        // One row more than the page: its presence says there is a next page.
        let fetch = i64::from(limit) + 1;
        let mut conn = self.read_conn().await?;
        // Two queries of fixed types rather than one boxed query: diesel caches a prepared
        // statement only for a query whose type fixes its SQL.
        let items = match after {
            None => {
                conversations::table
                    .select(ConversationSummary::as_select())
                    .order((last_activity_at.desc(), id.desc()))
                    .limit(fetch)
                    .load(&mut *conn)
                    .await
            }
            // (last_activity_at, id) < (at, after_id), written so that `last_activity_at
            // <= at` bounds the (backward) scan of conversations_activity_idx and the rest only
            // filters the rows that tie on `at`.
            Some((at, after_id)) => {
                conversations::table
                    .select(ConversationSummary::as_select())
                    .filter(
                        last_activity_at
                            .le(at)
                            .and(last_activity_at.lt(at).or(id.lt(after_id))),
                    )
                    .order((last_activity_at.desc(), id.desc()))
                    .limit(fetch)
                    .load(&mut *conn)
                    .await
            }
        };
        let mut items: Vec<ConversationSummary> =
            settle(&mut conn, items.map_err(StoreError::from))?;
        let page = limit as usize;
        let next = if items.len() > page {
            items.truncate(page);
            items
                .last()
                .map(|last| Cursor::after(last.last_activity_at, last.id))
        } else {
            None
        };
        Ok(Page { items, next })
    }

    pub(super) async fn delete_conversation_body(
        &self,
        id: ConversationId,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        let deleted = query_text(diesel::delete(conversations::table.find(id)))
            .execute(&mut *conn)
            .await
            .map_err(StoreError::from);
        if settle(&mut conn, deleted)? == 0 {
            return Err(StoreError::not_found(Entity::Conversation, id));
        }
        Ok(())
    }
}

/// True when `stored` is what creating `draft` stores.
fn same_conversation(stored: &Conversation, draft: &ConversationDraft<'_>) -> bool {
    stored.title.as_deref() == draft.title && stored.model == draft.model
}

/// What the two loads of [`load`] returned.
struct Loaded {
    conversation: Option<Conversation>,
    turns: Vec<Turn>,
}

/// Loads the conversation and its turns, pipelined on one connection: both statements go
/// out before the first answer comes back. `biased` polls the conversation's load first, so
/// its `Bind/Execute` is queued (and run by the server) before the turns'.
async fn load(conn: &AsyncPgConnection, id: ConversationId) -> QueryResult<Loaded> {
    let (mut first, mut second) = (conn, conn);
    let conversation = query_text(LoadConversation { id }).one_row::<Conversation>(&mut first);
    let turns = LoadTurns {
        conversation_id: id,
    }
    .load::<DecodedTurn>(&mut second);
    let (conversation, turns) =
        tokio::try_join!(biased; async { conversation.await.optional() }, turns)?;
    Ok(Loaded {
        conversation,
        turns: DecodedTurn::turns(turns),
    })
}

impl Loaded {
    /// The result of the fast path, when it is provably one moment's state:
    /// `Some(None)` missing, `Some(Some(_))` found, `None` torn (read again in a snapshot).
    ///
    /// Why `turns[..turn_count]` is the snapshot of the conversation's read (the two loads
    /// ran as separate statements, the conversation first):
    /// - a turn and the counter update that numbers it commit together (one statement), and
    ///   appends to a conversation are serialized by its row lock, so turn_count = n at the
    ///   first read means turns 1..=n had all committed by then, and the turns load, which
    ///   started later, sees them all;
    /// - turns are never updated and never deleted on their own (only with their
    ///   conversation), so those n rows are what they were at the first read;
    /// - turns appended between the reads have seq > n and are cut off.
    ///
    /// If fewer than n turns came back (the conversation was deleted in between, or the
    /// statements ran in the other order), the result is torn.
    fn consistent(self) -> Option<Option<ConversationWithTurns>> {
        let Some(conversation) = self.conversation else {
            return Some(None);
        };
        let n = usize::try_from(conversation.turn_count).unwrap_or_default();
        let mut turns = self.turns;
        // Seqs are unique, >= 1 and sorted: the n-th being n means they are exactly 1..=n.
        let complete = n == 0
            || turns
                .get(n - 1)
                .is_some_and(|t| t.seq == conversation.turn_count);
        if !complete {
            return None;
        }
        turns.truncate(n);
        Some(Some(ConversationWithTurns {
            conversation,
            turns,
        }))
    }

    /// The result of a read inside one REPEATABLE READ snapshot: consistent by construction.
    fn snapshot(self) -> Option<ConversationWithTurns> {
        let conversation = self.conversation?;
        Some(ConversationWithTurns {
            conversation,
            turns: self.turns,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pg::fixtures::{self, seqs};

    fn loaded(turn_count: i32, seqs: &[i32]) -> Loaded {
        let conversation = fixtures::conversation(turn_count);
        Loaded {
            turns: fixtures::turns(conversation.id, seqs),
            conversation: Some(conversation),
        }
    }

    #[test]
    fn turns_appended_after_the_conversation_was_read_are_cut_off() {
        assert_eq!(
            seqs(loaded(2, &[1, 2, 3, 4]).consistent()),
            Some(vec![1, 2])
        );
        assert_eq!(seqs(loaded(0, &[1]).consistent()), Some(vec![]));
        assert_eq!(
            seqs(loaded(3, &[1, 2, 3]).consistent()),
            Some(vec![1, 2, 3])
        );
    }

    #[test]
    fn fewer_turns_than_the_count_is_a_torn_read() {
        assert!(loaded(3, &[1, 2]).consistent().is_none());
        assert!(loaded(1, &[]).consistent().is_none());
    }

    #[test]
    fn a_missing_conversation_is_found_missing() {
        let missing = Loaded {
            conversation: None,
            turns: Vec::new(),
        };
        assert!(matches!(missing.consistent(), Some(None)));
    }
}
