//! [`TurnQuery`] and [`TurnPage`]: pages of a conversation's turns by `seq`, in either
//! direction (see [`TurnStore::list_turns`](crate::TurnStore::list_turns)).
//!
//! The position is a `seq` itself, not an opaque cursor: seqs are public, dense (1, 2, …
//! without gaps) and never change, so "after turn 120" is exact and safe to hand around.

use aura_schema::Turn;

/// Where a page of turns is taken from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TurnPosition {
    /// The turns with `seq` greater than this one, the nearest first (`After(0)`: from
    /// the first turn). Paging forward.
    After(i32),
    /// The turns with `seq` less than this one, the nearest ones (returned in `seq`
    /// order). Paging backward.
    Before(i32),
    /// The latest turns (returned in `seq` order): a model's context window.
    Latest,
}

/// Which turns of a conversation to read: a position and how many (1 to
/// [`MAX_TURN_PAGE`](crate::limits::MAX_TURN_PAGE)).
///
/// ```
/// use aura_store::{TurnPosition, TurnQuery};
///
/// assert_eq!(TurnQuery::latest(40).position, TurnPosition::Latest);
/// assert_eq!(TurnQuery::first(50), TurnQuery::after(0, 50));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TurnQuery {
    /// Where the page is.
    pub position: TurnPosition,
    /// At most this many turns, 1 to [`MAX_TURN_PAGE`](crate::limits::MAX_TURN_PAGE).
    pub limit: u32,
}

impl TurnQuery {
    /// The first `limit` turns.
    pub const fn first(limit: u32) -> Self {
        Self::after(0, limit)
    }

    /// Up to `limit` turns after `seq`, oldest first.
    pub const fn after(seq: i32, limit: u32) -> Self {
        TurnQuery {
            position: TurnPosition::After(seq),
            limit,
        }
    }

    /// Up to `limit` turns before `seq` (the nearest ones), in `seq` order.
    pub const fn before(seq: i32, limit: u32) -> Self {
        TurnQuery {
            position: TurnPosition::Before(seq),
            limit,
        }
    }

    /// The latest `limit` turns, in `seq` order.
    pub const fn latest(limit: u32) -> Self {
        TurnQuery {
            position: TurnPosition::Latest,
            limit,
        }
    }
}

/// A page of turns (see [`TurnStore::list_turns`](crate::TurnStore::list_turns)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnPage {
    /// The turns, in `seq` order (ascending, whichever the direction), without gaps.
    pub turns: Vec<Turn>,
    /// The query of the next page in the same direction (newer turns for
    /// [`TurnPosition::After`], older ones for [`TurnPosition::Before`] and
    /// [`TurnPosition::Latest`]), same limit; `None` when there are none (at the time of
    /// the read: paging forward through a conversation that grows, ask again later).
    pub next: Option<TurnQuery>,
}
