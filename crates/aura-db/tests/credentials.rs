//! Credentials per connection, on the real server: a credential source and a password file
//! are asked for every new connection, so a rotated password is picked up by a live pool;
//! open sessions stay up; the old password no longer logs in; a failing source is its own
//! error; no password shows up in an error or a Debug.
//!
//! Roles belong to the whole cluster and the other tests log in as `aura_app`: each test
//! here rotates the password of a login role of its own (a member of `aura_app`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aura_db::{
    CredentialError, CredentialSource, Credentials, Error, MigrateOptions, Migrations, Pool,
    async_trait,
};
use aura_testkit::TestDb;
use diesel_async::SimpleAsyncConnection;
use secrecy::{ExposeSecret, SecretString};

const PLANTED_OLD: &str = "Pl4nted-0ld-xyzzy";
const PLANTED_NEW: &str = "Pl4nted-N3w-plugh";

fn secret(s: &str) -> SecretString {
    SecretString::from(s.to_owned())
}

/// A source whose answer the test changes, counting how often it is asked. Its derived
/// `Debug` shows the password: aura-db must never print it.
#[derive(Debug, Clone)]
struct Rotating {
    current: Arc<Mutex<String>>,
    asked: Arc<AtomicUsize>,
}

impl Rotating {
    fn new(password: &str) -> Self {
        Rotating {
            current: Arc::new(Mutex::new(password.to_owned())),
            asked: Arc::default(),
        }
    }
    fn set(&self, password: &str) {
        *self.current.lock().expect("source lock") = password.to_owned();
    }
    fn asked(&self) -> usize {
        self.asked.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl CredentialSource for Rotating {
    async fn password(&self) -> Result<SecretString, CredentialError> {
        self.asked.fetch_add(1, Ordering::SeqCst);
        Ok(secret(&self.current.lock().expect("source lock")))
    }
}

/// A login role of this test's own, member of aura_app, with `password` (sent as a SCRAM
/// verifier, as the bootstrap does). Dropped by [`Role::drop_now`].
struct Role {
    name: String,
}

impl Role {
    async fn create(db: &TestDb, password: &str) -> Role {
        let name = format!("rot_{}", db.name());
        let verifier = postgres_protocol::password::scram_sha_256(password.as_bytes());
        db.superuser_client()
            .await
            .batch_execute(&format!(
                "CREATE ROLE \"{name}\" LOGIN IN ROLE aura_app PASSWORD '{verifier}'"
            ))
            .await
            .expect("create the test's role");
        Role { name }
    }

    async fn set_password(&self, db: &TestDb, password: &str) {
        let verifier = postgres_protocol::password::scram_sha_256(password.as_bytes());
        db.superuser_client()
            .await
            .batch_execute(&format!(
                "ALTER ROLE \"{}\" PASSWORD '{verifier}'",
                self.name
            ))
            .await
            .expect("rotate the password");
    }

    /// The role's URL on this database, without a password.
    fn url(&self, db: &TestDb) -> SecretString {
        secret(
            db.superuser_url()
                .with_login(&self.name, &secret(""))
                .expose(),
        )
    }

    async fn drop_now(self, db: &TestDb) {
        db.superuser_client()
            .await
            .batch_execute(&format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{0}'; \
                 DROP ROLE \"{0}\"",
                self.name
            ))
            .await
            .expect("drop the test's role");
    }
}

/// Holds `n` connections of `pool` at once (so at least `n - idle` new ones are made) and
/// runs a query on each.
async fn hold_and_query(pool: &Pool, n: usize) -> Result<(), Error> {
    let mut held = Vec::new();
    for _ in 0..n {
        let mut conn = pool.get().await?;
        conn.batch_execute("SELECT 1").await?;
        held.push(conn);
    }
    Ok(())
}

fn chain(err: &dyn std::error::Error) -> String {
    let mut text = format!("{err} | {err:?}");
    let mut source = err.source();
    while let Some(e) = source {
        text.push_str(&format!(" | {e} | {e:?}"));
        source = e.source();
    }
    text
}

fn assert_clean(what: &str, text: &str) {
    for planted in [PLANTED_OLD, PLANTED_NEW] {
        assert!(!text.contains(planted), "{what} leaked a password: {text}");
    }
}

#[tokio::test]
async fn a_live_pool_follows_a_rotated_password_from_its_source() {
    let db = TestDb::new().await;
    let role = Role::create(&db, PLANTED_OLD).await;
    let source = Rotating::new(PLANTED_OLD);
    let config = db
        .config_builder()
        .app_url(role.url(&db))
        .app_credentials(Credentials::new(source.clone()))
        // No idle minimum: bb8 would make replacement connections in the background.
        .min_conns(0)
        .max_conns(4)
        .build()
        .unwrap();
    assert_clean("Config Debug", &format!("{config:?}"));
    let pool = aura_db::open(&config).await.unwrap();

    // A session opened before the rotation.
    let mut before = pool.get().await.unwrap();
    before.batch_execute("SELECT 1").await.unwrap();
    assert_eq!(source.asked(), 1, "one connection made");

    role.set_password(&db, PLANTED_NEW).await;
    source.set(PLANTED_NEW);

    // The open session is untouched by the rotation.
    before.batch_execute("SELECT 1").await.unwrap();
    // New connections log in with the new password: three more physical connections.
    let asked = source.asked();
    hold_and_query(&pool, 3).await.unwrap();
    assert_eq!(source.asked(), asked + 3, "asked once per new connection");
    before.batch_execute("SELECT 1").await.unwrap();
    drop(before);
    // Reused connections do not ask again.
    let asked = source.asked();
    hold_and_query(&pool, 4).await.unwrap();
    assert_eq!(source.asked(), asked);

    // A source still on the old password: new connections fail as Auth.
    let stale = db
        .config_builder()
        .app_url(role.url(&db))
        .app_credentials(Credentials::new(Rotating::new(PLANTED_OLD)))
        .min_conns(0)
        .build()
        .unwrap();
    let stale_pool = aura_db::open(&stale).await.unwrap();
    let err = stale_pool
        .get()
        .await
        .err()
        .expect("the old password must fail");
    assert!(
        matches!(&err, Error::Auth { sqlstate, .. } if sqlstate == "28P01"),
        "{err:?}"
    );
    assert_clean("auth error", &chain(&err));
    assert_clean("Pool Debug", &format!("{pool:?} {stale_pool:?}"));

    // The live pool kept serving all along.
    aura_db::ping(&pool).await.unwrap();
    drop((pool, stale_pool));
    role.drop_now(&db).await;
}

fn password_file(db: &TestDb, content: &str) -> PathBuf {
    let dir = std::env::temp_dir().join("aura-db-credentials-test");
    std::fs::create_dir_all(&dir).expect("test folder");
    let path = dir.join(db.name());
    std::fs::write(&path, format!("{content}\n")).expect("write the password file");
    path
}

#[tokio::test]
async fn a_live_pool_follows_a_password_file_rewritten_on_disk() {
    let db = TestDb::new().await;
    let role = Role::create(&db, PLANTED_OLD).await;
    let path = password_file(&db, PLANTED_OLD);
    // As AURA_DB_URL (no password in it) + AURA_DB_PASSWORD_FILE would configure it.
    let config = aura_db::Config::from_lookup(|name| match name {
        "AURA_DB_URL" => Some(role.url(&db).expose_secret().to_owned()),
        "AURA_DB_PASSWORD_FILE" => Some(path.display().to_string()),
        "AURA_DB_MIN_CONNS" => Some("0".to_owned()),
        "AURA_DB_MAX_CONNS" => Some("8".to_owned()),
        _ => None,
    })
    .unwrap();
    assert_clean("Config Debug", &format!("{config:?}"));
    let pool = aura_db::open(&config).await.unwrap();
    let mut before = pool.get().await.unwrap();

    role.set_password(&db, PLANTED_NEW).await;
    std::fs::write(&path, format!("{PLANTED_NEW}\n")).unwrap();
    hold_and_query(&pool, 3).await.unwrap();
    before.batch_execute("SELECT 1").await.unwrap();
    drop(before);

    // The file back on the old password: the next new connection is refused as Auth.
    std::fs::write(&path, PLANTED_OLD).unwrap();
    let err = hold_and_query(&pool, 5).await.unwrap_err();
    assert!(matches!(err, Error::Auth { .. }), "{err:?}");
    assert_clean("auth error", &chain(&err));

    // The file gone: a credentials error naming the variable and the path.
    std::fs::remove_file(&path).unwrap();
    let err = hold_and_query(&pool, 5).await.unwrap_err();
    let text = chain(&err);
    assert!(matches!(err, Error::Credentials { .. }), "{err:?}");
    assert!(
        text.contains("AURA_DB_PASSWORD_FILE") && text.contains(&path.display().to_string()),
        "{text}"
    );
    assert_clean("credentials error", &text);

    // The idle connections made with the rotated password still serve.
    aura_db::ping(&pool).await.unwrap();
    drop(pool);
    role.drop_now(&db).await;
}

/// The source's own error type, to find again behind `Error::Credentials`.
#[derive(Debug, thiserror::Error)]
#[error("token service unavailable (HTTP 503)")]
struct TokenServiceDown;

#[tokio::test]
async fn a_failing_or_slow_source_is_a_credentials_error_of_its_own() {
    let db = TestDb::new().await;
    let failing = Credentials::from_fn("token-service", || async {
        Err::<SecretString, _>(Box::new(TokenServiceDown) as CredentialError)
    });
    let config = db
        .config_builder()
        .app_credentials(failing)
        .build()
        .unwrap();
    let err = aura_db::open(&config).await.expect_err("the source fails");
    let Error::Credentials { target, source } = &err else {
        panic!("expected Error::Credentials, got {err:?}");
    };
    assert!(target.starts_with("postgres://aura_app"), "{target}");
    assert!(
        source.downcast_ref::<TokenServiceDown>().is_some(),
        "{source:?}"
    );
    assert_eq!(
        aura_db::error_chain(&err),
        err.to_string(),
        "the chain prints the cause once"
    );
    assert!(err.to_string().contains("HTTP 503"), "{err}");
    assert!(!err.is_retryable());

    // A slow source counts against the connect timeout.
    let slow = Credentials::from_fn("slow", || async {
        tokio::time::sleep(Duration::from_secs(30)).await;
        Ok(secret("never"))
    });
    let config = db
        .config_builder()
        .app_credentials(slow)
        .connect_timeout(Duration::from_millis(300))
        .checkout_timeout(Duration::from_secs(5))
        .min_conns(0)
        .build()
        .unwrap();
    let pool = aura_db::open(&config).await.unwrap();
    let started = Instant::now();
    let err = pool.get().await.err().expect("the source is too slow");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(err, Error::Credentials { .. }), "{err:?}");
    assert!(err.to_string().contains("within 300ms"), "{err}");
}

