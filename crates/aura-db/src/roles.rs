//! Role bootstrap: the app role (DML only) and the migrate role (owns the schema).
//!
//! Runs as the superuser of `AURA_DB_BOOTSTRAP_URL`, in one transaction, and is idempotent:
//! an existing role is altered back to the expected attributes and its password rotated.
//! Roles belong to the cluster, so bootstraps are serialized cluster-wide by a
//! `SHARE ROW EXCLUSIVE` lock on `pg_authid` (a shared catalog: the lock spans databases;
//! it conflicts with role DDL, not with logins or reads). A per-database advisory lock and
//! retries of the whole transaction on a concurrent role update are all a bootstrap role
//! gets that may not take that lock (a managed service's pseudo-superuser).
//!
//! Passwords never reach the server in plaintext: the client computes a SCRAM-SHA-256
//! verifier (postgres-protocol) and sends that, after checking its shape (Postgres silently
//! takes a malformed verifier as a plaintext password).

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::config::Config;
use crate::connect::ConnectSpec;
use crate::dsn::Dsn;
use crate::error::Error;
use crate::ident::{quote_ident, validate_ident};

/// Advisory lock key serializing concurrent bootstraps of one database.
const BOOTSTRAP_LOCK: i64 = 0x6175_7261_726f_6c65; // "auraroles"

/// Longest password accepted, in bytes.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// What [`ensure_roles_with`] sets up.
#[derive(Clone)]
pub struct RolesSpec {
    /// App role name (DML only).
    pub app_role: String,
    /// Migrate role name (owns the schema).
    pub migrate_role: String,
    /// Schema of Aura's tables.
    pub schema: String,
    /// Password given to both roles.
    pub password: SecretString,
    /// Where the password came from, for errors (`AURA_DB_PASSWORD`).
    pub password_source: String,
    /// `statement_timeout` of the app role.
    pub app_statement_timeout: Duration,
    /// `idle_in_transaction_session_timeout` of the app role.
    pub app_idle_in_transaction_timeout: Duration,
    /// `lock_timeout` of the migrate role (DDL waits at most this for its locks).
    pub migrate_lock_timeout: Duration,
}

impl RolesSpec {
    /// The spec `config` describes: its role names, schema, role password and statement
    /// timeout; 60s idle-in-transaction timeout for the app role, 5s lock timeout for DDL.
    pub fn from_config(config: &Config) -> Self {
        RolesSpec {
            app_role: config.app_role().to_owned(),
            migrate_role: config.migrate_role().to_owned(),
            schema: config.schema().to_owned(),
            password: config.role_password().clone(),
            password_source: crate::vars::AURA_DB_PASSWORD.to_owned(),
            app_statement_timeout: config.pool().statement_timeout,
            app_idle_in_transaction_timeout: Duration::from_secs(60),
            migrate_lock_timeout: Duration::from_secs(5),
        }
    }
}

impl std::fmt::Debug for RolesSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RolesSpec")
            .field("app_role", &self.app_role)
            .field("migrate_role", &self.migrate_role)
            .field("schema", &self.schema)
            .field("password", &"***")
            .finish_non_exhaustive()
    }
}

/// What a bootstrap did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RolesReport {
    /// Roles created by this run.
    pub created: Vec<String>,
    /// Roles that existed and were altered (attributes re-asserted, password rotated).
    pub updated: Vec<String>,
    /// True when this run created the schema.
    pub schema_created: bool,
}

/// Bootstraps the roles `config` names, as the superuser of its bootstrap DSN.
pub async fn ensure_roles(config: &Config) -> Result<RolesReport, Error> {
    ensure_roles_with(
        config.bootstrap_url(),
        &RolesSpec::from_config(config),
        config.pool().connect_timeout,
    )
    .await
}

