//! The database refuses what the data model forbids, whatever the client: CHECK constraints
//! (SQLSTATE 23514), the one-running-run index, the same-conversation foreign keys, the
//! cascades, and the generated last-activity column. Plain SQL as the app role.

mod common;

use aura_testkit::TestDb;
use tokio_postgres::Client;

const C1: &str = "0190a000-0000-7000-8000-000000000001";
const C2: &str = "0190a000-0000-7000-8000-000000000002";
const R1: &str = "0190a000-0000-7000-8000-0000000000a1";
const R2: &str = "0190a000-0000-7000-8000-0000000000a2";

async fn setup() -> (TestDb, Client) {
    let db = TestDb::new().await;
    let app = db.app_client().await;
    app.batch_execute(&format!(
        "INSERT INTO conversations (id) VALUES ('{C1}'), ('{C2}');
         INSERT INTO runs (conversation_id, id, status) VALUES ('{C1}', '{R1}', 'running');"
    ))
    .await
    .expect("seed rows");
    (db, app)
}

/// Runs `sql` and returns the SQLSTATE and constraint name it failed with.
async fn fails(app: &Client, sql: &str) -> (String, String) {
    match app.batch_execute(sql).await {
        Ok(()) => panic!("expected a failure: {sql}"),
        Err(e) => {
            let db = e
                .as_db_error()
                .unwrap_or_else(|| panic!("not a server error: {e}"));
            (
                db.code().code().to_owned(),
                db.constraint().unwrap_or_default().to_owned(),
            )
        }
    }
}

fn turn(role: &str, seq: i32, input: i32, output: i32) -> String {
    format!(
        "INSERT INTO turns (conversation_id, id, seq, role, content, input_tokens, output_tokens) \
         VALUES ('{C1}', gen_random_uuid(), {seq}, '{role}', 'hi', {input}, {output})"
    )
}

fn request(status: &str, answer: Option<&str>) -> String {
    let answer = answer.map_or("NULL".to_owned(), |a| format!("'{a}'"));
    format!(
        "INSERT INTO ask_user_requests (conversation_id, id, run_id, question, status, answer) \
         VALUES ('{C1}', gen_random_uuid(), '{R1}', 'ok?', '{status}', {answer})"
    )
}

#[tokio::test]
async fn check_constraints_reject_bad_values_with_23514() {
    let (_db, app) = setup().await;
    let cases = [
        (turn("wizard", 1, 0, 0), "turns_role_check"),
        (turn("User", 1, 0, 0), "turns_role_check"),
        (turn("user", 0, 0, 0), "turns_seq_check"),
        (turn("user", 1, -1, 0), "turns_input_tokens_check"),
        (turn("user", 1, 0, -5), "turns_output_tokens_check"),
        (
            format!(
                "INSERT INTO runs (conversation_id, id, status) \
                 VALUES ('{C1}', gen_random_uuid(), 'paused')"
            ),
            "runs_status_check",
        ),
        (request("open", None), "ask_user_requests_status_check"),
        (request("answered", None), "ask_user_requests_answer_check"),
        (request("resumed", None), "ask_user_requests_answer_check"),
        (
            request("pending", Some("yes")),
            "ask_user_requests_answer_check",
        ),
        (
            request("cancelled", Some("yes")),
            "ask_user_requests_answer_check",
        ),
        (
            format!("UPDATE conversations SET input_tokens = -1 WHERE id = '{C1}'"),
            "conversations_input_tokens_check",
        ),
        (
            format!("UPDATE conversations SET output_tokens = -1 WHERE id = '{C1}'"),
            "conversations_output_tokens_check",
        ),
        (
            format!("UPDATE conversations SET turn_count = -1 WHERE id = '{C1}'"),
            "conversations_turn_count_check",
        ),
    ];
    for (sql, constraint) in &cases {
        assert_eq!(
            fails(&app, sql).await,
            ("23514".to_owned(), (*constraint).to_owned()),
            "{sql}"
        );
    }
    // Every allowed value passes.
    for (seq, role) in ["user", "assistant", "system", "tool"].iter().enumerate() {
        let seq = i32::try_from(seq).expect("small") + 1;
        app.batch_execute(&turn(role, seq, 3, 4))
            .await
            .unwrap_or_else(|e| panic!("role {role}: {}", common::pg_error(&e)));
    }
    for (status, answer) in [
        ("pending", None),
        ("answered", Some("yes")),
        ("resumed", Some("no")),
        ("cancelled", None),
    ] {
        app.batch_execute(&request(status, answer))
            .await
            .unwrap_or_else(|e| panic!("status {status}: {}", common::pg_error(&e)));
    }
}

