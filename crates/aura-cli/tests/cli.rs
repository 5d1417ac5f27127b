//! The `aura` binary as a user runs it: output, exit codes, one-line errors, no secrets.

mod common;

use std::process::{Command, Output};

use aura_db::vars;
use aura_testkit::TestDb;
use common::{applied_count, text};
use secrecy::ExposeSecret;

/// `aura` with the environment pointing at `db` (its superuser for bootstrap, the test
/// role password) and nothing else of ours inherited.
fn aura(db: &TestDb, args: &[&str], extra: &[(&str, &str)]) -> Output {
    let su = db.superuser_url().pg_config();
    let host = match &su.get_hosts()[0] {
        tokio_postgres::config::Host::Tcp(h) => h.clone(),
        other => panic!("unexpected host {other:?}"),
    };
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_aura"));
    for var in vars::ALL {
        cmd.env_remove(var);
    }
    cmd.env_remove(vars::AURA_RESET_YES)
        .env_remove("RUST_LOG")
        .env(vars::POSTGRES_HOST, host)
        .env(vars::POSTGRES_PORT, su.get_ports()[0].to_string())
        .env(vars::POSTGRES_DB, db.name())
        .env(vars::POSTGRES_USER, su.get_user().expect("superuser name"))
        .env(
            vars::POSTGRES_PASSWORD,
            String::from_utf8_lossy(su.get_password().expect("superuser password")).as_ref(),
        )
        .env(
            vars::AURA_DB_PASSWORD,
            db.config().role_password().expose_secret(),
        );
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd.args(args).output().expect("run aura")
}