#[tokio::test]
async fn migrations_and_bootstrap_ask_their_own_sources() {
    let db = TestDb::new().await;
    let superuser = db.superuser_url().pg_config();
    let superuser_password = String::from_utf8(superuser.get_password().unwrap().to_vec()).unwrap();
    let role_password = {
        let pg = db.config().migrate_url().unwrap().pg_config();
        String::from_utf8(pg.get_password().unwrap().to_vec()).unwrap()
    };
    let bootstrap = Rotating::new(&superuser_password);
    let migrate = Rotating::new(&role_password);
    let no_password = |dsn: &aura_db::Dsn| {
        let pg = dsn.pg_config();
        secret(dsn.with_login(pg.get_user().unwrap(), &secret("")).expose())
    };
    let config = db
        .config_builder()
        .bootstrap_url(no_password(db.superuser_url()))
        .bootstrap_credentials(Credentials::new(bootstrap.clone()))
        .migrate_url(no_password(db.config().migrate_url().unwrap()))
        .migrate_credentials(Credentials::new(migrate.clone()))
        .build()
        .unwrap();

    aura_db::ensure_roles(&config).await.unwrap();
    assert_eq!(bootstrap.asked(), 1);

    let url = secret(config.migrate_url().unwrap().expose());
    let opts = MigrateOptions::for_config(&config);
    let rows = aura_db::status_with(&url, Migrations::embedded(), &opts)
        .await
        .unwrap();
    assert_eq!(rows.len(), Migrations::embedded().len());
    assert_eq!(migrate.asked(), 1);
    // Without the source the URL has no password: refused.
    assert!(
        aura_db::status_with(&url, Migrations::embedded(), &MigrateOptions::default())
            .await
            .is_err()
    );

    // A failing migrate source: the migration error holds the credentials error.
    let failing = opts.with_credentials(Credentials::from_fn("down", || async {
        Err::<SecretString, _>(Box::new(TokenServiceDown) as CredentialError)
    }));
    let err = aura_db::migrate_with(&url, Migrations::embedded(), &failing, |_| {})
        .await
        .unwrap_err();
    let text = aura_db::error_chain(&err);
    assert!(
        text.contains("HTTP 503") && text.contains("credential source"),
        "{text}"
    );
}

