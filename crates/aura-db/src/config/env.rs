//! Reading [`Config`] from environment variables.
//!
//! An empty variable counts as unset (as `os.Getenv` did in the Go package this replaces).
//! Secrets are wrapped in [`SecretString`] as they are read; errors name the variable and
//! echo only values that are not secret.

use std::time::Duration;

use secrecy::SecretString;

use super::vars::{self, Names};
use super::{Config, ConfigBuilder, PoolSettings};
use crate::error::Error;
use crate::tcp::TcpSettings;

pub(super) fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Config, Error> {
    let get = |name: &str| lookup(name).filter(|v| !v.is_empty());
    let secret = |name: &str| get(name).map(SecretString::from);
    // Each parser names the variable in its error.
    let duration = |name: &str| get(name).map(|v| parse_duration(name, &v)).transpose();
    let count = |name: &str| get(name).map(|v| parse_count(name, &v)).transpose();
    let ConfigBuilder { tcp, pool, .. } = ConfigBuilder::default();
    let checkout_timeout = duration(vars::AURA_DB_CHECKOUT_TIMEOUT)?;

    let b = ConfigBuilder {
        host: get(vars::POSTGRES_HOST),
        port: get(vars::POSTGRES_PORT)
            .map(|v| parse_port(vars::POSTGRES_PORT, &v))
            .transpose()?,
        dbname: get(vars::POSTGRES_DB),
        superuser: get(vars::POSTGRES_USER),
        superuser_password: secret(vars::POSTGRES_PASSWORD),
        role_password: secret(vars::AURA_DB_PASSWORD),
        app_url: secret(vars::AURA_DB_URL),
        read_url: secret(vars::AURA_DB_READ_URL),
        read_max_lag: duration(vars::AURA_DB_READ_MAX_LAG)?,
        migrate_url: secret(vars::AURA_DB_MIGRATE_URL),
        bootstrap_url: secret(vars::AURA_DB_BOOTSTRAP_URL),
        app_role: get(vars::AURA_DB_APP_ROLE),
        migrate_role: get(vars::AURA_DB_MIGRATE_ROLE),
        superuser_password_file: get(vars::POSTGRES_PASSWORD_FILE).map(Into::into),
        role_password_file: get(vars::AURA_DB_PASSWORD_FILE).map(Into::into),
        tcp: TcpSettings {
            keepalive_idle: duration(vars::AURA_DB_TCP_KEEPALIVE_IDLE)?
                .unwrap_or(tcp.keepalive_idle),
            keepalive_interval: duration(vars::AURA_DB_TCP_KEEPALIVE_INTERVAL)?
                .unwrap_or(tcp.keepalive_interval),
            keepalive_retries: count(vars::AURA_DB_TCP_KEEPALIVE_RETRIES)?
                .unwrap_or(tcp.keepalive_retries),
            user_timeout: duration(vars::AURA_DB_TCP_USER_TIMEOUT)?.unwrap_or(tcp.user_timeout),
        },
        pool: PoolSettings {
            max_conns: count(vars::AURA_DB_MAX_CONNS)?.unwrap_or(pool.max_conns),
            min_conns: count(vars::AURA_DB_MIN_CONNS)?.unwrap_or(pool.min_conns),
            max_conn_idle: duration(vars::AURA_DB_MAX_CONN_IDLE)?.unwrap_or(pool.max_conn_idle),
            connect_timeout: duration(vars::AURA_DB_CONNECT_TIMEOUT)?
                .unwrap_or(pool.connect_timeout),
            checkout_timeout: checkout_timeout.unwrap_or(pool.checkout_timeout),
            statement_timeout: duration(vars::AURA_DB_STATEMENT_TIMEOUT)?
                .unwrap_or(pool.statement_timeout),
            operation_timeout: duration(vars::AURA_DB_OPERATION_TIMEOUT)?
                .or(pool.operation_timeout),
            application_name: get(vars::AURA_DB_APPLICATION_NAME).unwrap_or(pool.application_name),
            slow_op: match get(vars::AURA_DB_SLOW_OP) {
                Some(v) => parse_slow_op(vars::AURA_DB_SLOW_OP, &v)?,
                None => pool.slow_op,
            },
            ..pool
        },
        checkout_timeout_set: checkout_timeout.is_some(),
        ..ConfigBuilder::default()
    };
    b.build_named(&Names::ENV)
}

