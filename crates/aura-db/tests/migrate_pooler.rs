//! Migrations through PgBouncer (aura-testkit's `Pgbouncer`, Debian's package installed by
//! scripts/ensure-pgbouncer.sh): in session mode they run as on a direct connection; in
//! transaction mode, where the session advisory lock gives no mutual exclusion, they are
//! refused before anything runs, with an error that says to use a direct connection.

use aura_db::{Error, MigrateError, MigrateOptions};
use aura_testkit::{Pgbouncer, PoolMode, TestDb};

fn migrate_url(config: &aura_db::Config) -> secrecy::SecretString {
    secrecy::SecretString::from(
        config
            .migrate_url()
            .expect("migrate URL")
            .expose()
            .to_owned(),
    )
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
    let opts = MigrateOptions::for_config(&config);
    let applied = aura_db::migrate_with(
        &migrate_url(&config),
        aura_db::Migrations::embedded(),
        &opts,
        |_| {},
    )
    .await
    .expect("migrate through session mode");
    assert!(applied.is_empty(), "the template was migrated already");
}

#[tokio::test]
async fn migrate_through_transaction_mode_pgbouncer_is_refused_naming_a_direct_connection() {
    let db = TestDb::new().await;
    let bouncer = Pgbouncer::start(&db, PoolMode::Transaction, 4).await;
    let config = bouncer.config_builder(&db).build().expect("config");
    let opts = MigrateOptions::for_config(&config);
    let before: i64 = db
        .superuser_client()
        .await
        .query_one("SELECT count(*) FROM aura.__diesel_schema_migrations", &[])
        .await
        .expect("count")
        .get(0);
    let err = aura_db::migrate_with(
        &migrate_url(&config),
        aura_db::Migrations::embedded(),
        &opts,
        |_| {},
    )
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
    let after: i64 = db
        .superuser_client()
        .await
        .query_one("SELECT count(*) FROM aura.__diesel_schema_migrations", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(before, after, "nothing recorded");
}
