//! The transition function on `run` steps, rules' traces and errors, a
//! poll's `save_as`, and `output` on end steps (split from mod.rs).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

// ---------------------------------------------------------------------------
// `run`: a child workflow
// ---------------------------------------------------------------------------

const PARENT: &str = r#"
id: parent
version: 1
steps:
  bank:
    run: child-flow
    with:
      amount: ${input.amount}
    save_as: bank
    timeout: 30m
    on_timeout: too_slow
    on:
      approved: rules
  rules:
    decide:
      - when: state.bank.state.income > input.amount
        next: ok
    default: no
  ok:
    end: approved
    reason: income ${state.bank.state.income}
  no:
    end: declined
    reason: too little income
  too_slow:
    end: expired
    reason: the bank step took too long
"#;

fn parent_session() -> Session {
    let mut s = Session::new();
    s.wf = parse(PARENT).unwrap();
    s.input = json!({"amount": 1000});
    s
}

fn child_ended(id: &str, outcome: &str, state: Value) -> Input {
    Input::Event {
        name: CHILD_ENDED.into(),
        source: "workflow:child-flow".into(),
        data: json!({"session_id": id, "outcome": outcome, "reason": "because", "state": state}),
    }
}

#[test]
fn run_starts_a_child_and_waits_for_it() {
    let mut s = parent_session();
    let t = s.send(Input::Start);
    assert_eq!(s.state.status, SessionStatus::Waiting);
    let child = child_session_id("ses_1", s.visit());
    assert_eq!(s.state.child.as_deref(), Some(child.as_str()));
    assert_eq!(parent_of(&child), Some("ses_1"));
    assert!(t.effects.iter().any(|e| matches!(e,
        Effect::StartChild { workflow, session_id, input, .. }
            if workflow == "child-flow" && *session_id == child && input == &json!({"amount": 1000}))));
    assert!(t.effects.iter().any(|e| matches!(e, Effect::Timer { .. })));
    assert!(t.records.iter().any(|r| r.kind == "child.started"));
}

#[test]
fn the_childs_ending_is_saved_and_branches() {
    let mut s = parent_session();
    s.send(Input::Start);
    let child = s.state.child.clone().unwrap();
    // Another session's ending is not this child's.
    assert!(
        !s.peek(&child_ended("ses_other-3", "approved", json!({})))
            .applied
    );
    s.send(child_ended(&child, "approved", json!({"income": 4200})));
    assert_eq!(s.state.outcome, Some(Outcome::Approved));
    assert_eq!(s.state.reason.as_deref(), Some("income 4200"));
    assert_eq!(s.state.vars["bank"]["outcome"], "approved");
    assert_eq!(s.state.child, None);
}

#[test]
fn an_unhandled_child_outcome_becomes_the_parents() {
    let mut s = parent_session();
    s.send(Input::Start);
    let child = s.state.child.clone().unwrap();
    s.send(child_ended(&child, "canceled", json!({})));
    assert_eq!(s.state.outcome, Some(Outcome::Canceled));
    assert_eq!(s.state.reason.as_deref(), Some("because"));
}

#[test]
fn a_run_step_times_out_and_cancels_its_child() {
    let mut s = parent_session();
    s.send(Input::Start);
    let child = s.state.child.clone().unwrap();
    s.advance(31 * MINUTE);
    let visit = s.visit();
    let t = s.send(Input::Timeout { visit });
    assert_eq!(s.state.outcome, Some(Outcome::Expired));
    assert!(
        t.effects
            .iter()
            .any(|e| matches!(e, Effect::CancelChild { session_id, .. } if *session_id == child))
    );
    // A late ending changes nothing.
    assert!(!s.peek(&child_ended(&child, "approved", json!({}))).applied);
}

#[test]
fn parent_of_only_accepts_child_ids() {
    assert_eq!(parent_of("ses_abc-12"), Some("ses_abc"));
    assert_eq!(parent_of("ses_abc"), None);
    assert_eq!(parent_of("ses_abc-"), None);
    assert_eq!(parent_of("ses_abc-x1"), None);
    assert_eq!(parent_of("-3"), None);
}

// ---------------------------------------------------------------------------
// Rules: their trace and their errors
// ---------------------------------------------------------------------------

const RULES: &str = r#"
id: rules
version: 1
steps:
  check:
    decide:
      - when: input.income - input.costs < 0
        next: no
      - when: input.income > input.amount / 4
        next: yes
    default: maybe
    on_error: broken
  yes:
    end: approved
    reason: ok
  no:
    end: declined
    reason: negative disposable income
  maybe:
    end: review
    reason: near the limit
  broken:
    end: failed
    reason: "rules could not run: ${state.error.message}"
