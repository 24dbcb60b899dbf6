//! Tests of the transition function over `workflows/http-score.yaml`:
//! worked examples of each path, then properties over random input sequences;
//! steps.rs has the other step kinds and features over their own workflows.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::catalog::{ActionSpec, Catalog};
use crate::outcome::{Outcome, SessionStatus};
use crate::workflow::{Diagnostics, Workflow};
use proptest::prelude::*;
use serde_json::{Value, json};

mod steps;

const HTTP_SCORE: &str = include_str!("../../../../../workflows/http-score.yaml");

/// An arbitrary, realistic start time (ms since the epoch).
const T0: i64 = 1_700_000_000_000;
const SECOND: i64 = 1_000;
const MINUTE: i64 = 60 * SECOND;

/// The one action these workflows call, shaped as the runtime's generic
/// `http` provider lists it (core has no provider's actions of its own).
const HTTP_REQUEST: &[ActionSpec] = &[ActionSpec {
    name: "http.request",
    required: &["service", "path"],
    optional: &["method", "body", "query", "headers"],
    url_paths: &["path"],
    summary: "",
}];

fn parse(source: &str) -> Result<Workflow, Diagnostics> {
    crate::workflow::parse(source, &Catalog::new([HTTP_REQUEST]))
}

fn workflow() -> Workflow {
    parse(HTTP_SCORE).expect("workflows/http-score.yaml parses")
}

// ---------------------------------------------------------------------------
// A session driven input by input
// ---------------------------------------------------------------------------

/// One session of `http-score`: its state, its clock and its context.
struct Session {
    wf: Workflow,
    input: Value,
    session: Value,
    state: SessionState,
    now: i64,
}

impl Session {
    fn new() -> Session {
        Session {
            wf: workflow(),
            input: json!({}),
            session: json!({"id": "ses_1", "reference": "order-42"}),
            state: SessionState::default(),
            now: T0,
        }
    }

    /// Applies `input` at the current time without keeping the result.
    fn peek(&self, input: &Input) -> Transition {
        let ctx = Context {
            input: &self.input,
            session: &self.session,
        };
        apply(&self.wf, ctx, &self.state, input, self.now)
    }

    /// Applies `input` at the current time and keeps the new state.
    fn send(&mut self, input: Input) -> Transition {
        let t = self.peek(&input);
        self.state = t.state.clone();
        t
    }

    fn advance(&mut self, ms: i64) {
        self.now += ms;
    }

    fn visit(&self) -> u32 {
        self.state.visit
    }

    /// Start, then the provider session is created: the session waits.
    fn waiting() -> Session {
        let mut s = Session::new();
        s.send(Input::Start);
        let visit = s.visit();
        s.send(succeeded(visit, started()));
        assert_eq!(s.state.status, SessionStatus::Waiting);
        s
    }

    /// Waiting, then the webhook arrives: the score is being fetched.
    fn fetching() -> Session {
        let mut s = Session::waiting();
        s.send(event("score.completed"));
        assert_eq!(s.state.step.as_deref(), Some("fetch_score"));
        s
    }

    /// Sends the fetched score; the session ends.
    fn scored(score: i64) -> Session {
        let mut s = Session::fetching();
        let visit = s.visit();
        s.send(succeeded(visit, score_result("completed", score)));
        assert_eq!(s.state.status, SessionStatus::Ended);
        s
    }
}

// ---------------------------------------------------------------------------
// Inputs and provider results
// ---------------------------------------------------------------------------

fn succeeded(visit: u32, result: Value) -> Input {
    Input::CallSucceeded { visit, result }
}

fn failed(visit: u32, error: &str) -> Input {
    Input::CallFailed {
        visit,
        error: error.to_string(),
    }
}

fn polled(visit: u32, result: Value) -> Input {
    Input::PollResult { visit, result }
}

fn timeout(visit: u32) -> Input {
    Input::Timeout { visit }
}

