#![doc = include_str!("../README.md")]

mod classify;
mod consistency;
mod cursor;
mod edit;
mod error;
mod input;
mod keys;
pub mod limits;
mod pg;
mod sql;
mod telemetry;
mod traits;
mod turn_data;
mod turn_query;
mod views;

pub use consistency::{Consistency, ParseWalLsnError, WalLsn};
pub use cursor::Cursor;
pub use edit::ConversationEdit;
pub use error::{ConflictKind, Entity, StoreError};
pub use input::{ConversationDraft, RequestDraft, RunDraft, RunEnd, TurnDraft};
pub use keys::{RequestKey, RunKey, TurnKey};
pub use pg::PgStore;
pub use traits::{ConversationStore, RequestStore, RunStore, Store, TurnStore};
pub use turn_query::{TurnPage, TurnPosition, TurnQuery};
pub use views::{ConversationSummary, ConversationWithTurns, ListQuery, Page, StoppedRun};

/// Re-exported for implementors of the traits (mocks in sibling crates' tests).
pub use async_trait::async_trait;

/// Re-exported so callers name the same types as the traits: rows, ids and enums.
pub use aura_schema::{
    AskUserRequest, Conversation, ConversationId, RequestId, RequestStatus, Run, RunId, RunStatus,
    Turn, TurnId, TurnRole, UnknownValue,
};

/// Re-exported so opening a store needs only this crate: the configuration (from the
/// environment or a builder), the pool, and the error a [`StoreError::Unavailable`] or
/// [`StoreError::Database`] carries.
pub use aura_db::{
    Config, ConfigBuilder, DbAttributes, Error as DbError, Pool, PoolSettings, PoolState,
    PoolStats, RetryPolicy, Transient,
};

/// The whole of `aura-db` (pool, transactions, migrations), for what the names above do
/// not cover: `aura_store::aura_db::with_tx`, say.
pub use aura_db;
/// The whole of `aura-schema` (diesel tables, insert and update models), for queries of
/// your own: `aura_store::aura_schema::turns::table`, say.
pub use aura_schema;
/// The JSON crate of a turn's structured data ([`TurnDraft::with_data`], [`Turn::data`]),
/// so callers build the same `serde_json::Value`: `aura_store::serde_json::json!(…)`.
pub use serde_json;
