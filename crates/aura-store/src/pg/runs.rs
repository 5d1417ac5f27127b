//! [`RunStore`](crate::RunStore) for [`PgStore`].

use aura_db::{AsyncPgConnection, TxOptions};
use aura_schema::{ConversationId, Run, RunId, RunStatus, runs};
use diesel::{ExpressionMethods, OptionalExtension, QueryDsl, SelectableHelper};
use diesel_async::RunQueryDsl;

use super::one_row::OneRowDsl;
use super::{PgStore, settle};
use crate::classify::{classify_diesel, is_violation};
use crate::error::{ConflictKind, Entity, StoreError, Subject};
use crate::input::{RunDraft, RunEnd};
use crate::keys::RunKey;
use crate::limits;
use crate::sql::{CancelPending, EndRun};
use crate::telemetry::query_text;
use crate::views::StoppedRun;

/// The operations of [`RunStore`](crate::RunStore), each run inside its span by `super::traced`.
impl PgStore {
    pub(super) async fn start_run_body(
        &self,
        conversation_id: ConversationId,
        draft: RunDraft,
    ) -> Result<Run, StoreError> {
        limits::caller_id(draft.id.map(|id| id.as_uuid()))?;
        let key = RunKey::new(conversation_id, draft.id.unwrap_or_else(RunId::new));
        let subject = Subject::row(conversation_id, key, Some(key.id));
        let mut conn = self.conn().await?;
        let run = async {
            // A second running run violates runs_one_running_idx (Conflict), a missing
            // conversation runs_conversation_id_fkey (NotFound): one statement either way.
            // A stored run with this id (a repeated start) inserts nothing.
            let inserted = query_text(
                diesel::insert_into(runs::table)
                    .values((
                        runs::conversation_id.eq(conversation_id),
                        runs::id.eq(key.id),
                        runs::status.eq(RunStatus::Running),
                    ))
                    .on_conflict((runs::conversation_id, runs::id))
                    .do_nothing()
                    .returning(Run::as_returning()),
            )
            .one_row(&mut *conn)
            .await
            .optional();
            let taken = match inserted {
                Ok(Some(run)) => return Ok(run),
                Ok(None) => None,
                // A concurrent start of the same id can meet that run in the one-running
                // index before its own primary key: then it is a repeat too.
                Err(err) if draft.id.is_some() && is_violation(&err, "runs_one_running_idx") => {
                    Some(classify_diesel(err, &subject))
                }
                Err(err) => return Err(classify_diesel(err, &subject)),
            };
            // A run has no content beyond its key: the same id is the same run.
            let stored = runs::table
                .find((key.conversation_id, key.id))
                .select(Run::as_select())
                .one_row(&mut *conn)
                .await
                .optional()
                .map_err(|e| classify_diesel(e, &subject))?;
            match (stored, taken) {
                (Some(run), _) => Ok(run),
                (None, Some(running)) => Err(running),
                // Stored, then deleted with its conversation before this read.
                (None, None) => Err(StoreError::not_found(Entity::Conversation, conversation_id)),
            }
        }
        .await;
        settle(&mut conn, run)
    }

    pub(super) async fn get_run_body(&self, key: RunKey) -> Result<Run, StoreError> {
        let mut conn = self.read_conn().await?;
        let run = runs::table
            .find((key.conversation_id, key.id))
            .select(Run::as_select())
            .one_row(&mut *conn)
            .await
            .optional()
            .map_err(StoreError::from);
        settle(&mut conn, run)?.ok_or_else(|| StoreError::not_found(Entity::Run, key))
    }

    /// One transaction of three round trips: `BEGIN`, the two `UPDATE`s pipelined, `COMMIT`.
    ///
    /// The cancel goes out before we know whether the run was running: if it was not, the
    /// transaction rolls back and nothing changed. The server runs the second statement
    /// only after the first has finished (and waited for any `create_request` holding the
    /// run), so in READ COMMITTED it sees every request created before the stop.
    pub(super) async fn stop_run_body(
        &self,
        key: RunKey,
        reason: Option<&str>,
    ) -> Result<StoppedRun, StoreError> {
        if let Some(reason) = reason {
            limits::bounded_text("reason", reason)?;
        }
        self.tx(TxOptions::default(), async |conn| {
            let shared: &AsyncPgConnection = conn;
            let stopped = async {
                let (mut first, mut second) = (shared, shared);
                let end = EndRun {
                    conversation_id: key.conversation_id,
                    id: key.id,
                    status: RunStatus::Stopped,
                    reason,
                }
                .one_row::<Run>(&mut first);
                let cancel = CancelPending {
                    conversation_id: key.conversation_id,
                    run_id: key.id,
                }
                .execute(&mut second);
                let (run, cancelled) =
                    tokio::try_join!(biased; async { end.await.optional() }, cancel)?;
                match run {
                    Some(run) => Ok(StoppedRun {
                        run,
                        cancelled_requests: cancelled as u64,
                    }),
                    None => Err(why_not_running(shared, key).await),
                }
            }
            .await;
            settle(conn, stopped)
        })
        .await
    }

    pub(super) async fn finish_run_body(
        &self,
        key: RunKey,
        end: RunEnd,
        reason: Option<&str>,
    ) -> Result<Run, StoreError> {
        if let Some(reason) = reason {
            limits::bounded_text("reason", reason)?;
        }
        let mut conn = self.conn().await?;
        let finished = async {
            let run = query_text(EndRun {
                conversation_id: key.conversation_id,
                id: key.id,
                status: end.status(),
                reason,
            })
            .one_row::<Run>(&mut &*conn)
            .await
            .optional()?;
            match run {
                Some(run) => Ok(run),
                None => Err(why_not_running(&conn, key).await),
            }
        }
        .await;
        settle(&mut conn, finished)
    }
}

/// NotFound or Conflict for a run that the `UPDATE … WHERE status = 'running'` missed.
async fn why_not_running(mut conn: &AsyncPgConnection, key: RunKey) -> StoreError {
    let status = runs::table
        .find((key.conversation_id, key.id))
        .select(runs::status)
        .one_row::<RunStatus>(&mut conn)
        .await
        .optional();
    match status {
        Ok(None) => StoreError::not_found(Entity::Run, key),
        Ok(Some(status)) => {
            StoreError::conflict(ConflictKind::RunNotRunning { status }, Entity::Run, key)
        }
        Err(err) => err.into(),
    }
}
