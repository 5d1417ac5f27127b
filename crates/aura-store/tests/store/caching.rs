//! Every statement that runs per call is prepared once per connection and reused.

use aura_store::{
    ConversationDraft, ConversationEdit, ConversationId, ConversationStore, ListQuery,
    RequestDraft, RequestId, RequestKey, RequestStore, RunDraft, RunEnd, RunId, RunKey, RunStore,
    TurnId, TurnQuery, TurnStore,
};
use diesel::QueryableByName;
use diesel::sql_types::Text;
use diesel_async::RunQueryDsl;

use crate::common::{store_with_pool, turn};

#[derive(QueryableByName)]
struct Prepared {
    #[diesel(sql_type = Text)]
    statement: String,
}

async fn prepared(store: &aura_store::PgStore) -> Vec<String> {
    let mut conn = store.pool().get().await.expect("the pool's one connection");
    diesel::sql_query("SELECT statement FROM pg_prepared_statements ORDER BY statement")
        .load::<Prepared>(&mut *conn)
        .await
        .expect("pg_prepared_statements")
        .into_iter()
        .map(|p| p.statement)
        .collect()
}

/// Calls every operation once on the success path, and each create and append once more
/// with its id (the repeat path).
async fn every_operation(store: &aura_store::PgStore) {
    let draft = ConversationDraft::new("m").with_id(ConversationId::new());
    let c = store.create_conversation(draft).await.expect("create").id;
    store.create_conversation(draft).await.expect("repeat");
    let keyed = turn("hi", 1, 2).with_id(TurnId::new());
    store.append_turn(c, keyed).await.expect("append");
    store.append_turn(c, keyed).await.expect("repeat");
    store
        .append_turn(c, turn("no id", 1, 2))
        .await
        .expect("append");
    store.get_conversation(c).await.expect("get");
    for query in [
        TurnQuery::first(1),
        TurnQuery::after(1, 1),
        TurnQuery::before(3, 1),
        TurnQuery::latest(1),
    ] {
        store.list_turns(c, query).await.expect("turn page");
    }
    store
        .get_conversation_with_last_turns(c, 2)
        .await
        .expect("last turns");
    let renamed = store
        .update_conversation(c, ConversationEdit::new().title("t"))
        .await
        .expect("rename");
    store
        .update_conversation(
            c,
            ConversationEdit::new()
                .model("m2")
                .if_unchanged_since(renamed.updated_at),
        )
        .await
        .expect("edit");
    let page = store
        .list_conversations(ListQuery {
            limit: Some(1),
            after: None,
        })
        .await
        .expect("list");
    store
        .list_conversations(ListQuery {
            limit: Some(1),
            after: page.next,
        })
        .await
        .expect("list after");
    let run = RunDraft::with_id(RunId::new());
    store.start_run(c, run).await.expect("start");
    let run = store.start_run(c, run).await.expect("repeat");
    let ask = RequestDraft::new(Some(run.id), "q?").with_id(RequestId::new());
    store.create_request(c, ask).await.expect("ask");
    let request = store.create_request(c, ask).await.expect("repeat");
    store
        .answer_request(RequestKey::from(&request), "a")
        .await
        .expect("answer");
    store
        .mark_requests_resumed(c, &[request.id])
        .await
        .expect("resume");
    store.list_pending_requests(c).await.expect("pending");
    store.find_running_run(c).await.expect("running");
    store
        .list_run_requests(RunKey::from(&run))
        .await
        .expect("run's requests");

    store
        .stop_run(RunKey::from(&run), None)
        .await
        .expect("stop");
    let run = store
        .start_run(c, RunDraft::default())
        .await
        .expect("start");
    store
        .finish_run(RunKey::from(&run), RunEnd::Completed, None)
        .await
        .expect("finish");
    for q in ["a?", "b?"] {
        store
            .create_request(c, RequestDraft::new(None, q))
            .await
            .expect("ask");
    }
    for listing in 0..2 {
        let mut query = ListQuery {
            limit: Some(1),
            after: None,
        };
        for _ in 0..2 {
            let next = if listing == 0 {
                store.list_runs(c, query.clone()).await.expect("runs").next
            } else {
                store
                    .list_all_pending_requests(query.clone())
                    .await
                    .expect("pending everywhere")
                    .next
            };
            query.after = next;
        }
    }
    store.delete_conversation(c).await.expect("delete");
}

#[tokio::test]
async fn statements_are_prepared_once_per_connection() {
    let db = aura_testkit::TestDb::new().await;
    let store = store_with_pool(&db, 1).await;
    every_operation(&store).await;
    let warm = prepared(&store).await;
    for _ in 0..3 {
        every_operation(&store).await;
    }
    let after = prepared(&store).await;
    assert_eq!(after, warm, "no statement was prepared again");
    for hot in [
        "WITH c AS (UPDATE aura.conversations",
        "WITH prior AS (SELECT seq, created_at",
        "UPDATE aura.runs SET status",
        "UPDATE aura.ask_user_requests SET status = 'cancelled'",
        "UPDATE aura.ask_user_requests SET status = 'answered'",
        "UPDATE aura.ask_user_requests SET status = 'resumed'",
        "INSERT INTO aura.ask_user_requests",
        "UPDATE aura.conversations SET title",
        "SELECT conversation_id, id, seq, role, content, input_tokens, output_tokens, created_at, data FROM aura.turns WHERE conversation_id = $1 AND seq > $2",
        "SELECT conversation_id, id, seq, role, content, input_tokens, output_tokens, created_at, data FROM aura.turns WHERE conversation_id = $1 AND seq < $2",
        "SELECT conversation_id, id, seq, role, content, input_tokens, output_tokens, created_at, data FROM aura.turns WHERE conversation_id = $1 ORDER BY seq DESC",
    ] {
        let n = after.iter().filter(|s| s.starts_with(hot)).count();
        assert_eq!(n, 1, "{hot}: {after:#?}");
    }
}
