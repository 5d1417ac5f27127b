//! What the soak counts: operations (attempts that succeeded or failed, by operation),
//! failures by class, faults injected by kind, and the failures no fault explains.

use std::collections::BTreeMap;
use std::sync::Mutex;

use aura_store::StoreError;

/// How a failed attempt is classed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Class {
    /// `StoreError::Unavailable`: retryable, the write did not land or is repeated safely.
    Unavailable,
    /// A store transaction whose `COMMIT` died with its connection (`StoreError::Unavailable`
    /// holding `aura_db::Error::Commit`): outcome unknown until asked again.
    CommitUnknown,
    /// A conflict that tells a repeated call its earlier attempt landed (a run already
    /// stopped, a request already answered).
    LandedEarlier,
    /// No answer within the operation bound: a hang, which fails the soak.
    Hung,
    /// Anything else: a failure no injected fault explains, which fails the soak.
    Unexpected,
}

impl Class {
    /// The label printed.
    pub fn label(self) -> &'static str {
        match self {
            Class::Unavailable => "Unavailable (retryable)",
            Class::CommitUnknown => "commit outcome unknown",
            Class::LandedEarlier => "conflict: earlier attempt had landed",
            Class::Hung => "hung (no answer within the bound)",
            Class::Unexpected => "unexpected",
        }
    }

    /// Classes a failed store call.
    pub fn of(err: &StoreError) -> Class {
        match err {
            StoreError::Unavailable(aura_db::Error::Commit { .. }) => Class::CommitUnknown,
            StoreError::Unavailable(_) => Class::Unavailable,
            _ => Class::Unexpected,
        }
    }
}

/// Counters shared by the workload and fault tasks.
#[derive(Default)]
pub struct Tally {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    ops: BTreeMap<&'static str, (u64, u64)>,
    failures: BTreeMap<Class, u64>,
    faults: BTreeMap<&'static str, u64>,
    gave_up: BTreeMap<&'static str, u64>,
    unexpected: Vec<String>,
}

impl Tally {
    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut inner)
    }

    /// An attempt of `op` that succeeded.
    pub fn ok(&self, op: &'static str) {
        self.with(|i| i.ops.entry(op).or_default().0 += 1);
    }

    /// An attempt of `op` that failed as `class` (`what` says how, kept for the
    /// unexpected and hung ones).
    pub fn failed(&self, op: &'static str, class: Class, what: impl FnOnce() -> String) {
        self.with(|i| {
            i.ops.entry(op).or_default().1 += 1;
            *i.failures.entry(class).or_default() += 1;
            if matches!(class, Class::Unexpected | Class::Hung) && i.unexpected.len() < 20 {
                i.unexpected.push(format!("{op}: {}", what()));
            }
        });
    }

    /// A call of `op` whose every attempt failed (its outcome stays unknown).
    pub fn gave_up(&self, op: &'static str) {
        self.with(|i| *i.gave_up.entry(op).or_default() += 1);
    }

    /// `n` faults of `kind` injected.
    pub fn fault(&self, kind: &'static str, n: u64) {
        self.with(|i| *i.faults.entry(kind).or_default() += n);
    }

    /// Failures that fail the soak (unexpected and hung), up to 20 of them.
    pub fn unexpected(&self) -> (u64, Vec<String>) {
        self.with(|i| {
            let n = i.failures.get(&Class::Unexpected).copied().unwrap_or(0)
                + i.failures.get(&Class::Hung).copied().unwrap_or(0);
            (n, i.unexpected.clone())
        })
    }

    /// The counts as printed: operations, faults, failures by class.
    pub fn render(&self) -> String {
        self.with(|i| {
            let mut out = String::from("operations (attempts: ok / failed)\n");
            let (mut ok, mut failed) = (0, 0);
            for (op, (o, f)) in &i.ops {
                out.push_str(&format!("  {op:<22} {o:>8} / {f}\n"));
                ok += o;
                failed += f;
            }
            out.push_str(&format!("  {:<22} {ok:>8} / {failed}\n", "all"));
            out.push_str("faults injected\n");
            for (kind, n) in &i.faults {
                out.push_str(&format!("  {kind:<42} {n:>6}\n"));
            }
            out.push_str("failures by class\n");
            for (class, n) in &i.failures {
                out.push_str(&format!("  {:<42} {n:>6}\n", class.label()));
            }
            if i.failures.is_empty() {
                out.push_str("  none\n");
            }
            for (op, n) in &i.gave_up {
                out.push_str(&format!(
                    "calls of {op} given up after every attempt failed: {n}\n"
                ));
            }
            out
        })
    }
}