/// Bootstraps the roles of `spec` as the superuser of `bootstrap_url`.
///
/// Names and the password are checked before any SQL is sent.
pub async fn ensure_roles_with(
    bootstrap_url: &Dsn,
    spec: &RolesSpec,
    connect_timeout: Duration,
) -> Result<RolesReport, Error> {
    validate_ident("app role", &spec.app_role)?;
    validate_ident("migrate role", &spec.migrate_role)?;
    validate_ident("schema", &spec.schema)?;
    if spec.app_role == spec.migrate_role {
        return Err(Error::config(
            "migrate role",
            "must differ from the app role",
        ));
    }
    validate_password(&spec.password_source, &spec.password)?;
    let verifier = scram_verifier(&spec.password)?;

    let client = ConnectSpec::single(bootstrap_url, "aura-bootstrap", connect_timeout)
        .connect_raw()
        .await?;
    quiet_session(&client).await;

    // Without the cluster-wide lock, bootstraps of different databases may still collide
    // on the roles: the loser's whole transaction is rolled back and run again.
    let (mut attempt, mut backoff) = (1, RETRY_BACKOFF);
    loop {
        match bootstrap_tx(&client, spec, &verifier).await {
            Err(err) if attempt < MAX_ATTEMPTS && is_role_collision(&err) => {
                tracing::debug!(attempt, error = %err, "role bootstrap collided; retrying");
                tokio::time::sleep(backoff).await;
                attempt += 1;
                backoff *= 2;
            }
            other => return other,
        }
    }
}

/// Attempts at the bootstrap transaction when it collides with a concurrent one.
const MAX_ATTEMPTS: u32 = 6;
/// Pause before the first retry; doubled before each next one.
const RETRY_BACKOFF: Duration = Duration::from_millis(20);

/// A concurrent bootstrap (or other role DDL) won the race: the role was created meanwhile
/// (42710, or 23505 from the catalog's unique index), or its catalog row was updated
/// meanwhile (XX000 "tuple concurrently updated").
fn is_role_collision(err: &Error) -> bool {
    match err {
        Error::Bootstrap {
            sqlstate: Some(code),
            message,
            ..
        } => {
            code == "42710"
                || code == "23505"
                || (code == "XX000" && message.contains("concurrently updated"))
        }
        _ => false,
    }
}

/// Turns statement logging off for this session where the role may (superusers): the
/// verifiers are not passwords, but they do not belong in logs either. Failures are fine.
async fn quiet_session(client: &tokio_postgres::Client) {
    for setting in [
        "SET log_statement = 'none'",
        "SET log_min_duration_statement = -1",
        "SET log_min_error_statement = 'panic'",
        "SET pg_stat_statements.track = 'none'",
    ] {
        let _ = client.batch_execute(setting).await;
    }
}

async fn bootstrap_tx(
    client: &tokio_postgres::Client,
    spec: &RolesSpec,
    verifier: &str,
) -> Result<RolesReport, Error> {
    let tx = Tx { client };
    tx.run("begin", "BEGIN").await?;
    let result = bootstrap_steps(&tx, spec, verifier).await;
    match result {
        Ok(report) => {
            tx.run("commit", "COMMIT").await?;
            Ok(report)
        }
        Err(err) => {
            let _ = client.batch_execute("ROLLBACK").await;
            Err(err)
        }
    }
}

