//! The language of server messages, which [`crate::sqlstate`] depends on.
//!
//! diesel-async drops the SQLSTATE of most server errors; the ones callers branch on
//! (deadlock, timeouts, a session the server ended, …) are recognised by their English text.
//! Role bootstrap pins `lc_messages = 'C'` for the app and migrate roles. Under another
//! language those texts are not recognised: the code is `None` (never a wrong one), a
//! terminated session is not flagged `connection_lost`. That must not go unnoticed: a pool
//! reads `lc_messages` on its first connection and warns once when it is not English.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use diesel::sql_types::Text;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

/// True for the `lc_messages` values whose messages are English: `C`, `POSIX`, `C.<enc>`,
/// `en`, `en_<territory>[.<enc>]`. Empty (inherit the server's environment) is not: its
/// language is unknown.
pub(crate) fn is_english(lc_messages: &str) -> bool {
    let lang = lc_messages.split(['.', '@']).next().unwrap_or_default();
    matches!(lang, "C" | "POSIX" | "en") || lang.starts_with("en_")
}

/// Checks the server's `lc_messages` once (the first call that gets to it); later calls
/// do nothing.
#[derive(Default)]
pub(crate) struct LcMessagesCheck {
    done: AtomicBool,
    value: OnceLock<String>,
}

impl LcMessagesCheck {
    /// On the first call, reads `lc_messages` on `conn` and warns when it is not English
    /// (see the module docs). A failed read is logged at debug level, never an error: the
    /// connection is good.
    pub(crate) async fn once(&self, conn: &mut AsyncPgConnection, target: &str) {
        if self.done.swap(true, Ordering::SeqCst) {
            return;
        }
        let value = diesel::dsl::sql::<Text>("SELECT current_setting('lc_messages')")
            .get_result::<String>(conn)
            .await;
        match value {
            Ok(value) => {
                report(target, &value);
                let _ = self.value.set(value);
            }
            Err(e) => tracing::debug!(target = %target, error = %e, "could not read lc_messages"),
        }
    }
}

impl LcMessagesCheck {
    /// The value read, once it was.
    pub(crate) fn value(&self) -> Option<&str> {
        self.value.get().map(String::as_str)
    }
}

/// Logs what `lc_messages` means for SQLSTATE recovery: a warning when it is not English
/// (returns true), else a debug line.
fn report(target: &str, lc_messages: &str) -> bool {
    if is_english(lc_messages) {
        tracing::debug!(target = %target, lc_messages, "server messages are English");
        return false;
    }
    tracing::warn!(
        target = %target,
        lc_messages,
        "lc_messages is not English: SQLSTATEs recognised by their message (deadlock, \
         statement and lock timeouts, a session the server ended, …) will be missing \
         (Error::sqlstate() None, connection_lost false); run role bootstrap, or ALTER ROLE … \
         SET lc_messages = 'C' as a superuser"
    );
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn english_values() {
        for value in [
            "C",
            "POSIX",
            "C.UTF-8",
            "C.utf8",
            "en_US.UTF-8",
            "en_GB",
            "en",
        ] {
            assert!(is_english(value), "{value}");
        }
        for value in ["", "de_DE.UTF-8", "fr_FR", "ja_JP.utf8", "eng", "Cx"] {
            assert!(!is_english(value), "{value}");
            assert!(
                report("postgres://x:***@h/db", value),
                "warns for {value:?}"
            );
        }
        assert!(!report("postgres://x:***@h/db", "C"));
    }
}