fn event(name: &str) -> Input {
    Input::Event {
        name: name.to_string(),
        source: "webhook".to_string(),
        data: json!({"id": "sc_1"}),
    }
}

fn cancel() -> Input {
    Input::Cancel {
        reason: "customer gave up".to_string(),
    }
}

/// The score service's answer to `POST /v1/sessions`.
fn started() -> Value {
    json!({"status": 201, "body": {"id": "sc_1"}})
}

/// The score service's answer to `GET /v1/sessions/sc_1/score`.
fn score_result(status: &str, score: i64) -> Value {
    json!({"status": 200, "body": {"status": status, "score": score}})
}

fn pending() -> Value {
    json!({"status": 200, "body": {"status": "pending"}})
}

fn fetch_args() -> Value {
    json!({"service": "score", "method": "GET", "path": "/v1/sessions/sc_1/score"})
}

fn ended_notifications(effects: &[Effect]) -> usize {
    effects
        .iter()
        .filter(|e| {
            **e == Effect::Notify {
                event: NotifyKind::Ended,
            }
        })
        .count()
}

fn poll_at(effects: &[Effect]) -> Option<i64> {
    effects.iter().find_map(|e| match e {
        Effect::Poll { at_ms, .. } => Some(*at_ms),
        _ => None,
    })
}

fn assert_ended(t: &Transition, outcome: Outcome) {
    assert!(t.applied);
    assert_eq!(t.state.status, SessionStatus::Ended);
    assert_eq!(t.state.outcome, Some(outcome));
    assert!(t.state.wait.is_none());
    assert_eq!(ended_notifications(&t.effects), 1, "{:?}", t.effects);
}

fn assert_ignored(s: &Session, input: Input) {
    let t = s.peek(&input);
    assert!(!t.applied, "{input:?} applied");
    assert_eq!(t.state, s.state, "{input:?} changed the state");
    assert!(t.effects.is_empty(), "{input:?} produced {:?}", t.effects);
}

// ---------------------------------------------------------------------------
// Examples
// ---------------------------------------------------------------------------

#[test]
fn start_calls_the_score_service() {
    let mut s = Session::new();
    let t = s.send(Input::Start);
    assert!(t.applied);
    assert_eq!(t.state.status, SessionStatus::Running);
    assert_eq!(t.state.step.as_deref(), Some("start_provider"));
    assert_eq!(
        t.effects,
        vec![Effect::Call {
            visit: t.state.visit,
            step: "start_provider".into(),
            action: "http.request".into(),
            args: json!({
                "service": "score",
                "method": "POST",
                "path": "/v1/sessions",
                "body": {"reference": "order-42"},
            }),
            deadline_ms: T0 + 30 * SECOND,
            not_before_ms: None,
        }]
    );
}

#[test]
fn start_applies_only_once() {
    let mut s = Session::new();
    s.send(Input::Start);
    assert_ignored(&s, Input::Start);
}

#[test]
fn provider_session_started_waits_for_the_webhook_and_polls() {
    let mut s = Session::new();
    s.send(Input::Start);
    s.advance(SECOND);
    let now = s.now;
    let t = s.send(succeeded(s.visit(), started()));
    assert!(t.applied);
    let visit = t.state.visit;
    assert_eq!(
        t.effects,
        vec![
            Effect::Correlate {
                action: "http.request".into(),
                args: json!({
                    "service": "score",
                    "method": "POST",
                    "path": "/v1/sessions",
                    "body": {"reference": "order-42"},
                }),
                reference: "sc_1".into(),
            },
            Effect::Timer {
                visit,
                at_ms: now + 10 * MINUTE,
            },
            Effect::Poll {
                visit,
                step: "wait_for_result".into(),
                action: "http.request".into(),
                args: fetch_args(),
                at_ms: now + 5 * SECOND,
            },
            Effect::Notify {
                event: NotifyKind::Updated,
            },
        ]
    );
    assert_eq!(t.state.status, SessionStatus::Waiting);
    assert_eq!(t.state.step.as_deref(), Some("wait_for_result"));
    let wait = t.state.wait.as_ref().expect("waiting");
    assert_eq!(wait.events, ["score.completed"]);
    assert_eq!(wait.deadline_ms, now + 10 * MINUTE);
    assert_eq!(
        t.state.providers,
        [ProviderRef {
            connector: "http".into(),
            provider_session_id: "sc_1".into(),
        }]
    );
    assert_eq!(t.state.vars["provider"], started());
}

