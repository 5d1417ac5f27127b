//! The one place database errors become [`StoreError`]s.
//!
//! - A closed pool ([`aura_db::Error::PoolClosed`]) -> [`StoreError::Closed`].
//! - Pool and connection failures, and the operation deadline passing
//!   ([`aura_db::Error::Timeout`]) -> [`StoreError::Unavailable`]. Two exceptions stay
//!   [`StoreError::Database`], not retryable: a rejected login (retrying will not fix the
//!   credentials) and a failed `COMMIT` (when the connection dropped during it, the outcome
//!   is unknown).
//! - Unique and foreign-key violations of constraints named in the migrations, whose meaning
//!   is known -> [`StoreError::Conflict`] / [`StoreError::NotFound`], named with the ids of
//!   the statement's [`Subject`]. Without the id the error needs, or for a constraint not in
//!   the table, -> [`StoreError::Database`] (whose message names the constraint).
//! - Everything else -> [`StoreError::Database`], SQLSTATE kept.

use aura_db::Error as DbError;

use crate::error::{ConflictKind, Entity, StoreError, Subject};

/// What a violation of a known constraint means.
enum Meaning {
    /// A foreign key: the referenced row does not exist.
    Missing(Entity),
    /// A primary key: the row's id is taken (by a row with other content: the store reads
    /// back a row with the same content instead of inserting it again).
    IdTaken(Entity),
    /// `runs_one_running_idx`: the conversation already has a running run.
    RunRunning,
    /// `turns_conversation_id_seq_key`.
    SeqTaken,
}

/// Every primary-key, unique and foreign-key constraint of schema `aura`
/// (migrations/*/up.sql).
const CONSTRAINTS: &[(&str, Meaning)] = &[
    ("conversations_pkey", Meaning::IdTaken(Entity::Conversation)),
    ("turns_pkey", Meaning::IdTaken(Entity::Turn)),
    ("turns_conversation_id_seq_key", Meaning::SeqTaken),
    (
        "turns_conversation_id_fkey",
        Meaning::Missing(Entity::Conversation),
    ),
    ("runs_pkey", Meaning::IdTaken(Entity::Run)),
    ("runs_one_running_idx", Meaning::RunRunning),
    (
        "runs_conversation_id_fkey",
        Meaning::Missing(Entity::Conversation),
    ),
    ("ask_user_requests_pkey", Meaning::IdTaken(Entity::Request)),
    (
        "ask_user_requests_conversation_id_fkey",
        Meaning::Missing(Entity::Conversation),
    ),
    ("ask_user_requests_run_fkey", Meaning::Missing(Entity::Run)),
];

/// Classifies a database error of a statement about `subject`.
pub(crate) fn classify(err: DbError, subject: &Subject) -> StoreError {
    match &err {
        DbError::PoolExhausted { .. } | DbError::Connect { .. } | DbError::Timeout { .. } => {
            StoreError::Unavailable(err)
        }
        DbError::PoolClosed { .. } => StoreError::Closed,
        // COMMIT sent, connection gone: the outcome is unknown, as for any statement
        // whose connection died after it was sent.
        DbError::Commit {
            connection_lost: true,
            ..
        } => StoreError::Unavailable(err),
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
                (Some("23505" | "23503"), Some(name)) => {
                    violation(name, subject).unwrap_or(StoreError::Database(err))
                }
                _ => StoreError::Database(err),
            }
        }
        _ => StoreError::Database(err),
    }
}

/// The error a violation of constraint `name` by a statement about `subject` means, when
/// the constraint is known and the subject has the id to name.
fn violation(name: &str, subject: &Subject) -> Option<StoreError> {
    let conversation = subject.conversation.as_deref();
    Some(match meaning(name)? {
        Meaning::Missing(Entity::Run) => {
            StoreError::not_found(Entity::Run, subject.run.as_deref()?)
        }
        Meaning::Missing(entity) => StoreError::not_found(*entity, conversation?),
        Meaning::IdTaken(entity) => StoreError::conflict(
            ConflictKind::IdempotencyMismatch,
            *entity,
            subject.row.as_deref()?,
        ),
        Meaning::RunRunning => StoreError::conflict(
            ConflictKind::RunAlreadyRunning,
            Entity::Conversation,
            conversation?,
        ),
        Meaning::SeqTaken => StoreError::conflict(
            ConflictKind::TurnSeqTaken,
            Entity::Conversation,
            conversation?,
        ),
    })
}

/// For errors outside any one statement's ids (the pool, a transaction's `COMMIT`).
impl From<DbError> for StoreError {
    fn from(err: DbError) -> Self {
        classify(err, &Subject::default())
    }
}

impl From<diesel::result::Error> for StoreError {
    fn from(err: diesel::result::Error) -> Self {
        StoreError::from(DbError::from(err))
    }
}

/// [`classify`] for a diesel error.
pub(crate) fn classify_diesel(err: diesel::result::Error, subject: &Subject) -> StoreError {
    classify(DbError::from(err), subject)
}

