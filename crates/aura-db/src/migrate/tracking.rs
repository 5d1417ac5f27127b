//! The tracking tables, both in the session's `current_schema()` (the migrate role's
//! search_path: `aura` after role bootstrap):
//!
//! - `__diesel_schema_migrations(version, run_on)`: diesel's own, created with diesel's
//!   DDL, so `diesel migration run/list` on the same database agree with us. It says what
//!   is applied.
//! - `aura_migration_checksums(version, name, checksum, applied_at, duration_ms)`: ours,
//!   the sha256 of each applied `up.sql`. A row whose version is absent from diesel's
//!   table (reverted by `diesel migration revert`) means nothing and is overwritten.
//!
//! Only the migrator may write them: after creating them, every grantee but the owner and
//! the migrator loses INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES and TRIGGER (the app
//! role gets DML on every table the migrate role creates, through default privileges).

use std::time::{Duration, SystemTime};

use diesel::result::Error as DieselError;
use diesel::sql_types::{BigInt, Bool, Nullable, Text};
use diesel_async::{AsyncConnection, RunQueryDsl, SimpleAsyncConnection};

use super::error::MigrateError;
use super::session::{Session, Wrapper};
use super::set::Migration;

/// diesel's tracking table (`__diesel_schema_migrations`), in the migrate session's `current_schema()`.
pub const DIESEL_TABLE: &str = "__diesel_schema_migrations";
/// The checksum table (`aura_migration_checksums`), beside diesel's.
pub const CHECKSUM_TABLE: &str = "aura_migration_checksums";

/// One applied migration as the database records it.
#[derive(Debug, Clone)]
pub(crate) struct AppliedRow {
    pub(crate) version: String,
    /// From our table; `None` when only diesel's records it.
    pub(crate) name: Option<String>,
    /// From our table; `None` when only diesel's records it (applied by diesel CLI).
    pub(crate) checksum: Option<String>,
    pub(crate) applied_at: SystemTime,
}

/// Which of the two tables exist.
async fn existing(s: &mut Session) -> Result<(bool, bool), DieselError> {
    let (d, c) = (s.qualified(DIESEL_TABLE), s.qualified(CHECKSUM_TABLE));
    diesel::dsl::sql::<(Bool, Bool)>("SELECT to_regclass(")
        .bind::<Text, _>(d)
        .sql(") IS NOT NULL, to_regclass(")
        .bind::<Text, _>(c)
        .sql(") IS NOT NULL")
        .get_result(s.conn())
        .await
}

/// The applied migrations, oldest version first; `None` when diesel's table does not exist
/// (the database was never migrated).
pub(crate) async fn read(s: &mut Session) -> Result<Option<Vec<AppliedRow>>, MigrateError> {
    let d = s.qualified(DIESEL_TABLE);
    let step = format!("reading the applied migrations from {d}");
    let (diesel, ours) = existing(s)
        .await
        .map_err(|e| MigrateError::step(&step, &e))?;
    if !diesel {
        return Ok(None);
    }
    let micros = |ts: &str| format!("(extract(epoch FROM {ts}) * 1000000)::bigint");
    let sql = if ours {
        let c = s.qualified(CHECKSUM_TABLE);
        format!(
            "SELECT d.version::text, c.name, c.checksum, {} \
             FROM {d} d LEFT JOIN {c} c ON c.version = d.version ORDER BY d.version",
            micros("COALESCE(c.applied_at, d.run_on::timestamptz)")
        )
    } else {
        format!(
            "SELECT version::text, NULL::text, NULL::text, {} FROM {d} ORDER BY version",
            micros("run_on::timestamptz")
        )
    };
    let rows: Vec<(String, Option<String>, Option<String>, i64)> =
        diesel::dsl::sql::<(Text, Nullable<Text>, Nullable<Text>, BigInt)>(&sql)
            .load(s.conn())
            .await
            .map_err(|e| MigrateError::step(&step, &e))?;
    Ok(Some(
        rows.into_iter()
            .map(|(version, name, checksum, micros)| AppliedRow {
                version,
                name,
                checksum,
                applied_at: SystemTime::UNIX_EPOCH
                    + Duration::from_micros(u64::try_from(micros).unwrap_or_default()),
            })
            .collect(),
    ))
}

