//! Opt-in retries: [`RetryPolicy`] (how many attempts, how long to wait between them) and
//! [`Transient`] (which failures another attempt may cure, and whether the failed attempt
//! may have been applied).
//!
//! A failure is retried only when the policy allows another attempt *and* repeating the
//! work cannot apply it twice:
//!
//! - **serialization failure (40001) and deadlock (40P01)**: the server refused the
//!   statement or transaction and rolled it back: nothing of it was applied;
//! - **no connection** (checkout timed out, a new connection could not be made): nothing
//!   was sent;
//! - **connection lost or operation timed out** after the work may have reached the server:
//!   retried only where that is still safe: a transaction whose `COMMIT` was not sent yet
//!   ([`crate::with_tx_retry`]; the server rolls back a transaction whose session ends),
//!   and in aura-store the reads and the writes keyed by a caller-supplied id. Never a
//!   `COMMIT` whose answer was lost, nor a write that may have committed without a key.
//!
//! Anything else (a constraint violation, a syntax error, a refused login, a closed pool)
//! is never retried.
//!
//! The backoff is written here rather than taken from a crate (`backon`, `backoff`): their
//! loops take a `FnMut() -> Future` that cannot lend the transaction's connection to the
//! body, so only the delay formula would have been reused, and it is three lines.

use std::time::Duration;

use rand::Rng;

use crate::error::Error;

/// How often and how patiently to retry a transient failure (see the module docs for which
/// failures are).
///
/// Attempt `n + 1` starts after a random delay between `min_backoff` and
/// `min(max_backoff, min_backoff * 2^n)`: exponential growth, full jitter above the floor,
/// never outside `[min_backoff, max_backoff]`. The default, [`RetryPolicy::none`], makes one
/// attempt: retries are opt-in.
///
/// ```
/// use std::time::Duration;
/// let policy = aura_db::RetryPolicy::new(4, Duration::from_millis(10), Duration::from_millis(500))?;
/// assert_eq!(policy.max_attempts(), 4);
/// let first = policy.backoff(1);
/// assert!(first >= Duration::from_millis(10) && first <= Duration::from_millis(20));
/// # Ok::<(), aura_db::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    max_attempts: u32,
    min_backoff: Duration,
    max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy::none()
    }
}

impl RetryPolicy {
    /// One attempt, no retry (the default).
    pub const fn none() -> Self {
        RetryPolicy {
            max_attempts: 1,
            min_backoff: Duration::ZERO,
            max_backoff: Duration::ZERO,
        }
    }

    /// Up to `max_attempts` attempts in all (1: no retry), waiting between `min_backoff` and
    /// `max_backoff` before each retry.
    ///
    /// Errors ([`Error::Config`], naming the argument): `max_attempts` is 0, `min_backoff`
    /// is zero while retries are asked for, or `max_backoff` is below `min_backoff`.
    pub fn new(
        max_attempts: u32,
        min_backoff: Duration,
        max_backoff: Duration,
    ) -> Result<Self, Error> {
        if max_attempts == 0 {
            return Err(Error::config(
                "RetryPolicy max_attempts",
                "must be at least 1 (1 makes one attempt and never retries)",
            ));
        }
        if max_attempts > 1 && min_backoff.is_zero() {
            return Err(Error::config(
                "RetryPolicy min_backoff",
                "must be greater than zero (retrying at once repeats the conflict it backs off from)",
            ));
        }
        if max_backoff < min_backoff {
            return Err(Error::config(
                "RetryPolicy max_backoff",
                format!(
                    "({}) must not be below min_backoff ({})",
                    humantime::format_duration(max_backoff),
                    humantime::format_duration(min_backoff)
                ),
            ));
        }
        Ok(RetryPolicy {
            max_attempts,
            min_backoff,
            max_backoff,
        })
    }

    /// Attempts in all, the first included.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The shortest wait before a retry.
    pub fn min_backoff(&self) -> Duration {
        self.min_backoff
    }

    /// The longest wait before a retry.
    pub fn max_backoff(&self) -> Duration {
        self.max_backoff
    }

    /// True when a failed attempt `attempt` (1 for the first) may be followed by another.
    pub fn allows_another(&self, attempt: u32) -> bool {
        attempt < self.max_attempts
    }

    /// The wait before retry number `retry` (1: the wait after the first attempt failed): a
    /// random duration in `[min_backoff, min(max_backoff, min_backoff * 2^retry)]`.
    pub fn backoff(&self, retry: u32) -> Duration {
        self.backoff_at(retry, rand::rng().random::<f64>())
    }

    /// [`RetryPolicy::backoff`] with the random draw given (`unit` in `[0, 1]`).
    pub(crate) fn backoff_at(&self, retry: u32, unit: f64) -> Duration {
        let growth = 2u32.saturating_pow(retry.min(31));
        let ceiling = self
            .min_backoff
            .saturating_mul(growth)
            .min(self.max_backoff);
        let span = ceiling.saturating_sub(self.min_backoff);
        self.min_backoff + span.mul_f64(unit.clamp(0.0, 1.0))
    }
}

