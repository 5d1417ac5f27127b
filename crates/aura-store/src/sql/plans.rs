//! The listings' statements use their index, as the planner sees them on a database of
//! realistic shape (one conversation of 10,000 turns among 2,000 of 40, runs and
//! ask-user requests to match, `ANALYZE`d): each statement, exactly as the store sends it
//! (its SQL text from diesel), is `PREPARE`d and `EXPLAIN`ed with both a custom plan (the
//! first executions of a prepared statement) and the generic plan (what Postgres may
//! switch to after five), and must read its index with no sequential scan of its table.
//! No planner setting is changed but `plan_cache_mode`, which picks between the two plans.

use aura_schema::ConversationId;
use diesel::pg::Pg;
use diesel::query_builder::QueryFragment;
use serde_json::Value;
use tokio_postgres::{Client, SimpleQueryMessage};

use super::{LatestTurns, PendingAfter, PendingPage, RunsAfter, RunsPage, TurnsAfter, TurnsBefore};

const BIG: &str = "0190b000-0000-7000-8000-000000000001";

/// The statement's SQL text, `$n` placeholders and all.
fn sql<Q: QueryFragment<Pg>>(query: &Q) -> String {
    let text = diesel::debug_query::<Pg, _>(query).to_string();
    text.split(" -- binds:")
        .next()
        .unwrap_or_default()
        .to_owned()
}

async fn seed(client: &Client) {
    let uuid7 = |ts: &str, h: &str| {
        format!(
            "(lpad(to_hex((extract(epoch FROM {ts}) * 1000)::bigint), 12, '0') || '7' || \
             substr({h}, 1, 3) || '8' || substr({h}, 4, 15))::uuid"
        )
    };
    let conversation = uuid7("t", "md5(i::text)");
    let run = uuid7(
        "c.started_at + r * interval '1 second'",
        "md5(random()::text)",
    );
    let request = uuid7(
        "c.started_at + q * interval '1 second'",
        "md5(random()::text)",
    );
    let sql = format!(
        "INSERT INTO aura.conversations (id, started_at, updated_at) \
           SELECT {conversation}, t, t FROM (SELECT i, now() - i * interval '1 minute' AS t \
             FROM generate_series(1, 2000) i) s;
         INSERT INTO aura.conversations (id, turn_count) VALUES ('{BIG}', 10000);
         INSERT INTO aura.turns (conversation_id, id, seq, role, content)
           SELECT c.id, gen_random_uuid(), s, 'user', repeat('a turn of a chat ', 12)
             FROM aura.conversations c,
                  generate_series(1, CASE WHEN c.id = '{BIG}' THEN 10000 ELSE 40 END) s;
         UPDATE aura.conversations SET turn_count = 40 WHERE id <> '{BIG}';
         INSERT INTO aura.runs (conversation_id, id, status, started_at, ended_at)
           SELECT c.id, {run}, 'completed', c.started_at + r * interval '1 second', now()
             FROM aura.conversations c,
                  generate_series(1, CASE WHEN c.id = '{BIG}' THEN 2000 ELSE 3 END) r;
         INSERT INTO aura.ask_user_requests (conversation_id, id, question, status, answer,
                                             created_at)
           SELECT c.id, {request}, 'q?',
                  CASE WHEN x.p THEN 'pending' ELSE 'answered' END,
                  CASE WHEN x.p THEN NULL ELSE 'a' END,
                  c.started_at + q * interval '1 second'
             FROM aura.conversations c, generate_series(1, 20) q,
                  LATERAL (SELECT q = 1 AND random() < 0.1 AS p) x;
         ANALYZE aura.conversations, aura.turns, aura.runs, aura.ask_user_requests;"
    );
    client.batch_execute(&sql).await.expect("seed the database");
}