#[tokio::test]
async fn ping_prints_a_latency() {
    let db = TestDb::new().await;
    let out = aura(&db, &["db", "ping"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("ok: postgres://aura_app:***@"),
        "{stdout}"
    );
    assert!(
        stdout
            .trim_end()
            .ends_with(" ms; session: plaintext (no TLS)"),
        "{stdout}"
    );
}

#[tokio::test]
async fn migrate_and_ping_over_verified_tls_from_pgssl_variables() {
    let db = TestDb::empty_tls().await;
    let ca = aura_testkit::TlsCluster::shared().ca_cert();
    let ca = ca.display().to_string();
    let verify = [("PGSSLMODE", "verify-full"), ("PGSSLROOTCERT", ca.as_str())];
    let out = aura(&db, &["db", "migrate"], &verify);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        applied_count(&text(&out.stdout)) > 0,
        "{}",
        text(&out.stdout)
    );

    let out = aura(&db, &["db", "ping"], &verify);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("; session: TLS (TLSv1.3, "), "{stdout}");

    // The TLS-only server refuses plaintext, in one line naming the target.
    let out = aura(&db, &["db", "ping"], &[("PGSSLMODE", "disable")]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("no encryption"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");

    // A bad value is named.
    let out = aura(&db, &["db", "ping"], &[("PGSSLMODE", "verify")]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("PGSSLMODE has an unknown value \"verify\""),
        "{stderr}"
    );
}

#[tokio::test]
async fn migrate_then_migrate_again_then_status() {
    let db = TestDb::empty().await;
    let out = aura(&db, &["db", "migrate"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let first = text(&out.stdout);
    assert!(
        first.starts_with("roles: created") || first.starts_with("roles: updated"),
        "{first}"
    );
    let set = aura_db::Migrations::embedded();
    assert_eq!(applied_count(&first), set.len(), "{first}");

    let out = aura(&db, &["db", "migrate"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("up to date"),
        "{}",
        text(&out.stdout)
    );

    let out = aura(&db, &["db", "status", "--json"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["pending"], 0);
    assert_eq!(doc["inconsistent"], 0);
    assert_eq!(doc["applied"].as_u64().unwrap() as usize, set.len());

    // A migration applied by a newer build, unknown to this one: inconsistent, exit 3, and
    // `migrate` refuses to go on.
    db.superuser_client()
        .await
        .batch_execute(
            "INSERT INTO aura.__diesel_schema_migrations (version) VALUES ('99990101000000')",
        )
        .await
        .unwrap();
    let out = aura(&db, &["db", "status", "--json"], &[]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["inconsistent"], 1);
    assert_eq!(doc["pending"], 0);
    let out = aura(&db, &["db", "migrate"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("99990101000000"), "{stderr}");
}

/// Managed Postgres: both role URLs given verbatim, so no bootstrap is attempted (the
/// roles exist already; the superuser variables are not needed).
#[tokio::test]
async fn with_both_role_urls_given_migrate_skips_the_bootstrap() {
    let db = TestDb::empty().await;
    aura_db::ensure_roles(db.config()).await.unwrap();
    let app = db.config().app_url().expose().to_owned();
    let migrate = db.config().migrate_url().unwrap().expose().to_owned();
    let out = aura(
        &db,
        &["db", "migrate"],
        &[
            (vars::AURA_DB_URL, &app),
            (vars::AURA_DB_MIGRATE_URL, &migrate),
            (vars::POSTGRES_PASSWORD, "not-the-superuser-password"),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("roles: bootstrap skipped (AURA_DB_URL and AURA_DB_MIGRATE_URL"),
        "{stdout}"
    );
    assert_eq!(
        applied_count(&stdout),
        aura_db::Migrations::embedded().len(),
        "{stdout}"
    );
}

#[tokio::test]
async fn status_of_an_unreachable_database_is_exit_1_with_the_cause() {
    let db = TestDb::new().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port().to_string();
    drop(closed);
    let out = aura(&db, &["db", "status"], &[(vars::POSTGRES_PORT, &port)]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains(&format!(":{port}/")), "{stderr}");
    assert!(stderr.to_lowercase().contains("refused"), "{stderr}");
}

#[tokio::test]
async fn status_of_a_never_migrated_database_is_all_pending() {
    let db = TestDb::empty().await;
    // Roles, but no migrations.
    aura_db::ensure_roles(db.config()).await.unwrap();
    let out = aura(&db, &["db", "status"], &[]);
    let set = aura_db::Migrations::embedded();
    let expected = if set.is_empty() { 0 } else { 2 };
    assert_eq!(
        out.status.code(),
        Some(expected),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let stdout = text(&out.stdout);
    assert_eq!(
        stdout.lines().filter(|l| l.contains(" pending ")).count(),
        set.len(),
        "{stdout}"
    );
}

#[tokio::test]
async fn lint_by_default_lints_only_what_the_database_has_not_applied() {
    let db = TestDb::empty().await;
    aura_db::ensure_roles(db.config()).await.unwrap();
    // Apply the first half of the embedded set, from a copy of their folders.
    let set = aura_db::Migrations::embedded();
    let half = set.len() / 2;
    let copy = tempfile::tempdir().expect("scratch dir");
    let migrations = common::workspace().join("migrations");
    for m in set.iter().take(half) {
        let dir = copy.path().join(m.dir_name());
        std::fs::create_dir(&dir).unwrap();
        for file in ["up.sql", "down.sql", "metadata.toml"] {
            let from = migrations.join(m.dir_name()).join(file);
            if from.exists() {
                std::fs::copy(&from, dir.join(file)).unwrap();
            }
        }
    }
    let first = aura_db::Migrations::from_dir(copy.path()).expect("the copied half");
    let migrate_url =
        secrecy::SecretString::from(db.config().migrate_url().unwrap().expose().to_owned());
    let opts = aura_db::MigrateOptions::for_config(db.config());
    aura_db::migrate_with(&migrate_url, &first, &opts, |_| {})
        .await
        .expect("apply the first half");

    let out = aura(&db, &["db", "lint"], &[]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains(&format!(
            "lint: {} migrations, 0 errors, ",
            set.len() - half
        )),
        "{stdout}"
    );
    // Findings name only pending migrations (the applied ones are history).
    for m in set.iter().take(half) {
        assert!(
            !stdout.contains(m.dir_name()),
            "{} is applied: {stdout}",
            m.dir_name()
        );
    }

    aura_db::migrate_with(&migrate_url, set, &opts, |_| {})
        .await
        .expect("apply the rest");
    let out = aura(&db, &["db", "lint"], &[]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.starts_with("lint: no pending migration on postgres://aura_migrate:***@"),
        "{stdout}"
    );
}

#[tokio::test]
async fn reset_needs_both_guards() {
    let db = TestDb::new().await;
    let out = aura(&db, &["db", "reset", "--yes"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr).trim_end(),
        "error: aura-db: reset refused: it needs AURA_RESET_YES=1 in the environment; nothing was changed"
    );
    let out = aura(&db, &["db", "reset"], &[(vars::AURA_RESET_YES, "1")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("it needs --yes"),
        "{}",
        text(&out.stderr)
    );
    let out = aura(
        &db,
        &["db", "reset", "--yes"],
        &[(vars::AURA_RESET_YES, "1")],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("reset: "),
        "{}",
        text(&out.stdout)
    );
}

#[tokio::test]
async fn errors_are_one_line_without_secrets_or_backtraces() {
    let db = TestDb::new().await;
    let planted = "Pl4nted-CLI-S3cret";
    type Case<'a> = (&'a [&'a str], Vec<(&'a str, &'a str)>, &'a str);
    let cases: [Case; 3] = [
        (
            &["db", "ping"],
            vec![(vars::AURA_DB_PASSWORD, planted)],
            "password authentication failed",
        ),
        (
            &["db", "migrate"],
            vec![
                (vars::POSTGRES_PASSWORD, planted),
                (vars::AURA_DB_PASSWORD, planted),
            ],
            "password authentication failed",
        ),
        (
            &["db", "ping"],
            vec![
                (vars::POSTGRES_PORT, "not-a-port"),
                (vars::AURA_DB_PASSWORD, planted),
            ],
            "POSTGRES_PORT",
        ),
    ];
    for (args, env, expected) in cases {
        let out = aura(&db, args, &env);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = text(&out.stderr);
        let stdout = text(&out.stdout);
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("error: ") && stderr.contains(expected),
            "{args:?}: {stderr}"
        );
        assert!(
            !stderr.contains("panicked") && !stderr.contains("backtrace"),
            "{stderr}"
        );
        assert!(
            !stderr.contains(planted) && !stdout.contains(planted),
            "{args:?} leaked: {stderr}{stdout}"
        );
    }
}

#[tokio::test]
async fn psql_accepts_every_url_dev_env_prints() {
    // Only the local cluster has a `dev env`; with AURA_TEST_DATABASE_URL this checks the
    // composed URLs of the test database instead.
    let db = TestDb::new().await;
    let urls = if std::env::var(aura_testkit::TEST_DATABASE_URL).is_ok_and(|v| !v.is_empty()) {
        let c = db.config();
        vec![
            c.app_url().expose().to_owned(),
            c.bootstrap_url().expose().to_owned(),
        ]
    } else {
        let out = Command::new(env!("CARGO_BIN_EXE_aura"))
            .args(["dev", "env"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        let stdout = text(&out.stdout);
        for var in [
            "POSTGRES_HOST",
            "POSTGRES_PORT",
            "POSTGRES_DB",
            "POSTGRES_USER",
            "POSTGRES_PASSWORD",
            "AURA_DB_URL",
            "AURA_DB_MIGRATE_URL",
            "AURA_DB_BOOTSTRAP_URL",
        ] {
            assert!(
                stdout.contains(&format!("export {var}='")),
                "{var} missing: {stdout}"
            );
        }
        stdout
            .lines()
            .filter(|l| l.contains("_URL="))
            .map(|l| {
                l.split_once("='")
                    .unwrap()
                    .1
                    .trim_end_matches('\'')
                    .to_owned()
            })
            .collect()
    };
    for url in urls {
        let out = Command::new("psql")
            .args([url.as_str(), "-XAtc", "SELECT current_user"])
            .output()
            .expect("psql");
        assert!(
            out.status.success(),
            "psql refused a URL: {}",
            text(&out.stderr)
        );
    }
}

#[tokio::test]
async fn migrate_through_a_transaction_mode_pooler_says_to_use_a_direct_connection() {
    use aura_testkit::{Pgbouncer, PoolMode};
    let db = TestDb::new().await;
    let bouncer = Pgbouncer::start(&db, PoolMode::Transaction, 4).await;
    let config = bouncer.config_builder(&db).build().expect("config");
    let app = config.app_url().expose().to_owned();
    let migrate = config
        .migrate_url()
        .expect("migrate URL")
        .expose()
        .to_owned();
    let out = aura(
        &db,
        &["db", "migrate"],
        &[
            (vars::AURA_DB_URL, &app),
            (vars::AURA_DB_MIGRATE_URL, &migrate),
        ],
    );
    assert!(!out.status.success(), "{}", text(&out.stdout));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains("migrations need a direct connection")
            && stderr.contains(&format!(":{}/", bouncer.port())),
        "{stderr}"
    );
    assert!(
        !stderr.contains(db.config().role_password().expose_secret()),
        "{stderr}"
    );
}
