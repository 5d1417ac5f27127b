//! The repository traits. Each is `Send + Sync` and object safe (`async-trait`), so sibling
//! crates hold an `Arc<dyn TurnStore>` (or the lot, `Arc<dyn Store>`) and substitute their
//! own implementation in unit tests. [`PgStore`](crate::PgStore) implements them all.

use async_trait::async_trait;

use aura_schema::{AskUserRequest, Conversation, ConversationId, RequestId, Run, Turn};

use crate::edit::ConversationEdit;
use crate::error::StoreError;
use crate::input::{ConversationDraft, RequestDraft, RunDraft, RunEnd, TurnDraft};
use crate::keys::{RequestKey, RunKey, TurnKey};
use crate::turn_query::{TurnPage, TurnQuery};
use crate::views::{ConversationSummary, ConversationWithTurns, ListQuery, Page, StoppedRun};

/// Conversations: create, read with their turns, list by activity, delete.
#[async_trait]
pub trait ConversationStore: Send + Sync {
    /// Creates a conversation (no turns, zero totals) with the draft's id, or a new UUIDv7.
    /// Idempotent by a caller-supplied id: when the conversation exists with the same title
    /// and model, returns it as it is now (its turns may have grown).
    ///
    /// Conflict ([`IdempotencyMismatch`](crate::ConflictKind::IdempotencyMismatch)): the id
    /// exists with another title or model. InvalidInput: `id` (not a UUIDv7), `title`
    /// (empty or over 500 characters), `model` (over 500 characters).
    async fn create_conversation(
        &self,
        draft: ConversationDraft<'_>,
    ) -> Result<Conversation, StoreError>;

    /// The conversation with all its turns ordered by `seq` (none for a new one), as of one
    /// moment: the turns are exactly `1..=turn_count` and the totals are their sums.
    ///
    /// NotFound: the conversation.
    async fn get_conversation(
        &self,
        id: ConversationId,
    ) -> Result<ConversationWithTurns, StoreError>;

    /// A page of conversations, latest activity (last turn, else creation) first, ties by id
    /// descending. Keyset-paginated: pass the page's `next` as the next query's `after`. A
    /// conversation created or given a turn while paging moves ahead of the pages already
    /// read, so paging never repeats a conversation.
    ///
    /// InvalidInput: `limit` (not 1..=100), `after` (not a cursor this store made).
    async fn list_conversations(
        &self,
        query: ListQuery,
    ) -> Result<Page<ConversationSummary>, StoreError>;

    /// Deletes the conversation and everything in it (turns, runs, requests).
    ///
    /// NotFound: the conversation.
    async fn delete_conversation(&self, id: ConversationId) -> Result<(), StoreError>;

    /// The conversation with only its latest `turns` turns (0: none), in `seq` order, as of
    /// one moment: the turns are exactly `turn_count - k + 1 ..= turn_count`, `k` being
    /// `turns` or `turn_count` when smaller. One round trip; the cost does not grow with
    /// the conversation's length. [`get_conversation`](Self::get_conversation) reads them
    /// all.
    ///
    /// NotFound: the conversation. InvalidInput: `turns` (over
    /// [`MAX_TURN_PAGE`](crate::limits::MAX_TURN_PAGE), 500).
    async fn get_conversation_with_last_turns(
        &self,
        id: ConversationId,
        turns: u32,
    ) -> Result<ConversationWithTurns, StoreError>;

    /// Changes the conversation's title and/or model and returns it as it is now
    /// (`updated_at` moved forward). With
    /// [`ConversationEdit::if_unchanged_since`](crate::ConversationEdit::if_unchanged_since),
    /// only if the conversation's `updated_at` is still the one given: two editors of one
    /// conversation never silently overwrite each other. Any change of the row moves
    /// `updated_at`: another edit, and also a new turn.
    ///
    /// NotFound: the conversation. Conflict
    /// ([`ConversationChanged`](crate::ConflictKind::ConversationChanged), with its
    /// `updated_at` now): it changed since the expected version; nothing was changed.
    /// InvalidInput: `title` (empty or over 500 characters, NUL), `model` (over 500
    /// characters, NUL), `edit` (changes nothing).
    async fn update_conversation(
        &self,
        id: ConversationId,
        edit: ConversationEdit<'_>,
    ) -> Result<Conversation, StoreError>;
}

