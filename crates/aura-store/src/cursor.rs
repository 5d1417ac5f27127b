//! [`Cursor`]: the opaque position of a page of conversations.
//!
//! Encoding: base64url (no padding) of 25 bytes: a version byte (`1`), the last row's
//! `last_activity_at` as microseconds since the Unix epoch (i64, big endian), and its id
//! (16 bytes). Microseconds are the column's own precision, so the round trip is exact.

use std::convert::Infallible;
use std::fmt;
use std::str::FromStr;

use aura_schema::ConversationId;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::StoreError;

const VERSION: u8 = 1;
const LEN: usize = 1 + 8 + 16;

/// Where the next page of [`list_conversations`] starts: hand back
/// [`Page::next`](crate::Page::next) as [`ListQuery::after`](crate::ListQuery::after).
///
/// Opaque: its text is meant to travel (a query string, a JSON field) and come back
/// unchanged. Building one from any string never fails; a malformed one is refused by
/// `list_conversations` as [`StoreError::InvalidInput`] for field `after`.
///
/// [`list_conversations`]: crate::ConversationStore::list_conversations
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Cursor(String);

impl Cursor {
    /// The cursor's text (URL-safe).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The cursor positioned after the row with this sort key.
    pub(crate) fn after(last_activity_at: DateTime<Utc>, id: ConversationId) -> Self {
        let mut bytes = [0u8; LEN];
        bytes[0] = VERSION;
        bytes[1..9].copy_from_slice(&last_activity_at.timestamp_micros().to_be_bytes());
        bytes[9..].copy_from_slice(id.as_uuid().as_bytes());
        Cursor(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// The sort key of the row the cursor points after.
    pub(crate) fn position(&self) -> Result<(DateTime<Utc>, ConversationId), StoreError> {
        let malformed =
            |why: &str| StoreError::invalid("after", format!("malformed cursor: {why}"));
        if self.0.len() > 64 {
            return Err(malformed("too long"));
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(&self.0)
            .map_err(|_| malformed("not base64url"))?;
        let bytes: [u8; LEN] = bytes.try_into().map_err(|_| malformed("wrong length"))?;
        if bytes[0] != VERSION {
            return Err(malformed("unknown version"));
        }
        let mut micros = [0u8; 8];
        micros.copy_from_slice(&bytes[1..9]);
        let at = DateTime::from_timestamp_micros(i64::from_be_bytes(micros))
            .ok_or_else(|| malformed("time out of range"))?;
        let mut id = [0u8; 16];
        id.copy_from_slice(&bytes[9..]);
        Ok((at, ConversationId::from_uuid(Uuid::from_bytes(id))))
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for Cursor {
    fn from(text: String) -> Self {
        Cursor(text)
    }
}

impl From<&str> for Cursor {
    fn from(text: &str) -> Self {
        Cursor(text.to_owned())
    }
}

impl FromStr for Cursor {
    type Err = Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Cursor::from(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_exactly() {
        let at = DateTime::from_timestamp_micros(1_790_000_000_123_456).expect("in range");
        let id = ConversationId::new();
        let cursor = Cursor::after(at, id);
        assert_eq!(cursor.as_str().len(), 34);
        let back: Cursor = cursor.to_string().parse().expect("infallible");
        assert_eq!(back.position().ok(), Some((at, id)));
    }

    #[test]
    fn malformed_cursors_name_the_after_field() {
        let good = Cursor::after(Utc::now(), ConversationId::new());
        let mut wrong_version = URL_SAFE_NO_PAD.decode(good.as_str()).expect("ours");
        wrong_version[0] = 2;
        for text in [
            String::new(),
            "not base64!".to_owned(),
            URL_SAFE_NO_PAD.encode([1u8; 24]),
            URL_SAFE_NO_PAD.encode(wrong_version),
            format!("{}AA", good.as_str()),
            "A".repeat(1000),
        ] {
            match Cursor::from(text.as_str()).position() {
                Err(StoreError::InvalidInput { field: "after", .. }) => {}
                other => panic!("{text:?}: {other:?}"),
            }
        }
    }
}
