//! What the app role needs in schema `aura`, granted by the migrate role itself (it owns
//! the schema and everything in it, so it can): an operator who created only the roles and
//! the schema, as every managed-Postgres guide says, gets a store that works.
//!
//! Runs under the migration lock and the bootstrap's advisory lock (concurrent GRANTs on
//! one catalog row fail with "tuple concurrently updated"), before the tracking tables are set up (which take write access
//! to them back from everyone but the migrator).

use diesel::sql_types::Text;
use diesel_async::{AsyncConnection, RunQueryDsl, SimpleAsyncConnection};

use super::error::MigrateError;
use super::options::{MigrateOptions, TargetSchema};
use super::session::Session;
use super::tracking::{CHECKSUM_TABLE, DIESEL_TABLE};
use crate::SCHEMA;
use crate::ident::quote_ident;
use crate::roles::BOOTSTRAP_LOCK;

/// Grants `opts.app_role` USAGE on the schema, default privileges on what the session's
/// role creates there later, and DML on the tables (not the tracking tables) that lack it.
pub(crate) async fn grant_app(s: &mut Session, opts: &MigrateOptions) -> Result<(), MigrateError> {
    let (TargetSchema::Aura, Some(app)) = (opts.schema, opts.app_role.as_deref()) else {
        return Ok(());
    };
    let step = format!("granting {app} what it needs in schema {SCHEMA}");
    let exists = diesel::dsl::sql::<Text>("SELECT rolname::text FROM pg_roles WHERE rolname = ")
        .bind::<Text, _>(app)
        .get_results::<String>(s.conn())
        .await
        .map_err(|e| MigrateError::step(&step, &e))?;
    if exists.is_empty() {
        return Err(MigrateError::AppRoleMissing {
            role: app.to_owned(),
            target: s.target.clone(),
        });
    }
    let (schema, role) = (quote_ident(SCHEMA), quote_ident(app));
    let granted = s
        .conn()
        .transaction::<_, diesel::result::Error, _>(async |conn| {
            // A bootstrap of this database (another process's `aura db migrate`) updates
            // the same catalog rows: concurrent updates of one row fail ("tuple
            // concurrently updated"), so take its lock for this transaction.
            diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
                .bind::<diesel::sql_types::BigInt, _>(BOOTSTRAP_LOCK)
                .execute(conn)
                .await?;
            conn.batch_execute(&format!(
                "GRANT USAGE ON SCHEMA {schema} TO {role};\n\
                 ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} \
                 GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role};\n\
                 ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} \
                 GRANT USAGE, SELECT ON SEQUENCES TO {role};"
            ))
            .await?;
            let missing: Vec<String> = diesel::dsl::sql::<Text>(
                "SELECT format('%I.%I', n.nspname, c.relname) \
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND n.nspname = ",
            )
            .bind::<Text, _>(SCHEMA)
            .sql(" AND pg_has_role(c.relowner, 'USAGE') AND c.relname NOT IN (")
            .bind::<Text, _>(DIESEL_TABLE)
            .sql(", ")
            .bind::<Text, _>(CHECKSUM_TABLE)
            .sql(") AND NOT (")
            .sql(&all_held(&["SELECT", "INSERT", "UPDATE", "DELETE"], app))
            .sql(") ORDER BY 1")
            .load(conn)
            .await?;
            if !missing.is_empty() {
                conn.batch_execute(&format!(
                    "GRANT SELECT, INSERT, UPDATE, DELETE ON {} TO {role}",
                    missing.join(", ")
                ))
                .await?;
            }
            Ok(missing)
        })
        .await
        .map_err(|e| MigrateError::step(&step, &e))?;
    if !granted.is_empty() {
        tracing::info!(role = app, tables = %granted.join(", "), "granted DML the app role lacked");
    }
    Ok(())
}

/// `has_table_privilege('<role>', c.oid, '<privilege>') AND …` over `privileges`, for a
/// validated role name.
fn all_held(privileges: &[&str], role: &str) -> String {
    let role = role.replace('\'', "''");
    privileges
        .iter()
        .map(|privilege| format!("has_table_privilege('{role}', c.oid, '{privilege}')"))
        .collect::<Vec<_>>()
        .join(" AND ")
}
