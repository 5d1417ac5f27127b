//! A write whose commit fails is never acknowledged.
//!
//! An autocommit statement commits when the server reaches the `Sync` after it, after its
//! rows went out: a backend terminated there, a server restart, a serialization failure or
//! a deferred constraint at commit all undo a statement whose row the client may already
//! hold. A deferred constraint trigger that raises at commit makes that window
//! deterministic: every write below must fail, and leave the database as it was. (The chaos
//! soak once saw an append acknowledged with its seq and then absent, through a terminated
//! backend: diesel-async's `get_result` returns at the first row.)

use std::fmt::Debug;

use aura_store::{
    ConversationDraft, ConversationEdit, ConversationId, ConversationStore, RequestDraft,
    RequestId, RequestKey, RequestStore, RunDraft, RunEnd, RunId, RunKey, RunStore, StoreError,
    TurnId, TurnStore,
};
use aura_testkit::TestDb;

use crate::common::{conversation, store, turn};

/// Every commit that changed a row of `aura.<table>` fails (until [`allow`]).
async fn refuse_commits(db: &TestDb, table: &str) {
    let admin = db.superuser_client().await;
    admin
        .batch_execute(&format!(
            "CREATE OR REPLACE FUNCTION public.refuse_commit() RETURNS trigger \
                 LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'commit refused by the test'; END $$; \
             CREATE CONSTRAINT TRIGGER refuse_commit AFTER INSERT OR UPDATE OR DELETE \
                 ON aura.{table} DEFERRABLE INITIALLY DEFERRED \
                 FOR EACH ROW EXECUTE FUNCTION public.refuse_commit()"
        ))
        .await
        .unwrap_or_else(|e| panic!("refuse commits on {table}: {e}"));
}

/// Undoes [`refuse_commits`].
async fn allow(db: &TestDb, table: &str) {
    let admin = db.superuser_client().await;
    admin
        .batch_execute(&format!("DROP TRIGGER refuse_commit ON aura.{table}"))
        .await
        .unwrap_or_else(|e| panic!("allow commits on {table}: {e}"));
}

/// `what` must have failed.
fn refused<T: Debug>(what: &str, result: Result<T, StoreError>) {
    if let Ok(value) = result {
        panic!("{what} was acknowledged although its commit failed: {value:?}");
    }
}

/// One text computed by `sql` as the superuser.
async fn text(db: &TestDb, sql: &str) -> String {
    let admin = db.superuser_client().await;
    admin
        .query_one(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get(0)
}

#[tokio::test]
async fn creates_and_appends_whose_commit_fails_are_not_acknowledged() {
    let (db, store) = store().await;
    let c = conversation(&store).await;

    refuse_commits(&db, "conversations").await;
    refused(
        "create_conversation",
        store.create_conversation(ConversationDraft::new("m")).await,
    );
    refused(
        "create_conversation with an id",
        store
            .create_conversation(ConversationDraft::new("m").with_id(ConversationId::new()))
            .await,
    );
    refused(
        "update_conversation",
        store
            .update_conversation(c.id, ConversationEdit::new().title("renamed"))
            .await,
    );
    refused("delete_conversation", store.delete_conversation(c.id).await);
    allow(&db, "conversations").await;

    refuse_commits(&db, "turns").await;
    refused(
        "append_turn",
        store.append_turn(c.id, turn("lost?", 3, 4)).await,
    );
    refused(
        "append_turn with an id",
        store
            .append_turn(c.id, turn("lost?", 3, 4).with_id(TurnId::new()))
            .await,
    );
    allow(&db, "turns").await;

    refuse_commits(&db, "runs").await;
    refused(
        "start_run",
        store.start_run(c.id, RunDraft::with_id(RunId::new())).await,
    );
    refused(
        "start_run",
        store.start_run(c.id, RunDraft::default()).await,
    );
    allow(&db, "runs").await;

    assert_eq!(
        text(
            &db,
            "SELECT format('%s conversations, %s turns, turn_count %s, title %s, %s runs', \
                 (SELECT count(*) FROM aura.conversations), (SELECT count(*) FROM aura.turns), \
                 (SELECT turn_count FROM aura.conversations), \
                 (SELECT coalesce(title, '-') FROM aura.conversations), \
                 (SELECT count(*) FROM aura.runs))"
        )
        .await,
        "1 conversations, 0 turns, turn_count 0, title -, 0 runs",
        "a refused commit left something behind"
    );
}

#[tokio::test]
async fn run_and_request_changes_whose_commit_fails_are_not_acknowledged() {
    let (db, store) = store().await;
    let c = conversation(&store).await;
    let run = store
        .start_run(c.id, RunDraft::default())
        .await
        .expect("start run");
    let run = RunKey::new(c.id, run.id);
    let asked = store
        .create_request(c.id, RequestDraft::new(Some(run.id), "go on?"))
        .await
        .expect("create request");
    let asked = RequestKey::new(c.id, asked.id);

    refuse_commits(&db, "ask_user_requests").await;
    refused(
        "create_request",
        store
            .create_request(
                c.id,
                RequestDraft::new(Some(run.id), "again?").with_id(RequestId::new()),
            )
            .await,
    );
    refused("answer_request", store.answer_request(asked, "yes").await);
    allow(&db, "ask_user_requests").await;

    refuse_commits(&db, "runs").await;
    refused(
        "finish_run",
        store.finish_run(run, RunEnd::Completed, None).await,
    );
    refused("stop_run", store.stop_run(run, None).await);
    allow(&db, "runs").await;

    assert_eq!(
        text(
            &db,
            "SELECT format('%s requests, %s, run %s', \
                 (SELECT count(*) FROM aura.ask_user_requests), \
                 (SELECT string_agg(status, ',') FROM aura.ask_user_requests), \
                 (SELECT status FROM aura.runs))"
        )
        .await,
        "1 requests, pending, run running",
        "a refused commit left something behind"
    );
}