/// Turns: append, read one.
#[async_trait]
pub trait TurnStore: Send + Sync {
    /// Stores the next turn of a conversation and adds it to the conversation's aggregates
    /// (turn count, token totals, last turn time), atomically. Concurrent appends to one
    /// conversation get `seq` 1, 2, … without gap or duplicate.
    ///
    /// Idempotent by a caller-supplied id: when the conversation has a turn with this id and
    /// the same role, content and tokens, returns that turn (its `seq` and time) and changes
    /// nothing; concurrent appends of one id store it once.
    ///
    /// NotFound: the conversation. Conflict
    /// ([`IdempotencyMismatch`](crate::ConflictKind::IdempotencyMismatch)): the id is stored
    /// with other content (or data). InvalidInput: `id` (not a UUIDv7), `content` (empty,
    /// over 1 MiB, NUL), `input_tokens` / `output_tokens` (negative), `data` (over 1 MiB as
    /// JSON, nested over 64 deep, NUL in a string or key, a whole-number float near
    /// `f64::MAX` that could not be read back).
    async fn append_turn(
        &self,
        conversation_id: ConversationId,
        draft: TurnDraft<'_>,
    ) -> Result<Turn, StoreError>;

    /// One turn.
    ///
    /// NotFound: the turn.
    async fn get_turn(&self, key: TurnKey) -> Result<Turn, StoreError>;

    /// A page of the conversation's turns by `seq`, in `seq` order: after a seq (paging
    /// forward), before a seq (paging backward), or the latest ones (a model's context
    /// window); see [`TurnQuery`](crate::TurnQuery). One round trip (two for an empty
    /// page); an index range scan of `limit` rows, whatever the conversation's length.
    /// Keyset by `seq`: paging forward while turns are appended never repeats or skips a
    /// turn, and reaches the new ones; `next` is the following page's query.
    ///
    /// NotFound: the conversation. InvalidInput: `limit` (not 1..=500), `after` (negative),
    /// `before` (below 1).
    async fn list_turns(
        &self,
        conversation_id: ConversationId,
        query: TurnQuery,
    ) -> Result<TurnPage, StoreError>;
}

/// Runs: start, read, stop, finish.
#[async_trait]
pub trait RunStore: Send + Sync {
    /// Starts a run (status running) with the draft's id, or a new UUIDv7. Idempotent by a
    /// caller-supplied id: when the run exists, returns it as it is now (it may have ended).
    ///
    /// NotFound: the conversation. Conflict
    /// ([`RunAlreadyRunning`](crate::ConflictKind::RunAlreadyRunning)): the conversation
    /// already has a running run. InvalidInput: `id` (not a UUIDv7).
    async fn start_run(
        &self,
        conversation_id: ConversationId,
        draft: RunDraft,
    ) -> Result<Run, StoreError>;

    /// One run.
    ///
    /// NotFound: the run.
    async fn get_run(&self, key: RunKey) -> Result<Run, StoreError>;

    /// Stops a running run and, in the same transaction, cancels every pending ask-user
    /// request of that run; returns the run and how many were cancelled.
    ///
    /// NotFound: the run. Conflict
    /// ([`RunNotRunning`](crate::ConflictKind::RunNotRunning)): the run is not running
    /// (nothing changed). InvalidInput: `reason` (over 1 MiB, NUL).
    async fn stop_run(&self, key: RunKey, reason: Option<&str>) -> Result<StoppedRun, StoreError>;

    /// Ends a running run as completed or failed, with an optional reason (an error
    /// message, a finish reason). Its pending requests stay pending: a run may end while its
    /// question waits, and a later run resumes with the answer (see
    /// [`RequestStore::mark_requests_resumed`]).
    ///
    /// NotFound: the run. Conflict
    /// ([`RunNotRunning`](crate::ConflictKind::RunNotRunning)): the run is not running
    /// (nothing changed). InvalidInput: `reason` (over 1 MiB, NUL).
    async fn finish_run(
        &self,
        key: RunKey,
        end: RunEnd,
        reason: Option<&str>,
    ) -> Result<Run, StoreError>;

    /// A page of the conversation's runs, newest first (`started_at`, then id,
    /// descending). Keyset-paginated: pass the page's `next` as the next query's `after`;
    /// a run started while paging is newer than every page read, so paging never repeats
    /// or skips a run that existed when it began.
    ///
    /// NotFound: the conversation. InvalidInput: `limit` (not 1..=100), `after` (not a
    /// cursor of this listing).
    async fn list_runs(
        &self,
        conversation_id: ConversationId,
        query: ListQuery,
    ) -> Result<Page<Run>, StoreError>;