/// True when `err` is a unique violation of constraint `name`.
pub(crate) fn is_violation(err: &diesel::result::Error, name: &str) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    matches!(
        err,
        Error::DatabaseError(DatabaseErrorKind::UniqueViolation, info)
            if info.constraint_name() == Some(name)
    )
}

/// True when `name` is a constraint of the table above (a test checks the database has no
/// other).
#[cfg(test)]
pub(crate) fn is_known(name: &str) -> bool {
    meaning(name).is_some()
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
            source: message.into(),
        }
    }

    #[test]
    fn known_constraints_have_a_meaning_named_with_the_statements_ids() {
        let subject = Subject::row("c1", "c1/r1", Some("r1"));
        let err = classify(
            query(Some("23505"), "dup", Some("runs_one_running_idx")),
            &subject,
        );
        assert_eq!(
            err.to_string(),
            "aura-store: conflict: conversation c1 already has a running run"
        );
        assert_eq!(err.conflict_kind(), Some(&ConflictKind::RunAlreadyRunning));
        let err = classify(
            query(Some("23503"), "fk", Some("ask_user_requests_run_fkey")),
            &subject,
        );
        assert!(
            matches!(&err, StoreError::NotFound { entity: Entity::Run, id } if id == "c1/r1"),
            "{err:?}"
        );
        let err = classify(query(Some("23505"), "dup", Some("turns_pkey")), &subject);
        assert_eq!(
            err.conflict_kind(),
            Some(&ConflictKind::IdempotencyMismatch)
        );
        let err = classify(
            query(Some("23505"), "dup", Some("someone_elses_key")),
            &subject,
        );
        assert!(matches!(err, StoreError::Database(_)), "{err:?}");
        assert_eq!(err.sqlstate(), Some("23505"));
    }

    #[test]
    fn a_violation_without_the_id_it_needs_stays_a_database_error() {
        let err = StoreError::from(query(
            Some("23503"),
            "fk",
            Some("ask_user_requests_run_fkey"),
        ));
        assert!(matches!(err, StoreError::Database(_)), "{err:?}");
        assert!(err.to_string().contains("fk"), "{err}");
    }

    /// Every primary-key, unique and foreign-key constraint (and unique index) of the
    /// tables the app role writes, as the migrations leave them, has a meaning here: a new
    /// one cannot silently become `StoreError::Database`. (The migration runner's own
    /// tables are not the app role's to write.)
    #[tokio::test]
    async fn every_key_constraint_of_the_schema_is_known() {
        let db = aura_testkit::TestDb::new().await;
        let client = db.superuser_client().await;
        let rows = client
            .query(
                "SELECT c.conname::text FROM pg_constraint c \
                   JOIN pg_class t ON t.oid = c.conrelid \
                   JOIN pg_namespace n ON n.oid = t.relnamespace \
                  WHERE n.nspname = 'aura' AND c.contype IN ('p', 'u', 'f') \
                    AND has_table_privilege('aura_app', t.oid, 'INSERT') \
                 UNION \
                 SELECT i.relname::text FROM pg_index x \
                   JOIN pg_class i ON i.oid = x.indexrelid \
                   JOIN pg_class t ON t.oid = x.indrelid \
                   JOIN pg_namespace n ON n.oid = t.relnamespace \
                  WHERE n.nspname = 'aura' AND x.indisunique \
                    AND has_table_privilege('aura_app', t.oid, 'INSERT')",
                &[],
            )
            .await
            .expect("constraints");
        let names: Vec<String> = rows.iter().map(|row| row.get(0)).collect();
        assert!(names.len() >= CONSTRAINTS.len(), "{names:?}");
        let unknown: Vec<&String> = names.iter().filter(|name| !is_known(name)).collect();
        assert!(
            unknown.is_empty(),
            "constraints without a meaning in classify::CONSTRAINTS: {unknown:?}"
        );
    }

    #[test]
    fn a_closed_pool_is_closed_and_the_chain_reaches_the_drivers_error() {
        let closed = StoreError::from(DbError::PoolClosed {
            target: "postgres://aura_app:***@h/aura".to_owned(),
        });
        assert!(matches!(closed, StoreError::Closed), "{closed:?}");
        assert!(!closed.is_retryable());

        let err = StoreError::from(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::CheckViolation,
            Box::new("new row violates check constraint".to_owned()),
        ));
        let db = std::error::Error::source(&err).expect("the aura-db error");
        assert!(db.is::<DbError>(), "{db:?}");
        let driver = db.source().expect("the driver's error");
        assert!(driver.is::<diesel::result::Error>(), "{driver:?}");
        assert_eq!(
            aura_db::error_chain(&err),
            "aura-store: database error: aura-db: query failed: new row violates check \
             constraint (SQLSTATE 23514)"
        );
    }

    #[test]
    fn lost_connections_are_unavailable() {
        let lost = DbError::Query {
            sqlstate: None,
            message: "connection closed".to_owned(),
            constraint: None,
            connection_lost: true,
            source: "connection closed".into(),
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