"#;

fn rules_session(input: Value) -> Session {
    let mut s = Session::new();
    s.wf = parse(RULES).unwrap();
    s.input = input;
    s
}

#[test]
fn every_rule_evaluation_records_what_it_read() {
    let mut s = rules_session(json!({"income": 5000, "costs": 1000, "amount": 10000}));
    let t = s.send(Input::Start);
    assert_eq!(s.state.outcome, Some(Outcome::Approved));
    let evals: Vec<&Value> = t
        .records
        .iter()
        .filter(|r| r.kind == "rule.evaluated")
        .map(|r| &r.data)
        .collect();
    assert_eq!(evals.len(), 2);
    assert_eq!(
        evals[0]["inputs"],
        json!({"input.income": 5000, "input.costs": 1000})
    );
    assert_eq!(evals[0]["result"], false);
    assert_eq!(
        evals[1]["inputs"],
        json!({"input.income": 5000, "input.amount": 10000})
    );
    assert_eq!(evals[1]["result"], true);
}

#[test]
fn a_rule_that_cannot_run_takes_the_error_branch() {
    let mut s = rules_session(json!({"income": "lots", "costs": 1000, "amount": 10000}));
    let t = s.send(Input::Start);
    assert_eq!(s.state.outcome, Some(Outcome::Failed));
    let reason = s.state.reason.clone().unwrap();
    assert!(
        reason.starts_with("rules could not run: rule 0 of step `check`"),
        "{reason}"
    );
    let err = t.records.iter().find(|r| r.kind == "rule.error").unwrap();
    assert_eq!(err.data["inputs"]["input.income"], "lots");
    // A missing field, without an error branch: ends failed, never panics.
    let mut wf = parse(RULES).unwrap();
    if let Some(crate::workflow::Step::Decide(d)) = wf.steps.get_mut("check") {
        d.on_error = None;
    }
    let mut s = rules_session(json!({"costs": 1}));
    s.wf = wf;
    s.send(Input::Start);
    assert_eq!(s.state.outcome, Some(Outcome::Failed));
    assert!(
        s.state
            .reason
            .clone()
            .unwrap()
            .contains("could not be evaluated")
    );
}

// ---------------------------------------------------------------------------
// poll.save_as: the presentation follows the poll results
// ---------------------------------------------------------------------------

const ROTATING: &str = r#"
id: rotating
version: 1
steps:
  start:
    call: http.request
    with: {service: s, path: /start}
    save_as: started
    next: show
  show:
    wait:
      p.done: done
    timeout: 10m
    on_timeout: done
    present:
      kind: qr
      payload: "${'latest' in state && state.latest.code != null ? state.latest.code : state.started.code}"
    poll:
      call: http.request
      with: {service: s, path: /status}
      every: 1s
      save_as: latest
      emit:
        p.done: result.done
  done:
    end: approved
    reason: done
"#;

#[test]
fn poll_save_as_refreshes_the_presentation() {
    let mut s = Session::new();
    s.wf = parse(ROTATING).expect("parses");
    s.send(Input::Start);
    s.send(succeeded(s.visit(), json!({"code": "qr-1"})));
    assert_eq!(
        s.state.present,
        Some(json!({"kind": "qr", "payload": "qr-1"}))
    );
    // Nothing new: the presentation stays, nothing recorded.
    let t = s.send(polled(s.visit(), json!({"done": false, "code": null})));
    assert_eq!(
        s.state.present,
        Some(json!({"kind": "qr", "payload": "qr-1"}))
    );
    assert!(!t.records.iter().any(|r| r.kind == "present.updated"));
    // A rotated code replaces the one shown and stays in state.
    let t = s.send(polled(s.visit(), json!({"done": false, "code": "qr-2"})));
    assert_eq!(
        s.state.present,
        Some(json!({"kind": "qr", "payload": "qr-2"}))
    );
    assert!(t.records.iter().any(|r| r.kind == "present.updated"));
    assert_eq!(s.state.vars["latest"]["code"], "qr-2");
    assert!(poll_at(&t.effects).is_some(), "polling goes on");
    let t = s.send(polled(s.visit(), json!({"done": true, "code": "qr-2"})));
    assert_ended(&t, Outcome::Approved);
}

