//! A call step's `retry`: a successful result for which `retry.while` holds
//! runs the call again after a delay that doubles each time (up to
//! `max_every`), as long as the re-run starts before the step's deadline.

use super::types::Retrying;
use crate::expr::Scope;
use crate::workflow::RetrySpec;

/// What to do with a successful result.
#[derive(Debug, PartialEq)]
pub(super) enum Verdict {
    /// The condition is false: go on with this result.
    Proceed,
    /// Run the call again at `at_ms`.
    Again { at_ms: i64 },
    /// The condition still holds, but a re-run would start at or past the
    /// deadline: go on with this result.
    Exhausted,
    /// The condition could not be evaluated; it counts as false.
    Error(String),
}

/// Judges `scope.result`; on `Again`, `retrying` moves to the next delay.
pub(super) fn judge(
    spec: &RetrySpec,
    retrying: &mut Retrying,
    scope: &Scope<'_>,
    now_ms: i64,
) -> Verdict {
    match spec.condition.eval_bool(scope) {
        Ok(false) => Verdict::Proceed,
        Err(e) => Verdict::Error(e.to_string()),
        Ok(true) => {
            let delay = i64::try_from(retrying.interval_ms).unwrap_or(i64::MAX);
            let at_ms = now_ms.saturating_add(delay);
            if at_ms >= retrying.deadline_ms {
                return Verdict::Exhausted;
            }
            retrying.retries += 1;
            retrying.interval_ms = retrying
                .interval_ms
                .saturating_mul(2)
                .min(spec.max_every_ms);
            Verdict::Again { at_ms }
        }
    }
}
