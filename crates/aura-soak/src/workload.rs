//! The mixed workload: tasks that create conversations, append turns, start and stop (or
//! finish) runs with an ask-user request, and read, every write with a caller-supplied id.
//!
//! A failed attempt is repeated (same ids: exactly once) up to [`ATTEMPTS`] times with a
//! short backoff; a write that is not idempotent by id (stop, finish, answer) takes "not
//! running" / "not pending" after a failed attempt as that attempt having landed. Every
//! acknowledged write goes to the [`Ledger`]; every attempt is counted in the [`Tally`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use aura_store::{
    ConflictKind, ConversationDraft, ConversationId, ConversationStore, ListQuery, PgStore,
    RequestDraft, RequestId, RequestKey, RequestStatus, RequestStore, RunDraft, RunEnd, RunId,
    RunKey, RunStatus, RunStore, StoreError, TurnDraft, TurnId, TurnRole, TurnStore,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::time::{sleep, timeout};

use crate::ledger::Ledger;
use crate::tally::{Class, Tally};

/// Attempts of one call before it is given up (its outcome then stays unknown).
pub const ATTEMPTS: u32 = 15;
/// The longest one attempt may take: past it, the attempt counts as hung.
pub const OP_BOUND: Duration = Duration::from_secs(30);

/// What the workload tasks share.
pub struct Workload {
    /// The store under test (its pool goes through the fault proxy).
    pub store: Arc<PgStore>,
    /// Acknowledged writes.
    pub ledger: Arc<Ledger>,
    /// Counters.
    pub tally: Arc<Tally>,
    /// Set when the soak's time is up.
    pub stop: Arc<AtomicBool>,
    conversations: RwLock<Vec<ConversationId>>,
}

/// How a repeated call ended.
enum Outcome<T> {
    Done(T),
    LandedEarlier,
    GaveUp,
}

impl Workload {
    /// A workload on `store`.
    pub fn new(store: Arc<PgStore>, ledger: Arc<Ledger>, tally: Arc<Tally>) -> Workload {
        Workload {
            store,
            ledger,
            tally,
            stop: Arc::new(AtomicBool::new(false)),
            conversations: RwLock::new(Vec::new()),
        }
    }

    /// One task: operations picked at random (seeded) until the soak's time is up.
    pub async fn task(self: Arc<Self>, seed: u64) {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut own: Vec<ConversationId> = Vec::new();
        while !self.stop.load(Ordering::Relaxed) {
            let pick = rng.random_range(0..100);
            let any = self.any_conversation(&mut rng);
            match (pick, any) {
                (0..10, _) | (_, None) => {
                    if let Some(id) = self.create_conversation().await {
                        own.push(id);
                    }
                }
                (10..60, Some(c)) => self.append(c, rng.random_range(0..50)).await,
                (60..72, _) if !own.is_empty() => {
                    let i = rng.random_range(0..own.len());
                    if !self.run_cycle(own[i], rng.random_bool(0.5)).await {
                        // The run's state is unknown: no more runs on that conversation.
                        own.swap_remove(i);
                    }
                }
                (72..92, Some(c)) => self.read(c).await,
                _ => self.list().await,
            }
        }
    }

    fn any_conversation(&self, rng: &mut StdRng) -> Option<ConversationId> {
        let all = self
            .conversations
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (!all.is_empty()).then(|| all[rng.random_range(0..all.len())])
    }

    async fn create_conversation(&self) -> Option<ConversationId> {
        let id = ConversationId::new();
        let draft = ConversationDraft::new("soak-model").with_id(id);
        let out = self
            .call(
                "create_conversation",
                || self.store.create_conversation(draft),
                |_| false,
            )
            .await;
        match out {
            Outcome::Done(_) => {
                self.ledger.conversation(id);
                self.conversations
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(id);
                Some(id)
            }
            _ => None,
        }
    }

    async fn append(&self, c: ConversationId, tokens: i32) {
        let id = TurnId::new();
        let draft = TurnDraft::new(TurnRole::User, "a turn of the soak")
            .tokens(tokens, tokens * 2 + 1)
            .with_id(id);
        match self
            .call(
                "append_turn",
                || self.store.append_turn(c, draft),
                |_| false,
            )
            .await
        {
            Outcome::Done(turn) => self.ledger.turn(c, id, turn.seq),
            _ => self.ledger.maybe_turn(id),
        }
    }