/// Creates the tracking tables where missing and takes write access to them from everyone
/// but their owner and the migrator. One transaction; idempotent.
pub(crate) async fn ensure(s: &mut Session) -> Result<(), MigrateError> {
    let step = format!(
        "setting up the tracking tables in schema {:?}",
        s.schema_name
    );
    let (has_d, has_c) = existing(s)
        .await
        .map_err(|e| MigrateError::step(&step, &e))?;
    let d = s.qualified(DIESEL_TABLE);
    let c = s.qualified(CHECKSUM_TABLE);
    let mut ddl = String::new();
    if !has_d {
        // diesel's DDL (diesel 2.3 setup_migration_table.sql), schema-qualified.
        ddl.push_str(&format!(
            "CREATE TABLE IF NOT EXISTS {d} (\n\
             \x20      version VARCHAR(50) PRIMARY KEY NOT NULL,\n\
             \x20      run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP\n);\n"
        ));
    }
    if !has_c {
        ddl.push_str(&format!(
            "CREATE TABLE IF NOT EXISTS {c} (\n\
             \x20   version VARCHAR(50) PRIMARY KEY,\n\
             \x20   name TEXT NOT NULL,\n\
             \x20   checksum TEXT NOT NULL CHECK (checksum ~ '^[0-9a-f]{{64}}$'),\n\
             \x20   applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),\n\
             \x20   duration_ms BIGINT\n);\n\
             COMMENT ON TABLE {c} IS 'sha256 of the up.sql of each migration in \
             __diesel_schema_migrations, written by aura-db migrate; an edited applied \
             migration is refused';\n"
        ));
    }
    let revoked = s
        .conn()
        .transaction::<_, DieselError, _>(async |conn| {
            if !ddl.is_empty() {
                conn.batch_execute(&ddl).await?;
            }
            let grantees: Vec<String> = diesel::dsl::sql::<Text>(
                "SELECT DISTINCT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END \
                 FROM pg_class t CROSS JOIN LATERAL aclexplode(t.relacl) a \
                 WHERE t.oid IN (to_regclass(",
            )
            .bind::<Text, _>(&d)
            .sql("), to_regclass(")
            .bind::<Text, _>(&c)
            .sql(
                ")) AND a.grantee <> t.relowner \
                   AND (a.grantee = 0 OR pg_get_userbyid(a.grantee) <> current_user) \
                   AND a.privilege_type <> 'SELECT' ORDER BY 1",
            )
            .load(conn)
            .await?;
            if !grantees.is_empty() {
                // The names come from regrole's output, which quotes them where needed.
                conn.batch_execute(&format!(
                    "REVOKE INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON TABLE {d}, {c} FROM {}",
                    grantees.join(", ")
                ))
                .await?;
            }
            Ok(grantees)
        })
        .await
        .map_err(|e| MigrateError::step(&step, &e))?;
    if !revoked.is_empty() {
        tracing::info!(grantees = %revoked.join(", "), "revoked write access to the migration tracking tables");
    }
    Ok(())
}

/// Records checksums for migrations diesel's table lists but ours does not (applied by
/// `diesel migration run`): from now on they are verified like the others.
pub(crate) async fn adopt(s: &mut Session, adopt: &[&Migration]) -> Result<(), MigrateError> {
    let d = s.qualified(DIESEL_TABLE);
    let c = s.qualified(CHECKSUM_TABLE);
    for m in adopt {
        diesel::sql_query(format!(
            "INSERT INTO {c} (version, name, checksum, applied_at) \
             SELECT version, $2, $3, run_on::timestamptz FROM {d} WHERE version = $1 \
             ON CONFLICT (version) DO NOTHING"
        ))
        .bind::<Text, _>(m.version())
        .bind::<Text, _>(m.name())
        .bind::<Text, _>(m.checksum())
        .execute(s.conn())
        .await
        .map_err(|e| {
            MigrateError::step(format!("recording the checksum of {}", m.dir_name()), &e)
        })?;
        tracing::warn!(
            version = m.version(),
            name = m.name(),
            "migration was applied without a checksum (by diesel CLI?): recorded the current up.sql's"
        );
    }
    Ok(())
}

/// The checksum row of `m`, written (applied) or deleted (reverted) on the blocking
/// connection, in the caller's transaction when there is one. diesel's harness writes its
/// own table.
pub(crate) fn record(
    conn: &mut Wrapper,
    checksum_table: &str,
    m: &Migration,
    applied: Option<Duration>,
) -> Result<(), DieselError> {
    let c = checksum_table;
    use diesel::RunQueryDsl as Sync;
    match applied {
        Some(took) => Sync::execute(
            diesel::sql_query(format!(
                "INSERT INTO {c} (version, name, checksum, duration_ms) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (version) DO UPDATE SET name = EXCLUDED.name, \
               checksum = EXCLUDED.checksum, applied_at = now(), duration_ms = EXCLUDED.duration_ms"
            ))
            .bind::<Text, _>(m.version())
            .bind::<Text, _>(m.name())
            .bind::<Text, _>(m.checksum())
            .bind::<BigInt, _>(i64::try_from(took.as_millis()).unwrap_or(i64::MAX)),
            conn,
        ),
        None => Sync::execute(
            diesel::sql_query(format!("DELETE FROM {c} WHERE version = $1"))
                .bind::<Text, _>(m.version()),
            conn,
        ),
    }
    .map(drop)
}
