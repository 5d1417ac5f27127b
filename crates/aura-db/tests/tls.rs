//! TLS on a real, TLS-only Postgres (aura-testkit's `TlsCluster`: certificates generated
//! with rcgen at test time): each sslmode, each certificate failure with its own message,
//! the server's refusal of plaintext, the pool, migrations and cancellation over TLS.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use aura_db::{Dsn, Encryption, Error, SslMode, TlsFailure, connect_raw};
use aura_testkit::{TestDb, TlsCluster};
use secrecy::{ExposeSecret, SecretString};

/// `pg_stat_ssl` of the client's own backend: (ssl, version, client_dn).
async fn ssl_state(client: &tokio_postgres::Client) -> (bool, Option<String>, Option<String>) {
    let row = client
        .query_one(
            "SELECT ssl, version, client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .expect("read pg_stat_ssl");
    (row.get(0), row.get(1), row.get(2))
}

/// A CA of its own (not the cluster's), written to a temp file.
fn unrelated_ca() -> PathBuf {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "some other CA");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).expect("self-signed CA");
    let path = std::env::temp_dir().join(format!("aura-other-ca-{}.crt", std::process::id()));
    std::fs::write(&path, cert.pem()).expect("write CA");
    path
}

fn enc(path: &std::path::Path) -> String {
    percent_encoding::utf8_percent_encode(
        &path.display().to_string(),
        percent_encoding::NON_ALPHANUMERIC,
    )
    .to_string()
}

/// The connect error of `dsn`, checked to hide the password and name the redacted target.
async fn connect_error(dsn: &Dsn, password: &SecretString) -> Error {
    let err = connect_raw(dsn)
        .await
        .expect_err("the connection must fail");
    let (text, debug) = (err.to_string(), format!("{err:?}"));
    let pw = password.expose_secret();
    assert!(
        !text.contains(pw) && !debug.contains(pw),
        "password leaked: {text}"
    );
    assert!(text.contains(dsn.redacted()), "no target in: {text}");
    err
}

#[tokio::test]
async fn verify_full_succeeds_and_the_session_is_encrypted() {
    let tls = TlsCluster::shared();
    let client = connect_raw(&tls.verify_full_url("postgres"))
        .await
        .expect("verify-full against the cluster's CA");
    let (ssl, version, _) = ssl_state(&client).await;
    assert!(ssl, "pg_stat_ssl says the session is not encrypted");
    assert_eq!(version.as_deref(), Some("TLSv1.3"));
}

#[tokio::test]
async fn an_unknown_ca_fails_as_such_even_with_require() {
    let tls = TlsCluster::shared();
    let other = unrelated_ca();
    for mode in ["verify-full", "verify-ca", "require"] {
        let dsn = tls.superuser_url(
            "127.0.0.1",
            "postgres",
            &format!("sslmode={mode}&sslrootcert={}", enc(&other)),
        );
        let err = connect_error(&dsn, tls.superuser_password()).await;
        assert!(
            matches!(
                &err,
                Error::Tls {
                    failure: TlsFailure::UnknownCa { .. },
                    ..
                }
            ),
            "{mode}: {err}"
        );
        assert!(
            err.to_string().contains("unknown certificate authority"),
            "{err}"
        );
    }
}

#[tokio::test]
async fn a_host_name_not_in_the_certificate_fails_verify_full_only() {
    let tls = TlsCluster::shared();
    // Connects to 127.0.0.1 but checks the certificate against db.example.invalid.
    let query = |mode: &str| {
        format!(
            "hostaddr=127.0.0.1&sslmode={mode}&sslrootcert={}",
            tls.encoded_ca()
        )
    };
    let full = tls.superuser_url("db.example.invalid", "postgres", &query("verify-full"));
    let err = connect_error(&full, tls.superuser_password()).await;
    let Error::Tls {
        failure: TlsFailure::HostMismatch { host, presented },
        ..
    } = &err
    else {
        panic!("expected a host name mismatch, got {err}");
    };
    assert_eq!(host, "db.example.invalid");
    assert!(presented.iter().any(|n| n == "localhost"), "{presented:?}");
    assert!(
        err.to_string().contains(
            "host name mismatch: the server's certificate is not valid for \"db.example.invalid\""
        ),
        "{err}"
    );
    // verify-ca checks the chain only.
    let ca = tls.superuser_url("db.example.invalid", "postgres", &query("verify-ca"));
    let client = connect_raw(&ca)
        .await
        .expect("verify-ca ignores the host name");
    assert!(ssl_state(&client).await.0);
}