    /// A run started, a request created by it, then either answered and the run finished,
    /// or the run stopped (which cancels the pending request). False when the run's state
    /// is left unknown.
    async fn run_cycle(&self, c: ConversationId, stop: bool) -> bool {
        let run = RunKey::new(c, RunId::new());
        let started = self
            .call(
                "start_run",
                || self.store.start_run(c, RunDraft::with_id(run.id)),
                |_| false,
            )
            .await;
        if !matches!(started, Outcome::Done(_)) {
            return false;
        }
        self.ledger.run(c, run.id, RunStatus::Running);
        let request = RequestKey::new(c, RequestId::new());
        let draft = RequestDraft::new(Some(run.id), "go on?").with_id(request.id);
        let created = self
            .call(
                "create_request",
                || self.store.create_request(c, draft),
                |_| false,
            )
            .await;
        let created = matches!(created, Outcome::Done(_));
        if created {
            self.ledger.request(c, request.id);
        }
        let ended = if stop || !created {
            let out = self
                .call(
                    "stop_run",
                    || self.store.stop_run(run, None),
                    |e| run_is(e, RunStatus::Stopped),
                )
                .await;
            (!matches!(out, Outcome::GaveUp)).then_some(RunStatus::Stopped)
        } else {
            let answered = self
                .call(
                    "answer_request",
                    || self.store.answer_request(request, "yes"),
                    |e| {
                        matches!(e.conflict_kind(), Some(ConflictKind::RequestNotPending { status })
                        if *status == RequestStatus::Answered)
                    },
                )
                .await;
            if matches!(answered, Outcome::GaveUp) {
                return false;
            }
            let out = self
                .call(
                    "finish_run",
                    || self.store.finish_run(run, RunEnd::Completed, None),
                    |e| run_is(e, RunStatus::Completed),
                )
                .await;
            (!matches!(out, Outcome::GaveUp)).then_some(RunStatus::Completed)
        };
        match ended {
            Some(status) => {
                self.ledger.run(c, run.id, status);
                true
            }
            None => false,
        }
    }

    async fn read(&self, c: ConversationId) {
        if let Outcome::Done(read) = self
            .call(
                "get_conversation",
                || self.store.get_conversation(c),
                |_| false,
            )
            .await
        {
            let seqs: Vec<i32> = read.turns.iter().map(|t| t.seq).collect();
            if seqs != (1..=read.conversation.turn_count).collect::<Vec<_>>() {
                self.tally
                    .failed("get_conversation", Class::Unexpected, || {
                        format!(
                            "torn read of {c}: turn_count {}, seqs {seqs:?}",
                            read.conversation.turn_count
                        )
                    });
            }
        }
    }

    async fn list(&self) {
        let _ = self
            .call(
                "list_conversations",
                || self.store.list_conversations(ListQuery::default()),
                |_| false,
            )
            .await;
    }

    /// Calls `op` until it succeeds, at most [`ATTEMPTS`] times, each attempt bounded by
    /// [`OP_BOUND`]; `landed` recognises, after a failed attempt, the error that says that
    /// attempt landed.
    async fn call<T, F, Fut>(
        &self,
        name: &'static str,
        op: F,
        landed: impl Fn(&StoreError) -> bool,
    ) -> Outcome<T>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        for attempt in 0..ATTEMPTS {
            match timeout(OP_BOUND, op()).await {
                Ok(Ok(v)) => {
                    self.tally.ok(name);
                    return Outcome::Done(v);
                }
                Ok(Err(e)) if attempt > 0 && landed(&e) => {
                    self.tally
                        .failed(name, Class::LandedEarlier, || e.to_string());
                    return Outcome::LandedEarlier;
                }
                Ok(Err(e)) => {
                    let class = Class::of(&e);
                    self.tally.failed(name, class, || e.to_string());
                    if class == Class::Unexpected {
                        return Outcome::GaveUp;
                    }
                }
                Err(_) => {
                    self.tally.failed(name, Class::Hung, || {
                        format!("no answer within {OP_BOUND:?}")
                    });
                    return Outcome::GaveUp;
                }
            }
            sleep(
                Duration::from_millis(50 * u64::from(attempt + 1)).min(Duration::from_millis(500)),
            )
            .await;
        }
        self.tally.gave_up(name);
        Outcome::GaveUp
    }
}

/// A run conflict saying the run already has `status` (an earlier attempt ended it).
fn run_is(e: &StoreError, status: RunStatus) -> bool {
    matches!(e.conflict_kind(), Some(ConflictKind::RunNotRunning { status: s }) if *s == status)
}
