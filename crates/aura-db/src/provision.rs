//! The provisioning SQL: roles, schema, grants, default privileges and role settings. One
//! source for both [`crate::ensure_roles`] (which runs these statements itself) and
//! [`bootstrap_script`] (which prints them for an administrator of a managed server).
//!
//! Every statement is safe to run again: roles are created only where missing (a `DO`
//! block), then altered to the expected attributes and password; the schema is created
//! only where missing and its owner checked. Passwords appear only as client-computed
//! SCRAM-SHA-256 verifiers.
//!
//! What a CREATEROLE administrator (not a superuser) may do shapes the statements (measured
//! on Postgres 15 and 18, see docs/facts.md):
//! - `ALTER ROLE … NOSUPERUSER / NOREPLICATION / NOBYPASSRLS` is refused even as a no-op, so
//!   only a superuser re-asserts those (a CREATEROLE admin cannot have made them true);
//! - on 16+, `CREATE SCHEMA … AUTHORIZATION aura_migrate` and `ALTER DEFAULT PRIVILEGES FOR
//!   ROLE aura_migrate` need membership with SET/INHERIT, which the creator's automatic
//!   ADMIN grant lacks: `GRANT aura_migrate TO CURRENT_USER` first (harmless on 15);
//! - `lc_messages` is superuser-only (ALTER ROLE … SET and SET alike, unless granted with
//!   `GRANT SET ON PARAMETER lc_messages`): it is tried in a block that turns a refusal into
//!   a NOTICE.

use std::time::Duration;

use crate::SCHEMA;
use crate::error::Error;
use crate::ident::{quote_ident, validate_ident};
use crate::roles::{RolesSpec, scram_verifier, validate_password};

/// Who runs the statements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admin {
    /// A superuser: every attribute is re-asserted.
    Superuser,
    /// A role with CREATEROLE (and CREATEDB) only: a managed service's administrator.
    CreateRole,
}

/// One statement and what it does (errors name the step, never the SQL: it may hold a
/// verifier).
#[derive(Debug, Clone)]
pub(crate) struct Step {
    pub(crate) name: String,
    pub(crate) sql: String,
}

/// The roles' password verifiers.
#[derive(Clone)]
pub(crate) struct Verifiers {
    pub(crate) app: String,
    pub(crate) migrate: String,
}

impl Verifiers {
    /// Checks the passwords of `spec` and computes their verifiers.
    pub(crate) fn of(spec: &RolesSpec) -> Result<Self, Error> {
        validate_password(&spec.password_source, &spec.password)?;
        let migrate_password = match &spec.migrate_password {
            Some(p) => {
                validate_password(&spec.migrate_password_source, p)?;
                p
            }
            None => &spec.password,
        };
        Ok(Verifiers {
            app: scram_verifier(&spec.password)?,
            migrate: scram_verifier(migrate_password)?,
        })
    }
}

/// Checks the names of `spec`.
pub(crate) fn validate_spec(spec: &RolesSpec) -> Result<(), Error> {
    validate_ident("app role", &spec.app_role)?;
    validate_ident("migrate role", &spec.migrate_role)?;
    if spec.app_role == spec.migrate_role {
        return Err(Error::config(
            "migrate role",
            "must differ from the app role",
        ));
    }
    Ok(())
}

