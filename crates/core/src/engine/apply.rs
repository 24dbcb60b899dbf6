//! The transition function.

use super::retry::{self, Verdict};
use super::types::*;
use crate::expr::Scope;
use crate::outcome::{Outcome, SessionStatus};
use crate::workflow::{RunStep, Step, Workflow};
use serde_json::{Value, json};

/// Steps entered in one transition before the engine gives up: a workflow
/// whose decide steps loop without a call or wait would otherwise spin.
const MAX_STEPS_PER_TRANSITION: usize = 256;

/// Applies `input` to `state` at time `now_ms`.
pub fn apply(
    wf: &Workflow,
    ctx: Context<'_>,
    state: &SessionState,
    input: &Input,
    now_ms: i64,
) -> Transition {
    let mut t = Run {
        wf,
        ctx,
        state: state.clone(),
        effects: Vec::new(),
        records: Vec::new(),
        now_ms,
        before: state.status,
    };
    let applied = t.input(input);
    t.notify_status_change();
    Transition {
        state: t.state,
        effects: t.effects,
        records: t.records,
        applied,
    }
}

struct Run<'a> {
    wf: &'a Workflow,
    ctx: Context<'a>,
    state: SessionState,
    effects: Vec<Effect>,
    records: Vec<Record>,
    now_ms: i64,
    before: SessionStatus,
}