#[test]
fn webhook_leads_to_fetching_the_score() {
    let mut s = Session::waiting();
    let t = s.send(event("score.completed"));
    assert!(t.applied);
    assert_eq!(t.state.status, SessionStatus::Running);
    assert!(t.state.wait.is_none());
    assert_eq!(
        t.effects,
        vec![
            Effect::ClearWaitJobs,
            Effect::Call {
                visit: t.state.visit,
                step: "fetch_score".into(),
                action: "http.request".into(),
                args: fetch_args(),
                deadline_ms: s.now + 2 * MINUTE,
                not_before_ms: None,
            },
            Effect::Notify {
                event: NotifyKind::Updated,
            },
        ]
    );
    assert_eq!(t.state.vars["event"]["name"], "score.completed");
}

#[test]
fn high_score_is_approved() {
    let mut s = Session::fetching();
    let t = s.send(succeeded(s.visit(), score_result("completed", 80)));
    assert_ended(&t, Outcome::Approved);
    assert_eq!(t.state.reason.as_deref(), Some("score 80 is at least 50"));
    assert_eq!(t.state.step.as_deref(), Some("approve"));
    assert_eq!(t.state.ended_ms, Some(s.now));
    assert_eq!(
        t.effects,
        vec![Effect::Notify {
            event: NotifyKind::Ended,
        }]
    );
}

#[test]
fn low_score_is_declined() {
    let mut s = Session::fetching();
    let t = s.send(succeeded(s.visit(), score_result("completed", 20)));
    assert_ended(&t, Outcome::Declined);
    assert_eq!(t.state.reason.as_deref(), Some("score 20 is below 50"));
}

#[test]
fn score_of_exactly_fifty_is_approved() {
    let mut s = Session::fetching();
    let t = s.send(succeeded(s.visit(), score_result("completed", 50)));
    assert_ended(&t, Outcome::Approved);
}

#[test]
fn score_not_completed_fails() {
    let mut s = Session::fetching();
    let t = s.send(succeeded(s.visit(), score_result("canceled", 90)));
    assert_ended(&t, Outcome::Failed);
    assert_eq!(
        t.state.reason.as_deref(),
        Some("the provider reported status canceled instead of completed")
    );
}

#[test]
fn timeout_of_the_current_wait_expires() {
    let mut s = Session::waiting();
    s.advance(10 * MINUTE);
    let t = s.send(timeout(s.visit()));
    assert_ended(&t, Outcome::Expired);
    assert_eq!(
        t.state.reason.as_deref(),
        Some("no score arrived within 10 minutes")
    );
    assert_eq!(t.effects[0], Effect::ClearWaitJobs);
}

#[test]
fn stale_timeout_is_ignored() {
    let s = Session::waiting();
    assert_ignored(&s, timeout(s.visit() - 1));
    assert_ignored(&s, timeout(s.visit() + 1));
    // A wait's timer firing after the session moved on to a call.
    let s = Session::fetching();
    assert_ignored(&s, timeout(s.visit() - 1));
    assert_ignored(&s, timeout(s.visit()));
}