#[tokio::test]
async fn one_running_run_per_conversation_and_unique_seq() {
    let (_db, app) = setup().await;
    let second = format!(
        "INSERT INTO runs (conversation_id, id, status) VALUES ('{C1}', '{R2}', 'running')"
    );
    assert_eq!(
        fails(&app, &second).await,
        ("23505".to_owned(), "runs_one_running_idx".to_owned())
    );
    // Another conversation may run at the same time; and once R1 ends, C1 may run again.
    app.batch_execute(&format!(
        "INSERT INTO runs (conversation_id, id, status) VALUES ('{C2}', '{R2}', 'running');
         UPDATE runs SET status = 'completed', ended_at = now() WHERE id = '{R1}';
         INSERT INTO runs (conversation_id, id, status) VALUES ('{C1}', '{R2}', 'running');"
    ))
    .await
    .expect("running runs in two conversations, then a new one in C1");

    app.batch_execute(&turn("user", 1, 0, 0))
        .await
        .expect("turn 1");
    assert_eq!(
        fails(&app, &turn("assistant", 1, 0, 0)).await,
        (
            "23505".to_owned(),
            "turns_conversation_id_seq_key".to_owned()
        )
    );
}

#[tokio::test]
async fn a_request_cannot_point_at_a_run_of_another_conversation() {
    let (_db, app) = setup().await;
    let sql = format!(
        "INSERT INTO ask_user_requests (conversation_id, id, run_id, question, status) \
         VALUES ('{C2}', gen_random_uuid(), '{R1}', 'ok?', 'pending')"
    );
    assert_eq!(
        fails(&app, &sql).await,
        ("23503".to_owned(), "ask_user_requests_run_fkey".to_owned())
    );
    let orphan = "INSERT INTO turns (conversation_id, id, seq, role, content) \
                  VALUES (gen_random_uuid(), gen_random_uuid(), 1, 'user', 'x')";
    assert_eq!(
        fails(&app, orphan).await,
        ("23503".to_owned(), "turns_conversation_id_fkey".to_owned())
    );
}

#[tokio::test]
async fn deletes_cascade_from_conversations_and_runs() {
    let (_db, app) = setup().await;
    app.batch_execute(&format!(
        "{}; {}; {};",
        turn("user", 1, 0, 0),
        request("pending", None),
        request("answered", Some("yes"))
    ))
    .await
    .expect("seed children");
    let count = async |table: &str| -> i64 {
        app.query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .expect("count")
            .get(0)
    };
    assert_eq!(count("ask_user_requests").await, 2);

    app.batch_execute(&format!("DELETE FROM runs WHERE id = '{R1}'"))
        .await
        .expect("delete run");
    assert_eq!(count("ask_user_requests").await, 0, "run -> its requests");
    assert_eq!(count("turns").await, 1);

    app.batch_execute(&format!(
        "INSERT INTO runs (conversation_id, id, status) VALUES ('{C1}', '{R2}', 'failed'); {}",
        request("pending", None).replace(R1, R2)
    ))
    .await
    .expect("run R2 with a request");
    app.batch_execute(&format!("DELETE FROM conversations WHERE id = '{C1}'"))
        .await
        .expect("delete conversation");
    for table in ["turns", "runs", "ask_user_requests"] {
        assert_eq!(count(table).await, 0, "conversation -> {table}");
    }
    assert_eq!(count("conversations").await, 1, "C2 stays");
}

#[tokio::test]
async fn last_activity_is_generated_from_the_latest_turn_or_the_start() {
    let (_db, app) = setup().await;
    let row = app
        .query_one(
            &format!(
                "SELECT last_activity_at = started_at, title IS NULL, model, turn_count, \
                 input_tokens, output_tokens FROM conversations WHERE id = '{C1}'"
            ),
            &[],
        )
        .await
        .expect("read conversation");
    assert!(row.get::<_, bool>(0), "no turn yet: last activity = start");
    assert!(row.get::<_, bool>(1));
    assert_eq!(row.get::<_, String>(2), "");
    assert_eq!(row.get::<_, i32>(3), 0);
    assert_eq!((row.get::<_, i64>(4), row.get::<_, i64>(5)), (0, 0));

    app.batch_execute(&format!(
        "UPDATE conversations SET last_turn_at = started_at + interval '1 hour' WHERE id = '{C1}'"
    ))
    .await
    .expect("set last_turn_at");
    let later: bool = app
        .query_one(
            &format!(
                "SELECT last_activity_at = started_at + interval '1 hour' \
                 FROM conversations WHERE id = '{C1}'"
            ),
            &[],
        )
        .await
        .expect("read last activity")
        .get(0);
    assert!(later, "last activity follows last_turn_at");

    let write = format!("UPDATE conversations SET last_activity_at = now() WHERE id = '{C1}'");
    assert_eq!(
        fails(&app, &write).await.0,
        "428C9",
        "generated: not writable"
    );
}
