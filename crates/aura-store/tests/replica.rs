//! Reads on the streaming replica of the local test cluster (aura-testkit's `Replica`):
//! consistency per handle, replay paused with `pg_wal_replay_pause()` for determinism,
//! writes only on the primary, fallback to the primary when the replica is lost, lags or
//! was never there, and each of those said once.
//!
//! A test binary of its own: the warnings are captured by one process-wide subscriber
//! (tracing caches callsite interest per process), and the tests take the replica in turn
//! (`Replica::exclusive`), since pausing replay is cluster-wide.

// Reads through the pool, as a sibling crate would write them: `get_result` (which
// clippy.toml keeps out of the store's own writes, see src/pg/one_row.rs) is fine there.
#![allow(clippy::disallowed_methods)]

use std::net::TcpListener;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aura_db::Dsn;
use aura_store::{
    Consistency, ConversationDraft, ConversationStore, ListQuery, PgStore, StoreError, TurnDraft,
    TurnRole, TurnStore,
};
use aura_testkit::{CapturedLog, FaultProxy, Replica, TestDb};
use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
use secrecy::SecretString;

/// Everything logged in this process (installed on first use).
fn log() -> &'static CapturedLog {
    static LOG: OnceLock<CapturedLog> = OnceLock::new();
    LOG.get_or_init(|| {
        let captured = CapturedLog::default();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_writer(captured.clone())
            .with_ansi(false)
            .init();
        captured
    })
}

/// Log lines holding every one of `needles`.
fn lines_with(needles: &[&str]) -> Vec<String> {
    log().lines_with(needles)
}

/// A store on `db` reading from `read_url`, with this lag bound.
async fn store(db: &TestDb, read_url: SecretString, max_lag: Duration) -> PgStore {
    let config = db
        .config_builder()
        .read_url(read_url)
        .read_max_lag(max_lag)
        .connect_timeout(Duration::from_secs(3))
        .build()
        .expect("config");
    PgStore::open(&config).await.expect("open")
}

fn draft(title: &str) -> ConversationDraft<'_> {
    ConversationDraft::new("m").titled(title)
}

const LONG: Duration = Duration::from_secs(3600);

#[tokio::test]
async fn a_replica_read_misses_a_new_write_and_read_your_writes_sees_it() {
    log();
    let replica = Replica::shared();
    let _turn = replica.exclusive().await;
    let db = TestDb::new().await;
    let store = store(&db, replica.read_url(&db).await, LONG).await;
    let on_replica = store.with_consistency(Consistency::Replica);

    // Before the pause: a conversation reaches the replica and is read there.
    let before = store
        .create_conversation(draft("before"))
        .await
        .expect("create");
    let deadline = Instant::now() + Duration::from_secs(30);
    while on_replica.get_conversation(before.id).await.is_err() {
        assert!(Instant::now() < deadline, "the replica never showed it");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let paused = replica.pause_replay(&db).await;
    let session = store.session();
    assert_eq!(session.last_write(), None);
    let created = session
        .create_conversation(draft("after"))
        .await
        .expect("create");
    let token = session.last_write().expect("the write's position");
    session
        .append_turn(created.id, TurnDraft::new(TurnRole::User, "hello"))
        .await
        .expect("append");
    assert!(session.last_write().expect("position") >= token);

    // The replica does not have it: a replica read misses it, without touching the primary.
    let primary_checkouts = store.pool().stats().checkouts;
    match on_replica.get_conversation(created.id).await {
        Err(StoreError::NotFound { .. }) => {}
        other => panic!("a replica read saw a write made after the pause: {other:?}"),
    }
    assert_eq!(store.pool().stats().checkouts, primary_checkouts);
    let listed = on_replica
        .list_conversations(ListQuery::default())
        .await
        .expect("list");
    assert!(listed.items.iter().any(|c| c.id == before.id));
    assert!(!listed.items.iter().any(|c| c.id == created.id));

    // Read-your-writes sees it: the session's own, the token's, and the primary's.
    let seen = session
        .get_conversation(created.id)
        .await
        .expect("ryw read");
    assert_eq!(seen.turns.len(), 1);
    assert!(store.pool().stats().checkouts > primary_checkouts);
    let by_token = store
        .with_consistency(Consistency::After(token))
        .get_conversation(created.id)
        .await
        .expect("read after the token");
    assert_eq!(by_token.conversation.id, created.id);
    let listed = session
        .list_conversations(ListQuery::default())
        .await
        .expect("list");
    assert!(listed.items.iter().any(|c| c.id == created.id));
    store
        .with_consistency(Consistency::Primary)
        .get_conversation(created.id)
        .await
        .expect("primary read");

    // Replay resumed: the session's reads go to the replica once it has the writes.
    paused.resume().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let primary_checkouts = store.pool().stats().checkouts;
        let seen = session
            .get_conversation(created.id)
            .await
            .expect("ryw read");
        assert_eq!(seen.turns.len(), 1);
        if store.pool().stats().checkouts == primary_checkouts {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the session's reads never moved to the caught-up replica"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn writes_go_to_the_primary_and_the_read_pool_is_read_only() {
    log();
    let replica = Replica::shared();
    let _turn = replica.exclusive().await;
    let db = TestDb::new().await;
    let store = store(&db, replica.read_url(&db).await, LONG)
        .await
        .with_consistency(Consistency::Replica);
    let created = store.create_conversation(draft("w")).await.expect("create");
    store
        .append_turn(created.id, TurnDraft::new(TurnRole::User, "x"))
        .await
        .expect("append");
    let on_primary: i64 = db
        .superuser_client()
        .await
        .query_one(
            "SELECT turn_count::bigint FROM aura.conversations WHERE id = $1::text::uuid",
            &[&created.id.to_string()],
        )
        .await
        .expect("query")
        .get(0);
    assert_eq!(on_primary, 1);

    let read_pool = store.read_pool().expect("the read pool is open");
    let mut conn = read_pool.get().await.expect("read connection");
    let (in_recovery, read_only): (bool, String) =
        diesel::dsl::sql::<(diesel::sql_types::Bool, diesel::sql_types::Text)>(
            "SELECT pg_is_in_recovery(), current_setting('default_transaction_read_only')",
        )
        .get_result(&mut *conn)
        .await
        .expect("session state");
    assert!(in_recovery, "the read pool is on the standby");
    assert_eq!(read_only, "on");
    let err = conn
        .batch_execute("DELETE FROM aura.conversations")
        .await
        .expect_err("a write on the read pool");
    assert!(err.to_string().contains("read-only"), "{err}");
}

#[tokio::test]
async fn lag_past_the_bound_sends_reads_to_the_primary_and_says_so_once() {
    log();
    let replica = Replica::shared();
    let _turn = replica.exclusive().await;
    let db = TestDb::new().await;
    let store = store(&db, replica.read_url(&db).await, Duration::from_secs(1))
        .await
        .with_consistency(Consistency::Replica);
    let paused = replica.pause_replay(&db).await;
    let created = store
        .create_conversation(draft("lagging"))
        .await
        .expect("create");
    // The replica has received the write but not replayed it: after the bound, its lag
    // (the age of the last replayed commit) is past it.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    for _ in 0..10 {
        store
            .get_conversation(created.id)
            .await
            .expect("read on the primary");
    }
    paused.resume().await;
    let warned = lines_with(&["lags past AURA_DB_READ_MAX_LAG", db.name()]);
    assert_eq!(warned.len(), 1, "{warned:#?}");
}

#[tokio::test]
async fn an_unreachable_replica_at_start_up_sends_reads_to_the_primary_and_says_so_once() {
    log();
    let db = TestDb::new().await;
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let url = format!("postgres://aura_app:pw@127.0.0.1:{port}/{}", db.name());
    let started = Instant::now();
    let store = store(&db, SecretString::from(url), LONG)
        .await
        .with_consistency(Consistency::Replica);
    let created = store
        .create_conversation(draft("primary only"))
        .await
        .expect("create");
    for _ in 0..20 {
        store
            .get_conversation(created.id)
            .await
            .expect("read on the primary");
    }
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "reads fell back too slowly: {:?}",
        started.elapsed()
    );
    let warned = lines_with(&["read replica unavailable", db.name()]);
    assert_eq!(warned.len(), 1, "{warned:#?}");
    assert!(
        !warned[0].contains(":pw@"),
        "the password is redacted: {}",
        warned[0]
    );
}