#[test]
fn pending_poll_backs_off_exponentially_up_to_the_cap() {
    let mut s = Session::waiting();
    let mut intervals = Vec::new();
    for _ in 0..6 {
        s.advance(SECOND);
        let t = s.send(polled(s.visit(), pending()));
        assert!(t.applied);
        assert_eq!(t.state.status, SessionStatus::Waiting);
        let at = poll_at(&t.effects).expect("a new poll is scheduled");
        intervals.push((at - s.now) / SECOND);
    }
    assert_eq!(intervals, [10, 20, 40, 60, 60, 60]);
    assert_eq!(s.state.wait.and_then(|w| w.poll_interval_ms), Some(60_000));
}

#[test]
fn pending_poll_reuses_the_poll_arguments() {
    let mut s = Session::waiting();
    let t = s.send(polled(s.visit(), pending()));
    assert_eq!(
        t.effects,
        vec![Effect::Poll {
            visit: s.visit(),
            step: "wait_for_result".into(),
            action: "http.request".into(),
            args: fetch_args(),
            at_ms: s.now + 10 * SECOND,
        }]
    );
}

#[test]
fn completed_poll_moves_on_like_the_webhook() {
    let mut s = Session::waiting();
    let t = s.send(polled(s.visit(), score_result("completed", 80)));
    assert!(t.applied);
    assert_eq!(t.state.step.as_deref(), Some("fetch_score"));
    assert_eq!(t.state.status, SessionStatus::Running);
    assert!(t.state.wait.is_none());
    assert_eq!(t.state.vars["event"]["name"], "score.completed");
    assert_eq!(t.state.vars["event"]["source"], "poll");
    assert!(t.effects.contains(&Effect::ClearWaitJobs));
    assert!(t.effects.iter().any(|e| matches!(
        e,
        Effect::Call { step, args, .. } if step == "fetch_score" && *args == fetch_args()
    )));
}

#[test]
fn stale_poll_result_is_ignored() {
    let s = Session::waiting();
    assert_ignored(&s, polled(s.visit() - 1, pending()));
    assert_ignored(&s, polled(s.visit() - 1, score_result("completed", 80)));
}

#[test]
fn unknown_event_while_waiting_stays_buffered() {
    let s = Session::waiting();
    assert_ignored(&s, event("other.thing"));
}

#[test]
fn event_before_the_wait_stays_buffered() {
    let mut s = Session::new();
    assert_ignored(&s, event("score.completed"));
    s.send(Input::Start);
    assert_ignored(&s, event("score.completed"));
}

#[test]
fn cancel_while_waiting() {
    let mut s = Session::waiting();
    let t = s.send(cancel());
    assert_ended(&t, Outcome::Canceled);
    assert_eq!(t.state.reason.as_deref(), Some("customer gave up"));
    assert!(t.effects.contains(&Effect::ClearWaitJobs));
}

#[test]
fn cancel_during_a_call() {
    let mut s = Session::fetching();
    let t = s.send(cancel());
    assert_ended(&t, Outcome::Canceled);
}

#[test]
fn nothing_applies_after_the_end() {
    let s = Session::scored(80);
    let v = s.visit();
    for input in [
        Input::Start,
        succeeded(v, score_result("completed", 10)),
        failed(v, "boom"),
        polled(v, pending()),
        polled(v, score_result("completed", 10)),
        timeout(v),
        event("score.completed"),
        event("other.thing"),
        cancel(),
    ] {
        assert_ignored(&s, input);
    }
}

#[test]
fn failed_start_call_fails_the_session() {
    let mut s = Session::new();
    s.send(Input::Start);
    let t = s.send(failed(s.visit(), "connection refused"));
    assert_ended(&t, Outcome::Failed);
    let reason = t.state.reason.as_deref().expect("a reason");
    assert!(reason.contains("connection refused"), "{reason}");
    assert!(t.state.call_args.is_none());
}