/// `off` or a zero duration: no slow-operation warning.
fn parse_slow_op(var: &str, v: &str) -> Result<Option<Duration>, Error> {
    if v.trim().eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let d = parse_duration(var, v)?;
    Ok(Some(d).filter(|d| !d.is_zero()))
}

fn parse_port(var: &str, v: &str) -> Result<u16, Error> {
    match v.trim().parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(Error::config(
            var,
            format!("must be a port number 1-65535, got {v:?}"),
        )),
    }
}

fn parse_count(var: &str, v: &str) -> Result<u32, Error> {
    v.trim()
        .parse::<u32>()
        .map_err(|_| Error::config(var, format!("must be a whole number, got {v:?}")))
}

/// `30s`, `500ms`, `1m30s`, `2h`: a number and a unit, as Go's `time.ParseDuration` and
/// humantime accept. A bare number is refused: its unit would be a guess.
pub(crate) fn parse_duration(var: &str, v: &str) -> Result<Duration, Error> {
    let v = v.trim();
    if v.chars().all(|c| c.is_ascii_digit()) && v != "0" {
        return Err(Error::config(
            var,
            format!("must be a duration with a unit like 30s or 500ms, got {v:?}"),
        ));
    }
    humantime::parse_duration(v).map_err(|e| {
        Error::config(
            var,
            format!("must be a duration like 30s or 500ms, got {v:?} ({e})"),
        )
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::Config;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, Error> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_compose_the_three_dsns() {
        let c = config(&[("POSTGRES_PASSWORD", "pw")]).unwrap();
        assert_eq!(
            c.app_url().redacted(),
            "postgres://aura_app:***@127.0.0.1:5432/aura"
        );
        assert_eq!(
            c.migrate_url().unwrap().redacted(),
            "postgres://aura_migrate:***@127.0.0.1:5432/aura"
        );
        assert_eq!(
            c.bootstrap_url().redacted(),
            "postgres://postgres:***@127.0.0.1:5432/aura"
        );
        assert!(!c.bootstrap_skipped());
        assert_eq!(c.pool().max_conns, 10);
        assert_eq!(c.pool().min_conns, 1);
        assert_eq!(c.pool().max_conn_idle, Duration::from_secs(30));
        assert_eq!(c.pool().connect_timeout, Duration::from_secs(5));
        assert_eq!(c.pool().checkout_timeout, Duration::from_secs(5));
        assert_eq!(c.pool().statement_timeout, Duration::from_secs(30));
        assert_eq!(
            (c.app_role(), c.migrate_role(), c.schema()),
            ("aura_app", "aura_migrate", "aura")
        );
    }

    #[test]
    fn role_password_defaults_to_the_superuser_password_and_can_differ() {
        let c = config(&[
            ("POSTGRES_PASSWORD", "super"),
            ("AURA_DB_PASSWORD", "roles"),
        ])
        .unwrap();
        assert_eq!(c.app_url().pg_config().get_password(), Some(&b"roles"[..]));
        assert_eq!(
            c.bootstrap_url().pg_config().get_password(),
            Some(&b"super"[..])
        );
        let c = config(&[("POSTGRES_PASSWORD", "super")]).unwrap();
        assert_eq!(c.app_url().pg_config().get_password(), Some(&b"super"[..]));
    }

    #[test]
    fn verbatim_urls_win_and_both_skip_bootstrap() {
        let c = config(&[
            ("AURA_DB_URL", "postgres://a:x@h1:1/d1"),
            ("AURA_DB_MIGRATE_URL", "postgres://m:y@h2:2/d2"),
            ("POSTGRES_HOST", "ignored"),
        ])
        .unwrap();
        assert_eq!(c.app_url().redacted(), "postgres://a:***@h1:1/d1");
        assert_eq!(
            (c.app_role(), c.migrate_role()),
            ("a", "m"),
            "role names follow the URLs' users"
        );
        assert_eq!(
            c.migrate_url().unwrap().redacted(),
            "postgres://m:***@h2:2/d2"
        );
        assert!(c.bootstrap_skipped());
        let c = config(&[("AURA_DB_URL", "postgres://a:x@h1:1/d1")]).unwrap();
        assert!(!c.bootstrap_skipped());
    }

    #[test]
    fn parts_compose_with_host_port_db_user() {
        let c = config(&[
            ("POSTGRES_HOST", "db.internal"),
            ("POSTGRES_PORT", "6543"),
            ("POSTGRES_DB", "aura_dev"),
            ("POSTGRES_USER", "admin"),
            ("AURA_DB_APP_ROLE", "svc"),
            ("AURA_DB_MIGRATE_ROLE", "ddl"),
            ("AURA_DB_MAX_CONNS", "4"),
            ("AURA_DB_MIN_CONNS", "0"),
            ("AURA_DB_CONNECT_TIMEOUT", "500ms"),
            ("AURA_DB_STATEMENT_TIMEOUT", "1m"),
        ])
        .unwrap();
        assert_eq!(
            c.app_url().redacted(),
            "postgres://svc@db.internal:6543/aura_dev"
        );
        assert_eq!(
            c.bootstrap_url().redacted(),
            "postgres://admin@db.internal:6543/aura_dev"
        );
        assert_eq!(c.schema(), "aura");
        assert_eq!(c.pool().max_conns, 4);
        assert_eq!(c.pool().connect_timeout, Duration::from_millis(500));
        assert_eq!(c.pool().checkout_timeout, Duration::from_millis(500));
        assert_eq!(c.pool().statement_timeout, Duration::from_secs(60));
    }

    #[test]
    fn every_bad_value_names_its_variable() {
        let secret = "Pl4nted-S3cret";
        let url = format!("postgres://u:{secret}@h:port/d");
        let cases: Vec<(&str, String)> = vec![
            ("POSTGRES_PORT", "abc".into()),
            ("POSTGRES_PORT", "70000".into()),
            ("POSTGRES_PORT", "0".into()),
            ("AURA_DB_URL", url.clone()),
            ("AURA_DB_MIGRATE_URL", url.clone()),
            ("AURA_DB_BOOTSTRAP_URL", url),
            ("AURA_DB_APP_ROLE", "Bad-Name".into()),
            ("AURA_DB_MIGRATE_ROLE", "pg_migrate".into()),
            ("AURA_DB_MAX_CONNS", "ten".into()),
            ("AURA_DB_MAX_CONNS", "0".into()),
            ("AURA_DB_MIN_CONNS", "-1".into()),
            ("AURA_DB_MAX_CONN_IDLE", "30".into()),
            ("AURA_DB_MAX_CONN_IDLE", "0s".into()),
            ("POSTGRES_HOST", "db.example/other".into()),
            ("POSTGRES_HOST", "evil@host".into()),
            ("POSTGRES_HOST", "two words".into()),
            ("AURA_DB_CONNECT_TIMEOUT", "soon".into()),
            ("AURA_DB_CONNECT_TIMEOUT", "0s".into()),
            ("AURA_DB_CHECKOUT_TIMEOUT", "5 parsecs".into()),
            ("AURA_DB_STATEMENT_TIMEOUT", "-1s".into()),
            ("AURA_DB_APPLICATION_NAME", "x".repeat(64)),
        ];
        for (var, value) in &cases {
            let err = config(&[(var, value), ("POSTGRES_PASSWORD", secret)]).unwrap_err();
            let text = err.to_string();
            assert!(
                text.starts_with(&format!("aura-db: {var} ")),
                "{var}={value:?}: {text}"
            );
            assert!(
                !text.contains(secret) && !format!("{err:?}").contains(secret),
                "{text}"
            );
        }
        let err = config(&[("AURA_DB_MIN_CONNS", "11")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("AURA_DB_MIN_CONNS") && err.contains("AURA_DB_MAX_CONNS"),
            "{err}"
        );
        let err = config(&[
            ("AURA_DB_APP_ROLE", "same"),
            ("AURA_DB_MIGRATE_ROLE", "same"),
        ])
        .unwrap_err()
        .to_string();
        assert!(err.contains("AURA_DB_MIGRATE_ROLE"), "{err}");
    }

    #[test]
    fn debug_of_config_never_shows_a_password() {
        let secret = "Pl4nted-S3cret";
        let c = config(&[
            ("POSTGRES_PASSWORD", secret),
            ("AURA_DB_PASSWORD", secret),
            (
                "AURA_DB_BOOTSTRAP_URL",
                &format!("host=h user=u password={secret}"),
            ),
        ])
        .unwrap();
        let debug = format!("{c:?}");
        assert!(!debug.contains(secret), "{debug}");
        assert!(
            debug.contains("postgres://aura_app:***@127.0.0.1:5432/aura"),
            "{debug}"
        );
    }

    #[test]
    fn an_empty_variable_counts_as_unset() {
        let c = config(&[("POSTGRES_PORT", ""), ("AURA_DB_MIGRATE_URL", "")]).unwrap();
        assert_eq!(
            c.migrate_url().unwrap().redacted(),
            "postgres://aura_migrate@127.0.0.1:5432/aura"
        );
    }

    #[test]
    fn slow_op_threshold_defaults_to_1s_and_turns_off() {
        let c = config(&[]).unwrap();
        assert_eq!(c.pool().slow_op, Some(Duration::from_secs(1)));
        let c = config(&[("AURA_DB_SLOW_OP", "250ms")]).unwrap();
        assert_eq!(c.pool().slow_op, Some(Duration::from_millis(250)));
        for off in ["off", "OFF", "0", "0s"] {
            let c = config(&[("AURA_DB_SLOW_OP", off)]).unwrap();
            assert_eq!(c.pool().slow_op, None, "{off}");
        }
        let err = config(&[("AURA_DB_SLOW_OP", "soon")]).unwrap_err();
        assert!(err.to_string().contains("AURA_DB_SLOW_OP"), "{err}");
    }

    #[test]
    fn the_read_url_gives_a_read_only_pool_config_and_a_lag_bound() {
        let c = config(&[]).unwrap();
        assert!(c.read_url().is_none() && c.for_reads().is_none());
        assert_eq!(c.read_max_lag(), Duration::from_secs(10));
        let c = config(&[
            (
                "AURA_DB_READ_URL",
                "postgres://aura_app:s3cret@replica:5433/aura",
            ),
            ("AURA_DB_READ_MAX_LAG", "2s"),
        ])
        .unwrap();
        assert_eq!(
            c.read_url().unwrap().redacted(),
            "postgres://aura_app:***@replica:5433/aura"
        );
        assert_eq!(c.read_max_lag(), Duration::from_secs(2));
        let reads = c.for_reads().unwrap();
        assert_eq!(reads.app_url().redacted(), c.read_url().unwrap().redacted());
        assert!(reads.pool().read_only && !c.pool().read_only);
        assert!(!format!("{c:?}").contains("s3cret"));
        for (value, named) in [
            ("0s", "AURA_DB_READ_MAX_LAG"),
            ("soon", "AURA_DB_READ_MAX_LAG"),
        ] {
            let err = config(&[("AURA_DB_READ_MAX_LAG", value)]).unwrap_err();
            assert!(err.to_string().contains(named), "{err}");
        }
        let err = config(&[("AURA_DB_READ_URL", "postgres://a:s3cret@h:notaport/d")]).unwrap_err();
        assert!(err.to_string().contains("AURA_DB_READ_URL"), "{err}");
        assert!(!err.to_string().contains("s3cret"), "{err}");
    }
}
