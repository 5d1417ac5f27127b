//! Logging in to the local cluster as a client would: SCRAM over TCP with the password file.

mod common;

use std::str::FromStr;

use common::TestCluster;
use secrecy::ExposeSecret;

async fn connect(
    config: &tokio_postgres::Config,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

async fn show(client: &tokio_postgres::Client, setting: &str) -> String {
    client
        .query_one(&format!("SHOW {setting}"), &[])
        .await
        .expect("SHOW")
        .get(0)
}

#[tokio::test]
async fn scram_login_with_the_password_file_and_dev_settings() {
    let cluster = TestCluster::new("login");
    cluster.ensure_running().expect("ensure_running");
    let password = cluster.superuser_password().expect("password");

    let mut config = tokio_postgres::Config::new();
    config
        .host(cluster.host())
        .port(cluster.port())
        .user(cluster.superuser())
        .dbname("postgres")
        .password(password.expose_secret());
    let client = connect(&config).await.expect("superuser login");
    assert_eq!(show(&client, "password_encryption").await, "scram-sha-256");
    assert_eq!(show(&client, "max_connections").await, "200");
    assert_eq!(show(&client, "fsync").await, "off");
    assert_eq!(show(&client, "listen_addresses").await, "127.0.0.1");
    assert_eq!(show(&client, "unix_socket_directories").await, "");
    assert_eq!(show(&client, "port").await, cluster.port().to_string());
    let hba: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_hba_file_rules WHERE type = 'host' AND auth_method <> 'scram-sha-256'",
            &[],
        )
        .await
        .expect("hba rules")
        .get(0);
    assert_eq!(hba, 0, "every host rule asks for scram-sha-256");

    // The URL form works too.
    let url = cluster.superuser_url("postgres").expect("url");
    let from_url = tokio_postgres::Config::from_str(url.expose_secret()).expect("parse url");
    connect(&from_url).await.expect("login by URL");

    // A wrong password is refused: authentication is real, not trust.
    let mut wrong = config.clone();
    wrong.password("not-the-password");
    let err = connect(&wrong).await.expect_err("wrong password refused");
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::INVALID_PASSWORD),
        "{err}"
    );

    drop(client);
    let log = std::fs::read_to_string(cluster.log_path()).expect("log");
    assert!(
        log.contains("password authentication failed"),
        "the failed login is logged"
    );
    assert!(
        !log.contains(password.expose_secret()),
        "password leaked into the log"
    );
}
