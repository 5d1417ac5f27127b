//! The run and request listings for [`PgStore`]: a conversation's runs (keyset pages), its
//! running run, a run's requests, and the pending requests of every conversation (keyset
//! pages, what a notifier polls).

use aura_db::AsyncPgConnection;
use aura_schema::{
    AskUserRequest, ConversationId, RequestStatus, Run, RunStatus, ask_user_requests, runs,
};
use diesel::{ExpressionMethods, OptionalExtension, QueryDsl, SelectableHelper};
use diesel_async::RunQueryDsl;

use super::one_row::OneRowDsl;
use super::{PgStore, exists, settle};
use crate::cursor::Cursor;
use crate::error::{Entity, StoreError};
use crate::keys::RunKey;
use crate::limits;
use crate::sql::{PendingAfter, PendingPage, RunsAfter, RunsPage};
use crate::telemetry::query_text;
use crate::views::{ListQuery, Page};

/// The operations, each run inside its span by `super::traced`.
impl PgStore {
    /// One statement per page; an empty first page costs a second round trip, to tell a
    /// missing conversation from one without runs.
    pub(super) async fn list_runs_body(
        &self,
        conversation_id: ConversationId,
        query: ListQuery,
    ) -> Result<Page<Run>, StoreError> {
        let limit = limits::page_limit(query.limit)?;
        let after = query.after.as_ref().map(Cursor::run_position).transpose()?;
        let fetch = i64::from(limit) + 1;
        let mut conn = self.read_conn().await?;
        let loaded = async {
            let mut shared: &AsyncPgConnection = &conn;
            let runs: Vec<Run> = match after {
                None => {
                    query_text(RunsPage {
                        conversation_id,
                        limit: fetch,
                    })
                    .load(&mut shared)
                    .await?
                }
                Some((started_at, id)) => {
                    query_text(RunsAfter {
                        conversation_id,
                        started_at,
                        id,
                        limit: fetch,
                    })
                    .load(&mut shared)
                    .await?
                }
            };
            if runs.is_empty() && !exists::conversation(shared, conversation_id).await? {
                return Err(StoreError::not_found(Entity::Conversation, conversation_id));
            }
            Ok(runs)
        }
        .await;
        let runs = settle(&mut conn, loaded)?;
        Ok(page(runs, limit, |run| {
            Cursor::after_run(run.started_at, run.id)
        }))
    }

    /// One statement on `runs_one_running_idx`; none running costs a second round trip, to
    /// tell a missing conversation from one at rest.
    pub(super) async fn find_running_run_body(
        &self,
        conversation_id: ConversationId,
    ) -> Result<Option<Run>, StoreError> {
        let mut conn = self.read_conn().await?;
        let found = async {
            let mut shared: &AsyncPgConnection = &conn;
            let run = query_text(
                runs::table
                    .filter(runs::conversation_id.eq(conversation_id))
                    .filter(runs::status.eq(RunStatus::Running))
                    .select(Run::as_select()),
            )
            .one_row(&mut shared)
            .await
            .optional()?;
            if run.is_none() && !exists::conversation(shared, conversation_id).await? {
                return Err(StoreError::not_found(Entity::Conversation, conversation_id));
            }
            Ok(run)
        }
        .await;
        settle(&mut conn, found)
    }

    /// One statement on `ask_user_requests_run_idx`; none costs a second round trip, to
    /// tell a missing run from one that asked nothing.
    pub(super) async fn list_run_requests_body(
        &self,
        key: RunKey,
    ) -> Result<Vec<AskUserRequest>, StoreError> {
        let mut conn = self.read_conn().await?;
        let loaded = async {
            let mut shared: &AsyncPgConnection = &conn;
            let requests: Vec<AskUserRequest> = query_text(
                ask_user_requests::table
                    .filter(ask_user_requests::conversation_id.eq(key.conversation_id))
                    .filter(ask_user_requests::run_id.eq(key.id))
                    .order((
                        ask_user_requests::created_at.asc(),
                        ask_user_requests::id.asc(),
                    ))
                    .select(AskUserRequest::as_select()),
            )
            .load(&mut shared)
            .await?;
            if requests.is_empty() && !exists::run(shared, key).await? {
                return Err(StoreError::not_found(Entity::Run, key));
            }
            Ok(requests)
        }
        .await;
        settle(&mut conn, loaded)
    }

    /// One statement per page on the partial index of pending requests.
    pub(super) async fn list_all_pending_requests_body(
        &self,
        query: ListQuery,
    ) -> Result<Page<AskUserRequest>, StoreError> {
        let limit = limits::page_limit(query.limit)?;
        let after = query
            .after
            .as_ref()
            .map(Cursor::request_position)
            .transpose()?;
        let fetch = i64::from(limit) + 1;
        let mut conn = self.read_conn().await?;
        let loaded = match after {
            None => {
                query_text(PendingPage { limit: fetch })
                    .load(&mut *conn)
                    .await
            }
            Some((created_at, conversation_id, id)) => {
                query_text(PendingAfter {
                    created_at,
                    conversation_id,
                    id,
                    limit: fetch,
                })
                .load(&mut *conn)
                .await
            }
        };
        let requests: Vec<AskUserRequest> = settle(&mut conn, loaded.map_err(StoreError::from))?;
        debug_assert!(requests.iter().all(|r| r.status == RequestStatus::Pending));
        Ok(page(requests, limit, |request| {
            Cursor::after_request(request.created_at, request.conversation_id, request.id)
        }))
    }
}

/// The page of `limit` rows out of `limit + 1` fetched, with the cursor after its last row
/// when the extra row says there is more.
fn page<T>(mut items: Vec<T>, limit: u32, cursor: impl Fn(&T) -> Cursor) -> Page<T> {
    let limit = limit as usize;
    let next = if items.len() > limit {
        items.truncate(limit);
        items.last().map(cursor)
    } else {
        None
    };
    Page { items, next }
}
