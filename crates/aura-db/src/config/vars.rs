//! The environment variables `Config::from_env` reads, and the names errors use.

/// Database host.
pub const POSTGRES_HOST: &str = "POSTGRES_HOST";
/// Database port.
pub const POSTGRES_PORT: &str = "POSTGRES_PORT";
/// Database name.
pub const POSTGRES_DB: &str = "POSTGRES_DB";
/// Superuser name, used only to bootstrap roles.
pub const POSTGRES_USER: &str = "POSTGRES_USER";
/// Superuser password.
pub const POSTGRES_PASSWORD: &str = "POSTGRES_PASSWORD";
/// Password of both application roles.
pub const AURA_DB_PASSWORD: &str = "AURA_DB_PASSWORD";
/// Runtime DSN (app role), verbatim.
pub const AURA_DB_URL: &str = "AURA_DB_URL";
/// DDL DSN (migrate role), verbatim.
pub const AURA_DB_MIGRATE_URL: &str = "AURA_DB_MIGRATE_URL";
/// Superuser DSN for role bootstrap, verbatim.
pub const AURA_DB_BOOTSTRAP_URL: &str = "AURA_DB_BOOTSTRAP_URL";
/// App role name.
pub const AURA_DB_APP_ROLE: &str = "AURA_DB_APP_ROLE";
/// Migrate role name.
pub const AURA_DB_MIGRATE_ROLE: &str = "AURA_DB_MIGRATE_ROLE";
/// Schema name.
pub const AURA_DB_SCHEMA: &str = "AURA_DB_SCHEMA";
/// Pool maximum size.
pub const AURA_DB_MAX_CONNS: &str = "AURA_DB_MAX_CONNS";
/// Idle connections kept ready.
pub const AURA_DB_MIN_CONNS: &str = "AURA_DB_MIN_CONNS";
/// Idle timeout.
pub const AURA_DB_MAX_CONN_IDLE: &str = "AURA_DB_MAX_CONN_IDLE";
/// Connect timeout.
pub const AURA_DB_CONNECT_TIMEOUT: &str = "AURA_DB_CONNECT_TIMEOUT";
/// Checkout timeout (defaults to the connect timeout).
pub const AURA_DB_CHECKOUT_TIMEOUT: &str = "AURA_DB_CHECKOUT_TIMEOUT";
/// Statement timeout of pooled connections.
pub const AURA_DB_STATEMENT_TIMEOUT: &str = "AURA_DB_STATEMENT_TIMEOUT";
/// `application_name` of connections.
pub const AURA_DB_APPLICATION_NAME: &str = "AURA_DB_APPLICATION_NAME";
/// Threshold of the slow-operation warning (`0` or `off`: none).
pub const AURA_DB_SLOW_OP: &str = "AURA_DB_SLOW_OP";
/// Must be `1` for `aura db reset`.
pub const AURA_RESET_YES: &str = "AURA_RESET_YES";

/// Every variable `Config::from_env` reads (AURA_RESET_YES is read by `reset`).
pub const ALL: &[&str] = &[
    POSTGRES_HOST,
    POSTGRES_PORT,
    POSTGRES_DB,
    POSTGRES_USER,
    POSTGRES_PASSWORD,
    AURA_DB_PASSWORD,
    AURA_DB_URL,
    AURA_DB_MIGRATE_URL,
    AURA_DB_BOOTSTRAP_URL,
    AURA_DB_APP_ROLE,
    AURA_DB_MIGRATE_ROLE,
    AURA_DB_SCHEMA,
    AURA_DB_MAX_CONNS,
    AURA_DB_MIN_CONNS,
    AURA_DB_MAX_CONN_IDLE,
    AURA_DB_CONNECT_TIMEOUT,
    AURA_DB_CHECKOUT_TIMEOUT,
    AURA_DB_STATEMENT_TIMEOUT,
    AURA_DB_APPLICATION_NAME,
    AURA_DB_SLOW_OP,
];

/// How errors name each field: environment variables, or builder methods.
pub(crate) struct Names {
    pub host: &'static str,
    pub port: &'static str,
    pub app_url: &'static str,
    pub migrate_url: &'static str,
    pub bootstrap_url: &'static str,
    pub app_role: &'static str,
    pub migrate_role: &'static str,
    pub schema: &'static str,
    pub max_conns: &'static str,
    pub min_conns: &'static str,
    pub max_conn_idle: &'static str,
    pub connect_timeout: &'static str,
    pub checkout_timeout: &'static str,
    pub application_name: &'static str,
}

impl Names {
    pub const ENV: Names = Names {
        host: POSTGRES_HOST,
        port: POSTGRES_PORT,
        app_url: AURA_DB_URL,
        migrate_url: AURA_DB_MIGRATE_URL,
        bootstrap_url: AURA_DB_BOOTSTRAP_URL,
        app_role: AURA_DB_APP_ROLE,
        migrate_role: AURA_DB_MIGRATE_ROLE,
        schema: AURA_DB_SCHEMA,
        max_conns: AURA_DB_MAX_CONNS,
        min_conns: AURA_DB_MIN_CONNS,
        max_conn_idle: AURA_DB_MAX_CONN_IDLE,
        connect_timeout: AURA_DB_CONNECT_TIMEOUT,
        checkout_timeout: AURA_DB_CHECKOUT_TIMEOUT,
        application_name: AURA_DB_APPLICATION_NAME,
    };

    pub const BUILDER: Names = Names {
        host: "host",
        port: "port",
        app_url: "app_url",
        migrate_url: "migrate_url",
        bootstrap_url: "bootstrap_url",
        app_role: "app_role",
        migrate_role: "migrate_role",
        schema: "schema",
        max_conns: "max_conns",
        min_conns: "min_conns",
        max_conn_idle: "max_conn_idle",
        connect_timeout: "connect_timeout",
        checkout_timeout: "checkout_timeout",
        application_name: "application_name",
    };
}
