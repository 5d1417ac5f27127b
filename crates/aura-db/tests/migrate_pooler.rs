//! Migrations through PgBouncer (aura-testkit's `Pgbouncer`, Debian's package installed by
//! scripts/ensure-pgbouncer.sh): in session mode they run as on a direct connection; in
//! transaction mode, where the session advisory lock gives no mutual exclusion, they are
//! refused before anything runs, with an error that says to use a direct connection.

use aura_db::{Error, MigrateError, MigrateOptions};
use aura_testkit::{Pgbouncer, PoolMode, TestDb};

/// `aura_db::migrate_with` the embedded migrations on `config`'s migrate URL.
async fn migrate(config: &aura_db::Config) -> Result<Vec<aura_db::Applied>, Error> {
    let url = config
        .migrate_url()
        .expect("migrate URL")
        .expose()
        .to_owned();
    aura_db::migrate_with(
        &secrecy::SecretString::from(url),
        aura_db::Migrations::embedded(),
        &MigrateOptions::for_config(config),
        |_| {},
    )
    .await
}

/// The number of applied migrations recorded in `db`.
async fn recorded(db: &TestDb) -> i64 {
    db.superuser_client()
        .await
        .query_one("SELECT count(*) FROM aura.__diesel_schema_migrations", &[])
        .await
        .expect("count")
        .get(0)
}

#[tokio::test]
async fn migrate_through_session_mode_pgbouncer_works() {
    let db = TestDb::new().await;
    let bouncer = Pgbouncer::start(&db, PoolMode::Session, 4).await;
    let config = bouncer.config_builder(&db).build().expect("config");
    assert!(
        config
            .migrate_url()
            .expect("migrate URL")
            .redacted()
            .contains(&format!(":{}/", bouncer.port())),
        "the migrate URL goes through pgbouncer"
    );
    let applied = migrate(&config)
        .await
        .expect("migrate through session mode");
    assert!(applied.is_empty(), "the template was migrated already");
}

#[tokio::test]
async fn migrate_through_transaction_mode_pgbouncer_is_refused_naming_a_direct_connection() {
    let db = TestDb::new().await;
    let bouncer = Pgbouncer::start(&db, PoolMode::Transaction, 4).await;
    let config = bouncer.config_builder(&db).build().expect("config");
    let before = recorded(&db).await;
    let err = migrate(&config)
        .await
        .expect_err("migrate through transaction mode");
    assert!(
        matches!(&err, Error::Migrate(MigrateError::SharedSession { .. })),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("migrations need a direct connection"),
        "{text}"
    );
    assert!(text.contains("AURA_DB_MIGRATE_URL"), "{text}");
    assert!(text.contains(":***@"), "the URL is redacted: {text}");
    assert_eq!(recorded(&db).await, before, "nothing recorded");
}
