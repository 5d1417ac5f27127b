//! Pages of a conversation's turns ([`TurnStore::list_turns`](crate::TurnStore::list_turns))
//! and a conversation with its latest turns
//! ([`ConversationStore::get_conversation_with_last_turns`](crate::ConversationStore::get_conversation_with_last_turns))
//! for [`PgStore`].

use aura_db::{AsyncPgConnection, Isolation, TxOptions};
use aura_schema::{Conversation, ConversationId, Turn};
use diesel::{OptionalExtension, QueryResult};
use diesel_async::RunQueryDsl;

use super::one_row::OneRowDsl;
use super::{PgStore, exists, settle};
use crate::error::{Entity, StoreError};
use crate::limits;
use crate::sql::{DecodedTurn, LatestTurns, LoadConversation, TurnsAfter, TurnsBefore};
use crate::telemetry::query_text;
use crate::turn_query::{TurnPage, TurnPosition, TurnQuery};
use crate::views::ConversationWithTurns;

/// The operations, each run inside its span by `super::traced`.
impl PgStore {
    /// One statement (one snapshot: the page has no gap), `limit + 1` rows: the extra one
    /// says whether there is a next page. An empty page costs a second round trip, to tell
    /// a missing conversation from one without turns there.
    pub(super) async fn list_turns_body(
        &self,
        conversation_id: ConversationId,
        query: TurnQuery,
    ) -> Result<TurnPage, StoreError> {
        let limit = limits::turn_limit("limit", query.limit, false)?;
        match query.position {
            TurnPosition::After(seq) if seq < 0 => {
                return Err(StoreError::invalid(
                    "after",
                    format!("must be >= 0 (0: from the first turn), got {seq}"),
                ));
            }
            TurnPosition::Before(seq) if seq < 1 => {
                return Err(StoreError::invalid(
                    "before",
                    format!("must be >= 1, got {seq}"),
                ));
            }
            _ => {}
        }
        let fetch = i64::from(limit) + 1;
        let mut conn = self.read_conn().await?;
        let loaded = async {
            let mut shared: &AsyncPgConnection = &conn;
            // Newest first for the backward reads: the index is walked from the position
            // down; reversed below.
            let rows: Vec<DecodedTurn> = match query.position {
                TurnPosition::After(seq) => {
                    query_text(TurnsAfter {
                        conversation_id,
                        seq,
                        limit: fetch,
                    })
                    .load(&mut shared)
                    .await?
                }
                TurnPosition::Before(seq) => {
                    query_text(TurnsBefore {
                        conversation_id,
                        seq,
                        limit: fetch,
                    })
                    .load(&mut shared)
                    .await?
                }
                TurnPosition::Latest => {
                    query_text(LatestTurns {
                        conversation_id,
                        limit: fetch,
                    })
                    .load(&mut shared)
                    .await?
                }
            };
            if rows.is_empty() && !exists::conversation(shared, conversation_id).await? {
                return Err(StoreError::not_found(Entity::Conversation, conversation_id));
            }
            Ok(DecodedTurn::turns(rows))
        }
        .await;
        let mut turns = settle(&mut conn, loaded)?;
        let more = turns.len() > limit as usize;
        turns.truncate(limit as usize);
        let next = match query.position {
            // (`<[Turn]>::` because diesel-async's `RunQueryDsl` has a `first` and a `last`.)
            TurnPosition::After(_) => <[Turn]>::last(&turns)
                .filter(|_| more)
                .map(|last| TurnQuery::after(last.seq, limit)),
            TurnPosition::Before(_) | TurnPosition::Latest => {
                turns.reverse();
                <[Turn]>::first(&turns)
                    .filter(|_| more)
                    .map(|first| TurnQuery::before(first.seq, limit))
            }
        };
        Ok(TurnPage { turns, next })
    }

    /// The conversation and its latest turns, pipelined (one round trip), then checked to
    /// be one moment's state as `get_conversation` does; read again in a snapshot when not.
    pub(super) async fn get_conversation_with_last_turns_body(
        &self,
        id: ConversationId,
        turns: u32,
    ) -> Result<ConversationWithTurns, StoreError> {
        let n = limits::turn_limit("turns", turns, true)?;
        let mut conn = self.read_conn().await?;
        let loaded = load_last(&conn, id, n).await.map_err(StoreError::from);
        let loaded = settle(&mut conn, loaded)?;
        drop(conn);
        match loaded.consistent(n) {
            Some(found) => found.ok_or_else(|| StoreError::not_found(Entity::Conversation, id)),
            None => {
                tracing::debug!(%id, "get_conversation_with_last_turns: torn read, retrying in a snapshot");
                let options = TxOptions {
                    isolation: Isolation::RepeatableRead,
                    read_only: true,
                };
                let loaded = self
                    .tx(options, async |conn| {
                        let loaded = load_last(conn, id, n).await.map_err(StoreError::from);
                        settle(conn, loaded)
                    })
                    .await?;
                // One snapshot: consistent by construction.
                loaded
                    .consistent(n)
                    .flatten()
                    .ok_or_else(|| StoreError::not_found(Entity::Conversation, id))
            }
        }
    }
}