/// A server that accepts the TCP connection and never says a word: the connect timeout
/// bounds the wait, credential source included.
#[tokio::test]
async fn a_silent_server_fails_within_the_connect_timeout() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = Arc::new(Mutex::new(Vec::new()));
    let keep = held.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            keep.lock().unwrap().push(stream);
        }
    });
    let config = aura_db::Config::builder()
        .port(port)
        .role_password(secret(PLANTED_OLD))
        .connect_timeout(Duration::from_millis(500))
        .min_conns(0)
        .build()
        .unwrap();
    let pool = aura_db::open(&config).await.unwrap();
    let started = Instant::now();
    let err = pool.get().await.err().expect("a silent server must fail");
    let took = started.elapsed();
    assert!(took < Duration::from_millis(1500), "took {took:?}");
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert!(
        !held.lock().unwrap().is_empty(),
        "the connection was accepted"
    );
    assert_clean("connect error", &chain(&err));
}

/// The source's password goes through the same TLS connect path (verify-full here).
#[tokio::test]
async fn a_source_logs_in_over_tls() {
    let db = TestDb::new_tls().await;
    let role_password = db.config().role_password().expose_secret().to_owned();
    let source = Rotating::new(&role_password);
    let url = db.superuser_url().with_login("aura_app", &secret(""));
    assert!(url.has_tls_keys());
    let config = db
        .config_builder()
        .app_url(secret(url.expose()))
        .app_credentials(Credentials::new(source.clone()))
        .min_conns(0)
        .build()
        .unwrap();
    let pool = aura_db::open(&config).await.unwrap();
    let encryption = aura_db::encryption(&mut pool.get().await.unwrap())
        .await
        .unwrap();
    assert!(
        matches!(encryption, aura_db::Encryption::Tls { .. }),
        "{encryption}"
    );
    assert_eq!(source.asked(), 1);
}