async fn bootstrap_steps(
    tx: &Tx<'_>,
    spec: &RolesSpec,
    verifier: &str,
) -> Result<RolesReport, Error> {
    let mut report = RolesReport::default();
    tx.run("savepoint", "SAVEPOINT cluster_lock").await?;
    match tx
        .run(
            "lock pg_authid",
            "LOCK TABLE pg_catalog.pg_authid IN SHARE ROW EXCLUSIVE MODE",
        )
        .await
    {
        Ok(()) => {}
        Err(err) if err.sqlstate() == Some("42501") => {
            // Not a real superuser: the per-database lock below and the retries it is.
            tx.run(
                "rollback to savepoint",
                "ROLLBACK TO SAVEPOINT cluster_lock",
            )
            .await?;
        }
        Err(err) => return Err(err),
    }
    tx.client
        .execute("SELECT pg_advisory_xact_lock($1)", &[&BOOTSTRAP_LOCK])
        .await
        .map_err(|e| step_error("advisory lock", e))?;

    let app = quote_ident(&spec.app_role);
    let migrate = quote_ident(&spec.migrate_role);
    let schema = quote_ident(&spec.schema);
    let password = escape_literal(verifier);
    let attributes = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS";

    for (name, quoted) in [(&spec.migrate_role, &migrate), (&spec.app_role, &app)] {
        let exists = tx
            .client
            .query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[name])
            .await
            .map_err(|e| step_error("look up roles", e))?
            .is_some();
        let verb = if exists { "ALTER" } else { "CREATE" };
        let with = if exists { " WITH" } else { "" };
        tx.run(
            &format!("{} role {quoted}", verb.to_lowercase()),
            &format!("{verb} ROLE {quoted}{with} {attributes} PASSWORD {password}"),
        )
        .await?;
        if exists {
            report.updated.push(name.clone());
        } else {
            report.created.push(name.clone());
        }
    }

    // The app role must not be able to become the migrate role.
    let member = tx
        .client
        .query_opt(
            "SELECT 1 FROM pg_auth_members m \
             JOIN pg_roles r ON r.oid = m.roleid JOIN pg_roles u ON u.oid = m.member \
             WHERE r.rolname = $1 AND u.rolname = $2",
            &[&spec.migrate_role, &spec.app_role],
        )
        .await
        .map_err(|e| step_error("check memberships", e))?
        .is_some();
    if member {
        tx.run("revoke membership", &format!("REVOKE {migrate} FROM {app}"))
            .await?;
    }

    let owner: Option<String> = tx
        .client
        .query_opt(
            "SELECT pg_get_userbyid(nspowner)::text FROM pg_namespace WHERE nspname = $1",
            &[&spec.schema],
        )
        .await
        .map_err(|e| step_error("look up schema", e))?
        .map(|row| row.get(0));
    match owner {
        None => {
            tx.run(
                &format!("create schema {schema}"),
                &format!("CREATE SCHEMA {schema} AUTHORIZATION {migrate}"),
            )
            .await?;
            report.schema_created = true;
        }
        Some(owner) if owner == spec.migrate_role => {}
        Some(owner) => {
            return Err(Error::SchemaOwner {
                schema: spec.schema.clone(),
                owner,
                expected: spec.migrate_role.clone(),
            });
        }
    }

    let database: String = tx
        .client
        .query_one("SELECT current_database()::text", &[])
        .await
        .map_err(|e| step_error("current database", e))?
        .get(0);
    let database = quote_ident(&database);
    let ms = |d: Duration| d.as_millis();
    let statements = [
        (
            "revoke public create",
            "REVOKE CREATE ON SCHEMA public FROM PUBLIC".to_owned(),
        ),
        (
            "grant connect",
            format!("GRANT CONNECT ON DATABASE {database} TO {app}, {migrate}"),
        ),
        (
            "revoke public temporary",
            format!("REVOKE TEMPORARY ON DATABASE {database} FROM PUBLIC"),
        ),
        (
            "grant migrate temporary",
            format!("GRANT TEMPORARY ON DATABASE {database} TO {migrate}"),
        ),
        (
            "grant schema usage",
            format!("GRANT USAGE ON SCHEMA {schema} TO {app}"),
        ),
        (
            "default privileges on tables",
            format!(
                "ALTER DEFAULT PRIVILEGES FOR ROLE {migrate} IN SCHEMA {schema} \
                 GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {app}"
            ),
        ),
        (
            "default privileges on sequences",
            format!(
                "ALTER DEFAULT PRIVILEGES FOR ROLE {migrate} IN SCHEMA {schema} \
                 GRANT USAGE, SELECT ON SEQUENCES TO {app}"
            ),
        ),
        (
            "app search_path",
            format!("ALTER ROLE {app} SET search_path = {schema}"),
        ),
        (
            "app statement_timeout",
            format!(
                "ALTER ROLE {app} SET statement_timeout = {}",
                ms(spec.app_statement_timeout)
            ),
        ),
        (
            "app idle_in_transaction_session_timeout",
            format!(
                "ALTER ROLE {app} SET idle_in_transaction_session_timeout = {}",
                ms(spec.app_idle_in_transaction_timeout)
            ),
        ),
        (
            "migrate search_path",
            format!("ALTER ROLE {migrate} SET search_path = {schema}"),
        ),
        (
            "migrate lock_timeout",
            format!(
                "ALTER ROLE {migrate} SET lock_timeout = {}",
                ms(spec.migrate_lock_timeout)
            ),
        ),
    ];
    for (step, sql) in statements {
        tx.run(step, &sql).await?;
    }
    Ok(report)
}

/// Runs statements on the bootstrap session, naming the step (never the SQL, which may hold
/// a verifier) in errors.
struct Tx<'a> {
    client: &'a tokio_postgres::Client,
}

impl Tx<'_> {
    async fn run(&self, step: &str, sql: &str) -> Result<(), Error> {
        self.client
            .batch_execute(sql)
            .await
            .map_err(|e| step_error(step, e))
    }
}

fn step_error(step: &str, err: tokio_postgres::Error) -> Error {
    let (message, sqlstate) = crate::error::pg_message(&err);
    Error::Bootstrap {
        step: step.to_owned(),
        message,
        sqlstate,
        source: Box::new(err),
    }
}

