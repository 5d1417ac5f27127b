//! The input rules, checked before any SQL is sent. A violation is
//! [`StoreError::InvalidInput`] naming the field.

use crate::error::StoreError;

/// Largest `content`, `question`, `answer` or `reason`, in bytes (1 MiB).
pub const MAX_TEXT_BYTES: usize = 1024 * 1024;
/// Longest conversation title, in characters.
pub const MAX_TITLE_CHARS: usize = 500;
/// Longest model name, in characters.
pub const MAX_MODEL_CHARS: usize = 500;
/// Most ids in one batch call.
pub const MAX_BATCH: usize = 1000;
/// Largest page of [`list_conversations`](crate::ConversationStore::list_conversations).
pub const MAX_PAGE: u32 = 100;
/// Page size when the query gives none.
pub const DEFAULT_PAGE: u32 = 50;
/// Most turns in one read of
/// [`list_turns`](crate::TurnStore::list_turns) or
/// [`get_conversation_with_last_turns`](crate::ConversationStore::get_conversation_with_last_turns).
pub const MAX_TURN_PAGE: u32 = 500;
/// Largest structured data of a turn, in bytes of JSON as the store writes it (1 MiB).
pub const MAX_DATA_BYTES: usize = 1024 * 1024;
/// Deepest nesting of arrays and objects in a turn's structured data (serde_json reads at
/// most 128 levels back).
pub const MAX_DATA_DEPTH: usize = 64;

/// Required text: not empty, at most [`MAX_TEXT_BYTES`], no NUL (Postgres text cannot hold it).
pub(crate) fn required_text(field: &'static str, value: &str) -> Result<(), StoreError> {
    if value.is_empty() {
        return Err(StoreError::invalid(field, "must not be empty"));
    }
    bounded_text(field, value)
}

/// Optional free text: at most [`MAX_TEXT_BYTES`], no NUL.
pub(crate) fn bounded_text(field: &'static str, value: &str) -> Result<(), StoreError> {
    if value.len() > MAX_TEXT_BYTES {
        return Err(StoreError::invalid(
            field,
            format!(
                "is {} bytes, more than the limit of {MAX_TEXT_BYTES} (1 MiB)",
                value.len()
            ),
        ));
    }
    no_nul(field, value)
}

/// A short label: at most `max` characters, no NUL.
pub(crate) fn label(field: &'static str, value: &str, max: usize) -> Result<(), StoreError> {
    // Counting chars stops early: a 1 GB title costs no more than `max` steps.
    if value.chars().nth(max).is_some() {
        return Err(StoreError::invalid(
            field,
            format!("is longer than {max} characters"),
        ));
    }
    no_nul(field, value)
}

/// A token count: `>= 0`.
pub(crate) fn tokens(field: &'static str, value: i32) -> Result<(), StoreError> {
    if value < 0 {
        return Err(StoreError::invalid(
            field,
            format!("must be >= 0, got {value}"),
        ));
    }
    Ok(())
}

/// A batch of `1..=MAX_BATCH` items.
pub(crate) fn batch(field: &'static str, len: usize) -> Result<(), StoreError> {
    if len == 0 || len > MAX_BATCH {
        return Err(StoreError::invalid(
            field,
            format!("must hold 1 to {MAX_BATCH} ids, got {len}"),
        ));
    }
    Ok(())
}

/// A page size: `None` is [`DEFAULT_PAGE`], else `1..=MAX_PAGE`.
pub(crate) fn page_limit(limit: Option<u32>) -> Result<u32, StoreError> {
    match limit {
        None => Ok(DEFAULT_PAGE),
        Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
        Some(n) => Err(StoreError::invalid(
            "limit",
            format!("must be 1 to {MAX_PAGE}, got {n}"),
        )),
    }
}

/// A number of turns to read: `1..=MAX_TURN_PAGE`, or from 0 when `zero` is allowed.
pub(crate) fn turn_limit(field: &'static str, n: u32, zero: bool) -> Result<u32, StoreError> {
    let min = u32::from(!zero);
    if (min..=MAX_TURN_PAGE).contains(&n) {
        return Ok(n);
    }
    Err(StoreError::invalid(
        field,
        format!("must be {min} to {MAX_TURN_PAGE}, got {n}"),
    ))
}

/// A caller-supplied id: `None` (the store makes one) or a UUIDv7, the only version the
/// schema's ids are (time-ordered, so new rows land at the right edge of the indexes).
pub(crate) fn caller_id(id: Option<uuid::Uuid>) -> Result<(), StoreError> {
    match id.map(|id| id.get_version_num()) {
        None | Some(7) => Ok(()),
        Some(version) => Err(StoreError::invalid(
            "id",
            format!(
                "must be a UUIDv7 (the id is the row's idempotency key), got version {version}"
            ),
        )),
    }
}

fn no_nul(field: &'static str, value: &str) -> Result<(), StoreError> {
    if value.contains('\0') {
        return Err(StoreError::invalid(
            field,
            "must not contain a NUL character",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(result: Result<impl Sized, StoreError>) -> &'static str {
        match result {
            Err(StoreError::InvalidInput { field, .. }) => field,
            Err(other) => panic!("not InvalidInput: {other:?}"),
            Ok(_) => panic!("accepted"),
        }
    }

    #[test]
    fn each_rule_names_its_field() {
        assert_eq!(field_of(required_text("content", "")), "content");
        let big = "x".repeat(MAX_TEXT_BYTES + 1);
        assert_eq!(field_of(required_text("question", &big)), "question");
        assert!(required_text("content", &big[..MAX_TEXT_BYTES]).is_ok());
        assert_eq!(field_of(required_text("answer", "a\0b")), "answer");
        assert_eq!(field_of(label("title", &"é".repeat(501), 500)), "title");
        assert!(label("title", &"é".repeat(500), 500).is_ok());
        assert_eq!(field_of(tokens("input_tokens", -1)), "input_tokens");
        assert!(tokens("input_tokens", 0).is_ok());
        assert_eq!(field_of(batch("ids", 0)), "ids");
        assert_eq!(field_of(batch("ids", 1001)), "ids");
        assert!(batch("ids", 1000).is_ok());
        assert_eq!(field_of(page_limit(Some(0))), "limit");
        assert_eq!(field_of(page_limit(Some(101))), "limit");
        assert_eq!(page_limit(None).ok(), Some(50));
        assert_eq!(page_limit(Some(100)).ok(), Some(100));
        assert_eq!(field_of(caller_id(Some(uuid::Uuid::nil()))), "id");
        assert_eq!(
            field_of(caller_id(Some(
                uuid::Builder::from_random_bytes([7; 16]).into_uuid()
            ))),
            "id"
        );
        assert!(caller_id(Some(uuid::Uuid::now_v7())).is_ok());
        assert!(caller_id(None).is_ok());
        assert_eq!(field_of(turn_limit("limit", 0, false)), "limit");
        assert_eq!(field_of(turn_limit("limit", 501, false)), "limit");
        assert_eq!(turn_limit("limit", 500, false).ok(), Some(500));
        assert_eq!(turn_limit("turns", 0, true).ok(), Some(0));
        assert_eq!(field_of(turn_limit("turns", 501, true)), "turns");
    }
}
