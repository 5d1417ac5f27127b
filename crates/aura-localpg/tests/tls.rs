//! `enable_tls`: generated certificates with the modes and owner the server needs, ssl on,
//! TLS-only pg_hba lines, idempotence, and a plaintext login refused by the server.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::str::FromStr;

use aura_localpg::{Status, TlsOptions};
use common::{TestCluster, ready_count};
use secrecy::ExposeSecret;

#[tokio::test]
async fn enable_tls_generates_certificates_and_refuses_plaintext() {
    let cluster = TestCluster::new("tls");
    let files = cluster
        .enable_tls(&TlsOptions::new().tls_only(true))
        .expect("enable_tls");
    let data = cluster.data_dir();
    let owner = std::fs::metadata(&data).expect("data dir").uid();
    for (name, mode) in [
        ("server.key", 0o600),
        ("aura-ca.key", 0o600),
        ("server.crt", 0o644),
        ("aura-ca.crt", 0o644),
    ] {
        let meta = std::fs::metadata(data.join(name)).expect(name);
        assert_eq!(meta.permissions().mode() & 0o777, mode, "{name}");
        assert_eq!(meta.uid(), owner, "{name} is not the server user's");
    }
    assert_eq!(files.ca_cert(), data.join("aura-ca.crt"));
    let ca = std::fs::read_to_string(files.ca_cert()).expect("CA");
    assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"), "{ca}");

    let hba = std::fs::read_to_string(data.join("pg_hba.conf")).expect("hba");
    let tcp: Vec<&str> = hba.lines().filter(|l| l.starts_with("host")).collect();
    assert!(!tcp.is_empty());
    assert!(tcp.iter().all(|l| l.starts_with("hostssl ")), "{tcp:?}");

    // Same options again: nothing changes, no restart.
    let Status::Running { pid } = cluster.status().expect("status") else {
        panic!("not running after enable_tls");
    };
    let starts = ready_count(&cluster.log_path());
    cluster
        .enable_tls(&TlsOptions::new().tls_only(true))
        .expect("enable_tls again");
    assert_eq!(cluster.status().expect("status"), Status::Running { pid });
    assert_eq!(ready_count(&cluster.log_path()), starts);
    assert_eq!(std::fs::read_to_string(files.ca_cert()).expect("CA"), ca);

    // The server refuses a plaintext login (pg_hba: hostssl only).
    let password = cluster.superuser_password().expect("password");
    let mut config = tokio_postgres::Config::from_str(&format!(
        "host=127.0.0.1 port={} user=postgres dbname=postgres",
        cluster.port()
    ))
    .expect("config");
    config.password(password.expose_secret());
    config.ssl_mode(tokio_postgres::config::SslMode::Disable);
    let err = config
        .connect(tokio_postgres::NoTls)
        .await
        .err()
        .expect("plaintext must be refused");
    let message = err
        .as_db_error()
        .expect("a server error")
        .message()
        .to_owned();
    assert!(message.contains("no encryption"), "{message}");
    let conf = std::fs::read_to_string(data.join("aura-tls.conf")).expect("conf");
    assert!(conf.contains("ssl = on"), "{conf}");
}
