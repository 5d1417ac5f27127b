//! `tracing` spans of the data layer, named with OpenTelemetry's database attributes.
//!
//! Every span is built here (aura-store's operation spans too, through
//! [`operation_span`]), so the attribute names are written once:
//!
//! | span | level | made by |
//! |---|---|---|
//! | `db.checkout` | DEBUG | [`crate::Pool::get`]: the wait for a pooled connection |
//! | `db.connect` | DEBUG | the pool making a new physical connection |
//! | `db.transaction` | INFO | [`crate::with_tx`] / [`crate::with_tx_opts`] |
//! | `db.operation` | INFO | every aura-store operation (`append_turn`, …) |
//!
//! Attributes: `db.system.name` (`postgresql`), `db.namespace` (the database),
//! `server.address`, `server.port`, and where they apply `db.operation.name`,
//! `db.collection.name` (the table), `db.query.text` (statement text with `$n`
//! placeholders, never bind values), `db.response.returned_rows`, `error.type` (the error
//! variant, e.g. `PoolExhausted`, `NotFound`) and `db.response.status_code` (SQLSTATE).
//!
//! No field ever holds a bind value, a row's content or a password: the target is the
//! database name, host and port only. With no subscriber listening, a span costs an atomic
//! load (`tracing`'s level check) and its fields are never formatted.

use std::fmt::Debug;
use std::time::Duration;

use tracing::Span;
use tracing::field::Empty;

/// `db.system.name` of every span.
pub const DB_SYSTEM: &str = "postgresql";

/// What OpenTelemetry's connection attributes say about a pool's database: no user name,
/// no password, no options.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DbAttributes {
    /// `db.namespace`: the database name.
    pub namespace: String,
    /// `server.address`: the first host (a name, an address or a Unix socket directory).
    pub address: String,
    /// `server.port`: the first port.
    pub port: u16,
}

impl DbAttributes {
    /// The attributes of a connection made from `pg` (database, first host and port;
    /// libpq's defaults where the DSN is silent).
    pub(crate) fn of(pg: &tokio_postgres::Config) -> Self {
        let address = match pg.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
            #[cfg(unix)]
            Some(tokio_postgres::config::Host::Unix(dir)) => dir.display().to_string(),
            None => "localhost".to_owned(),
        };
        DbAttributes {
            namespace: pg
                .get_dbname()
                .or(pg.get_user())
                .unwrap_or_default()
                .to_owned(),
            address,
            port: pg.get_ports().first().copied().unwrap_or(5432),
        }
    }
}

/// The span of one store operation (`db.operation.name` = `op`, on `collection`). Fields
/// recorded later: `db.query.text`, `db.response.returned_rows`, `error.type`,
/// `db.response.status_code`.
pub fn operation_span(attrs: &DbAttributes, op: &'static str, collection: &'static str) -> Span {
    tracing::info_span!(
        "db.operation",
        db.system.name = DB_SYSTEM,
        db.operation.name = op,
        db.collection.name = collection,
        db.namespace = %attrs.namespace,
        server.address = %attrs.address,
        server.port = attrs.port,
        db.query.text = Empty,
        db.response.returned_rows = Empty,
        error.type = Empty,
        db.response.status_code = Empty,
    )
}

/// The span of one [`crate::with_tx`]: `db.operation.name` is `transaction`; recorded
/// later: `db.transaction.begin` (the `BEGIN …` statement), `db.transaction.outcome` (`commit` / `rollback`), `error.type`,
/// `db.response.status_code`.
pub(crate) fn transaction_span(attrs: &DbAttributes) -> Span {
    tracing::info_span!(
        "db.transaction",
        db.system.name = DB_SYSTEM,
        db.operation.name = "transaction",
        db.namespace = %attrs.namespace,
        server.address = %attrs.address,
        server.port = attrs.port,
        db.transaction.begin = Empty,
        db.transaction.outcome = Empty,
        error.type = Empty,
        db.response.status_code = Empty,
    )
}

/// The span of one checkout; recorded later: `db.client.connection.wait_time_us` and, on
/// failure, `error.type`.
pub(crate) fn checkout_span(attrs: &DbAttributes, pool_max: u32) -> Span {
    tracing::debug_span!(
        "db.checkout",
        db.system.name = DB_SYSTEM,
        db.namespace = %attrs.namespace,
        server.address = %attrs.address,
        server.port = attrs.port,
        db.client.connection.pool.max = pool_max,
        db.client.connection.wait_time_us = Empty,
        error.type = Empty,
        db.response.status_code = Empty,
    )
}

/// The span of one new physical connection; on failure `error.type`.
pub(crate) fn connect_span(attrs: &DbAttributes) -> Span {
    tracing::debug_span!(
        "db.connect",
        db.system.name = DB_SYSTEM,
        db.namespace = %attrs.namespace,
        server.address = %attrs.address,
        server.port = attrs.port,
        error.type = Empty,
        db.response.status_code = Empty,
    )
}

/// Records a failure on `span`: `error.type` (a variant name) and, when the server gave
/// one, `db.response.status_code` (the SQLSTATE).
pub fn record_error(span: &Span, error_type: &str, sqlstate: Option<&str>) {
    if span.is_disabled() {
        return;
    }
    span.record("error.type", error_type);
    if let Some(code) = sqlstate {
        span.record("db.response.status_code", code);
    }
}

/// Records an [`crate::Error`] on `span` (see [`record_error`]).
pub fn record_db_error(span: &Span, err: &crate::Error) {
    if span.is_disabled() {
        return;
    }
    record_error(span, &variant_name(err), err.sqlstate());
}

/// The name of an enum value's variant, from its derived `Debug` (`Query { .. }` ->
/// `Query`). Only the name leaves this function: the fields are never shown.
pub fn variant_name(value: &dyn Debug) -> String {
    let debug = format!("{value:?}");
    let end = debug
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(debug.len());
    debug[..end].to_owned()
}

/// Warns when `op` took longer than `threshold`: `slow database operation` with
/// `db.operation.name`, `duration_ms` and `threshold_ms`.
pub fn warn_if_slow(threshold: Option<Duration>, op: &str, elapsed: Duration) {
    if let Some(threshold) = threshold
        && elapsed > threshold
    {
        tracing::warn!(
            db.system.name = DB_SYSTEM,
            db.operation.name = op,
            duration_ms = elapsed.as_secs_f64() * 1e3,
            threshold_ms = threshold.as_secs_f64() * 1e3,
            "slow database operation"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    #[allow(dead_code)]
    enum E {
        Query { message: String },
        Closed,
        Wrapped(String),
    }

    #[test]
    fn variant_name_shows_only_the_name() {
        let secret = "planted-secret".to_owned();
        assert_eq!(
            variant_name(&E::Query {
                message: secret.clone()
            }),
            "Query"
        );
        assert_eq!(variant_name(&E::Closed), "Closed");
        assert_eq!(variant_name(&E::Wrapped(secret)), "Wrapped");
    }

    #[test]
    fn attributes_name_database_host_and_port_only() {
        let pg: tokio_postgres::Config = "postgres://u:pw@db.example:6543/aura_x".parse().unwrap();
        assert_eq!(
            DbAttributes::of(&pg),
            DbAttributes {
                namespace: "aura_x".into(),
                address: "db.example".into(),
                port: 6543
            }
        );
    }
}