#[test]
fn until_caps_a_wait_deadline_across_reentries() {
    let wf = parse(
        r#"
id: until-test
version: 1
steps:
  start:
    call: http.request
    with: {service: s, path: /x}
    save_as: started
    next: w
  w:
    wait:
      a.b: check
    timeout: 30m
    until: state.started.at + 600000
    on_timeout: late
  check:
    decide:
      - when: "true"
        next: w
    default: late
  late:
    end: expired
    reason: late
"#,
    )
    .expect("parses");
    let (input, session) = (json!({}), json!({"id": "s", "reference": null}));
    let ctx = Context {
        input: &input,
        session: &session,
    };
    let t = apply(&wf, ctx, &SessionState::default(), &Input::Start, T0);
    let visit = t.state.visit;
    let t = apply(
        &wf,
        ctx,
        &t.state,
        &succeeded(visit, json!({"at": T0})),
        T0 + SECOND,
    );
    assert_eq!(t.state.wait.as_ref().unwrap().deadline_ms, T0 + 10 * MINUTE);
    // Re-entering the wait keeps the absolute deadline.
    let t = apply(&wf, ctx, &t.state, &event("a.b"), T0 + 5 * MINUTE);
    assert_eq!(t.state.step.as_deref(), Some("w"));
    assert_eq!(t.state.wait.as_ref().unwrap().deadline_ms, T0 + 10 * MINUTE);
    // Past it, the wait ends at once (a timer due now).
    let t = apply(&wf, ctx, &t.state, &event("a.b"), T0 + 11 * MINUTE);
    assert_eq!(t.state.wait.as_ref().unwrap().deadline_ms, T0 + 11 * MINUTE);
    // Without `until` (a bad value), the timeout rules and the timeline says why.
    let t = apply(&wf, ctx, &SessionState::default(), &Input::Start, T0);
    let visit = t.state.visit;
    let t = apply(
        &wf,
        ctx,
        &t.state,
        &succeeded(visit, json!({"at": "soon"})),
        T0,
    );
    assert_eq!(t.state.wait.as_ref().unwrap().deadline_ms, T0 + 30 * MINUTE);
    assert!(t.records.iter().any(|r| r.kind == "wait.until_error"));
}

// ---------------------------------------------------------------------------
// `output` on end steps
// ---------------------------------------------------------------------------

fn run_to_end(src: &str, input: Value) -> SessionState {
    let wf = parse(src).expect("workflow parses");
    let session = json!({"id": "ses_1", "reference": null});
    let ctx = Context {
        input: &input,
        session: &session,
    };
    apply(&wf, ctx, &SessionState::default(), &Input::Start, T0).state
}

#[test]
fn an_end_step_hands_back_its_rendered_output() {
    let state = run_to_end(
        "id: out\nversion: 1\nsteps:\n  done:\n    end: approved\n    reason: ok\n    output:\n      name: ${input.name}\n      n: ${input.n + 1}\n",
        json!({"name": "Ada", "n": 41}),
    );
    assert_eq!(state.outcome, Some(Outcome::Approved));
    assert_eq!(state.output, Some(json!({"name": "Ada", "n": 42})));
}

#[test]
fn an_output_that_cannot_be_rendered_fails_the_session_with_the_reason() {
    let state = run_to_end(
        "id: out\nversion: 1\nsteps:\n  done:\n    end: approved\n    reason: ok\n    output:\n      name: ${input.missing.field}\n",
        json!({}),
    );
    assert_eq!(state.outcome, Some(Outcome::Failed));
    assert!(
        state
            .reason
            .as_deref()
            .unwrap_or_default()
            .contains("output of step `done`"),
        "{:?}",
        state.reason
    );
    assert_eq!(state.output, None);
}

#[test]
fn the_childs_output_is_saved_with_its_ending() {
    let mut s = parent_session();
    s.send(Input::Start);
    let child = s.state.child.clone().unwrap();
    s.send(Input::Event {
        name: CHILD_ENDED.into(),
        source: "workflow:child-flow".into(),
        data: json!({"session_id": child, "outcome": "approved", "reason": "because",
            "output": {"income": 4200}, "state": {"income": 4200}}),
    });
    assert_eq!(s.state.vars["bank"]["output"], json!({"income": 4200}));
}

// ---------------------------------------------------------------------------
// `review`: a person decides
// ---------------------------------------------------------------------------

const REVIEWED: &str = r#"
id: reviewed
version: 1
steps:
  check:
    review:
      approved: ok
      declined: no
    group: kyc
    facts:
      amount: ${input.amount}
    present:
      kind: progress
      message: a person checks
    timeout: 72h
    on_timeout: late
  ok:
    end: approved
    reason: "approved: ${state.review.note}"
  no:
    end: declined
    reason: "declined: ${state.review.note}"
  late:
    end: review
    reason: nobody decided
"#;

fn reviewed_session() -> Session {
    let mut s = Session::new();
    s.wf = parse(REVIEWED).unwrap();
    s.input = json!({"amount": 1000});
    s
}

