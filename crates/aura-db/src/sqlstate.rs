//! SQLSTATEs of diesel errors. diesel-async keeps the code only as a [`DatabaseErrorKind`]
//! for eight SQLSTATEs and drops it for every other one (`Unknown`); for those, the ones
//! callers branch on or a migration commonly meets are recognised by their server message
//! (lc_messages `C`, English). Anything else has no known SQLSTATE: `None`, never a guess.
//!
//! Under another `lc_messages` the messages are translated and none is recognised: the code
//! is `None`, never a wrong one (a test holds real translations against the tables), and a
//! pool warns once (see `crate::lc_messages`). Role bootstrap pins `lc_messages = 'C'`.

use diesel::result::{DatabaseErrorKind, Error as DieselError};

/// Server messages (lc_messages `C`) of errors diesel-async reports as
/// `DatabaseErrorKind::Unknown` without their code, as (starts with, ends with, SQLSTATE).
const MESSAGE_SQLSTATES: [(&str, &str, &str); 16] = [
    ("deadlock detected", "", "40P01"),
    ("canceling statement due to statement timeout", "", "57014"),
    ("canceling statement due to user request", "", "57014"),
    ("canceling statement due to lock timeout", "", "55P03"),
    ("could not obtain lock on row", "", "55P03"),
    ("permission denied for ", "", "42501"),
    ("current transaction is aborted", "", "25P02"),
    ("value too long for type", "", "22001"),
    ("invalid input syntax for type", "", "22P02"),
    // What a migration commonly meets.
    ("syntax error at or near ", "", "42601"),
    ("relation \"", "\" does not exist", "42P01"),
    ("table \"", "\" does not exist", "42P01"),
    ("relation \"", "\" already exists", "42P07"),
    ("column \"", "\" does not exist", "42703"),
    ("function ", " does not exist", "42883"),
    ("", " cannot run inside a transaction block", "25001"),
];

/// The SQLSTATE behind a message diesel-async kept without its code, where
/// [`MESSAGE_SQLSTATES`] knows it.
fn of_message(message: &str) -> Option<&'static str> {
    MESSAGE_SQLSTATES
        .iter()
        .find(|(prefix, suffix, _)| message.starts_with(prefix) && message.ends_with(suffix))
        .map(|(_, _, code)| *code)
}

/// Messages (lc_messages `C`/English) of the FATAL errors a backend sends when it ends the
/// session mid-statement: `pg_terminate_backend` and shutdown (57P01), a crashed sibling
/// (57P02), the session timeouts (57P05, 25P03). diesel-async reports these as
/// `DatabaseErrorKind::Unknown` without their SQLSTATE, so the message is all there is.
const SESSION_ENDED_PREFIXES: &[&str] = &["terminating connection", "the database system is"];

/// True when a message without SQLSTATE says the server ended the session.
pub(crate) fn session_ended(message: &str) -> bool {
    SESSION_ENDED_PREFIXES
        .iter()
        .any(|prefix| message.starts_with(prefix))
}

/// Class 08 (connection exception) and the class 57 codes of a session the server ends or
/// refuses: 57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect now, 57P05 idle
/// session timeout.
pub(crate) fn session_sqlstate(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "57P05")
}

/// The SQLSTATE behind the kinds diesel-async maps; `None` for `Unknown` and the rest.
fn of_kind(kind: &DatabaseErrorKind) -> Option<&'static str> {
    Some(match kind {
        DatabaseErrorKind::UniqueViolation => "23505",
        DatabaseErrorKind::ForeignKeyViolation => "23503",
        DatabaseErrorKind::RestrictViolation => "23001",
        DatabaseErrorKind::ExclusionViolation => "23P01",
        DatabaseErrorKind::NotNullViolation => "23502",
        DatabaseErrorKind::CheckViolation => "23514",
        DatabaseErrorKind::SerializationFailure => "40001",
        DatabaseErrorKind::ReadOnlyTransaction => "25006",
        _ => return None,
    })
}

/// The SQLSTATE of a diesel error, from its kind or (for `Unknown`) its message.
pub(crate) fn of_diesel(err: &DieselError) -> Option<&'static str> {
    match err {
        DieselError::DatabaseError(DatabaseErrorKind::Unknown, info) => of_message(info.message()),
        DieselError::DatabaseError(kind, _) => of_kind(kind),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_sqlstates() {
        assert!(session_sqlstate("08006"));
        assert!(session_sqlstate("57P01"));
        assert!(
            !session_sqlstate("57014"),
            "a cancelled statement keeps its session"
        );
        assert!(!session_sqlstate("23505"));
    }
}
