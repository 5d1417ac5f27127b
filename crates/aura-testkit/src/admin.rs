//! The superuser's side: raw admin clients (through `aura_db::connect_raw`, so over the
//! same TLS as everything else), their error text, and the configuration of a test database.

use aura_db::{Config, Dsn};
use secrecy::SecretString;

/// A raw client on `dsn`, its connection driven on the current runtime.
pub(crate) async fn connect(dsn: &Dsn) -> Result<tokio_postgres::Client, String> {
    aura_db::connect_raw(dsn).await.map_err(|e| e.to_string())
}

/// The server's message and SQLSTATE, or the client error with its causes.
pub(crate) fn pg_error(err: &tokio_postgres::Error) -> String {
    match err.as_db_error() {
        Some(db) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
        None => {
            let mut text = err.to_string();
            let mut source = std::error::Error::source(err);
            while let Some(e) = source {
                text.push_str(&format!(": {e}"));
                source = e.source();
            }
            text
        }
    }
}

/// A configuration builder for the database `superuser_url` points at: its host, port,
/// name and superuser, and the test roles' password. When `superuser_url` carries TLS keys
/// (the TLS test server), the three URLs are given verbatim with the same keys.
pub(crate) fn builder_for(
    superuser_url: &Dsn,
    role_password: &SecretString,
) -> aura_db::ConfigBuilder {
    let pg = superuser_url.pg_config();
    let host = match pg.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        _ => "127.0.0.1".to_owned(),
    };
    let password = pg
        .get_password()
        .map(|p| SecretString::from(String::from_utf8_lossy(p).into_owned()))
        .unwrap_or_else(|| SecretString::from(String::new()));
    let builder = Config::builder()
        .host(host)
        .port(pg.get_ports().first().copied().unwrap_or(5432))
        .dbname(pg.get_dbname().unwrap_or("postgres"))
        .superuser(pg.get_user().unwrap_or("postgres"))
        .superuser_password(password)
        .role_password(role_password.clone())
        .application_name("aura-test");
    if !superuser_url.has_tls_keys() {
        return builder;
    }
    let url = |dsn: Dsn| SecretString::from(dsn.expose().to_owned());
    builder
        .app_url(url(superuser_url.with_login("aura_app", role_password)))
        .migrate_url(url(superuser_url.with_login("aura_migrate", role_password)))
        .bootstrap_url(url(superuser_url.clone()))
}
