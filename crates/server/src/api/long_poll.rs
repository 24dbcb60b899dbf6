//! `GET /v1/sessions/{id}?wait=30s[&after=<updated_at>]`: the session as it
//! is at its next change, for backends that cannot receive webhooks. The
//! wait is capped by `limits.long_poll_max_wait`; at most `limits.long_polls`
//! wait at once on a node (one more gets 429); an ended session, or one
//! changed since `after`, answers at once; shutdown answers every waiter.

use super::AppState;
use super::error::Problem;
use crate::runtime::watch::RECHECK;
use crate::store::SessionRow;
use gangway_core::SessionStatus;
use std::time::Duration;
use tokio::time::Instant;

/// `wait`: a duration (`30s`, `500ms`, `1m`) or whole seconds (`30`),
/// capped by the server's maximum.
pub(super) fn parse_wait(text: &str, max: Duration) -> Result<Duration, Problem> {
    let text = text.trim();
    let wait = match text.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => humantime::parse_duration(text).map_err(|e| {
            Problem::bad_request(format!(
                "`wait` must be a duration such as 30s or 500ms, or whole seconds: {e}"
            ))
        })?,
    };
    Ok(wait.min(max))
}

/// `after`: an `updated_at` as the API writes it (RFC 3339), in ms.
pub(super) fn parse_after(text: &str) -> Result<i64, Problem> {
    let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|e| {
            Problem::bad_request(format!(
                "`after` must be a session's `updated_at` (RFC 3339): {e}"
            ))
        })?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| Problem::bad_request("`after` is out of range"))
}

/// What the caller sees of a session, but its `updated_at`: that moves with
/// every recorded activity (each provider poll, say), which is no news to
/// a backend waiting for the session to move on.
fn visible(row: &SessionRow) -> serde_json::Value {
    let mut v = crate::runtime::view::session_json(row);
    if let Some(o) = v.as_object_mut() {
        o.remove("updated_at");
    }
    v
}

/// Waits until what the caller sees of the session differs from `row` (or
/// it was updated after `after`), it ends, the wait runs out or the node
/// stops; returns the session as it then is.
pub(super) async fn wait_for_change(
    st: &AppState,
    row: SessionRow,
    wait: Duration,
    after: Option<i64>,
) -> Result<SessionRow, Problem> {
    if row.state.status == SessionStatus::Ended
        || after.is_some_and(|a| row.updated_at > a)
        || wait.is_zero()
    {
        return Ok(row);
    }
    let max = st.engine.config().limits.long_polls;
    let Ok(_permit) = st.long_polls.clone().try_acquire_owned() else {
        return Err(Problem::limit(format!(
            "{max} long polls already wait on this node (limits.long_polls); retry later or use webhooks"
        )));
    };
    let _waiting = Waiting::new();
    let watcher = st.engine.watch_session(&row.id);
    let mut shutdown = st.engine.shutdown_signal();
    let deadline = Instant::now() + wait;
    let seen = visible(&row);
    let mut current = row;
    loop {
        // Registered before the read: a change in between still wakes us.
        let woken = watcher.notify().notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let now = Instant::now();
        if now >= deadline {
            return Ok(current);
        }
        let recheck = (now + RECHECK).min(deadline);
        tokio::select! {
            () = &mut woken => {}
            () = tokio::time::sleep_until(recheck) => {}
            _ = shutdown.wait_for(|s| *s) => return Ok(current),
        }
        match st.engine.session(&current.id).await? {
            Some(row) => {
                let changed = visible(&row) != seen;
                current = row;
                if changed {
                    return Ok(current);
                }
            }
            // Gone (erased): the last version seen is the answer.
            None => return Ok(current),
        }
    }
}

/// Counts the long polls waiting on this node (`gangway_long_polls_waiting`).
struct Waiting;

impl Waiting {
    fn new() -> Waiting {
        metrics::gauge!("gangway_long_polls_waiting").increment(1.0);
        Waiting
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        metrics::gauge!("gangway_long_polls_waiting").decrement(1.0);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn waits_parse_and_are_capped() {
        let max = Duration::from_secs(60);
        assert_eq!(parse_wait("30s", max).unwrap(), Duration::from_secs(30));
        assert_eq!(parse_wait("30", max).unwrap(), Duration::from_secs(30));
        assert_eq!(
            parse_wait("500ms", max).unwrap(),
            Duration::from_millis(500)
        );
        assert_eq!(parse_wait("1h", max).unwrap(), max);
        assert!(parse_wait("soon", max).is_err());
        assert!(parse_wait("-1", max).is_err());
    }

    #[test]
    fn after_reads_the_apis_timestamps() {
        assert_eq!(parse_after("1970-01-01T00:00:01.5Z").unwrap(), 1500);
        assert!(parse_after("yesterday").is_err());
    }
}
