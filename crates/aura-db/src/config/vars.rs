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
/// Client-side deadline of every store operation and transaction.
pub const AURA_DB_OPERATION_TIMEOUT: &str = "AURA_DB_OPERATION_TIMEOUT";
/// `application_name` of connections.
pub const AURA_DB_APPLICATION_NAME: &str = "AURA_DB_APPLICATION_NAME";
/// A file holding the password of both application roles, re-read for every new
/// connection (exclusive with `AURA_DB_PASSWORD`).
pub const AURA_DB_PASSWORD_FILE: &str = "AURA_DB_PASSWORD_FILE";
/// A file holding the superuser's password, re-read for every new bootstrap connection
/// (exclusive with `POSTGRES_PASSWORD`); the official Postgres image's convention.
pub const POSTGRES_PASSWORD_FILE: &str = "POSTGRES_PASSWORD_FILE";
/// Idle time before the first TCP keepalive probe (0 turns keepalives off).
pub const AURA_DB_TCP_KEEPALIVE_IDLE: &str = "AURA_DB_TCP_KEEPALIVE_IDLE";
/// Time between unanswered TCP keepalive probes.
pub const AURA_DB_TCP_KEEPALIVE_INTERVAL: &str = "AURA_DB_TCP_KEEPALIVE_INTERVAL";
/// Unanswered TCP keepalive probes before a connection is dropped.
pub const AURA_DB_TCP_KEEPALIVE_RETRIES: &str = "AURA_DB_TCP_KEEPALIVE_RETRIES";
/// Longest time sent data may stay unacknowledged (`TCP_USER_TIMEOUT`; 0: the OS default).
pub const AURA_DB_TCP_USER_TIMEOUT: &str = "AURA_DB_TCP_USER_TIMEOUT";
/// Threshold of the slow-operation warning (`0` or `off`: none).
pub const AURA_DB_SLOW_OP: &str = "AURA_DB_SLOW_OP";
/// DSN of a read replica (app role), verbatim; optional: reads go to it (see aura-store).
pub const AURA_DB_READ_URL: &str = "AURA_DB_READ_URL";
/// Replay lag past which reads leave the replica for the primary.
pub const AURA_DB_READ_MAX_LAG: &str = "AURA_DB_READ_MAX_LAG";
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
    AURA_DB_MAX_CONNS,
    AURA_DB_MIN_CONNS,
    AURA_DB_MAX_CONN_IDLE,
    AURA_DB_CONNECT_TIMEOUT,
    AURA_DB_CHECKOUT_TIMEOUT,
    AURA_DB_STATEMENT_TIMEOUT,
    AURA_DB_OPERATION_TIMEOUT,
    AURA_DB_APPLICATION_NAME,
    AURA_DB_PASSWORD_FILE,
    POSTGRES_PASSWORD_FILE,
    AURA_DB_TCP_KEEPALIVE_IDLE,
    AURA_DB_TCP_KEEPALIVE_INTERVAL,
    AURA_DB_TCP_KEEPALIVE_RETRIES,
    AURA_DB_TCP_USER_TIMEOUT,
    AURA_DB_SLOW_OP,
    AURA_DB_READ_URL,
    AURA_DB_READ_MAX_LAG,
];

/// How errors name each field: environment variables, or builder methods.
pub(crate) struct Names {
    pub host: &'static str,
    pub port: &'static str,
    pub app_url: &'static str,
    pub read_url: &'static str,
    pub read_max_lag: &'static str,
    pub migrate_url: &'static str,
    pub bootstrap_url: &'static str,
    pub app_role: &'static str,
    pub migrate_role: &'static str,
    pub max_conns: &'static str,
    pub min_conns: &'static str,
    pub max_conn_idle: &'static str,
    pub connect_timeout: &'static str,
    pub checkout_timeout: &'static str,
    pub operation_timeout: &'static str,
    pub application_name: &'static str,
    pub superuser_password: &'static str,
    pub superuser_password_file: &'static str,
    pub role_password: &'static str,
    pub role_password_file: &'static str,
    pub tcp_keepalive_idle: &'static str,
    pub tcp_keepalive_interval: &'static str,
    pub tcp_keepalive_retries: &'static str,
}