#[tokio::test]
async fn a_replica_lost_at_run_time_sends_reads_to_the_primary_within_a_bound() {
    log();
    let replica = Replica::shared();
    let _turn = replica.exclusive().await;
    let db = TestDb::new().await;
    let direct = Dsn::parse("replica", replica.read_url(&db).await).expect("dsn");
    let proxy = FaultProxy::start(([127, 0, 0, 1], replica.port()).into()).await;
    let routed = SecretString::from(proxy.route(&direct).expose().to_owned());
    let store = store(&db, routed, LONG)
        .await
        .with_consistency(Consistency::Replica);

    let paused = replica.pause_replay(&db).await;
    let created = store
        .create_conversation(draft("lost"))
        .await
        .expect("create");
    assert!(
        matches!(
            store.get_conversation(created.id).await,
            Err(StoreError::NotFound { .. })
        ),
        "the read went to the paused replica"
    );

    drop(proxy);
    let started = Instant::now();
    let seen = store
        .get_conversation(created.id)
        .await
        .expect("the read falls back to the primary");
    assert_eq!(seen.conversation.id, created.id);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "fell back after {:?}",
        started.elapsed()
    );
    for _ in 0..20 {
        store.get_conversation(created.id).await.expect("primary");
    }
    paused.resume().await;
    let warned = lines_with(&["read replica unavailable", db.name()]);
    assert_eq!(warned.len(), 1, "{warned:#?}");
}

#[tokio::test]
async fn a_read_url_that_points_at_a_primary_is_used_read_only_with_one_warning() {
    log();
    let db = TestDb::new().await;
    let primary_url = SecretString::from(db.config().app_url().expose().to_owned());
    let store = store(&db, primary_url, LONG)
        .await
        .with_consistency(Consistency::Replica);
    let created = store.create_conversation(draft("p")).await.expect("create");
    let read_checkouts = store.read_pool().expect("read pool").stats().checkouts;
    for _ in 0..5 {
        store.get_conversation(created.id).await.expect("read");
    }
    assert!(store.read_pool().expect("read pool").stats().checkouts > read_checkouts);
    let warned = lines_with(&["points at a primary", db.name()]);
    assert_eq!(warned.len(), 1, "{warned:#?}");

    let read_pool = store.read_pool().expect("read pool");
    let mut conn = read_pool.get().await.expect("read connection");
    let err = conn
        .batch_execute("DELETE FROM aura.conversations")
        .await
        .expect_err("a write on the read pool");
    assert!(err.to_string().contains("read-only"), "{err}");
}
