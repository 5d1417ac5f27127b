//! A planted password never shows up in Debug, Display, error chains or tracing output.

use aura_db::{Config, Error};
use aura_testkit::{CapturedLog, TestDb};
use secrecy::SecretString;

const PLANTED: &str = "Pl4nted-S3cret-xyzzy";

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = format!("{err} | {err:?}");
    let mut source = err.source();
    while let Some(e) = source {
        text.push_str(&format!(" | {e} | {e:?}"));
        source = e.source();
    }
    text
}

fn assert_clean(what: &str, text: &str) {
    assert!(
        !text.contains(PLANTED),
        "{what} leaked the password: {text}"
    );
}

#[test]
fn config_debug_and_dsns_are_redacted() {
    let lookup = |name: &str| match name {
        "POSTGRES_PASSWORD" | "AURA_DB_PASSWORD" => Some(PLANTED.to_owned()),
        "AURA_DB_BOOTSTRAP_URL" => Some(format!("postgres://root:{PLANTED}@db:5432/aura")),
        _ => None,
    };
    let config = Config::from_lookup(lookup).unwrap();
    assert_clean("Config Debug", &format!("{config:?}"));
    for dsn in [
        config.app_url(),
        config.bootstrap_url(),
        config.migrate_url().unwrap(),
    ] {
        assert_clean("Dsn", &format!("{dsn} {dsn:?} {}", dsn.redacted()));
    }
    let err = Config::from_lookup(|name| match name {
        "AURA_DB_URL" => Some(format!("postgres://u:{PLANTED}@h:badport/d")),
        _ => None,
    })
    .unwrap_err();
    assert_clean("config error", &error_chain(&err));
}

#[tokio::test]
async fn connect_errors_and_tracing_never_carry_the_password() {
    let db = TestDb::new().await;
    let captured = CapturedLog::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(captured.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    // A wrong password, through both paths (eager open and lazy checkout).
    for min_conns in [1, 0] {
        let config = db
            .config_builder()
            .role_password(SecretString::from(PLANTED.to_owned()))
            .min_conns(min_conns)
            .build()
            .unwrap();
        assert_clean("Config Debug", &format!("{config:?}"));
        let err = match aura_db::open(&config).await {
            Err(e) => e,
            Ok(pool) => {
                assert_clean("Pool Debug", &format!("{pool:?}"));
                pool.get().await.err().expect("wrong password")
            }
        };
        assert!(matches!(err, Error::Auth { .. }), "{err:?}");
        assert_clean("auth error", &error_chain(&err));
    }

    // A verbatim URL carrying the password, pointing at a refused port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = Config::builder()
        .app_url(SecretString::from(format!(
            "postgres://aura_app:{PLANTED}@127.0.0.1:{port}/x"
        )))
        .min_conns(0)
        .build()
        .unwrap();
    let pool = aura_db::open(&config).await.unwrap();
    let err = pool.get().await.err().expect("refused");
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert_clean("connect error", &error_chain(&err));

    // A working pool, a query and a failing transaction, all traced.
    let pool = db.pool().await;
    aura_db::ping(&pool).await.unwrap();
    let _ = aura_db::with_tx(&pool, async |_conn| {
        Err::<(), _>(Error::config("X", "forced"))
    })
    .await;

    let logged = captured.text();
    assert!(
        logged.contains("connection attempt failed"),
        "tracing captured nothing useful: {logged}"
    );
    assert_clean("tracing output", &logged);
}

/// The server's own log: a failed login leaves the user name, never the password (SCRAM
/// never sends it).
#[tokio::test]
async fn the_server_log_never_sees_the_password() {
    let db = TestDb::new().await;
    let config = db
        .config_builder()
        .role_password(SecretString::from(PLANTED.to_owned()))
        .build()
        .unwrap();
    assert!(
        aura_db::open(&config).await.is_err(),
        "a wrong password must fail"
    );
    let text = db.server_log().await;
    assert!(text.contains("password authentication failed for user \"aura_app\""));
    assert_clean("server log", &text);
}
