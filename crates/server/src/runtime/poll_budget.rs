//! Paces the polling fallback: a token bucket of `engine.poll_rate` polls
//! per second (a second's worth of burst). Polls due beyond the budget stay
//! in the jobs table, oldest first, and are claimed when tokens come back:
//! no job is rewritten to defer it, so a backlog costs nothing while it waits.

/// Wake-ups per second at most while polls queue for tokens: tokens are
/// spent in chunks rather than one by one, so that a backlog is claimed in
/// one transaction and its results share the committer's transactions
/// (at 100 polls/s, one chunk of 50 every half second costs a fifth of
/// what 20 chunks of 5 do). A poll waits at most half a second longer.
const WAKES_PER_S: f64 = 2.0;

pub(super) struct PollBudget {
    /// Polls per second; 0: unlimited.
    rate: f64,
    tokens: f64,
    at_ms: i64,
}

impl PollBudget {
    pub(super) fn new(rate: u32, now_ms: i64) -> PollBudget {
        PollBudget {
            rate: f64::from(rate),
            tokens: f64::from(rate),
            at_ms: now_ms,
        }
    }

    fn refill(&mut self, now_ms: i64) {
        let elapsed = (now_ms - self.at_ms).max(0) as f64 / 1000.0;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate);
        self.at_ms = self.at_ms.max(now_ms);
    }

    /// How many polls may start now, at most `cap`.
    pub(super) fn available(&mut self, now_ms: i64, cap: i64) -> i64 {
        if self.rate == 0.0 {
            return cap;
        }
        self.refill(now_ms);
        (self.tokens.floor() as i64).clamp(0, cap)
    }

    pub(super) fn spend(&mut self, polls: usize) {
        if self.rate > 0.0 {
            self.tokens -= polls as f64;
        }
    }

    /// When a poll that is due at `due_ms` may start: at once when a token
    /// is there, else when a chunk of tokens has come back.
    pub(super) fn start_at(&self, due_ms: i64) -> i64 {
        if self.rate == 0.0 || self.tokens >= 1.0 {
            return due_ms;
        }
        let chunk = (self.rate / WAKES_PER_S).max(1.0);
        let wait_ms = ((chunk - self.tokens) / self.rate * 1000.0).ceil() as i64;
        due_ms.max(self.at_ms + wait_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unlimited_never_holds_polls_back() {
        let mut b = PollBudget::new(0, 0);
        assert_eq!(b.available(0, 512), 512);
        b.spend(512);
        assert_eq!(b.available(0, 512), 512);
        assert_eq!(b.start_at(7), 7);
    }

    #[test]
    fn spends_a_second_of_burst_then_paces() {
        let mut b = PollBudget::new(100, 1_000);
        assert_eq!(b.available(1_000, 512), 100);
        b.spend(100);
        assert_eq!(b.available(1_000, 512), 0);
        // A chunk of 50 tokens (100/s, 2 wake-ups a second) takes 500 ms.
        assert_eq!(b.start_at(900), 1_500);
        assert_eq!(b.available(1_500, 512), 50);
        b.spend(50);
        // A poll due later than the tokens starts when it is due.
        assert_eq!(b.start_at(5_000), 5_000);
        // Idle time refills up to one second's worth, not more.
        assert_eq!(b.available(60_000, 512), 100);
        assert_eq!(b.available(60_000, 30), 30);
    }

    #[test]
    fn a_token_left_lets_the_next_poll_start_at_once() {
        let mut b = PollBudget::new(10, 0);
        b.spend(9);
        assert_eq!(b.start_at(0), 0);
        b.spend(1);
        // A chunk of 5 tokens at 10/s: 500 ms.
        assert_eq!(b.start_at(0), 500);
    }
}