/// The password rules, checked before anything is sent: non-empty, at most 1024 bytes, no
/// NUL or other control characters.
pub fn validate_password(source: &str, password: &SecretString) -> Result<(), Error> {
    let pw = password.expose_secret();
    let rule = if pw.is_empty() {
        Some("the password is empty".to_owned())
    } else if pw.len() > MAX_PASSWORD_BYTES {
        Some(format!(
            "the password is longer than {MAX_PASSWORD_BYTES} bytes"
        ))
    } else if pw.contains('\0') {
        Some("the password contains a NUL byte".to_owned())
    } else if pw.chars().any(char::is_control) {
        Some("the password contains a control character".to_owned())
    } else {
        None
    };
    match rule {
        Some(rule) => Err(Error::InvalidPassword {
            var: source.to_owned(),
            rule,
        }),
        None => Ok(()),
    }
}

/// A SCRAM-SHA-256 verifier for `password`, shape-checked.
fn scram_verifier(password: &SecretString) -> Result<String, Error> {
    let verifier = postgres_protocol::password::scram_sha_256(password.expose_secret().as_bytes());
    if !is_scram_verifier(&verifier) {
        return Err(Error::config(
            "password",
            "could not compute a SCRAM-SHA-256 verifier",
        ));
    }
    Ok(verifier)
}

/// `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`, base64 parts.
fn is_scram_verifier(v: &str) -> bool {
    let b64 = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"+/=".contains(&c))
    };
    let Some(rest) = v.strip_prefix("SCRAM-SHA-256$") else {
        return false;
    };
    let Some((iter_salt, keys)) = rest.split_once('$') else {
        return false;
    };
    let Some((iterations, salt)) = iter_salt.split_once(':') else {
        return false;
    };
    let Some((stored, server)) = keys.split_once(':') else {
        return false;
    };
    !iterations.is_empty()
        && iterations.bytes().all(|c| c.is_ascii_digit())
        && b64(salt)
        && b64(stored)
        && b64(server)
}

/// `E'…'` with `\` and `'` doubled: safe whatever `standard_conforming_strings` says.
fn escape_literal(s: &str) -> String {
    format!("E'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifiers_have_the_scram_shape() {
        let v = scram_verifier(&SecretString::from("päss wörd ☃".to_owned())).unwrap();
        assert!(v.starts_with("SCRAM-SHA-256$4096:"), "{v}");
        assert!(is_scram_verifier(&v));
        for bad in [
            "",
            "md5abc",
            "SCRAM-SHA-256$4096:salt",
            "SCRAM-SHA-256$x:s$a:b",
            "SCRAM-SHA-256$4096:s'$a:b",
        ] {
            assert!(!is_scram_verifier(bad), "{bad}");
        }
    }

    #[test]
    fn password_rules_name_the_rule_not_the_password() {
        let cases = [
            (String::new(), "empty"),
            ("a".repeat(1025), "longer than 1024"),
            ("nul\0byte".to_owned(), "NUL"),
            ("bell\u{7}x".to_owned(), "control"),
            ("tab\tx".to_owned(), "control"),
        ];
        for (pw, rule) in cases {
            let err =
                validate_password("AURA_DB_PASSWORD", &SecretString::from(pw.clone())).unwrap_err();
            let text = err.to_string();
            assert!(
                text.contains(rule) && text.contains("AURA_DB_PASSWORD"),
                "{text}"
            );
            if pw.len() > 3 {
                assert!(!text.contains(&pw));
            }
        }
        assert!(validate_password("P", &SecretString::from("a".repeat(1024))).is_ok());
    }

    #[test]
    fn only_concurrent_role_changes_count_as_collisions() {
        let bootstrap = |code: &str, message: &str| Error::Bootstrap {
            step: "alter role".to_owned(),
            message: message.to_owned(),
            sqlstate: Some(code.to_owned()),
            source: message.into(),
        };
        assert!(is_role_collision(&bootstrap(
            "XX000",
            "tuple concurrently updated"
        )));
        assert!(is_role_collision(&bootstrap("42710", "role exists")));
        assert!(is_role_collision(&bootstrap("23505", "duplicate key")));
        assert!(!is_role_collision(&bootstrap(
            "XX000",
            "cache lookup failed"
        )));
        assert!(!is_role_collision(&bootstrap("42501", "permission denied")));
    }

    #[test]
    fn literals_escape_quotes_and_backslashes() {
        assert_eq!(escape_literal(r"\'; x"), r"E'\\''; x'");
    }
}