#[tokio::test]
async fn an_expired_certificate_fails_as_such() {
    let tls = TlsCluster::expired();
    let err = connect_error(&tls.verify_full_url("postgres"), tls.superuser_password()).await;
    assert!(
        matches!(
            &err,
            Error::Tls {
                failure: TlsFailure::Expired { .. },
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("the server's certificate expired on 2021-01-01 00:00:00 UTC"),
        "{err}"
    );
}

#[tokio::test]
async fn sslmode_disable_is_refused_by_the_tls_only_server() {
    let tls = TlsCluster::shared();
    let dsn = tls.superuser_url("127.0.0.1", "postgres", "sslmode=disable");
    let err = connect_error(&dsn, tls.superuser_password()).await;
    let Error::Auth {
        sqlstate, message, ..
    } = &err
    else {
        panic!("expected the server's refusal, got {err}");
    };
    assert_eq!(sqlstate, "28000");
    assert!(
        message.contains("no pg_hba.conf entry") && message.contains("no encryption"),
        "{message}"
    );
}

#[tokio::test]
async fn prefer_falls_back_to_plaintext_and_require_refuses_a_server_without_tls() {
    // The workspace test cluster has no TLS.
    let db = TestDb::new().await;
    let prefer = connect_raw(db.superuser_url())
        .await
        .expect("prefer (default)");
    assert!(
        !ssl_state(&prefer).await.0,
        "the plain cluster cannot be TLS"
    );
    assert_eq!(
        db.superuser_url().tls().expect("settings").mode,
        SslMode::Prefer
    );

    let url = format!("{}?sslmode=require", db.superuser_url().expose());
    let require = Dsn::parse("test URL", SecretString::from(url)).expect("parse");
    let err = connect_raw(&require).await.expect_err("require needs TLS");
    assert!(
        matches!(
            &err,
            Error::Tls {
                failure: TlsFailure::NotSupported {
                    mode: SslMode::Require
                },
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("the server does not support TLS, and sslmode=require requires it"),
        "{err}"
    );
}

#[tokio::test]
async fn prefer_and_require_use_tls_without_a_root_certificate() {
    let tls = TlsCluster::shared();
    for query in ["", "sslmode=require"] {
        let client = connect_raw(&tls.superuser_url("127.0.0.1", "postgres", query))
            .await
            .unwrap_or_else(|e| panic!("{query:?}: {e}"));
        assert!(ssl_state(&client).await.0, "{query:?}");
    }
}

#[tokio::test]
async fn a_client_certificate_is_presented() {
    let tls = TlsCluster::shared();
    let dir = std::env::temp_dir().join(format!("aura-client-cert-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let cert = tls
        .files()
        .issue_client_cert("aura-client", &dir)
        .expect("issue a client certificate");
    let dsn = tls.superuser_url(
        "127.0.0.1",
        "postgres",
        &format!(
            "sslmode=verify-full&sslrootcert={}&sslcert={}&sslkey={}",
            tls.encoded_ca(),
            enc(&cert.cert),
            enc(&cert.key)
        ),
    );
    let client = connect_raw(&dsn)
        .await
        .expect("connect with a client certificate");
    let (_, _, client_dn) = ssl_state(&client).await;
    assert_eq!(client_dn.as_deref(), Some("/CN=aura-client"));
}

#[tokio::test]
async fn system_roots_do_not_trust_the_development_ca() {
    let tls = TlsCluster::shared();
    let dsn = tls.superuser_url("127.0.0.1", "postgres", "sslrootcert=system");
    assert_eq!(dsn.tls().expect("settings").mode, SslMode::VerifyFull);
    let err = connect_error(&dsn, tls.superuser_password()).await;
    assert!(
        err.to_string()
            .contains("not trusted by sslrootcert=system"),
        "{err}"
    );
}

#[tokio::test]
async fn bad_tls_input_names_the_setting() {
    let tls = TlsCluster::shared();
    let parse = |query: &str| {
        Dsn::parse("AURA_DB_URL", tls.url_text("127.0.0.1", "postgres", query))
            .expect_err("bad TLS input")
            .to_string()
    };
    let e = parse("sslmode=verify_full");
    assert!(
        e.contains("sslmode in AURA_DB_URL") && e.contains("\"verify_full\""),
        "{e}"
    );
    let e = parse("sslmode=verify-full&sslrootcert=/nonexistent/ca.crt");
    assert!(
        e.contains("sslrootcert in AURA_DB_URL names /nonexistent/ca.crt which does not exist"),
        "{e}"
    );
    let e = parse(&format!("sslkey={}", tls.encoded_ca()));
    assert!(
        e.contains("sslkey in AURA_DB_URL is set but sslcert is not"),
        "{e}"
    );
    let e = parse(&format!("sslcert={}", tls.encoded_ca()));
    assert!(
        e.contains("sslcert in AURA_DB_URL is set but sslkey is not"),
        "{e}"
    );
    // A file that exists but holds no certificate is found when the connector is built.
    let empty = std::env::temp_dir().join(format!("aura-empty-{}.crt", std::process::id()));
    std::fs::write(&empty, "not a certificate\n").expect("write");
    let dsn = tls.superuser_url(
        "127.0.0.1",
        "postgres",
        &format!("sslmode=verify-full&sslrootcert={}", enc(&empty)),
    );
    let e = connect_raw(&dsn)
        .await
        .expect_err("empty root file")
        .to_string();
    assert!(
        e.contains("sslrootcert") && e.contains("holds no PEM certificate"),
        "{e}"
    );
    for text in [parse("sslmode=bogus"), e] {
        assert!(!text.contains(tls.superuser_password().expose_secret()));
    }
}

#[tokio::test]
async fn pool_migrations_and_cancellation_work_over_tls() {
    let db = TestDb::new_tls().await;
    assert!(
        db.config()
            .app_url()
            .expose()
            .contains("sslmode=verify-full")
    );
    let pool = db.pool().await;
    aura_db::ping(&pool).await.expect("ping over TLS");
    let mut conn = pool.get().await.expect("checkout");
    let encryption = aura_db::encryption(&mut conn).await.expect("pg_stat_ssl");
    assert!(
        matches!(&encryption, Encryption::Tls { version, .. } if version == "TLSv1.3"),
        "{encryption}"
    );
    drop(conn);

    // The template was migrated over TLS; migrating the clone again applies nothing and
    // proves the migrate role's session works over TLS.
    let migrate_url = SecretString::from(
        db.config()
            .migrate_url()
            .expect("migrate URL")
            .expose()
            .to_owned(),
    );
    assert_eq!(
        aura_db::migrate(&migrate_url)
            .await
            .expect("migrate over TLS"),
        0
    );

    // Cancellation: a cancel request over the same TLS settings ends a running statement.
    let dsn = db.superuser_url().clone();
    let client = connect_raw(&dsn).await.expect("raw client");
    let token = client.cancel_token();
    let sleeper = tokio::spawn(async move { client.batch_execute("SELECT pg_sleep(30)").await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let start = Instant::now();
    aura_db::cancel_query(&dsn, &token)
        .await
        .expect("cancel over TLS");
    let result = tokio::time::timeout(Duration::from_secs(5), sleeper)
        .await
        .expect("the statement ended")
        .expect("task");
    let err = result.expect_err("the statement was cancelled");
    assert_eq!(err.code().map(|c| c.code()), Some("57014"), "{err}");
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_planted_password_never_appears_in_tls_errors() {
    let tls = TlsCluster::shared();
    let planted = SecretString::from("planted-Pa55w0rd-tls".to_owned());
    let other = unrelated_ca();
    let cases = [
        format!("sslmode=verify-full&sslrootcert={}", enc(&other)),
        format!(
            "hostaddr=127.0.0.1&sslmode=verify-full&sslrootcert={}",
            tls.encoded_ca()
        ),
        "sslmode=disable".to_owned(),
        "sslmode=require".to_owned(),
    ];
    for (i, query) in cases.iter().enumerate() {
        let host = if i == 1 {
            "db.example.invalid"
        } else {
            "127.0.0.1"
        };
        let dsn = tls
            .superuser_url(host, "postgres", query)
            .with_login("postgres", &planted);
        // The last case gets through TLS and fails on the password.
        let err = connect_error(&dsn, &planted).await;
        assert!(format!("{dsn:?}{dsn}").find("planted").is_none());
        if i == 3 {
            assert!(
                matches!(&err, Error::Auth { sqlstate, .. } if sqlstate == "28P01"),
                "{err}"
            );
        }
    }
    let expired = TlsCluster::expired();
    let dsn = expired
        .verify_full_url("postgres")
        .with_login("postgres", &planted);
    connect_error(&dsn, &planted).await;
}

#[tokio::test]
async fn prefer_retries_in_plaintext_when_the_verified_handshake_fails() {
    // libpq: with a root certificate, prefer verifies the chain; a failed handshake is
    // retried without TLS. The TLS-only server then refuses the plaintext login, which
    // shows the retry happened (without it the error would be the unknown CA).
    let tls = TlsCluster::shared();
    let other = unrelated_ca();
    let dsn = tls.superuser_url(
        "127.0.0.1",
        "postgres",
        &format!("sslmode=prefer&sslrootcert={}", enc(&other)),
    );
    let err = connect_error(&dsn, tls.superuser_password()).await;
    assert!(
        matches!(&err, Error::Auth { message, .. } if message.contains("no encryption")),
        "{err}"
    );
    // With the right CA, prefer is verified TLS.
    let dsn = tls.superuser_url(
        "127.0.0.1",
        "postgres",
        &format!("sslmode=prefer&sslrootcert={}", tls.encoded_ca()),
    );
    let client = connect_raw(&dsn).await.expect("prefer with the right CA");
    assert!(ssl_state(&client).await.0);
}
