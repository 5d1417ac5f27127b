//! The models, typed ids and enums against the real schema, through diesel-async as the
//! app role: every enum value round-trips, ids go straight into queries, update forms do
//! what their docs say, and an unexpected value in the database is a clear error.

mod common;

use aura_schema::{
    AskUserRequest, AskUserRequestUpdate, Conversation, ConversationId, ConversationUpdate,
    NewAskUserRequest, NewConversation, NewRun, NewTurn, RequestId, RequestStatus, Run, RunId,
    RunStatus, RunUpdate, Turn, TurnId, TurnRole, UnknownValue, ask_user_requests, conversations,
    runs, turns,
};
use aura_testkit::TestDb;
use chrono::Utc;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

async fn new_conversation(conn: &mut AsyncPgConnection) -> ConversationId {
    let id = ConversationId::new();
    diesel::insert_into(conversations::table)
        .values(&NewConversation {
            id,
            title: Some("first"),
            model: "m-1",
        })
        .execute(conn)
        .await
        .expect("insert conversation");
    id
}

#[tokio::test]
async fn conversations_insert_read_and_update() {
    let db = TestDb::new().await;
    let pool = db.pool().await;
    let mut conn = pool.get().await.expect("connection");
    let conn: &mut AsyncPgConnection = &mut conn;

    let id = new_conversation(conn).await;
    let c: Conversation = conversations::table
        .find(id)
        .select(Conversation::as_select())
        .first(conn)
        .await
        .expect("read conversation");
    assert_eq!(c.id, id);
    assert_eq!(
        (c.title.as_deref(), c.model.as_str()),
        (Some("first"), "m-1")
    );
    assert_eq!((c.turn_count, c.input_tokens, c.output_tokens), (0, 0, 0));
    assert_eq!(c.last_turn_at, None);
    assert_eq!(c.last_activity_at, c.started_at);

    let at = c.started_at + chrono::Duration::minutes(5);
    let changed: Conversation = diesel::update(conversations::table.find(id))
        .set(&ConversationUpdate {
            title: Some(None),
            model: Some("m-2".to_owned()),
            last_turn_at: Some(Some(at)),
            turn_count: Some(1),
            ..Default::default()
        })
        .returning(Conversation::as_returning())
        .get_result(conn)
        .await
        .expect("update conversation");
    assert_eq!(changed.title, None, "Some(None) sets NULL");
    assert_eq!(changed.model, "m-2");
    assert_eq!(changed.turn_count, 1);
    assert_eq!(changed.input_tokens, 0, "None leaves a column alone");
    assert_eq!(changed.last_activity_at, at, "generated from last_turn_at");
}

#[tokio::test]
async fn every_turn_role_round_trips() {
    let db = TestDb::new().await;
    let pool = db.pool().await;
    let mut conn = pool.get().await.expect("connection");
    let conn: &mut AsyncPgConnection = &mut conn;
    let cid = new_conversation(conn).await;
    // A tool turn carries its call as structured data; the others none.
    let call = serde_json::json!({"tool": "search", "args": {"q": "lisbon"}, "ok": true});

    for (n, role) in TurnRole::ALL.iter().enumerate() {
        let seq = i32::try_from(n).expect("small") + 1;
        diesel::insert_into(turns::table)
            .values(&NewTurn {
                conversation_id: cid,
                id: TurnId::new(),
                seq,
                role: *role,
                content: role.as_str(),
                input_tokens: seq,
                output_tokens: 2 * seq,
                data: (*role == TurnRole::Tool).then_some(&call),
            })
            .execute(conn)
            .await
            .unwrap_or_else(|e| panic!("insert {role}: {e}"));
    }
    let loaded: Vec<Turn> = turns::table
        .filter(turns::conversation_id.eq(cid))
        .order(turns::seq.asc())
        .select(Turn::as_select())
        .load(conn)
        .await
        .expect("load turns");
    let roles: Vec<TurnRole> = loaded.iter().map(|t| t.role).collect();
    assert_eq!(roles, TurnRole::ALL);
    assert!(loaded.iter().all(|t| t.content == t.role.as_str()));

    // The enum and the ids are expressions: usable in filters directly.
    let tool: Turn = turns::table
        .filter(turns::conversation_id.eq(cid))
        .filter(turns::role.eq(TurnRole::Tool))
        .select(Turn::as_select())
        .first(conn)
        .await
        .expect("the tool turn");
    assert_eq!((tool.seq, tool.output_tokens), (4, 8));
    assert_eq!(tool.data.as_ref(), Some(&call));
    assert!(
        loaded
            .iter()
            .filter(|t| t.id != tool.id)
            .all(|t| t.data.is_none())
    );
    let by_key: Turn = turns::table
        .find((cid, tool.id))
        .select(Turn::as_select())
        .first(conn)
        .await
        .expect("find by (conversation id, turn id)");
    assert_eq!(by_key, tool);
}