impl Names {
    pub const ENV: Names = Names {
        host: POSTGRES_HOST,
        port: POSTGRES_PORT,
        app_url: AURA_DB_URL,
        read_url: AURA_DB_READ_URL,
        read_max_lag: AURA_DB_READ_MAX_LAG,
        migrate_url: AURA_DB_MIGRATE_URL,
        bootstrap_url: AURA_DB_BOOTSTRAP_URL,
        app_role: AURA_DB_APP_ROLE,
        migrate_role: AURA_DB_MIGRATE_ROLE,
        max_conns: AURA_DB_MAX_CONNS,
        min_conns: AURA_DB_MIN_CONNS,
        max_conn_idle: AURA_DB_MAX_CONN_IDLE,
        connect_timeout: AURA_DB_CONNECT_TIMEOUT,
        checkout_timeout: AURA_DB_CHECKOUT_TIMEOUT,
        operation_timeout: AURA_DB_OPERATION_TIMEOUT,
        application_name: AURA_DB_APPLICATION_NAME,
        superuser_password: POSTGRES_PASSWORD,
        superuser_password_file: POSTGRES_PASSWORD_FILE,
        role_password: AURA_DB_PASSWORD,
        role_password_file: AURA_DB_PASSWORD_FILE,
        tcp_keepalive_idle: AURA_DB_TCP_KEEPALIVE_IDLE,
        tcp_keepalive_interval: AURA_DB_TCP_KEEPALIVE_INTERVAL,
        tcp_keepalive_retries: AURA_DB_TCP_KEEPALIVE_RETRIES,
    };

    pub const BUILDER: Names = Names {
        host: "host",
        port: "port",
        app_url: "app_url",
        read_url: "read_url",
        read_max_lag: "read_max_lag",
        migrate_url: "migrate_url",
        bootstrap_url: "bootstrap_url",
        app_role: "app_role",
        migrate_role: "migrate_role",
        max_conns: "max_conns",
        min_conns: "min_conns",
        max_conn_idle: "max_conn_idle",
        connect_timeout: "connect_timeout",
        checkout_timeout: "checkout_timeout",
        operation_timeout: "operation_timeout",
        application_name: "application_name",
        superuser_password: "superuser_password",
        superuser_password_file: "superuser_password_file",
        role_password: "role_password",
        role_password_file: "role_password_file",
        tcp_keepalive_idle: "tcp.keepalive_idle",
        tcp_keepalive_interval: "tcp.keepalive_interval",
        tcp_keepalive_retries: "tcp.keepalive_retries",
    };
}

/// Variables that once existed, with what replaced them.
const RETIRED: &[(&str, &str)] = &[(
    "AURA_DB_SCHEMA",
    "the schema is always aura; the variable was removed",
)];

/// An `AURA_DB_*` variable in the environment that no setting reads: a typo would silently
/// leave its setting at the default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownVar {
    /// The variable's name.
    pub name: String,
    /// The known variable it most likely meant, or why it is no longer read.
    pub hint: Option<String>,
}

impl std::fmt::Display for UnknownVar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unknown variable {}", self.name)?;
        match &self.hint {
            Some(hint) => write!(f, " ({hint})"),
            None => Ok(()),
        }
    }
}

/// The `AURA_DB_*` names among `names` that no setting reads, sorted, each with the known
/// variable it most likely meant (`AURA_DB_MAX_CONN` → `did you mean AURA_DB_MAX_CONNS?`).
pub fn unknown<I, S>(names: I) -> Vec<UnknownVar>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut out: Vec<UnknownVar> = names
        .into_iter()
        .filter_map(|n| {
            let name = n.as_ref();
            (name.starts_with("AURA_DB_") && !ALL.contains(&name)).then(|| UnknownVar {
                name: name.to_owned(),
                hint: hint(name),
            })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out.dedup();
    out
}

/// [`unknown`] over the names of the process environment.
pub fn unknown_in_env() -> Vec<UnknownVar> {
    unknown(std::env::vars_os().filter_map(|(k, _)| k.into_string().ok()))
}

fn hint(name: &str) -> Option<String> {
    if let Some((_, why)) = RETIRED.iter().find(|(n, _)| *n == name) {
        return Some((*why).to_owned());
    }
    ALL.iter()
        .filter(|k| k.starts_with("AURA_DB_"))
        .map(|k| (distance(name, k), *k))
        .filter(|(d, _)| *d <= 3)
        .min()
        .map(|(_, k)| format!("did you mean {k}?"))
}

/// Levenshtein distance, in characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (row[j + 1] + 1)
                .min(row[j] + 1)
                .min(prev + usize::from(ca != *cb));
            prev = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_aura_db_variables_are_named_with_a_hint() {
        let found = unknown([
            "AURA_DB_MAX_CONN",
            "AURA_DB_URL",
            "AURA_DB_SCHEMA",
            "AURA_DB_FROBNICATE",
            "AURA_RESET_YES",
            "AURA_LOCALPG_DIR",
            "PATH",
        ]);
        let lines: Vec<String> = found.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "unknown variable AURA_DB_FROBNICATE",
                "unknown variable AURA_DB_MAX_CONN (did you mean AURA_DB_MAX_CONNS?)",
                "unknown variable AURA_DB_SCHEMA (the schema is always aura; the variable was removed)",
            ]
        );
        assert!(unknown(ALL.iter()).is_empty());
        assert_eq!(
            unknown(["AURA_DB_STATMENT_TIMEOUT"])[0].hint.as_deref(),
            Some("did you mean AURA_DB_STATEMENT_TIMEOUT?")
        );
    }
}