#[test]
fn stale_call_results_are_ignored() {
    let mut s = Session::new();
    s.send(Input::Start);
    assert_ignored(&s, succeeded(s.visit() + 1, started()));
    assert_ignored(&s, failed(s.visit() + 1, "late"));
    // The start call's result arriving again once the session waits.
    let s = Session::waiting();
    assert_ignored(&s, succeeded(s.visit() - 1, started()));
    assert_ignored(&s, failed(s.visit() - 1, "late"));
}

#[test]
fn missing_provider_reference_fails_the_session() {
    let mut s = Session::new();
    s.send(Input::Start);
    let t = s.send(succeeded(s.visit(), json!({"status": 201, "body": {}})));
    assert_ended(&t, Outcome::Failed);
    let reason = t.state.reason.as_deref().expect("a reason");
    assert!(reason.contains("provider reference"), "{reason}");
}

// ---------------------------------------------------------------------------
// Properties over random input sequences
// ---------------------------------------------------------------------------

/// Which visit an input carries.
#[derive(Debug, Clone, Copy)]
enum Visit {
    Current,
    /// This many visits away from the current one (older when possible).
    Stale(u32),
}

impl Visit {
    fn resolve(self, current: u32) -> u32 {
        match self {
            Visit::Current => current,
            Visit::Stale(k) => current.checked_sub(k).unwrap_or(current + k),
        }
    }
}

/// What a successful call returns.
#[derive(Debug, Clone)]
enum Reply {
    /// What the step in flight expects: the start answer when starting the
    /// provider session, else a score (completed or not).
    Fitting { score: i64, completed: bool },
    /// Anything else: a score where the start answer is expected, junk, ...
    Other(Value),
}

impl Reply {
    fn value(&self, state: &SessionState) -> Value {
        match self {
            Reply::Fitting { .. } if state.step.as_deref() == Some("start_provider") => started(),
            Reply::Fitting { score, completed } => {
                let status = if *completed { "completed" } else { "pending" };
                score_result(status, *score)
            }
            Reply::Other(v) => v.clone(),
        }
    }
}

/// An input with its visit and reply still to be resolved against the state.
#[derive(Debug, Clone)]
enum Op {
    Start,
    Succeeded(Visit, Reply),
    Failed(Visit),
    Poll(Visit, Value),
    Timeout(Visit),
    Event(&'static str),
    Cancel,
}

impl Op {
    fn input(&self, state: &SessionState) -> Input {
        let current = state.visit;
        match self {
            Op::Start => Input::Start,
            Op::Succeeded(v, reply) => succeeded(v.resolve(current), reply.value(state)),
            Op::Failed(v) => failed(v.resolve(current), "provider error"),
            Op::Poll(v, result) => polled(v.resolve(current), result.clone()),
            Op::Timeout(v) => timeout(v.resolve(current)),
            Op::Event(name) => event(name),
            Op::Cancel => cancel(),
        }
    }
}

fn visit_strategy() -> impl Strategy<Value = Visit> {
    prop_oneof![4 => Just(Visit::Current), 1 => (1u32..4).prop_map(Visit::Stale)]
}

fn stale_strategy() -> impl Strategy<Value = Visit> {
    (1u32..4).prop_map(Visit::Stale)
}

fn reply_strategy() -> impl Strategy<Value = Reply> {
    prop_oneof![
        8 => (0i64..=100, prop::bool::weighted(0.9))
            .prop_map(|(score, completed)| Reply::Fitting { score, completed }),
        1 => Just(Reply::Other(started())),
        1 => (0i64..=100).prop_map(|n| Reply::Other(score_result("completed", n))),
        1 => Just(Reply::Other(json!({}))),
    ]
}

fn poll_result_strategy() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => Just(pending()),
        2 => (0i64..=100).prop_map(|n| score_result("completed", n)),
        1 => Just(json!({})),
    ]
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => Just(Op::Start),
        12 => (visit_strategy(), reply_strategy()).prop_map(|(v, r)| Op::Succeeded(v, r)),
        1 => visit_strategy().prop_map(Op::Failed),
        8 => (visit_strategy(), poll_result_strategy()).prop_map(|(v, r)| Op::Poll(v, r)),
        2 => visit_strategy().prop_map(Op::Timeout),
        8 => prop_oneof![Just("score.completed"), Just("other.thing")].prop_map(Op::Event),
        1 => Just(Op::Cancel),
    ]
}

