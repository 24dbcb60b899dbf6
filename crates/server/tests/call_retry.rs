//! A call step's `retry` (docs/workflows.md#call): over the shipped
//! `http-score`, whose score read runs again while it says `pending`, and
//! over small workflows for the edges.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gangway_core::engine::{Context, Effect, Input, SessionState, Transition, apply};
use gangway_core::outcome::{Outcome, SessionStatus};
use gangway_core::workflow::Workflow;
use gangway_server::providers::catalog;
use serde_json::{Value, json};

const HTTP_SCORE: &str = include_str!("../../../workflows/http-score.yaml");
const T0: i64 = 1_700_000_000_000;
const SECOND: i64 = 1_000;

struct Session {
    wf: Workflow,
    state: SessionState,
    now: i64,
}

impl Session {
    fn new(source: &str) -> Session {
        Session {
            wf: gangway_core::workflow::parse(source, catalog()).expect("parses"),
            state: SessionState::default(),
            now: T0,
        }
    }

    fn send(&mut self, input: Input) -> Transition {
        let (inp, session) = (json!({}), json!({"id": "ses_1", "reference": "r"}));
        let ctx = Context {
            input: &inp,
            session: &session,
        };
        let t = apply(&self.wf, ctx, &self.state, &input, self.now);
        self.state = t.state.clone();
        t
    }

    fn succeed(&mut self, result: Value) -> Transition {
        let visit = self.state.visit;
        self.send(Input::CallSucceeded { visit, result })
    }

    /// http-score, its webhook arrived: the score read is in flight.
    fn score_fetching() -> Session {
        let mut s = Session::new(HTTP_SCORE);
        s.send(Input::Start);
        s.succeed(json!({"status": 201, "body": {"id": "sc_1"}}));
        s.send(Input::Event {
            name: "score.completed".into(),
            source: "http:score".into(),
            data: json!({"id": "sc_1", "status": "completed"}),
        });
        assert_eq!(s.state.step.as_deref(), Some("fetch_score"));
        s
    }
}

fn read(status: &str) -> Value {
    json!({"status": 200, "body": {"id": "sc_1", "status": status, "score": 72}})
}

fn kinds(t: &Transition) -> Vec<&str> {
    t.records.iter().map(|r| r.kind.as_str()).collect()
}

/// The re-run a transition scheduled: `(not_before_ms, deadline_ms)`.
fn rerun(t: &Transition) -> Option<(i64, i64)> {
    t.effects.iter().find_map(|e| match e {
        Effect::Call {
            step,
            not_before_ms: Some(at),
            deadline_ms,
            args,
            ..
        } if step == "fetch_score" => {
            assert_eq!(args["path"], "/v1/sessions/sc_1/score");
            Some((*at, *deadline_ms))
        }
        _ => None,
    })
}

#[test]
fn a_pending_read_after_the_webhook_is_read_again_with_backoff() {
    let mut s = Session::score_fetching();
    let entered = s.now;
    let deadline = entered + 120 * SECOND;
    // 1 s, 2 s, 4 s, 8 s, then 15 s (max_every) apart.
    for delay in [1, 2, 4, 8, 15, 15] {
        let t = s.succeed(read("pending"));
        assert!(t.applied);
        assert_eq!(kinds(&t), vec!["call.retrying"]);
        assert_eq!(
            t.records[0].data["while"],
            "result.body.status == 'pending'"
        );
        assert_eq!(rerun(&t), Some((s.now + delay * SECOND, deadline)));
        assert_eq!(t.state.status, SessionStatus::Running);
        assert_eq!(t.state.step.as_deref(), Some("fetch_score"));
        // No notification: the session did not change status.
        assert!(!t.effects.iter().any(|e| matches!(e, Effect::Notify { .. })));
        s.now += delay * SECOND;
    }
    let visit = s.state.visit;
    let t = s.succeed(read("completed"));
    assert_eq!(t.state.outcome, Some(Outcome::Approved));
    assert_eq!(t.state.reason.as_deref(), Some("score 72 is at least 50"));
    assert!(t.state.visit > visit);
    assert_eq!(t.state.retrying, None);
}

#[test]
fn a_read_still_pending_at_the_deadline_is_decided_on() {
    let mut s = Session::score_fetching();
    s.now += 119_500;
    let t = s.succeed(read("pending"));
    assert_eq!(rerun(&t), None, "{:?}", t.effects);
    assert_eq!(t.records[0].kind, "call.retries_exhausted");
    assert_eq!(t.state.outcome, Some(Outcome::Failed));
    assert_eq!(
        t.state.reason.as_deref(),
        Some("the provider reported status pending instead of completed")
    );
}

#[test]
fn other_results_go_on_at_once_and_failures_are_not_retried() {
    let mut s = Session::score_fetching();
    let t = s.succeed(read("canceled"));
    assert!(!kinds(&t).contains(&"call.retrying"));
    assert_eq!(t.state.outcome, Some(Outcome::Failed));

    let mut s = Session::score_fetching();
    s.succeed(read("pending"));
    let visit = s.state.visit;
    let t = s.send(Input::CallFailed {
        visit,
        error: "GET /score answered HTTP 404".into(),
    });
    assert_eq!(t.state.outcome, Some(Outcome::Failed));
    assert_eq!(t.state.retrying, None);
    // A stale result of the visit before is ignored while re-running.
    let mut s = Session::score_fetching();
    s.succeed(read("pending"));
    let before = s.state.clone();
    let visit = s.state.visit;
    let t = s.send(Input::CallSucceeded {
        visit: visit - 1,
        result: read("completed"),
    });
    assert!(!t.applied);
    assert_eq!(t.state, before);
}

const EDGES: &str = "id: edges
version: 1
steps:
  read:
    call: http.request
    with:
      service: s
      path: /x
    retry:
      while: result.body.n > state.limit.n
    timeout: 10s
    next: done
  done:
    end: approved
    reason: n is ${state.read.body.n}
";

#[test]
fn a_condition_that_cannot_be_evaluated_counts_as_false() {
    let mut s = Session::new(EDGES);
    s.send(Input::Start);
    let t = s.succeed(json!({"status": 200, "body": {"n": 3}}));
    assert_eq!(t.records[0].kind, "call.retry_error");
    assert!(
        t.records[0].data["error"]
            .as_str()
            .unwrap()
            .contains("state.limit.n"),
        "{:?}",
        t.records[0]
    );
    assert_eq!(t.state.outcome, Some(Outcome::Approved));
}

#[test]
fn defaults_are_one_second_doubling_to_thirty() {
    let mut s = Session::new(&EDGES.replace("timeout: 10s", "timeout: 5m"));
    s.state.vars.insert("limit".into(), json!({"n": 0}));
    s.send(Input::Start);
    let mut delays = Vec::new();
    for _ in 0..7 {
        let t = s.succeed(json!({"status": 200, "body": {"n": 1}}));
        let at = t
            .effects
            .iter()
            .find_map(|e| match e {
                Effect::Call {
                    not_before_ms: Some(at),
                    ..
                } => Some(*at),
                _ => None,
            })
            .expect("a re-run");
        delays.push((at - s.now) / SECOND);
        s.now = at;
    }
    assert_eq!(delays, vec![1, 2, 4, 8, 16, 30, 30]);
}
