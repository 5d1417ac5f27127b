//! The one place database errors become [`StoreError`]s.
//!
//! - Pool and connection failures -> [`StoreError::Unavailable`]. Two exceptions stay
//!   [`StoreError::Database`], not retryable: a rejected login (retrying will not fix the
//!   credentials) and a failed `COMMIT` (when the connection dropped during it, the outcome
//!   is unknown).
//! - Unique and foreign-key violations of constraints named in the migrations, whose meaning
//!   is known -> [`StoreError::Conflict`] / [`StoreError::NotFound`].
//! - Everything else -> [`StoreError::Database`], SQLSTATE kept.

use aura_db::Error as DbError;

use crate::error::{Entity, StoreError};

/// What a violation of a known constraint means.
enum Meaning {
    /// A foreign key: the referenced row does not exist.
    Missing(Entity),
    /// A unique key: the value is taken.
    Taken(&'static str),
}

/// Every unique and foreign-key constraint of schema `aura` (migrations/*/up.sql).
const CONSTRAINTS: &[(&str, Meaning)] = &[
    (
        "conversations_pkey",
        Meaning::Taken("a conversation with this id already exists"),
    ),
    (
        "turns_pkey",
        Meaning::Taken("a turn with this id already exists in the conversation"),
    ),
    (
        "turns_conversation_id_seq_key",
        Meaning::Taken("the conversation already has a turn with this seq"),
    ),
    (
        "turns_conversation_id_fkey",
        Meaning::Missing(Entity::Conversation),
    ),
    (
        "runs_pkey",
        Meaning::Taken("a run with this id already exists in the conversation"),
    ),
    (
        "runs_one_running_idx",
        Meaning::Taken("the conversation already has a running run"),
    ),
    (
        "runs_conversation_id_fkey",
        Meaning::Missing(Entity::Conversation),
    ),
    (
        "ask_user_requests_pkey",
        Meaning::Taken("a request with this id already exists in the conversation"),
    ),
    (
        "ask_user_requests_conversation_id_fkey",
        Meaning::Missing(Entity::Conversation),
    ),
    ("ask_user_requests_run_fkey", Meaning::Missing(Entity::Run)),
];

impl From<DbError> for StoreError {
    fn from(err: DbError) -> Self {
        match &err {
            DbError::PoolExhausted { .. } | DbError::Connect { .. } => StoreError::Unavailable(err),
            DbError::Query {
                sqlstate,
                constraint,
                connection_lost,
                ..
            } => {
                // aura-db flags closed sockets and sessions the server ended (class 08,
                // 57P0x, or their messages where diesel dropped the SQLSTATE).
                if *connection_lost {
                    return StoreError::Unavailable(err);
                }
                match (sqlstate.as_deref(), constraint.as_deref()) {
                    (Some("23505" | "23503"), Some(name)) => match meaning(name) {
                        Some(Meaning::Missing(entity)) => StoreError::NotFound {
                            entity: *entity,
                            // Filled in by the operation, which knows the key it used.
                            id: String::new(),
                        },
                        Some(Meaning::Taken(what)) => StoreError::conflict(*what),
                        None => StoreError::Database(err),
                    },
                    _ => StoreError::Database(err),
                }
            }
            _ => StoreError::Database(err),
        }
    }
}

impl From<diesel::result::Error> for StoreError {
    fn from(err: diesel::result::Error) -> Self {
        StoreError::from(DbError::from(err))
    }
}

fn meaning(constraint: &str) -> Option<&'static Meaning> {
    CONSTRAINTS
        .iter()
        .find(|(name, _)| *name == constraint)
        .map(|(_, meaning)| meaning)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(sqlstate: Option<&str>, message: &str, constraint: Option<&str>) -> DbError {
        DbError::Query {
            sqlstate: sqlstate.map(str::to_owned),
            message: message.to_owned(),
            constraint: constraint.map(str::to_owned),
            connection_lost: false,
        }
    }

    #[test]
    fn known_constraints_have_a_meaning() {
        let err = StoreError::from(query(Some("23505"), "dup", Some("runs_one_running_idx")));
        assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
        let err = StoreError::from(query(
            Some("23503"),
            "fk",
            Some("ask_user_requests_run_fkey"),
        ));
        assert!(
            matches!(
                err,
                StoreError::NotFound {
                    entity: Entity::Run,
                    ..
                }
            ),
            "{err:?}"
        );
        let err = StoreError::from(query(Some("23505"), "dup", Some("someone_elses_key")));
        assert!(matches!(err, StoreError::Database(_)), "{err:?}");
        assert_eq!(err.sqlstate(), Some("23505"));
    }

    #[test]
    fn lost_connections_are_unavailable() {
        let lost = DbError::Query {
            sqlstate: None,
            message: "connection closed".to_owned(),
            constraint: None,
            connection_lost: true,
        };
        let err = StoreError::from(lost);
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
        assert!(err.is_retryable());
        // A killed backend, as diesel-async reports it (no SQLSTATE), through aura-db.
        let killed = diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::Unknown,
            Box::new("terminating connection due to administrator command".to_owned()),
        );
        let err = StoreError::from(killed);
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
        let check = StoreError::from(query(Some("23514"), "check", Some("turns_seq_check")));
        assert!(matches!(check, StoreError::Database(_)) && !check.is_retryable());
        let serialization = StoreError::from(query(Some("40001"), "could not serialize", None));
        assert!(serialization.is_retryable());
    }
}