/// Operations paired with the time that passes before each; most runs
/// begin with `Start` so that they get somewhere.
fn run_strategy() -> impl Strategy<Value = Vec<(Op, i64)>> {
    let step = (op_strategy(), 0i64..=2 * MINUTE);
    (
        prop::bool::weighted(0.9),
        prop::collection::vec(step, 0..=30),
    )
        .prop_map(|(start_first, mut run)| {
            if start_first {
                run.insert(0, (Op::Start, 0));
            }
            run
        })
}

/// A stale visit-carrying input, whatever the state.
fn stale_op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        (stale_strategy(), reply_strategy()).prop_map(|(v, r)| Op::Succeeded(v, r)),
        stale_strategy().prop_map(Op::Failed),
        (stale_strategy(), poll_result_strategy()).prop_map(|(v, r)| Op::Poll(v, r)),
        stale_strategy().prop_map(Op::Timeout),
    ]
}

/// Invariants of a single state.
fn check_state(state: &SessionState) -> Result<(), TestCaseError> {
    let ended = state.status == SessionStatus::Ended;
    prop_assert_eq!(state.status == SessionStatus::Waiting, state.wait.is_some());
    prop_assert_eq!(state.outcome.is_some(), ended);
    prop_assert_eq!(state.ended_ms.is_some(), ended);
    if ended {
        prop_assert!(state.reason.is_some());
    }
    Ok(())
}

/// Invariants of one transition from `before`.
fn check_transition(before: &SessionState, t: &Transition) -> Result<(), TestCaseError> {
    check_state(&t.state)?;
    prop_assert!(t.state.visit >= before.visit, "visit went back");
    if before.status == SessionStatus::Ended {
        prop_assert!(!t.applied, "an input applied after the end");
        prop_assert_eq!(&t.state, before);
    }
    if !t.applied {
        prop_assert_eq!(&t.state, before);
        prop_assert!(t.effects.is_empty(), "{:?}", t.effects);
    }
    let ends_now = before.status != SessionStatus::Ended && t.state.status == SessionStatus::Ended;
    prop_assert_eq!(ended_notifications(&t.effects), usize::from(ends_now));
    Ok(())
}

/// A stale-visit input, resolved against the session's current visit, does not apply.
fn check_stale_is_ignored(s: &Session, stale: &Op) -> Result<(), TestCaseError> {
    let input = stale.input(&s.state);
    let t = s.peek(&input);
    prop_assert!(!t.applied, "{:?} applied in {:?}", input, s.state);
    prop_assert_eq!(&t.state, &s.state);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn invariants_hold_over_random_runs(run in run_strategy()) {
        let mut s = Session::new();
        let mut ended_notified = 0;
        check_state(&s.state)?;
        for (op, dt) in run {
            s.advance(dt);
            let input = op.input(&s.state);
            let before = s.state.clone();
            let t = s.peek(&input);
            prop_assert_eq!(&t, &s.peek(&input), "apply is not deterministic");
            check_transition(&before, &t)?;
            ended_notified += ended_notifications(&t.effects);
            s.state = t.state;
        }
        prop_assert!(ended_notified <= 1);
    }

    #[test]
    fn stale_visit_inputs_never_apply(run in run_strategy(), stale in stale_op_strategy()) {
        let mut s = Session::new();
        check_stale_is_ignored(&s, &stale)?;
        for (op, dt) in run {
            s.advance(dt);
            let input = op.input(&s.state);
            s.send(input);
            check_stale_is_ignored(&s, &stale)?;
        }
    }
}