    /// The conversation's running run, if it has one (at most one runs at a time).
    ///
    /// NotFound: the conversation.
    async fn find_running_run(
        &self,
        conversation_id: ConversationId,
    ) -> Result<Option<Run>, StoreError>;
}

/// Ask-user requests: ask, answer, resume, list the open ones.
#[async_trait]
pub trait RequestStore: Send + Sync {
    /// Asks a question (status pending), from a run of the conversation or, with `run_id`
    /// `None`, from no run; with the draft's id, or a new UUIDv7. Idempotent by a
    /// caller-supplied id: when the request exists with the same run and question, returns
    /// it as it is now (it may have been answered), also once its run has ended.
    ///
    /// NotFound: the conversation, the run. Conflict:
    /// [`RunNotRunning`](crate::ConflictKind::RunNotRunning) (the run has ended),
    /// [`IdempotencyMismatch`](crate::ConflictKind::IdempotencyMismatch) (the id is stored
    /// with another run or question). InvalidInput: `id` (not a UUIDv7), `question` (empty,
    /// over 1 MiB, NUL).
    async fn create_request(
        &self,
        conversation_id: ConversationId,
        draft: RequestDraft<'_>,
    ) -> Result<AskUserRequest, StoreError>;

    /// One request.
    ///
    /// NotFound: the request.
    async fn get_request(&self, key: RequestKey) -> Result<AskUserRequest, StoreError>;

    /// Answers a pending request (status answered).
    ///
    /// NotFound: the request. Conflict
    /// ([`RequestNotPending`](crate::ConflictKind::RequestNotPending)): it is not pending.
    /// InvalidInput: `answer` (empty, over 1 MiB, NUL).
    async fn answer_request(
        &self,
        key: RequestKey,
        answer: &str,
    ) -> Result<AskUserRequest, StoreError>;

    /// Moves every listed request from answered to resumed, all or none, in one transaction;
    /// returns them (with their answers), in no particular order. Repeated ids count once.
    ///
    /// NotFound: every offending id is missing (`id` lists them). Conflict
    /// ([`RequestsNotAnswered`](crate::ConflictKind::RequestsNotAnswered), which lists every
    /// offending id with its status, missing ones too): some listed request is not
    /// answered; nothing changed. InvalidInput: `ids` (not 1..=1000).
    async fn mark_requests_resumed(
        &self,
        conversation_id: ConversationId,
        ids: &[RequestId],
    ) -> Result<Vec<AskUserRequest>, StoreError>;

    /// The conversation's pending requests, oldest first.
    ///
    /// NotFound: the conversation.
    async fn list_pending_requests(
        &self,
        conversation_id: ConversationId,
    ) -> Result<Vec<AskUserRequest>, StoreError>;

    /// Every request the run asked, in any status, oldest first (`created_at`, then id).
    ///
    /// NotFound: the run.
    async fn list_run_requests(&self, key: RunKey) -> Result<Vec<AskUserRequest>, StoreError>;

    /// A page of the pending requests of every conversation, oldest first (`created_at`,
    /// then conversation id, then id): what a notifier polls. Keyset-paginated: pass the
    /// page's `next` as the next query's `after`. Paging never repeats a request, and
    /// visits every request that was pending when it began and still is when its page is
    /// read (one answered or cancelled meanwhile drops out). A request created while paging
    /// is stamped with its statement's start, so one created just before a page was read
    /// can commit just after it, with a time that page already passed: a notifier should
    /// start each polling round from the first page (the listing holds only what is
    /// pending, so a round costs as much as the backlog) and remember what it notified by
    /// key.
    ///
    /// InvalidInput: `limit` (not 1..=100), `after` (not a cursor of this listing).
    async fn list_all_pending_requests(
        &self,
        query: ListQuery,
    ) -> Result<Page<AskUserRequest>, StoreError>;
}

/// All four repositories in one object: `Arc<dyn Store>` coerces to `Arc<dyn TurnStore>`
/// and the others. Implemented for every type that implements the four.
pub trait Store: ConversationStore + TurnStore + RunStore + RequestStore {}

impl<T> Store for T where T: ConversationStore + TurnStore + RunStore + RequestStore + ?Sized {}
