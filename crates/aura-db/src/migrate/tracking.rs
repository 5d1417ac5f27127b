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

use super::session::Session;
use super::set::Migration;
use crate::error::Error;

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
async fn existing(s: &Session) -> Result<(bool, bool), Error> {
    let row = s
        .client
        .query_one(
            "SELECT to_regclass($1) IS NOT NULL, to_regclass($2) IS NOT NULL",
            &[&s.qualified(DIESEL_TABLE), &s.qualified(CHECKSUM_TABLE)],
        )
        .await
        .map_err(|e| {
            Error::migrate_step(
                format!(
                    "looking up the tracking tables in schema {:?}",
                    s.schema_name
                ),
                &e,
            )
        })?;
    Ok((row.get(0), row.get(1)))
}

/// The applied migrations, oldest version first; `None` when diesel's table does not exist
/// (the database was never migrated).
pub(crate) async fn read(s: &Session) -> Result<Option<Vec<AppliedRow>>, Error> {
    let (diesel, ours) = existing(s).await?;
    if !diesel {
        return Ok(None);
    }
    let d = s.qualified(DIESEL_TABLE);
    let sql = if ours {
        let c = s.qualified(CHECKSUM_TABLE);
        format!(
            "SELECT d.version::text, c.name, c.checksum, COALESCE(c.applied_at, d.run_on::timestamptz) \
             FROM {d} d LEFT JOIN {c} c ON c.version = d.version ORDER BY d.version"
        )
    } else {
        format!(
            "SELECT version::text, NULL::text, NULL::text, run_on::timestamptz FROM {d} ORDER BY version"
        )
    };
    let rows =
        s.client.query(&sql, &[]).await.map_err(|e| {
            Error::migrate_step(format!("reading the applied migrations from {d}"), &e)
        })?;
    Ok(Some(
        rows.iter()
            .map(|r| AppliedRow {
                version: r.get(0),
                name: r.get(1),
                checksum: r.get(2),
                applied_at: r.get(3),
            })
            .collect(),
    ))
}

/// Creates the tracking tables where missing and takes write access to them from everyone
/// but their owner and the migrator. One transaction; idempotent.
pub(crate) async fn ensure(s: &Session) -> Result<(), Error> {
    let d = s.qualified(DIESEL_TABLE);
    let c = s.qualified(CHECKSUM_TABLE);
    let step = |what: &str| format!("{what} (schema {:?})", s.schema_name);
    let run = async || -> Result<(), Error> {
        let (has_d, has_c) = existing(s).await?;
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
        if !ddl.is_empty() {
            s.client
                .batch_execute(&ddl)
                .await
                .map_err(|e| Error::migrate_step(step("creating the tracking tables"), &e))?;
        }
        let grantees = s
            .client
            .query(
                "SELECT DISTINCT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END \
                 FROM pg_class t CROSS JOIN LATERAL aclexplode(t.relacl) a \
                 WHERE t.oid IN (to_regclass($1), to_regclass($2)) \
                   AND a.grantee <> t.relowner \
                   AND (a.grantee = 0 OR pg_get_userbyid(a.grantee) <> current_user) \
                   AND a.privilege_type <> 'SELECT' \
                 ORDER BY 1",
                &[&d, &c],
            )
            .await
            .map_err(|e| Error::migrate_step(step("reading the tracking tables' privileges"), &e))?;
        let grantees: Vec<String> = grantees.iter().map(|r| r.get(0)).collect();
        if !grantees.is_empty() {
            // The names come from regrole's output, which quotes them where needed.
            let sql = format!(
                "REVOKE INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON TABLE {d}, {c} FROM {}",
                grantees.join(", ")
            );
            s.client.batch_execute(&sql).await.map_err(|e| {
                Error::migrate_step(step("revoking writes on the tracking tables"), &e)
            })?;
            tracing::info!(grantees = %grantees.join(", "), "revoked write access to the migration tracking tables");
        }
        Ok(())
    };
    begin(s, "setting up the tracking tables").await?;
    match run().await {
        Ok(()) => commit(s, "setting up the tracking tables").await,
        Err(e) => {
            s.rollback_quietly().await;
            Err(e)
        }
    }
}

/// Records checksums for migrations diesel's table lists but ours does not (applied by
/// `diesel migration run`): from now on they are verified like the others.
pub(crate) async fn adopt(s: &Session, adopt: &[(&Migration, SystemTime)]) -> Result<(), Error> {
    let c = s.qualified(CHECKSUM_TABLE);
    for (m, applied_at) in adopt {
        s.client
            .execute(
                &format!(
                    "INSERT INTO {c} (version, name, checksum, applied_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (version) DO NOTHING"
                ),
                &[&m.version(), &m.name(), &m.checksum(), applied_at],
            )
            .await
            .map_err(|e| {
                Error::migrate_step(format!("recording the checksum of {}", m.dir_name()), &e)
            })?;
        tracing::warn!(
            version = m.version(),
            name = m.name(),
            "migration was applied without a checksum (by diesel CLI?): recorded the current up.sql's"
        );
    }
    Ok(())
}

/// Records `m` as applied (both tables, one statement), in the caller's transaction.
pub(crate) async fn record_applied(
    s: &Session,
    m: &Migration,
    took: Duration,
) -> Result<(), tokio_postgres::Error> {
    let d = s.qualified(DIESEL_TABLE);
    let c = s.qualified(CHECKSUM_TABLE);
    let ms = i64::try_from(took.as_millis()).unwrap_or(i64::MAX);
    s.client
        .execute(
            &format!(
                "WITH d AS (INSERT INTO {d} (version) VALUES ($1)) \
                 INSERT INTO {c} (version, name, checksum, duration_ms) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (version) DO UPDATE SET name = EXCLUDED.name, \
                   checksum = EXCLUDED.checksum, applied_at = now(), duration_ms = EXCLUDED.duration_ms"
            ),
            &[&m.version(), &m.name(), &m.checksum(), &ms],
        )
        .await
        .map(drop)
}

/// Records `m` as reverted (both tables, one statement), in the caller's transaction.
pub(crate) async fn record_reverted(
    s: &Session,
    m: &Migration,
) -> Result<(), tokio_postgres::Error> {
    let d = s.qualified(DIESEL_TABLE);
    let c = s.qualified(CHECKSUM_TABLE);
    s.client
        .execute(
            &format!(
                "WITH d AS (DELETE FROM {d} WHERE version = $1) DELETE FROM {c} WHERE version = $1"
            ),
            &[&m.version()],
        )
        .await
        .map(drop)
}

async fn begin(s: &Session, what: &str) -> Result<(), Error> {
    s.client
        .batch_execute("BEGIN")
        .await
        .map_err(|e| Error::migrate_step(format!("BEGIN for {what}"), &e))
}

async fn commit(s: &Session, what: &str) -> Result<(), Error> {
    s.client
        .batch_execute("COMMIT")
        .await
        .map_err(|e| Error::migrate_step(format!("COMMIT of {what}"), &e))
}