#[tokio::test]
async fn every_run_status_round_trips() {
    let db = TestDb::new().await;
    let pool = db.pool().await;
    let mut conn = pool.get().await.expect("connection");
    let conn: &mut AsyncPgConnection = &mut conn;
    let cid = new_conversation(conn).await;

    let mut ids = Vec::new();
    for status in RunStatus::ALL {
        let id = RunId::new();
        diesel::insert_into(runs::table)
            .values(&NewRun {
                conversation_id: cid,
                id,
                status: *status,
            })
            .execute(conn)
            .await
            .unwrap_or_else(|e| panic!("insert {status}: {e}"));
        ids.push(id);
    }
    let loaded: Vec<Run> = runs::table
        .filter(runs::conversation_id.eq(cid))
        .order(runs::id.asc())
        .select(Run::as_select())
        .load(conn)
        .await
        .expect("load runs");
    assert_eq!(loaded.iter().map(|r| r.id).collect::<Vec<_>>(), ids);
    assert_eq!(
        loaded.iter().map(|r| r.status).collect::<Vec<_>>(),
        RunStatus::ALL
    );

    // A second running run is a unique violation diesel classifies.
    let err = diesel::insert_into(runs::table)
        .values(&NewRun {
            conversation_id: cid,
            id: RunId::new(),
            status: RunStatus::Running,
        })
        .execute(conn)
        .await
        .expect_err("second running run");
    match err {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
            assert_eq!(info.constraint_name(), Some("runs_one_running_idx"));
        }
        other => panic!("expected a unique violation, got {other:?}"),
    }

    let ended: Run = diesel::update(runs::table.find((cid, ids[0])))
        .set(&RunUpdate {
            status: Some(RunStatus::Stopped),
            ended_at: Some(Some(Utc::now())),
            stop_reason: Some(Some("user".to_owned())),
        })
        .returning(Run::as_returning())
        .get_result(conn)
        .await
        .expect("stop the run");
    assert!(ended.status.is_terminal());
    assert_eq!(ended.stop_reason.as_deref(), Some("user"));
    assert!(ended.ended_at.is_some());
}