/// The statements, in order, for database `database`: those about the roles, then those
/// about the schema and the database.
pub(crate) fn steps(
    spec: &RolesSpec,
    v: &Verifiers,
    database: &str,
    admin: Admin,
) -> (Vec<Step>, Vec<Step>) {
    let app = quote_ident(&spec.app_role);
    let migrate = quote_ident(&spec.migrate_role);
    let schema = quote_ident(SCHEMA);
    let db = quote_ident(database);
    let ms = |d: Duration| d.as_millis();
    let mut out = Vec::new();
    let mut step = |name: String, sql: String| out.push(Step { name, sql });

    step(
        "check the database".to_owned(),
        format!(
            "DO $aura$ BEGIN\n  IF current_database() <> {lit} THEN\n    RAISE EXCEPTION \
             'connected to database %, but this is for database %: connect to it and run \
             again', current_database(), {lit};\n  END IF;\nEND $aura$",
            lit = literal(database)
        ),
    );
    let attributes = match admin {
        Admin::Superuser => "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS",
        Admin::CreateRole => "LOGIN NOCREATEDB NOCREATEROLE",
    };
    for (name, quoted, verifier) in [
        (&spec.migrate_role, &migrate, &v.migrate),
        (&spec.app_role, &app, &v.app),
    ] {
        step(
            format!("create role {quoted}"),
            format!(
                "DO $aura$ BEGIN\n  IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname \
                 = {}) THEN\n    CREATE ROLE {quoted} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE \
                 NOREPLICATION NOBYPASSRLS;\n  END IF;\nEND $aura$",
                literal(name)
            ),
        );
        step(
            format!("alter role {quoted}"),
            format!(
                "ALTER ROLE {quoted} WITH {attributes} PASSWORD {}",
                escape_literal(verifier)
            ),
        );
    }
    step(
        "revoke membership".to_owned(),
        format!(
            "DO $aura$ BEGIN\n  IF pg_has_role({}, {}, 'MEMBER') THEN\n    REVOKE {migrate} \
             FROM {app};\n  END IF;\nEND $aura$",
            literal(&spec.app_role),
            literal(&spec.migrate_role)
        ),
    );
    let roles = std::mem::take(&mut out);
    if admin == Admin::CreateRole {
        out.push(Step {
            name: format!("grant {migrate} to the administrator"),
            sql: format!("GRANT {migrate} TO CURRENT_USER"),
        });
    }
    let mut step = |name: String, sql: String| out.push(Step { name, sql });
    step(
        format!("create schema {schema}"),
        format!("CREATE SCHEMA IF NOT EXISTS {schema} AUTHORIZATION {migrate}"),
    );
    step(
        "check the schema's owner".to_owned(),
        format!(
            "DO $aura$ DECLARE owner text;\nBEGIN\n  SELECT pg_get_userbyid(nspowner) INTO owner \
             FROM pg_catalog.pg_namespace WHERE nspname = {s};\n  IF owner <> {m} THEN\n    \
             RAISE EXCEPTION 'schema % is owned by %, not by the migrate role %: run ALTER \
             SCHEMA % OWNER TO %', {s}, owner, {m}, {s}, {m};\n  END IF;\nEND $aura$",
            s = literal(SCHEMA),
            m = literal(&spec.migrate_role)
        ),
    );
    for (name, sql) in [
        (
            "revoke public create",
            "REVOKE CREATE ON SCHEMA public FROM PUBLIC".to_owned(),
        ),
        (
            "grant connect",
            format!("GRANT CONNECT ON DATABASE {db} TO {app}, {migrate}"),
        ),
        (
            "revoke public temporary",
            format!("REVOKE TEMPORARY ON DATABASE {db} FROM PUBLIC"),
        ),
        (
            "grant migrate temporary",
            format!("GRANT TEMPORARY ON DATABASE {db} TO {migrate}"),
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
    ] {
        step(name.to_owned(), sql);
    }
    for (name, quoted) in [(&spec.app_role, &app), (&spec.migrate_role, &migrate)] {
        step(
            format!("{quoted} lc_messages"),
            format!(
                "DO $aura$ BEGIN\n  ALTER ROLE {quoted} SET lc_messages = 'C';\nEXCEPTION WHEN \
                 insufficient_privilege THEN\n  RAISE NOTICE 'lc_messages of % left as it is: \
                 setting it needs a superuser (or GRANT SET ON PARAMETER lc_messages)', {};\nEND \
                 $aura$",
                literal(name)
            ),
        );
    }
    (roles, out)
}

/// The script an administrator runs once, connected to `database`, on a server where no
/// superuser is at hand (a managed service): the statements of [`crate::ensure_roles`] for a CREATEROLE
/// administrator, in one transaction, with comments. No statement needs a superuser.
///
/// The names and passwords are checked first; passwords appear only as SCRAM-SHA-256
/// verifiers computed here.
pub fn bootstrap_script(spec: &RolesSpec, database: &str) -> Result<String, Error> {
    validate_spec(spec)?;
    let verifiers = Verifiers::of(spec)?;
    let mut out = format!(
        "-- Aura: provisioning of database {db} (roles {app} and {migrate}, schema {schema}).\n\
         -- Run once, connected to database {db}, as an administrator with CREATEROLE (a\n\
         -- managed service's admin role; a superuser works too), e.g.\n\
         --   psql \"postgres://<admin>@<host>/{name}\" -v ON_ERROR_STOP=1 -f aura-bootstrap.sql\n\
         -- Running it again is safe: it re-asserts everything and sets the passwords again.\n\
         -- The passwords appear only as SCRAM-SHA-256 verifiers, computed by `aura`.\n\
         -- Then `aura db migrate` with AURA_DB_URL and AURA_DB_MIGRATE_URL set.\n\
         BEGIN;\n",
        db = quote_ident(database),
        name = database,
        app = quote_ident(&spec.app_role),
        migrate = quote_ident(&spec.migrate_role),
        schema = SCHEMA,
    );
    let (roles, rest) = steps(spec, &verifiers, database, Admin::CreateRole);
    for step in roles.into_iter().chain(rest) {
        out.push_str(&format!("\n-- {}\n{};\n", step.name, step.sql));
    }
    out.push_str("\nCOMMIT;\n");
    Ok(out)
}

/// `'…'` for a validated name (no quote can occur, but it is doubled anyway).
fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// `E'…'` with `\` and `'` doubled: safe whatever `standard_conforming_strings` says.
pub(crate) fn escape_literal(s: &str) -> String {
    format!("E'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn spec() -> RolesSpec {
        let mut spec = RolesSpec::named(
            "svc_app",
            "svc_ddl",
            SecretString::from("pw-app-Ü'\\".to_owned()),
        );
        spec.migrate_password = Some(SecretString::from("pw-migrate-x".to_owned()));
        spec
    }

    #[test]
    fn the_script_carries_verifiers_never_passwords() {
        let sql = bootstrap_script(&spec(), "prod").unwrap();
        assert!(
            !sql.contains("pw-app") && !sql.contains("pw-migrate"),
            "{sql}"
        );
        assert_eq!(
            sql.matches("PASSWORD E'SCRAM-SHA-256$4096:").count(),
            2,
            "{sql}"
        );
        assert!(sql.starts_with("-- Aura") && sql.trim_end().ends_with("COMMIT;"));
        assert!(sql.contains("GRANT \"svc_ddl\" TO CURRENT_USER"), "{sql}");
        assert!(sql.contains("CREATE SCHEMA IF NOT EXISTS \"aura\" AUTHORIZATION \"svc_ddl\""));
        assert!(
            !sql.contains("pg_authid")
                && !sql.contains(
                    "NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD"
                )
        );
        // Different passwords, different verifiers.
        let verifiers: Vec<&str> = sql
            .lines()
            .filter_map(|l| l.split("PASSWORD ").nth(1))
            .collect();
        assert_eq!(verifiers.len(), 2);
        assert_ne!(verifiers[0], verifiers[1]);
    }

    #[test]
    fn bad_names_and_passwords_are_refused_before_any_sql() {
        let mut bad = spec();
        bad.app_role = "Bad".to_owned();
        assert!(
            bootstrap_script(&bad, "d")
                .unwrap_err()
                .to_string()
                .contains("app role")
        );
        let mut empty = spec();
        empty.migrate_password = Some(SecretString::from(String::new()));
        empty.migrate_password_source = "AURA_DB_MIGRATE_URL".to_owned();
        let err = bootstrap_script(&empty, "d").unwrap_err().to_string();
        assert!(
            err.contains("AURA_DB_MIGRATE_URL") && err.contains("empty"),
            "{err}"
        );
    }

    #[test]
    fn literals_escape_quotes_and_backslashes() {
        assert_eq!(escape_literal(r"\'; x"), r"E'\\''; x'");
    }
}