/// Why a failed attempt may be cured by another one (see [`Error::transient`]), and what the
/// failure says about whether the attempt was applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Transient {
    /// SQLSTATE 40001: the server refused the statement or transaction; nothing of it was
    /// applied.
    SerializationFailure,
    /// SQLSTATE 40P01: the server chose this transaction as a deadlock's victim and rolled
    /// it back.
    Deadlock,
    /// No connection could be had (the checkout timed out, or a new connection could not be
    /// made): nothing was sent.
    NotSent,
    /// The connection was lost, or the operation ran out of its deadline, after the work
    /// may have reached the server: a write may have been applied.
    Ambiguous,
}

impl Transient {
    /// True when the failed attempt certainly applied nothing (every kind but
    /// [`Transient::Ambiguous`]).
    pub fn applied_nothing(self) -> bool {
        !matches!(self, Transient::Ambiguous)
    }

    /// `serialization_failure`, `deadlock`, `not_sent`, `ambiguous`: the `retry.reason` of
    /// the retry event.
    pub fn as_str(self) -> &'static str {
        match self {
            Transient::SerializationFailure => "serialization_failure",
            Transient::Deadlock => "deadlock",
            Transient::NotSent => "not_sent",
            Transient::Ambiguous => "ambiguous",
        }
    }
}

/// The aura-db [`Error`] inside a caller's error type, if there is one: how
/// [`crate::with_tx_retry`] tells why a transaction body failed. Implemented for [`Error`]
/// (and by aura-store for its `StoreError`); implement it for your own error type.
///
/// ```
/// enum AppError { Db(aura_db::Error), Refused }
/// impl From<aura_db::Error> for AppError {
///     fn from(e: aura_db::Error) -> Self { AppError::Db(e) }
/// }
/// impl aura_db::AsDbError for AppError {
///     fn as_db_error(&self) -> Option<&aura_db::Error> {
///         match self { AppError::Db(e) => Some(e), AppError::Refused => None }
///     }
/// }
/// ```
pub trait AsDbError {
    /// The database error this error holds, if any.
    fn as_db_error(&self) -> Option<&Error>;
}

impl AsDbError for Error {
    fn as_db_error(&self) -> Option<&Error> {
        Some(self)
    }
}

/// Emits the `retrying database operation` event (INFO): `db.operation.name` (the store
/// operation, or `transaction`), `retry.attempt` (the attempt that failed, 1 for the
/// first), `retry.max_attempts`, `retry.reason` ([`Transient::as_str`]), `error.type`,
/// `db.response.status_code` (the SQLSTATE, when the server gave one) and `backoff_ms`.
/// Never a message, a statement or a value.
pub fn retry_event(
    op: &str,
    attempt: u32,
    policy: &RetryPolicy,
    reason: Transient,
    error_type: &str,
    sqlstate: Option<&str>,
    backoff: Duration,
) {
    // A `None` SQLSTATE records no field.
    tracing::info!(
        db.operation.name = op,
        retry.attempt = attempt,
        retry.max_attempts = policy.max_attempts,
        retry.reason = reason.as_str(),
        error.type = error_type,
        db.response.status_code = sqlstate,
        backoff_ms = backoff.as_secs_f64() * 1e3,
        "retrying database operation"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_backoff_grows_exponentially_within_its_bounds() {
        let policy = RetryPolicy::new(8, ms(10), ms(300)).unwrap();
        // The draw at its extremes: the floor, then the ceiling of each retry.
        let floors: Vec<_> = (1..=7).map(|n| policy.backoff_at(n, 0.0)).collect();
        assert!(floors.iter().all(|d| *d == ms(10)), "{floors:?}");
        let ceilings: Vec<_> = (1..=7).map(|n| policy.backoff_at(n, 1.0)).collect();
        assert_eq!(
            ceilings,
            [ms(20), ms(40), ms(80), ms(160), ms(300), ms(300), ms(300)]
        );
        assert_eq!(policy.backoff_at(2, 0.5), ms(25));
        // The random draws of the public function, many times over.
        for retry in 1..=7 {
            let ceiling = ceilings[retry as usize - 1];
            for _ in 0..500 {
                let d = policy.backoff(retry);
                assert!(d >= ms(10) && d <= ceiling, "retry {retry}: {d:?}");
            }
        }
        // Far retries do not overflow.
        assert_eq!(policy.backoff_at(u32::MAX, 1.0), ms(300));
    }

    #[test]
    fn the_draws_are_jittered() {
        let policy = RetryPolicy::new(3, ms(10), ms(1000)).unwrap();
        let draws: std::collections::HashSet<_> = (0..50).map(|_| policy.backoff(5)).collect();
        assert!(draws.len() > 10, "{draws:?}");
    }

    #[test]
    fn bad_policies_are_refused_naming_the_argument() {
        let err = RetryPolicy::new(0, ms(10), ms(20)).unwrap_err();
        assert!(
            err.to_string().contains("max_attempts must be at least 1"),
            "{err}"
        );
        let err = RetryPolicy::new(3, Duration::ZERO, ms(20)).unwrap_err();
        assert!(
            err.to_string()
                .contains("min_backoff must be greater than zero"),
            "{err}"
        );
        let err = RetryPolicy::new(3, ms(50), ms(20)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "aura-db: RetryPolicy max_backoff (20ms) must not be below min_backoff (50ms)"
        );
        let once = RetryPolicy::new(1, Duration::ZERO, Duration::ZERO).unwrap();
        assert_eq!(once, RetryPolicy::none());
        assert!(!once.allows_another(1));
        assert_eq!(RetryPolicy::default(), RetryPolicy::none());
    }
}