/// Every `(node type, relation, index)` of a JSON plan.
fn nodes(plan: &Value, out: &mut Vec<(String, String, String)>) {
    let field = |key: &str| plan[key].as_str().unwrap_or_default().to_owned();
    out.push((
        field("Node Type"),
        field("Relation Name"),
        field("Index Name"),
    ));
    for child in plan["Plans"].as_array().into_iter().flatten() {
        nodes(child, out);
    }
}

async fn explain(client: &Client, statement: &str) -> Vec<(String, String, String)> {
    let messages = client.simple_query(statement).await.expect(statement);
    let text = messages
        .iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
            _ => None,
        })
        .expect("a plan");
    let plan: Value = serde_json::from_str(&text).expect("JSON plan");
    let mut out = Vec::new();
    nodes(&plan[0]["Plan"], &mut out);
    out
}

#[tokio::test]
async fn the_listings_read_their_index_and_never_scan_the_table() {
    let db = aura_testkit::TestDb::new().await;
    let client = db.superuser_client().await;
    seed(&client).await;
    let c = ConversationId::from_uuid(BIG.parse().expect("uuid"));
    let some_run = "'0190b000-0000-7000-8000-0000000000aa'";
    let at = "now() - interval '1 day'";
    let cases: [(String, String, &str, &str); 7] = [
        (
            sql(&TurnsAfter {
                conversation_id: c,
                seq: 0,
                limit: 0,
            }),
            format!("'{BIG}', 5000, 51"),
            "turns",
            "turns_conversation_id_seq_key",
        ),
        (
            sql(&TurnsBefore {
                conversation_id: c,
                seq: 0,
                limit: 0,
            }),
            format!("'{BIG}', 5000, 51"),
            "turns",
            "turns_conversation_id_seq_key",
        ),
        (
            sql(&LatestTurns {
                conversation_id: c,
                limit: 0,
            }),
            format!("'{BIG}', 41"),
            "turns",
            "turns_conversation_id_seq_key",
        ),
        (
            sql(&RunsPage {
                conversation_id: c,
                limit: 0,
            }),
            format!("'{BIG}', 51"),
            "runs",
            "runs_started_idx",
        ),
        (
            sql(&RunsAfter {
                conversation_id: c,
                started_at: chrono::Utc::now(),
                id: aura_schema::RunId::new(),
                limit: 0,
            }),
            format!("'{BIG}', {at}, {some_run}, 51"),
            "runs",
            "runs_started_idx",
        ),
        (
            sql(&PendingPage { limit: 0 }),
            "101".to_owned(),
            "ask_user_requests",
            "ask_user_requests_pending_created_idx",
        ),
        (
            sql(&PendingAfter {
                created_at: chrono::Utc::now(),
                conversation_id: c,
                id: aura_schema::RequestId::new(),
                limit: 0,
            }),
            format!("{at}, '{BIG}', {some_run}, 101"),
            "ask_user_requests",
            "ask_user_requests_pending_created_idx",
        ),
    ];
    for (i, (text, args, table, index)) in cases.iter().enumerate() {
        client
            .batch_execute(&format!("PREPARE s{i} AS {text}"))
            .await
            .unwrap_or_else(|e| panic!("prepare {text}: {e}"));
        for mode in ["force_custom_plan", "force_generic_plan"] {
            client
                .batch_execute(&format!("SET plan_cache_mode = {mode}"))
                .await
                .expect("plan_cache_mode");
            let plan = explain(
                &client,
                &format!("EXPLAIN (FORMAT JSON) EXECUTE s{i}({args})"),
            )
            .await;
            let what = format!("{mode} plan of {text}: {plan:?}");
            assert!(
                !plan
                    .iter()
                    .any(|(node, relation, _)| node == "Seq Scan" && relation == table),
                "a sequential scan of {table} in the {what}"
            );
            assert!(
                plan.iter()
                    .any(|(node, relation, name)| node.starts_with("Index")
                        && relation == table
                        && name == index),
                "{index} not read in the {what}"
            );
            assert!(
                !plan.iter().any(|(node, _, _)| node == "Sort"),
                "a sort in the {what} (the index gives the order)"
            );
        }
    }
}
