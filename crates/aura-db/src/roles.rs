//! Role bootstrap: the app role (DML only) and the migrate role (owns the schema).
//!
//! Runs as the superuser of `AURA_DB_BOOTSTRAP_URL`, in one transaction, and is idempotent:
//! an existing role is altered back to the expected attributes, its password set (its stored
//! SCRAM verifier kept when it already verifies the password: see `crate::scram`).
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

use crate::SCHEMA;
use crate::config::Config;
use crate::connect::ConnectSpec;
use crate::dsn::Dsn;
use crate::error::Error;
use crate::provision::{self, Admin, Verifiers};

/// Advisory lock key serializing concurrent bootstraps of one database (and the grants a
/// migration run makes: they update the same catalog rows).
pub(crate) const BOOTSTRAP_LOCK: i64 = 0x6175_7261_726f_6c65; // "auraroles"

/// Longest password accepted, in bytes.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// What [`ensure_roles_with`] and [`crate::bootstrap_script`] set up. The schema is
/// always [`crate::SCHEMA`].
#[derive(Clone)]
pub struct RolesSpec {
    /// App role name (DML only).
    pub app_role: String,
    /// Migrate role name (owns the schema).
    pub migrate_role: String,
    /// Password of the app role, and of the migrate role unless `migrate_password` is set.
    pub password: SecretString,
    /// Where `password` came from, for errors (`AURA_DB_PASSWORD`).
    pub password_source: String,
    /// Password of the migrate role when it differs from the app role's.
    pub migrate_password: Option<SecretString>,
    /// Where `migrate_password` came from, for errors (`AURA_DB_MIGRATE_URL`).
    pub migrate_password_source: String,
    /// `statement_timeout` of the app role.
    pub app_statement_timeout: Duration,
    /// `idle_in_transaction_session_timeout` of the app role.
    pub app_idle_in_transaction_timeout: Duration,
    /// `lock_timeout` of the migrate role (DDL waits at most this for its locks).
    pub migrate_lock_timeout: Duration,
}

/// `lock_timeout` the bootstrap gives the migrate role, and a migration session takes when
/// its role has none.
pub const MIGRATE_LOCK_TIMEOUT: Duration = Duration::from_secs(5);

impl RolesSpec {
    /// The spec `config` describes: its role names, role password and pool timeouts; 5s
    /// lock timeout for DDL.
    pub fn from_config(config: &Config) -> Self {
        let mut spec = RolesSpec::named(
            config.app_role(),
            config.migrate_role(),
            config.role_password().clone(),
        );
        spec.app_statement_timeout = config.pool().statement_timeout;
        spec.app_idle_in_transaction_timeout = config.pool().idle_in_transaction_timeout;
        spec
    }

    /// Roles `app` and `migrate`, both with `password` (from `AURA_DB_PASSWORD`), and the
    /// default timeouts: 30s statements and 60s idle in transaction for the app role, 5s
    /// lock timeout for the migrate role.
    pub fn named(app: &str, migrate: &str, password: SecretString) -> Self {
        RolesSpec {
            app_role: app.to_owned(),
            migrate_role: migrate.to_owned(),
            password,
            password_source: crate::vars::AURA_DB_PASSWORD.to_owned(),
            migrate_password: None,
            migrate_password_source: crate::vars::AURA_DB_PASSWORD.to_owned(),
            app_statement_timeout: Duration::from_secs(30),
            app_idle_in_transaction_timeout: Duration::from_secs(60),
            migrate_lock_timeout: MIGRATE_LOCK_TIMEOUT,
        }
    }
}

impl std::fmt::Debug for RolesSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RolesSpec")
            .field("app_role", &self.app_role)
            .field("migrate_role", &self.migrate_role)
            .field("password", &"***")
            .finish_non_exhaustive()
    }
}

