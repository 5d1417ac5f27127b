//! [`ConversationEdit`]: what
//! [`update_conversation`](crate::ConversationStore::update_conversation) changes.
//!
//! Named an edit, not an update: aura-schema's `ConversationUpdate` is the diesel
//! `AsChangeset` of the same table (every column), this is the caller's request (title and
//! model, and the version it was made against).

use chrono::{DateTime, Utc};

/// Changes to a conversation's title and model, optionally only if the conversation is
/// still as the caller last read it.
///
/// ```
/// use aura_store::ConversationEdit;
///
/// # fn demo(seen: aura_store::Conversation) {
/// // Rename, unless someone (or a new turn) changed the conversation since it was read.
/// let edit = ConversationEdit::new()
///     .title("Trip to Lisbon")
///     .if_unchanged_since(seen.updated_at);
/// # let _ = edit;
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConversationEdit<'a> {
    /// `Some(Some(t))` sets the title (not empty, at most 500 characters), `Some(None)`
    /// clears it, `None` leaves it.
    pub title: Option<Option<&'a str>>,
    /// `Some(m)` sets the model (at most 500 characters; `""`: not chosen), `None` leaves
    /// it.
    pub model: Option<&'a str>,
    /// `Some(t)`: change the conversation only if its `updated_at` is still `t` (the value
    /// the store returned when the caller read it); a conversation changed since is a
    /// [`ConversationChanged`](crate::ConflictKind::ConversationChanged) conflict. `None`:
    /// change it whatever happened since (last writer wins).
    pub expected_updated_at: Option<DateTime<Utc>>,
}

impl<'a> ConversationEdit<'a> {
    /// An edit that changes nothing yet.
    pub const fn new() -> Self {
        ConversationEdit {
            title: None,
            model: None,
            expected_updated_at: None,
        }
    }

    /// The same edit, setting the title.
    pub const fn title(mut self, title: &'a str) -> Self {
        self.title = Some(Some(title));
        self
    }

    /// The same edit, clearing the title.
    pub const fn clear_title(mut self) -> Self {
        self.title = Some(None);
        self
    }

    /// The same edit, setting the model.
    pub const fn model(mut self, model: &'a str) -> Self {
        self.model = Some(model);
        self
    }

    /// The same edit, made only if the conversation's `updated_at` is still `updated_at`.
    pub const fn if_unchanged_since(mut self, updated_at: DateTime<Utc>) -> Self {
        self.expected_updated_at = Some(updated_at);
        self
    }
}