#[tokio::test]
async fn every_request_status_round_trips() {
    let db = TestDb::new().await;
    let pool = db.pool().await;
    let mut conn = pool.get().await.expect("connection");
    let conn: &mut AsyncPgConnection = &mut conn;
    let cid = new_conversation(conn).await;
    let run = RunId::new();
    diesel::insert_into(runs::table)
        .values(&NewRun {
            conversation_id: cid,
            id: run,
            status: RunStatus::Running,
        })
        .execute(conn)
        .await
        .expect("insert run");

    let mut ids = Vec::new();
    for _ in RequestStatus::ALL {
        let id = RequestId::new();
        diesel::insert_into(ask_user_requests::table)
            .values(&NewAskUserRequest {
                conversation_id: cid,
                id,
                run_id: Some(run),
                question: "go on?",
                status: RequestStatus::Pending,
            })
            .execute(conn)
            .await
            .expect("insert request");
        ids.push(id);
    }
    let now = Utc::now();
    for (id, status) in ids.iter().zip(RequestStatus::ALL) {
        if *status == RequestStatus::Pending {
            continue;
        }
        let answer = status.has_answer().then(|| format!("answer for {status}"));
        diesel::update(ask_user_requests::table.find((cid, *id)))
            .set(&AskUserRequestUpdate {
                status: Some(*status),
                answered_at: Some(answer.as_ref().map(|_| now)),
                resumed_at: Some((*status == RequestStatus::Resumed).then_some(now)),
                resolved_at: Some(Some(now)),
                answer: Some(answer),
            })
            .execute(conn)
            .await
            .unwrap_or_else(|e| panic!("update to {status}: {e}"));
    }
    let loaded: Vec<AskUserRequest> = ask_user_requests::table
        .filter(ask_user_requests::conversation_id.eq(cid))
        .order(ask_user_requests::id.asc())
        .select(AskUserRequest::as_select())
        .load(conn)
        .await
        .expect("load requests");
    assert_eq!(
        loaded.iter().map(|r| r.status).collect::<Vec<_>>(),
        RequestStatus::ALL
    );
    for r in &loaded {
        assert_eq!(r.answer.is_some(), r.status.has_answer(), "{r:?}");
        assert_eq!(r.run_id, Some(run));
    }

    // Pending requests of the run: what the partial index serves.
    let pending: i64 = ask_user_requests::table
        .filter(ask_user_requests::conversation_id.eq(cid))
        .filter(ask_user_requests::run_id.eq(run))
        .filter(ask_user_requests::status.eq(RequestStatus::Pending))
        .count()
        .get_result(conn)
        .await
        .expect("count pending");
    assert_eq!(pending, 1);

    // Answered without an answer: the CHECK constraint, as diesel classifies it.
    let err = diesel::update(ask_user_requests::table.find((cid, ids[0])))
        .set(&AskUserRequestUpdate {
            status: Some(RequestStatus::Answered),
            ..Default::default()
        })
        .execute(conn)
        .await
        .expect_err("answered without an answer");
    match err {
        DieselError::DatabaseError(DatabaseErrorKind::CheckViolation, info) => {
            assert_eq!(
                info.constraint_name(),
                Some("ask_user_requests_answer_check")
            );
        }
        other => panic!("expected a check violation, got {other:?}"),
    }
}

#[tokio::test]
async fn an_unexpected_value_in_the_database_is_a_clear_error() {
    let db = TestDb::new().await;
    let pool = db.pool().await;
    let mut conn = pool.get().await.expect("connection");
    let conn: &mut AsyncPgConnection = &mut conn;
    let cid = new_conversation(conn).await;

    // A newer schema (or a hand-made row) with a role this build does not know.
    db.superuser_client()
        .await
        .batch_execute(&format!(
            "ALTER TABLE aura.turns DROP CONSTRAINT turns_role_check;
             INSERT INTO aura.turns (conversation_id, id, seq, role, content)
             VALUES ('{cid}', gen_random_uuid(), 1, 'wizard', 'abracadabra');"
        ))
        .await
        .expect("insert an unknown role as the superuser");

    let err = turns::table
        .filter(turns::conversation_id.eq(cid))
        .select(Turn::as_select())
        .load::<Turn>(conn)
        .await
        .expect_err("an unknown role cannot be loaded");
    // diesel wraps it: DeserializationError(DeserializeFieldError { field "role", error:
    // UnknownValue }); its Display names the field only, `source()` is our error. So the
    // whole chain, as an error reporter prints it, names field, value, type and column.
    assert_eq!(
        chain(&err),
        "Error deserializing field 'role': unexpected value \"wizard\" for TurnRole \
         (column aura.turns.role, type text): expected one of user, assistant, system, tool"
    );
    let unknown = std::error::Error::source(&err)
        .and_then(|e| e.downcast_ref::<UnknownValue>())
        .unwrap_or_else(|| panic!("expected UnknownValue as the source of {err:?}"));
    assert_eq!(
        (unknown.type_name, unknown.column, unknown.value.as_str()),
        ("TurnRole", "aura.turns.role", "wizard")
    );

    // The other enums the same way, from a literal.
    let err = diesel::select(diesel::dsl::sql::<diesel::sql_types::Text>("'paused'"))
        .get_result::<RunStatus>(conn)
        .await
        .expect_err("paused is not a run status");
    assert!(
        chain(&err).contains("unexpected value \"paused\" for RunStatus (column aura.runs.status"),
        "{err:?}"
    );
    let err = diesel::select(diesel::dsl::sql::<diesel::sql_types::Text>("'open'"))
        .get_result::<RequestStatus>(conn)
        .await
        .expect_err("open is not a request status");
    assert!(
        chain(&err).contains(
            "unexpected value \"open\" for RequestStatus (column aura.ask_user_requests.status"
        ),
        "{err:?}"
    );
}

/// The error and its sources, joined with ": " (what an error reporter prints).
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}
