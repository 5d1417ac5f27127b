//! [`Cursor`]: the opaque position of a page of a keyset listing.
//!
//! Encoding: base64url (no padding) of a version byte that also says which listing made
//! it, the last row's time as microseconds since the Unix epoch (i64, big endian), and its
//! ids (16 bytes each). Microseconds are the columns' own precision, so the round trip is
//! exact.
//!
//! | version | listing | bytes |
//! |---|---|---|
//! | 1 | `list_conversations` | `last_activity_at`, conversation id (25) |
//! | 2 | `list_runs` | `started_at`, run id (25) |
//! | 3 | `list_all_pending_requests` | `created_at`, conversation id, request id (41) |

use std::convert::Infallible;
use std::fmt;
use std::str::FromStr;

use aura_schema::{ConversationId, RequestId, RunId};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::StoreError;

const VERSION: u8 = 1;
const LEN: usize = 1 + 8 + 16;
/// Version byte of a `list_runs` cursor (same layout as [`VERSION`]).
const RUNS: u8 = 2;
/// Version byte of a `list_all_pending_requests` cursor.
const PENDING: u8 = 3;
const PENDING_LEN: usize = 1 + 8 + 16 + 16;

/// Where the next page of a keyset listing ([`list_conversations`], [`list_runs`],
/// [`list_all_pending_requests`]) starts: hand back [`Page::next`](crate::Page::next) as
/// [`ListQuery::after`](crate::ListQuery::after) of the same listing.
///
/// Opaque: its text is meant to travel (a query string, a JSON field) and come back
/// unchanged. Building one from any string never fails; a malformed one, or one made by
/// another listing, is refused by the listing as [`StoreError::InvalidInput`] for field
/// `after`.
///
/// [`list_conversations`]: crate::ConversationStore::list_conversations
/// [`list_runs`]: crate::RunStore::list_runs
/// [`list_all_pending_requests`]: crate::RequestStore::list_all_pending_requests
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
        let (at, ids) = self.decode(VERSION, LEN)?;
        Ok((at, ConversationId::from_uuid(ids[0])))
    }

    /// The cursor of `list_runs` positioned after the run with this sort key.
    pub(crate) fn after_run(started_at: DateTime<Utc>, id: RunId) -> Self {
        Self::encode(RUNS, started_at, &[id.as_uuid()])
    }

    /// The sort key of the run a `list_runs` cursor points after.
    pub(crate) fn run_position(&self) -> Result<(DateTime<Utc>, RunId), StoreError> {
        let (at, ids) = self.decode(RUNS, LEN)?;
        Ok((at, RunId::from_uuid(ids[0])))
    }

    /// The cursor of `list_all_pending_requests` positioned after the request with this
    /// sort key.
    pub(crate) fn after_request(
        created_at: DateTime<Utc>,
        conversation_id: ConversationId,
        id: RequestId,
    ) -> Self {
        Self::encode(
            PENDING,
            created_at,
            &[conversation_id.as_uuid(), id.as_uuid()],
        )
    }

    /// The sort key of the request a `list_all_pending_requests` cursor points after.
    pub(crate) fn request_position(
        &self,
    ) -> Result<(DateTime<Utc>, ConversationId, RequestId), StoreError> {
        let (at, ids) = self.decode(PENDING, PENDING_LEN)?;
        Ok((
            at,
            ConversationId::from_uuid(ids[0]),
            RequestId::from_uuid(ids[1]),
        ))
    }

    fn encode(version: u8, at: DateTime<Utc>, ids: &[Uuid]) -> Self {
        let mut bytes = Vec::with_capacity(9 + 16 * ids.len());
        bytes.push(version);
        bytes.extend_from_slice(&at.timestamp_micros().to_be_bytes());
        for id in ids {
            bytes.extend_from_slice(id.as_bytes());
        }
        Cursor(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// The time and ids of a cursor of listing `version`, `len` bytes long.
    fn decode(&self, version: u8, len: usize) -> Result<(DateTime<Utc>, Vec<Uuid>), StoreError> {
        let malformed =
            |why: &str| StoreError::invalid("after", format!("malformed cursor: {why}"));
        if self.0.len() > 64 {
            return Err(malformed("too long"));
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(&self.0)
            .map_err(|_| malformed("not base64url"))?;
        match bytes.first().copied() {
            Some(v) if v == version => {}
            Some(VERSION | RUNS | PENDING) => {
                return Err(StoreError::invalid(
                    "after",
                    "a cursor of another listing (pass each listing its own page's next)",
                ));
            }
            _ => return Err(malformed("unknown version")),
        }
        if bytes.len() != len {
            return Err(malformed("wrong length"));
        }
        let mut micros = [0u8; 8];
        micros.copy_from_slice(&bytes[1..9]);
        let at = DateTime::from_timestamp_micros(i64::from_be_bytes(micros))
            .ok_or_else(|| malformed("time out of range"))?;
        let ids = bytes[9..]
            .chunks_exact(16)
            .map(|chunk| {
                let mut id = [0u8; 16];
                id.copy_from_slice(chunk);
                Uuid::from_bytes(id)
            })
            .collect();
        Ok((at, ids))
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
    fn run_and_request_cursors_round_trip_and_stay_in_their_listing() {
        let at = DateTime::from_timestamp_micros(1_790_000_000_123_456).expect("in range");
        let run = RunId::new();
        let cursor = Cursor::after_run(at, run);
        assert_eq!(cursor.run_position().ok(), Some((at, run)));
        let (c, r) = (ConversationId::new(), RequestId::new());
        let pending = Cursor::after_request(at, c, r);
        assert_eq!(pending.as_str().len(), 55);
        assert_eq!(pending.request_position().ok(), Some((at, c, r)));
        let conversations = Cursor::after(at, c);
        for (result, what) in [
            (conversations.run_position().err(), "conversations as runs"),
            (cursor.position().err(), "runs as conversations"),
            (pending.run_position().err(), "requests as runs"),
            (cursor.request_position().err(), "runs as requests"),
        ] {
            match result {
                Some(StoreError::InvalidInput {
                    field: "after",
                    reason,
                }) => {
                    assert!(reason.contains("another listing"), "{what}: {reason}");
                }
                other => panic!("{what}: {other:?}"),
            }
        }
    }

    #[test]
    fn malformed_cursors_name_the_after_field() {
        let good = Cursor::after(Utc::now(), ConversationId::new());
        let mut wrong_version = URL_SAFE_NO_PAD.decode(good.as_str()).expect("ours");
        wrong_version[0] = 9;
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