fn decision(visit: u32, decision: Decision) -> Input {
    Input::Review {
        visit,
        decision,
        note: "looked fine".into(),
        by: Actor {
            kind: "api_key".into(),
            id: "key_1".into(),
        },
    }
}

#[test]
fn a_review_opens_with_its_facts_and_waits() {
    let mut s = reviewed_session();
    let t = s.send(Input::Start);
    assert_eq!(s.state.status, SessionStatus::Waiting);
    let wait = s.state.wait.clone().unwrap();
    assert!(wait.events.is_empty());
    assert_eq!(
        wait.review,
        Some(ReviewWait {
            group: Some("kyc".into())
        })
    );
    assert_eq!(wait.deadline_ms, T0 + 72 * 60 * MINUTE);
    assert_eq!(
        s.state.present,
        Some(json!({"kind": "progress", "message": "a person checks"}))
    );
    assert!(t.effects.contains(&Effect::OpenReview {
        step: "check".into(),
        group: Some("kyc".into()),
        facts: json!({"amount": 1000}),
        since_ms: T0,
        deadline_ms: T0 + 72 * 60 * MINUTE,
    }));
    assert!(t.effects.contains(&Effect::Timer {
        visit: 1,
        at_ms: T0 + 72 * 60 * MINUTE
    }));
    // No event of any source moves it: only a decision or the deadline.
    let ev = Input::Event {
        name: "signal.approved".into(),
        source: "client".into(),
        data: json!({}),
    };
    assert!(!s.peek(&ev).applied);
}

#[test]
fn a_decision_is_kept_announced_and_followed() {
    for (d, outcome, reason) in [
        (
            Decision::Approved,
            Outcome::Approved,
            "approved: looked fine",
        ),
        (
            Decision::Declined,
            Outcome::Declined,
            "declined: looked fine",
        ),
    ] {
        let mut s = reviewed_session();
        s.send(Input::Start);
        s.advance(5 * MINUTE);
        // A decision for another visit is stale.
        assert!(!s.peek(&decision(7, d)).applied);
        let t = s.send(decision(1, d));
        assert!(t.applied);
        assert_eq!(s.state.outcome, Some(outcome));
        assert_eq!(s.state.reason.as_deref(), Some(reason));
        assert_eq!(s.state.vars["review"]["decision"], json!(d));
        assert_eq!(s.state.vars["review"]["by"]["id"], "key_1");
        let kinds: Vec<&str> = t.records.iter().map(|r| r.kind.as_str()).collect();
        assert_eq!(kinds[0], "review.decided", "{kinds:?}");
        // The update first, then the queue closed and the wait's jobs gone, then the end.
        let updated = t
            .effects
            .iter()
            .position(|e| {
                *e == Effect::Notify {
                    event: NotifyKind::Updated,
                }
            })
            .unwrap();
        let closed = t
            .effects
            .iter()
            .position(|e| *e == Effect::CloseReview)
            .unwrap();
        let ended = t
            .effects
            .iter()
            .position(|e| {
                *e == Effect::Notify {
                    event: NotifyKind::Ended,
                }
            })
            .unwrap();
        assert!(updated < closed && closed < ended, "{:?}", t.effects);
        assert_eq!(
            t.effects
                .iter()
                .filter(|e| matches!(
                    e,
                    Effect::Notify {
                        event: NotifyKind::Updated
                    }
                ))
                .count(),
            1
        );
        // Decided once: a second decision does not apply.
        assert!(!s.peek(&decision(1, Decision::Declined)).applied);
    }
}

#[test]
fn the_deadline_or_a_cancel_closes_the_review() {
    let mut s = reviewed_session();
    s.send(Input::Start);
    s.advance(72 * 60 * MINUTE);
    let t = s.send(timeout(1));
    assert_eq!(s.state.outcome, Some(Outcome::Review));
    assert!(t.effects.contains(&Effect::CloseReview));

    let mut s = reviewed_session();
    s.send(Input::Start);
    let t = s.send(Input::Cancel {
        reason: "customer".into(),
    });
    assert_eq!(s.state.outcome, Some(Outcome::Canceled));
    assert!(t.effects.contains(&Effect::CloseReview));
}

#[test]
fn facts_that_cannot_be_rendered_fail_the_session() {
    let mut s = reviewed_session();
    s.wf = parse(&REVIEWED.replace("${input.amount}", "${state.missing.field}")).unwrap();
    s.send(Input::Start);
    assert_eq!(s.state.outcome, Some(Outcome::Failed));
    assert!(
        s.state
            .reason
            .as_deref()
            .unwrap()
            .starts_with("facts of step `check`"),
        "{:?}",
        s.state.reason
    );
}
