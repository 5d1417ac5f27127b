//! Password files, credential sources, TCP settings and the operation deadline in the
//! configuration.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::connect::ConnectSpec;
use crate::{Config, Credentials, Error, TcpSettings};

fn config(pairs: &[(&str, &str)]) -> Result<Config, Error> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::from_lookup(|k| map.get(k).cloned())
}

fn temp_file(name: &str, content: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("aura-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path
}

fn password(pg: &tokio_postgres::Config) -> Option<String> {
    pg.get_password()
        .map(|p| String::from_utf8_lossy(p).into_owned())
}

#[test]
fn a_password_file_feeds_the_composed_urls_and_the_bootstrap_password() {
    let roles = temp_file("roles", "r0les-pw\n");
    let superuser = temp_file("super", "super-pw\n");
    let c = config(&[
        ("AURA_DB_PASSWORD_FILE", roles.to_str().unwrap()),
        ("POSTGRES_PASSWORD_FILE", superuser.to_str().unwrap()),
    ])
    .unwrap();
    assert_eq!(c.role_password().expose_secret(), "r0les-pw");
    assert_eq!(
        password(&c.app_url().pg_config()).as_deref(),
        Some("r0les-pw")
    );
    assert_eq!(
        password(&c.bootstrap_url().pg_config()).as_deref(),
        Some("super-pw")
    );
    for dsn in [c.app_url(), c.migrate_url().unwrap()] {
        let debug = format!("{:?}", dsn.credentials().expect("the file is the source"));
        assert!(debug.contains("AURA_DB_PASSWORD_FILE"), "{debug}");
    }
    let debug = format!("{:?}", c.bootstrap_url().credentials().unwrap());
    assert!(debug.contains("POSTGRES_PASSWORD_FILE"), "{debug}");
    assert!(!format!("{c:?}").contains("pw"), "{c:?}");
}

#[test]
fn the_superuser_file_is_the_roles_default_as_its_variable_is() {
    let superuser = temp_file("super-only", "super-pw");
    let c = config(&[("POSTGRES_PASSWORD_FILE", superuser.to_str().unwrap())]).unwrap();
    assert_eq!(c.role_password().expose_secret(), "super-pw");
    assert!(c.app_url().credentials().is_some());
    // An explicit AURA_DB_PASSWORD is a fixed password: no file for the roles.
    let c = config(&[
        ("POSTGRES_PASSWORD_FILE", superuser.to_str().unwrap()),
        ("AURA_DB_PASSWORD", "fixed"),
    ])
    .unwrap();
    assert!(c.app_url().credentials().is_none());
    assert!(c.bootstrap_url().credentials().is_some());
}

#[test]
fn a_verbatim_urls_own_password_wins_over_the_file() {
    let roles = temp_file("verbatim", "from-file");
    let c = config(&[
        ("AURA_DB_PASSWORD_FILE", roles.to_str().unwrap()),
        ("AURA_DB_URL", "postgres://app:in-url@h/d"),
        ("AURA_DB_MIGRATE_URL", "postgres://mig@h/d"),
    ])
    .unwrap();
    assert!(c.app_url().credentials().is_none());
    assert!(
        c.migrate_url().unwrap().credentials().is_some(),
        "a URL without a password takes the file's"
    );
}

#[test]
fn a_source_set_in_code_wins_over_url_and_file() {
    let roles = temp_file("code", "from-file");
    let source = Credentials::from_fn("test", || async {
        Ok(SecretString::from("from-code".to_owned()))
    });
    let c = Config::builder()
        .app_url(SecretString::from("postgres://app:in-url@h/d".to_owned()))
        .role_password_file(roles)
        .app_credentials(source.clone())
        .build()
        .unwrap();
    assert_eq!(c.app_url().credentials(), Some(&source));
    assert_ne!(c.migrate_url().unwrap().credentials(), Some(&source));
}

#[test]
fn bad_password_files_name_the_variable_and_the_path() {
    let empty = temp_file("empty", "\n");
    let missing = empty.with_file_name("missing");
    for var in ["AURA_DB_PASSWORD_FILE", "POSTGRES_PASSWORD_FILE"] {
        for (path, words) in [(&empty, "is empty"), (&missing, "cannot be read")] {
            let err = config(&[(var, path.to_str().unwrap())]).unwrap_err();
            let text = err.to_string();
            assert!(
                text.starts_with(&format!("aura-db: {var} ("))
                    && text.contains(path.to_str().unwrap())
                    && text.contains(words),
                "{text}"
            );
        }
    }
}

#[test]
fn a_variable_and_its_file_together_are_refused_naming_both() {
    let file = temp_file("both", "x");
    for (plain, with_file) in [
        ("AURA_DB_PASSWORD", "AURA_DB_PASSWORD_FILE"),
        ("POSTGRES_PASSWORD", "POSTGRES_PASSWORD_FILE"),
    ] {
        let err = config(&[(plain, "Pl4nted"), (with_file, file.to_str().unwrap())])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(plain) && err.contains(with_file) && !err.contains("Pl4nted"),
            "{err}"
        );
    }
}