/// What a bootstrap did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RolesReport {
    /// Roles created by this run.
    pub created: Vec<String>,
    /// Roles that existed and were altered (attributes re-asserted, password set).
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
    provision::validate_spec(spec)?;
    let verifiers = Verifiers::of(spec)?;

    let client = ConnectSpec::single(bootstrap_url, "aura-bootstrap", connect_timeout)
        .connect_raw()
        .await?;
    quiet_session(&client).await;

    // Without the cluster-wide lock, bootstraps of different databases may still collide
    // on the roles: the loser's whole transaction is rolled back and run again.
    let (mut attempt, mut backoff) = (1, RETRY_BACKOFF);
    loop {
        match bootstrap_tx(&client, spec, &verifiers).await {
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
    verifiers: &Verifiers,
) -> Result<RolesReport, Error> {
    let tx = Tx { client };
    tx.run("begin", "BEGIN").await?;
    let result = bootstrap_steps(&tx, spec, verifiers).await;
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
    verifiers: &Verifiers,
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

    // What exists already, for the report (the statements themselves are idempotent).
    for name in [&spec.migrate_role, &spec.app_role] {
        let exists = tx
            .client
            .query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[name])
            .await
            .map_err(|e| step_error("look up roles", e))?
            .is_some();
        if exists {
            report.updated.push(name.clone());
        } else {
            report.created.push(name.clone());
        }
    }
    let row = tx
        .client
        .query_one(
            "SELECT current_database()::text, \
               (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)",
            &[],
        )
        .await
        .map_err(|e| step_error("look up the database", e))?;
    let (database, superuser): (String, Option<bool>) = (row.get(0), row.get(1));
    // A CREATEROLE administrator (a managed service's) gets the statements it may run.
    let admin = if superuser.unwrap_or(false) {
        Admin::Superuser
    } else {
        Admin::CreateRole
    };
    let verifiers = match admin {
        Admin::Superuser => unchanged_kept(tx, spec, verifiers).await?,
        Admin::CreateRole => verifiers.clone(),
    };
    let (roles, rest) = provision::steps(spec, &verifiers, &database, admin);
    for step in roles {
        tx.run(&step.name, &step.sql).await?;
    }

    let owner: Option<String> = tx
        .client
        .query_opt(
            "SELECT pg_get_userbyid(nspowner)::text FROM pg_namespace WHERE nspname = $1",
            &[&SCHEMA],
        )
        .await
        .map_err(|e| step_error("look up schema", e))?
        .map(|row| row.get(0));
    match owner {
        None => report.schema_created = true,
        Some(owner) if owner == spec.migrate_role => {}
        Some(owner) => {
            return Err(Error::SchemaOwner {
                schema: SCHEMA.to_owned(),
                owner,
                expected: spec.migrate_role.clone(),
            });
        }
    }
    for step in rest {
        tx.run(&step.name, &step.sql).await?;
    }
    Ok(report)
}

/// The verifiers to write: a role whose stored verifier already verifies its password keeps
/// it, so a bootstrap with an unchanged password changes nothing (a new salt would change
/// the keys a PgBouncer `auth_file` copied: see `crate::scram`). Only a superuser may read
/// `pg_authid`; a CREATEROLE administrator writes new verifiers.
async fn unchanged_kept(
    tx: &Tx<'_>,
    spec: &RolesSpec,
    verifiers: &Verifiers,
) -> Result<Verifiers, Error> {
    let mut kept = verifiers.clone();
    let migrate_password = spec.migrate_password.as_ref().unwrap_or(&spec.password);
    for (role, password, verifier) in [
        (&spec.app_role, &spec.password, &mut kept.app),
        (&spec.migrate_role, migrate_password, &mut kept.migrate),
    ] {
        let stored: Option<String> = tx
            .client
            .query_opt(
                "SELECT rolpassword FROM pg_catalog.pg_authid WHERE rolname = $1",
                &[role],
            )
            .await
            .map_err(|e| step_error("read the stored verifiers", e))?
            .and_then(|row| row.get(0));
        if let Some(stored) = stored.filter(|s| crate::scram::verifies(s, password)) {
            *verifier = stored;
        }
    }
    Ok(kept)
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

pub(crate) fn step_error(step: &str, err: tokio_postgres::Error) -> Error {
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
pub(crate) fn scram_verifier(password: &SecretString) -> Result<String, Error> {
    let verifier = postgres_protocol::password::scram_sha_256(password.expose_secret().as_bytes());
    if !crate::scram::is_verifier(&verifier) {
        return Err(Error::config(
            "password",
            "could not compute a SCRAM-SHA-256 verifier",
        ));
    }
    Ok(verifier)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifiers_have_the_scram_shape() {
        let v = scram_verifier(&SecretString::from("päss wörd ☃".to_owned())).unwrap();
        assert!(v.starts_with("SCRAM-SHA-256$4096:"), "{v}");
        assert!(crate::scram::is_verifier(&v));
        for bad in [
            "",
            "md5abc",
            "SCRAM-SHA-256$4096:salt",
            "SCRAM-SHA-256$x:s$a:b",
            "SCRAM-SHA-256$4096:s'$a:b",
        ] {
            assert!(!crate::scram::is_verifier(bad), "{bad}");
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
}
