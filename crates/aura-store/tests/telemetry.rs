//! Spans and events at TRACE during a whole run (test database, migrations, pool, store
//! operations that succeed and fail, `with_tx` committing and rolling back) carry the
//! OpenTelemetry attributes, and never a planted password nor planted content.
//!
//! A test binary of its own: tracing caches each callsite's interest process-wide, and a
//! span first reached by a parallel test thread without a subscriber could be missed by
//! this thread's `set_default` subscriber.

use std::time::Duration;

use aura_store::{
    ConversationDraft, ConversationId, ConversationStore, PgStore, StoreError, TurnDraft, TurnRole,
    TurnStore,
};
use aura_testkit::{CapturedLog, TestDb};
use diesel_async::SimpleAsyncConnection;
use secrecy::{ExposeSecret, SecretString};
use tracing_subscriber::fmt::format::FmtSpan;

const PASSWORD: &str = "Pl4ntedPassw0rdObsQx";
const CONTENT: &str = "planted-turn-content-7f3a";
const TITLE: &str = "planted-conversation-title-91b2";

#[tokio::test]
async fn spans_carry_the_attributes_and_no_secret_or_content() {
    let captured = CapturedLog::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(FmtSpan::FULL)
        .with_writer(captured.clone())
        .with_ansi(false)
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);

    // Test database (cloned from the migrated template) and the migrations run again.
    let db = TestDb::new().await;
    let migrate_url = SecretString::from(
        db.config()
            .migrate_url()
            .expect("migrate url")
            .expose()
            .to_owned(),
    );
    assert_eq!(aura_db::migrate(&migrate_url).await.unwrap(), 0);

    // A login role of our own, member of the app role, with the planted password in the DSN.
    let role = format!("obs_{}", db.name())
        .chars()
        .take(60)
        .collect::<String>();
    let admin = db.superuser_client().await;
    admin
        .batch_execute(&format!(
            "CREATE ROLE \"{role}\" LOGIN PASSWORD '{PASSWORD}' IN ROLE aura_app"
        ))
        .await
        .unwrap();
    let app_url = db
        .config()
        .app_url()
        .with_login(&role, &SecretString::from(PASSWORD.to_owned()));
    let config = db
        .config_builder()
        .app_url(SecretString::from(app_url.expose().to_owned()))
        .slow_op(Some(Duration::from_nanos(1)))
        .build()
        .unwrap();
    let store = PgStore::open(&config).await.unwrap();

    // Operations that succeed…
    let conversation = store
        .create_conversation(ConversationDraft {
            title: Some(TITLE),
            ..ConversationDraft::default()
        })
        .await
        .unwrap();
    let draft = TurnDraft {
        id: None,
        role: TurnRole::User,
        content: CONTENT,
        input_tokens: 1,
        output_tokens: 2,
        data: None,
    };
    store.append_turn(conversation.id, draft).await.unwrap();
    let read = store.get_conversation(conversation.id).await.unwrap();
    assert_eq!(read.turns[0].content, CONTENT);
    // …and operations that fail.
    let err = store
        .append_turn(ConversationId::new(), draft)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    let err = store
        .create_conversation(ConversationDraft {
            id: Some(conversation.id),
            title: Some("planted-conversation-title-91b2-other"),
            ..ConversationDraft::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");

    // with_tx: one commit, one rollback.
    let pool = store.pool();
    aura_db::with_tx(pool, async |conn| {
        conn.batch_execute("SELECT 1").await?;
        Ok::<_, aura_db::Error>(())
    })
    .await
    .unwrap();
    let rolled_back: Result<(), aura_db::Error> = aura_db::with_tx(pool, async |conn| {
        conn.batch_execute("SELECT 1/0")
            .await
            .map_err(aura_db::Error::from)
    })
    .await;
    assert!(rolled_back.is_err());

    store.close(Duration::from_secs(5)).await;
    drop(guard);
    admin
        .batch_execute(&format!("DROP ROLE \"{role}\""))
        .await
        .unwrap();

    let out = captured.text();
    for (what, planted) in [
        ("the planted password", PASSWORD),
        (
            "the test roles' password",
            db.config().role_password().expose_secret(),
        ),
        ("the turn's content", CONTENT),
        ("the conversation's title", TITLE),
    ] {
        assert!(
            !out.contains(planted),
            "{what} leaked into tracing output:\n{out}"
        );
    }
    let port = db.config().app_url().pg_config().get_ports()[0];
    for expected in [
        "db.operation{".to_owned(),
        "db.checkout{".to_owned(),
        "db.connect{".to_owned(),
        "db.transaction{".to_owned(),
        "db.system.name=\"postgresql\"".to_owned(),
        format!("db.namespace={}", db.name()),
        "server.address=127.0.0.1".to_owned(),
        format!("server.port={port}"),
        "db.operation.name=\"append_turn\"".to_owned(),
        "db.operation.name=\"create_conversation\"".to_owned(),
        "db.operation.name=\"get_conversation\"".to_owned(),
        "db.collection.name=\"aura.turns\"".to_owned(),
        "db.query.text=\"WITH c AS (UPDATE aura.conversations".to_owned(),
        "db.query.text=\"INSERT INTO \\\"aura\\\".\\\"conversations\\\"".to_owned(),
        "db.response.returned_rows=2".to_owned(),
        "error.type=\"NotFound\"".to_owned(),
        "error.type=\"Conflict\"".to_owned(),
        "db.transaction.outcome=\"commit\"".to_owned(),
        "db.transaction.outcome=\"rollback\"".to_owned(),
        "db.client.connection.wait_time_us=".to_owned(),
        "slow database operation".to_owned(),
    ] {
        assert!(out.contains(&expected), "missing {expected} in:\n{out}");
    }
    // Statement texts have placeholders where the values were.
    assert!(out.contains("$1"), "{out}");
}
