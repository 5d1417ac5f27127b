//! The template database every test database is cloned from: made once per content
//! version (its name carries a hash of what is in it), under an advisory lock so that
//! concurrent test processes build it once.

use std::hash::{DefaultHasher, Hash, Hasher};

use aura_db::Dsn;
use secrecy::SecretString;

use crate::admin::{connect, pg_error};

/// Advisory lock key serializing template creation across test processes.
const TEMPLATE_LOCK: i64 = 0x6175_7261_7470_6c00; // "auratpl\0"

/// Bumped when what `prepare` puts in the template changes outside the migrations.
const TEMPLATE_VERSION: &str = "v2";

/// Returns the template's name, creating it if this content version has none yet.
pub(crate) async fn ensure(admin: &Dsn, role_password: &SecretString) -> Result<String, String> {
    let name = template_name();
    let client = connect(admin).await?;
    client
        .execute("SELECT pg_advisory_lock($1)", &[&TEMPLATE_LOCK])
        .await
        .map_err(|e| pg_error(&e))?;
    let result = match create_if_missing(&client, admin, &name, role_password).await {
        Ok(()) => match drop_other_templates(&client, &name).await {
            Ok(()) => crate::stale::sweep_stale(&client).await,
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    let unlock = client
        .execute("SELECT pg_advisory_unlock($1)", &[&TEMPLATE_LOCK])
        .await;
    result?;
    unlock.map_err(|e| pg_error(&e))?;
    Ok(name)
}

async fn create_if_missing(
    client: &tokio_postgres::Client,
    admin: &Dsn,
    name: &str,
    role_password: &SecretString,
) -> Result<(), String> {
    let exists = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await
        .map_err(|e| pg_error(&e))?
        .is_some();
    if exists {
        return Ok(());
    }
    let building = format!("{name}_building");
    // One statement per call: CREATE/DROP DATABASE refuse to run in the implicit
    // transaction of a multi-statement string.
    for sql in [
        format!("DROP DATABASE IF EXISTS \"{building}\" WITH (FORCE)"),
        format!("CREATE DATABASE \"{building}\""),
    ] {
        client.batch_execute(&sql).await.map_err(|e| pg_error(&e))?;
    }
    prepare(&admin.with_dbname(&building), role_password).await?;
    // The preparing sessions may not have ended yet on the server side.
    client
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid()",
            &[&building],
        )
        .await
        .map_err(|e| pg_error(&e))?;
    for sql in [
        format!("ALTER DATABASE \"{building}\" RENAME TO \"{name}\""),
        format!("ALTER DATABASE \"{name}\" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false"),
    ] {
        client.batch_execute(&sql).await.map_err(|e| pg_error(&e))?;
    }
    Ok(())
}

/// Drops templates of earlier migration sets (they are never cloned again).
async fn drop_other_templates(
    client: &tokio_postgres::Client,
    current: &str,
) -> Result<(), String> {
    let rows = client
        .query(
            "SELECT datname::text FROM pg_database WHERE datname LIKE 'aura\\_tpl\\_%' AND datname <> $1",
            &[&current],
        )
        .await
        .map_err(|e| pg_error(&e))?;
    for row in rows {
        let old: String = row.get(0);
        for sql in [
            format!("ALTER DATABASE \"{old}\" WITH IS_TEMPLATE false"),
            format!("DROP DATABASE IF EXISTS \"{old}\" WITH (FORCE)"),
        ] {
            client.batch_execute(&sql).await.map_err(|e| pg_error(&e))?;
        }
    }
    Ok(())
}

/// Fills a fresh database with what every test database starts with: the app and migrate
/// roles (cluster-wide; their password is the server's role password), the schema, and
/// every embedded migration, applied as the migrate role.
async fn prepare(db: &Dsn, role_password: &SecretString) -> Result<(), String> {
    let config = crate::admin::builder_for(db, role_password)
        .build()
        .map_err(|e| e.to_string())?;
    aura_db::ensure_roles(&config)
        .await
        .map_err(|e| e.to_string())?;
    let migrate_url = config
        .migrate_url()
        .map(|d| SecretString::from(d.expose().to_owned()))
        .ok_or("the migrate URL of the template is empty")?;
    aura_db::migrate(&migrate_url)
        .await
        .map_err(|e| aura_db::error_chain(&e))?;
    Ok(())
}

/// `aura_tpl_<version>_<hash of the embedded migrations>`: a new migration (or an edited
/// one) gets a template of its own, so a stale template is never cloned.
fn template_name() -> String {
    let mut hasher = DefaultHasher::new();
    for m in aura_db::Migrations::embedded() {
        (m.version(), m.checksum()).hash(&mut hasher);
    }
    format!("aura_tpl_{TEMPLATE_VERSION}_{:016x}", hasher.finish())
}