impl Run<'_> {
    fn record(&mut self, kind: &str, data: Value) {
        self.records.push(Record {
            kind: kind.to_string(),
            step: self.state.step.clone(),
            data,
        });
    }

    fn current(&self) -> Option<&Step> {
        self.state.step.as_deref().and_then(|s| self.wf.step(s))
    }

    fn input(&mut self, input: &Input) -> bool {
        if self.state.status == SessionStatus::Ended {
            return false;
        }
        match input {
            Input::Start => {
                if self.state.step.is_some() {
                    return false;
                }
                let start = self.wf.start.clone();
                self.goto(&start);
                true
            }
            Input::CallSucceeded { visit, result } => {
                let Some(Step::Call(call)) = self.current().cloned() else {
                    return false;
                };
                if *visit != self.state.visit {
                    return false;
                }
                self.state.vars.insert(call.save_as.clone(), result.clone());
                if self.retry_call(&call, result) {
                    return true;
                }
                if let Some(expr) = &call.provider_ref {
                    let vars = Value::Object(self.state.vars.clone());
                    let scope = Scope {
                        input: Some(self.ctx.input),
                        state: Some(&vars),
                        session: Some(self.ctx.session),
                        result: Some(result),
                        event: None,
                    };
                    match expr.eval(&scope) {
                        Ok(Value::Null) => {
                            self.end(Outcome::Failed, format!("provider reference of step `{}` is missing from the provider's answer", self.step_name()));
                            return true;
                        }
                        Ok(Value::String(s)) if s.is_empty() => {
                            self.end(
                                Outcome::Failed,
                                format!(
                                    "provider reference of step `{}` is empty",
                                    self.step_name()
                                ),
                            );
                            return true;
                        }
                        Ok(v) => {
                            let reference = match v {
                                Value::String(s) => s,
                                other => other.to_string(),
                            };
                            let args = self.state.call_args.take().unwrap_or(Value::Null);
                            self.state.providers.push(ProviderRef {
                                connector: call
                                    .action
                                    .split('.')
                                    .next()
                                    .unwrap_or_default()
                                    .to_string(),
                                provider_session_id: reference.clone(),
                            });
                            self.effects.push(Effect::Correlate {
                                action: call.action.clone(),
                                args,
                                reference,
                            });
                        }
                        Err(e) => {
                            self.end(
                                Outcome::Failed,
                                format!("provider reference of step `{}`: {e}", self.step_name()),
                            );
                            return true;
                        }
                    }
                }
                self.state.call_args = None;
                self.goto(&call.next);
                true
            }
            Input::CallFailed { visit, error } => {
                let Some(Step::Call(call)) = self.current().cloned() else {
                    return false;
                };
                if *visit != self.state.visit {
                    return false;
                }
                self.state.call_args = None;
                self.record(
                    "call.failed",
                    json!({"action": call.action, "error": error}),
                );
                match &call.on_error {
                    Some(next) => self.goto(next),
                    None => self.end(Outcome::Failed, format!("{} failed: {error}", call.action)),
                }
                true
            }
            Input::PollResult { visit, result } => {
                let Some(Step::Wait(wait)) = self.current().cloned() else {
                    return false;
                };
                if *visit != self.state.visit {
                    return false;
                }
                let Some(poll) = &wait.poll else { return false };
                if let Some(name) = &poll.save_as {
                    self.state.vars.insert(name.clone(), result.clone());
                }
                let vars = Value::Object(self.state.vars.clone());
                let scope = Scope {
                    input: Some(self.ctx.input),
                    state: Some(&vars),
                    session: Some(self.ctx.session),
                    result: Some(result),
                    event: None,
                };
                let mut hit = None;
                for (event, cond) in &poll.emit {
                    match cond.eval_bool(&scope) {
                        Ok(true) => {
                            hit = Some(event.clone());
                            break;
                        }
                        Ok(false) => {}
                        Err(e) => self.records.push(Record {
                            kind: "poll.condition_error".into(),
                            step: self.state.step.clone(),
                            data: json!({"event": event, "error": e.to_string()}),
                        }),
                    }
                }
                match hit {
                    Some(name) => {
                        self.record("poll.matched", json!({"event": name}));
                        self.event(&name, "poll", result)
                    }
                    None => {
                        if poll.save_as.is_some() {
                            self.refresh_present(&wait);
                        }
                        let next = self
                            .state
                            .wait
                            .as_ref()
                            .and_then(|w| w.poll_interval_ms)
                            .map(|i| (i.saturating_mul(2)).min(poll.max_every_ms))
                            .unwrap_or(poll.every_ms);
                        if let Some(w) = self.state.wait.as_mut() {
                            w.poll_interval_ms = Some(next);
                        }
                        let args = self.state.poll_args.clone().unwrap_or(Value::Null);
                        self.effects.push(Effect::Poll {
                            visit: self.state.visit,
                            step: self.step_name(),
                            action: poll.action.clone(),
                            args,
                            at_ms: self.now_ms + i64::try_from(next).unwrap_or(i64::MAX),
                        });
                        true
                    }
                }
            }
            Input::Event { name, source, data } => self.event(name, source, data),
            Input::Timeout { visit } => {
                let on_timeout = match self.current() {
                    Some(Step::Wait(wait)) => wait.on_timeout.clone(),
                    Some(Step::Run(run)) => run.on_timeout.clone(),
                    Some(Step::Review(review)) => review.on_timeout.clone(),
                    _ => return false,
                };
                if *visit != self.state.visit {
                    return false;
                }
                self.record(
                    "wait.timed_out",
                    json!({"deadline_ms": self.state.wait.as_ref().map(|w| w.deadline_ms)}),
                );
                self.cancel_child("the parent session's run step timed out");
                self.leave_wait();
                self.goto(&on_timeout);
                true
            }
            Input::Cancel { reason } => {
                self.cancel_child("the parent session was canceled");
                if self.state.wait.is_some() {
                    self.leave_wait();
                }
                self.end(Outcome::Canceled, reason.clone());
                true
            }
            Input::Review {
                visit,
                decision,
                note,
                by,
            } => self.review_decided(*visit, *decision, note, by),
        }
    }

    /// A reviewer's decision: kept in `state.review` (steps after it may
    /// read who decided and why), announced as an update, then the
    /// workflow goes on from the decision's step.
    fn review_decided(&mut self, visit: u32, decision: Decision, note: &str, by: &Actor) -> bool {
        let Some(Step::Review(review)) = self.current().cloned() else {
            return false;
        };
        if visit != self.state.visit {
            return false;
        }
        let decided = json!({
            "decision": decision,
            "note": note,
            "by": by,
            "at_ms": self.now_ms,
        });
        self.record("review.decided", decided.clone());
        self.state.vars.insert("review".into(), decided);
        self.effects.push(Effect::Notify {
            event: NotifyKind::Updated,
        });
        self.leave_wait();
        let next = match decision {
            Decision::Approved => review.on_approved,
            Decision::Declined => review.on_declined,
        };
        self.goto(&next);
        true
    }

    /// A call step with `retry` whose condition holds for `result`: schedules
    /// the re-run and returns true. Otherwise records why it goes on (the
    /// retries ran out, the condition failed) and returns false.
    fn retry_call(&mut self, call: &crate::workflow::CallStep, result: &Value) -> bool {
        let (Some(spec), Some(mut retrying)) = (&call.retry, self.state.retrying.clone()) else {
            return false;
        };
        let vars = Value::Object(self.state.vars.clone());
        let scope = Scope {
            input: Some(self.ctx.input),
            state: Some(&vars),
            session: Some(self.ctx.session),
            result: Some(result),
            event: None,
        };
        let source = spec.condition.source();
        match retry::judge(spec, &mut retrying, &scope, self.now_ms) {
            Verdict::Proceed => false,
            Verdict::Exhausted => {
                self.record(
                    "call.retries_exhausted",
                    json!({"while": source, "retries": retrying.retries}),
                );
                false
            }
            Verdict::Error(error) => {
                self.record("call.retry_error", json!({"while": source, "error": error}));
                false
            }
            Verdict::Again { at_ms } => {
                self.record(
                    "call.retrying",
                    json!({"while": source, "retry": retrying.retries, "at_ms": at_ms}),
                );
                self.effects.push(Effect::Call {
                    visit: self.state.visit,
                    step: self.step_name(),
                    action: call.action.clone(),
                    args: self.state.call_args.clone().unwrap_or(Value::Null),
                    deadline_ms: retrying.deadline_ms,
                    not_before_ms: Some(at_ms),
                });
                self.state.retrying = Some(retrying);
                true
            }
        }
    }

    fn event(&mut self, name: &str, source: &str, data: &Value) -> bool {
        if let Some(Step::Run(run)) = self.current().cloned() {
            return self.child_ended(&run, name, source, data);
        }
        let Some(Step::Wait(wait)) = self.current().cloned() else {
            return false;
        };
        let Some(next) = wait.on.get(name) else {
            return false;
        };
        self.record("event.accepted", json!({"event": name, "source": source}));
        self.state.vars.insert(
            "event".into(),
            json!({"name": name, "source": source, "data": data}),
        );
        self.leave_wait();
        self.goto(next);
        true
    }

    /// Renders the wait's `present` again over the current state; a change
    /// (a rotated QR code) reaches the browser as a new client view. A
    /// failed render keeps what the browser shows and is recorded.
    fn refresh_present(&mut self, wait: &crate::workflow::WaitStep) {
        let Some(template) = &wait.present else {
            return;
        };
        let vars = Value::Object(self.state.vars.clone());
        let scope = Scope {
            input: Some(self.ctx.input),
            state: Some(&vars),
            session: Some(self.ctx.session),
            result: None,
            event: None,
        };
        match template.render(&scope) {
            Ok(p) => {
                if self.state.present.as_ref() != Some(&p) {
                    self.state.present = Some(p);
                    self.record("present.updated", json!({}));
                }
            }
            Err(e) => self.record("present.error", json!({"error": e.to_string()})),
        }
    }

    fn leave_wait(&mut self) {
        if self.state.wait.as_ref().is_some_and(|w| w.review.is_some()) {
            self.effects.push(Effect::CloseReview);
        }
        self.state.wait = None;
        self.state.present = None;
        self.state.poll_args = None;
        self.state.child = None;
        self.effects.push(Effect::ClearWaitJobs);
    }

    /// A `run` step's child ended: keep what it found, branch on its outcome.
    fn child_ended(&mut self, run: &RunStep, name: &str, source: &str, data: &Value) -> bool {
        if name != CHILD_ENDED
            || self.state.child.is_none()
            || data.get("session_id").and_then(Value::as_str) != self.state.child.as_deref()
        {
            return false;
        }
        let outcome = data
            .get("outcome")
            .and_then(Value::as_str)
            .and_then(|o| o.parse::<Outcome>().ok())
            .unwrap_or(Outcome::Failed);
        let reason = data
            .get("reason")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        self.record(
            "event.accepted",
            json!({"event": name, "source": source, "outcome": outcome}),
        );
        self.state.vars.insert(
            run.save_as.clone(),
            json!({
                "session_id": data.get("session_id"),
                "outcome": outcome,
                "reason": reason,
                "output": data.get("output").cloned().unwrap_or(Value::Null),
                "state": data.get("state").cloned().unwrap_or(Value::Null),
            }),
        );
        self.leave_wait();
        match run.on.get(&outcome).or(run.default.as_ref()) {
            Some(next) => {
                let next = next.clone();
                self.goto(&next);
            }
            // Not handled here: the child's ending is this session's.
            None => self.end(outcome, reason),
        }
        true
    }

    fn cancel_child(&mut self, reason: &str) {
        if let Some(child) = self.state.child.take() {
            self.effects.push(Effect::CancelChild {
                session_id: child,
                reason: reason.to_string(),
            });
        }
    }

    fn step_name(&self) -> String {
        self.state.step.clone().unwrap_or_default()
    }

    fn end(&mut self, outcome: Outcome, reason: String) {
        self.state.call_args = None;
        self.state.retrying = None;
        self.state.poll_args = None;
        self.state.status = SessionStatus::Ended;
        self.state.outcome = Some(outcome);
        self.state.reason = Some(reason.clone());
        self.state.wait = None;
        self.state.present = None;
        self.state.ended_ms = Some(self.now_ms);
        self.record(
            "session.ended",
            json!({"outcome": outcome, "reason": reason}),
        );
        self.effects.push(Effect::Notify {
            event: NotifyKind::Ended,
        });
    }

    /// Enters `name` and runs through steps that need no I/O (decide, end).
    fn goto(&mut self, name: &str) {
        let mut next = name.to_string();
        for _ in 0..MAX_STEPS_PER_TRANSITION {
            let Some(step) = self.wf.step(&next).cloned() else {
                self.end(Outcome::Failed, format!("workflow has no step `{next}`"));
                return;
            };
            self.state.visit += 1;
            self.state.step = Some(next.clone());
            self.state.retrying = None;
            self.record("step.entered", json!({"kind": step.kind()}));
            let vars = Value::Object(self.state.vars.clone());
            let scope = Scope {
                input: Some(self.ctx.input),
                state: Some(&vars),
                session: Some(self.ctx.session),
                result: None,
                event: None,
            };
            match step {
                Step::Call(call) => {
                    match call.with.render(&scope) {
                        Ok(args) => {
                            let deadline_ms = self
                                .now_ms
                                .saturating_add(i64::try_from(call.timeout_ms).unwrap_or(i64::MAX));
                            self.state.status = SessionStatus::Running;
                            self.state.call_args = Some(args.clone());
                            self.state.retrying = call.retry.as_ref().map(|r| Retrying {
                                deadline_ms,
                                interval_ms: r.every_ms,
                                retries: 0,
                            });
                            self.effects.push(Effect::Call {
                                visit: self.state.visit,
                                step: next.clone(),
                                action: call.action.clone(),
                                args,
                                deadline_ms,
                                not_before_ms: None,
                            });
                        }
                        Err(e) => {
                            self.end(Outcome::Failed, format!("arguments of step `{next}`: {e}"))
                        }
                    }
                    return;
                }
                Step::Wait(wait) => {
                    let present = match wait.present.as_ref().map(|p| p.render(&scope)).transpose()
                    {
                        Ok(p) => p,
                        Err(e) => {
                            self.end(
                                Outcome::Failed,
                                format!("presentation of step `{next}`: {e}"),
                            );
                            return;
                        }
                    };
                    let mut deadline_ms =
                        self.now_ms + i64::try_from(wait.timeout_ms).unwrap_or(i64::MAX);
                    if let Some(until) = &wait.until {
                        match until.eval(&scope) {
                            Ok(v) => match v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)) {
                                // A time already past ends the wait at once.
                                Some(t) => deadline_ms = deadline_ms.min(t.max(self.now_ms)),
                                None => self.record(
                                    "wait.until_error",
                                    json!({"error": format!("expected a time in Unix milliseconds, got {v}")}),
                                ),
                            },
                            Err(e) => {
                                self.record("wait.until_error", json!({"error": e.to_string()}))
                            }
                        }
                    }
                    self.state.status = SessionStatus::Waiting;
                    self.state.present = present;
                    self.state.wait = Some(Waiting {
                        events: wait.on.keys().cloned().collect(),
                        since_ms: self.now_ms,
                        deadline_ms,
                        poll_interval_ms: wait.poll.as_ref().map(|p| p.every_ms),
                        review: None,
                    });
                    self.effects.push(Effect::Timer {
                        visit: self.state.visit,
                        at_ms: deadline_ms,
                    });
                    if let Some(poll) = &wait.poll {
                        match poll.with.render(&scope) {
                            Ok(args) => {
                                self.state.poll_args = Some(args.clone());
                                self.effects.push(Effect::Poll {
                                    visit: self.state.visit,
                                    step: next.clone(),
                                    action: poll.action.clone(),
                                    args,
                                    at_ms: self.now_ms
                                        + i64::try_from(poll.every_ms).unwrap_or(i64::MAX),
                                });
                            }
                            Err(e) => {
                                self.record("poll.arguments_error", json!({"error": e.to_string()}))
                            }
                        }
                    }
                    self.record("wait.started", json!({"events": wait.on.keys().collect::<Vec<_>>(), "deadline_ms": deadline_ms}));
                    return;
                }
                Step::Review(review) => {
                    let facts = match review.facts.as_ref().map(|f| f.render(&scope)).transpose() {
                        Ok(f) => f.unwrap_or_else(|| json!({})),
                        Err(e) => {
                            self.end(Outcome::Failed, format!("facts of step `{next}`: {e}"));
                            return;
                        }
                    };
                    let present = match review
                        .present
                        .as_ref()
                        .map(|p| p.render(&scope))
                        .transpose()
                    {
                        Ok(p) => p,
                        Err(e) => {
                            self.end(
                                Outcome::Failed,
                                format!("presentation of step `{next}`: {e}"),
                            );
                            return;
                        }
                    };
                    let deadline_ms = self
                        .now_ms
                        .saturating_add(i64::try_from(review.timeout_ms).unwrap_or(i64::MAX));
                    self.state.status = SessionStatus::Waiting;
                    self.state.present = present;
                    self.state.wait = Some(Waiting {
                        events: Vec::new(),
                        since_ms: self.now_ms,
                        deadline_ms,
                        poll_interval_ms: None,
                        review: Some(ReviewWait {
                            group: review.group.clone(),
                        }),
                    });
                    self.effects.push(Effect::Timer {
                        visit: self.state.visit,
                        at_ms: deadline_ms,
                    });
                    self.effects.push(Effect::OpenReview {
                        step: next.clone(),
                        group: review.group.clone(),
                        facts,
                        since_ms: self.now_ms,
                        deadline_ms,
                    });
                    self.record(
                        "review.opened",
                        json!({"group": review.group, "deadline_ms": deadline_ms}),
                    );
                    return;
                }
                Step::Decide(decide) => {
                    let mut chosen = None;
                    let mut failed = None;
                    for (i, rule) in decide.rules.iter().enumerate() {
                        // What the rule read, for the trace: a path that is
                        // missing shows as null.
                        let inputs: serde_json::Map<String, Value> = rule
                            .reads
                            .iter()
                            .map(|(path, e)| (path.clone(), e.eval(&scope).unwrap_or(Value::Null)))
                            .collect();
                        match rule.when.eval_bool(&scope) {
                            Ok(hit) => {
                                self.record(
                                    "rule.evaluated",
                                    json!({"rule": i, "when": rule.when.source(), "inputs": inputs, "result": hit, "next": hit.then_some(&rule.next)}),
                                );
                                if hit {
                                    chosen = Some(rule.next.clone());
                                    break;
                                }
                            }
                            Err(e) => {
                                self.record("rule.error", json!({"rule": i, "when": rule.when.source(), "inputs": inputs, "error": e.message}));
                                failed = Some(format!(
                                    "rule {i} of step `{next}` could not be evaluated: {e}"
                                ));
                                break;
                            }
                        }
                    }
                    if let Some(error) = failed {
                        match &decide.on_error {
                            Some(target) => {
                                self.state.vars.insert(
                                    "error".into(),
                                    json!({"step": next, "message": error}),
                                );
                                next = target.clone();
                                continue;
                            }
                            None => {
                                self.end(Outcome::Failed, error);
                                return;
                            }
                        }
                    }
                    let target = chosen.unwrap_or_else(|| {
                        self.record("rule.default", json!({"next": decide.default}));
                        decide.default.clone()
                    });
                    next = target;
                }
                Step::Run(run) => {
                    let input = match run.with.render(&scope) {
                        Ok(v) => v,
                        Err(e) => {
                            self.end(Outcome::Failed, format!("input of step `{next}`: {e}"));
                            return;
                        }
                    };
                    let parent = self
                        .ctx
                        .session
                        .get("id")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    let child = child_session_id(parent, self.state.visit);
                    let deadline_ms =
                        self.now_ms + i64::try_from(run.timeout_ms).unwrap_or(i64::MAX);
                    self.state.status = SessionStatus::Waiting;
                    self.state.present = None;
                    self.state.child = Some(child.clone());
                    self.state.wait = Some(Waiting {
                        events: vec![CHILD_ENDED.to_string()],
                        since_ms: self.now_ms,
                        deadline_ms,
                        poll_interval_ms: None,
                        review: None,
                    });
                    self.effects.push(Effect::StartChild {
                        visit: self.state.visit,
                        step: next.clone(),
                        workflow: run.workflow.clone(),
                        session_id: child.clone(),
                        input,
                        deadline_ms,
                    });
                    self.effects.push(Effect::Timer {
                        visit: self.state.visit,
                        at_ms: deadline_ms,
                    });
                    self.record(
                        "child.started",
                        json!({"workflow": run.workflow, "session_id": child, "deadline_ms": deadline_ms}),
                    );
                    return;
                }
                Step::End(end) => {
                    let reason = match end.reason.render(&scope) {
                        Ok(Value::String(s)) => s,
                        Ok(other) => other.to_string(),
                        Err(e) => format!("(reason could not be rendered: {e})"),
                    };
                    match end.output.as_ref().map(|o| o.render(&scope)) {
                        Some(Err(e)) => {
                            self.end(
                                Outcome::Failed,
                                format!("the output of step `{next}` could not be rendered: {e}"),
                            );
                        }
                        rendered => {
                            self.state.output = rendered.and_then(Result::ok);
                            self.end(end.outcome, reason);
                        }
                    }
                    return;
                }
            }
        }
        self.end(Outcome::Failed, format!("more than {MAX_STEPS_PER_TRANSITION} steps without a call or wait: the workflow loops"));
    }

    fn notify_status_change(&mut self) {
        let now = self.state.status;
        // A review decision announced its update already.
        let announced = self.effects.iter().any(|e| {
            matches!(
                e,
                Effect::Notify {
                    event: NotifyKind::Updated
                }
            )
        });
        if now != self.before && now != SessionStatus::Ended && !announced {
            self.effects.push(Effect::Notify {
                event: NotifyKind::Updated,
            });
        }
    }
}