#[test]
fn tcp_settings_reach_every_dsn_and_the_pools_driver_config() {
    let c = config(&[
        ("AURA_DB_TCP_KEEPALIVE_IDLE", "15s"),
        ("AURA_DB_TCP_KEEPALIVE_INTERVAL", "4s"),
        ("AURA_DB_TCP_KEEPALIVE_RETRIES", "5"),
        ("AURA_DB_TCP_USER_TIMEOUT", "12s"),
    ])
    .unwrap();
    let spec = ConnectSpec::pooled(c.app_url(), c.pool());
    let migrate = c.migrate_url().unwrap().pg_config();
    let bootstrap = ConnectSpec::single(c.bootstrap_url(), "x", Duration::from_secs(1));
    for pg in [spec.pg(), &migrate, bootstrap.pg()] {
        assert!(pg.get_keepalives());
        assert_eq!(pg.get_keepalives_idle(), Duration::from_secs(15));
        assert_eq!(pg.get_keepalives_interval(), Some(Duration::from_secs(4)));
        assert_eq!(pg.get_keepalives_retries(), Some(5));
        assert_eq!(pg.get_tcp_user_timeout(), Some(&Duration::from_secs(12)));
    }
    let opts = crate::MigrateOptions::for_config(&c);
    assert_eq!(opts.tcp, *c.tcp());

    let defaults = config(&[]).unwrap();
    assert_eq!(*defaults.tcp(), TcpSettings::default());
    let pg = ConnectSpec::pooled(defaults.app_url(), defaults.pool());
    assert_eq!(pg.pg().get_keepalives_idle(), Duration::from_secs(30));
    assert_eq!(
        pg.pg().get_tcp_user_timeout(),
        Some(&Duration::from_secs(30))
    );
}

#[test]
fn bad_tcp_settings_name_their_variable() {
    for (var, value) in [
        ("AURA_DB_TCP_KEEPALIVE_IDLE", "soon"),
        ("AURA_DB_TCP_KEEPALIVE_IDLE", "500ms"),
        ("AURA_DB_TCP_KEEPALIVE_INTERVAL", "0s"),
        ("AURA_DB_TCP_KEEPALIVE_RETRIES", "0"),
        ("AURA_DB_TCP_KEEPALIVE_RETRIES", "many"),
        ("AURA_DB_TCP_USER_TIMEOUT", "30"),
    ] {
        let err = config(&[(var, value)]).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("aura-db: {var} ")),
            "{var}={value}: {err}"
        );
    }
    let off = config(&[
        ("AURA_DB_TCP_KEEPALIVE_IDLE", "0"),
        ("AURA_DB_TCP_USER_TIMEOUT", "0"),
    ])
    .unwrap();
    let pg = off.app_url().pg_config();
    assert!(!pg.get_keepalives());
    assert_eq!(pg.get_tcp_user_timeout(), None);
}

#[test]
fn the_operation_deadline_is_derived_or_set_and_never_zero() {
    let derived = config(&[]).unwrap();
    assert_eq!(derived.pool().operation_timeout, None);
    assert_eq!(
        derived.pool().operation_deadline(),
        Some(Duration::from_secs(5 + 30 + 5))
    );
    let derived = config(&[
        ("AURA_DB_CHECKOUT_TIMEOUT", "2s"),
        ("AURA_DB_STATEMENT_TIMEOUT", "10s"),
    ])
    .unwrap();
    assert_eq!(
        derived.pool().operation_deadline(),
        Some(Duration::from_secs(17))
    );
    let unbounded = config(&[("AURA_DB_STATEMENT_TIMEOUT", "0")]).unwrap();
    assert_eq!(unbounded.pool().operation_deadline(), None);
    let set = config(&[("AURA_DB_OPERATION_TIMEOUT", "1m")]).unwrap();
    assert_eq!(
        set.pool().operation_deadline(),
        Some(Duration::from_secs(60))
    );
    let err = config(&[("AURA_DB_OPERATION_TIMEOUT", "0")]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "aura-db: AURA_DB_OPERATION_TIMEOUT must be greater than zero"
    );
    let err = Config::builder()
        .operation_timeout(Duration::ZERO)
        .build()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "aura-db: operation_timeout must be greater than zero"
    );
}