/// What [`load_last`] returned: the conversation, and its latest turns newest first.
struct LoadedLast {
    conversation: Option<Conversation>,
    newest_first: Vec<Turn>,
}

/// The conversation and its latest `n` turns, pipelined on one connection, the
/// conversation's load first (`biased`).
async fn load_last(
    conn: &AsyncPgConnection,
    id: ConversationId,
    n: u32,
) -> QueryResult<LoadedLast> {
    let (mut first, mut second) = (conn, conn);
    let conversation = query_text(LoadConversation { id }).one_row::<Conversation>(&mut first);
    if n == 0 {
        return Ok(LoadedLast {
            conversation: conversation.await.optional()?,
            newest_first: Vec::new(),
        });
    }
    let turns = LatestTurns {
        conversation_id: id,
        limit: i64::from(n),
    }
    .load::<DecodedTurn>(&mut second);
    let (conversation, newest_first) =
        tokio::try_join!(biased; async { conversation.await.optional() }, turns)?;
    Ok(LoadedLast {
        conversation,
        newest_first: DecodedTurn::turns(newest_first),
    })
}

impl LoadedLast {
    /// `Some(None)` missing, `Some(Some(_))` found and consistent, `None` torn.
    ///
    /// The conversation was read first, with `turn_count` = T: turns 1..=T had committed
    /// and never change (see `Loaded::consistent` in `conversations.rs`). The turns read
    /// later may include newer ones; cut to seq <= T, they must be exactly the latest
    /// `min(n, T)` of 1..=T, else appends in between pushed some out of the window (or the
    /// conversation was deleted): torn.
    fn consistent(self, n: u32) -> Option<Option<ConversationWithTurns>> {
        let Some(conversation) = self.conversation else {
            return Some(None);
        };
        let t = conversation.turn_count;
        let want = usize::try_from(t.min(i32::try_from(n).unwrap_or(i32::MAX))).unwrap_or(0);
        let mut turns: Vec<Turn> = self
            .newest_first
            .into_iter()
            .filter(|turn| turn.seq <= t)
            .collect();
        let complete =
            turns.len() == want && <[Turn]>::first(&turns).is_none_or(|newest| newest.seq == t);
        if !complete {
            return None;
        }
        turns.reverse();
        Some(Some(ConversationWithTurns {
            conversation,
            turns,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pg::fixtures::{self, seqs};

    fn loaded(turn_count: i32, newest_first: &[i32]) -> LoadedLast {
        let conversation = fixtures::conversation(turn_count);
        LoadedLast {
            newest_first: fixtures::turns(conversation.id, newest_first),
            conversation: Some(conversation),
        }
    }

    #[test]
    fn the_latest_turns_of_the_count_read_first_come_back_in_order() {
        assert_eq!(
            seqs(loaded(5, &[5, 4, 3]).consistent(3)),
            Some(vec![3, 4, 5])
        );
        assert_eq!(seqs(loaded(2, &[2, 1]).consistent(3)), Some(vec![1, 2]));
        assert_eq!(seqs(loaded(0, &[]).consistent(3)), Some(vec![]));
        assert_eq!(seqs(loaded(4, &[]).consistent(0)), Some(vec![]));
        // A turn appended between the reads, the window still holds the count's turns: the
        // newer one is cut off.
        assert_eq!(seqs(loaded(2, &[3, 2, 1]).consistent(3)), Some(vec![1, 2]));
    }

    #[test]
    fn a_window_pushed_past_the_count_is_torn() {
        // Appends in between push the oldest wanted turns out of the window.
        assert!(loaded(5, &[6, 5, 4, 3]).consistent(4).is_none());
        assert!(loaded(5, &[7, 6, 5, 4]).consistent(4).is_none());
        // Deleted in between: no turns for a count of 2.
        assert!(loaded(2, &[]).consistent(3).is_none());
    }
}
