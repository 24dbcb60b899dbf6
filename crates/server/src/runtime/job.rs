//! What a job does, typed: the committer makes a `Task`, the executor runs
//! it. A task is stored as JSON in `jobs.payload` (its class in `jobs.kind`)
//! in exactly the shape the release before typed tasks wrote, so that jobs
//! written before an upgrade still run after it, and jobs written by this
//! release still run on a node of the previous release during a rolling
//! upgrade. Fields that release could leave out are optional here too.

use crate::store::{Job, JobKind};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The `action` of a call job that starts a `run` step's child session.
pub const START_CHILD: &str = "workflow.start";
/// The `action` of a call job that cancels a child session.
pub const CANCEL_CHILD: &str = "workflow.cancel";
/// The `action` of a call job that starts a chat command's run.
pub const CHAT_RUN: &str = "chat.run";

#[derive(Debug, Clone, PartialEq)]
pub enum Task {
    /// A `call` step's connector action, retried until its deadline.
    Call(Call),
    /// Starts the child session of a `run` step.
    StartChild {
        visit: u32,
        step: String,
        deadline_ms: i64,
        child: Child,
    },
    /// Cancels a child session (its parent stopped waiting for it).
    CancelChild(Cancel),
    /// Starts a chat command's run, a child session of the chat.
    ChatRun(Child),
    /// A wait's status action.
    Poll(Poll),
    /// A wait's deadline.
    Timer { visit: u32 },
    /// One customer webhook delivery.
    Deliver(Deliver),
    /// A provider's release action on a provider session its ended session
    /// let go of (runtime/release.rs).
    Release(Release),
}

/// Stored as the `call` job of the provider's action with a `release`
/// member: a node of the release before this one reads it as a plain call
/// and still sends it (its result then finds the session ended).
#[derive(Debug, Clone, PartialEq)]
pub struct Release {
    /// Why: `cancel` (the session ended canceled or expired) or `redact`
    /// (the session is erased, issue 20).
    pub purpose: String,
    /// The provider's action (`stripe.cancel`), from its `Registration`.
    pub action: String,
    /// The provider session (`provider_session_id`): the action's `id`.
    pub reference: String,
    /// Transient failures are retried until then.
    pub deadline_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Call {
    #[serde(default)]
    pub visit: u32,
    #[serde(default)]
    pub step: String,
    #[serde(default)]
    pub action: String,
    #[serde(default)]
    pub args: Value,
    #[serde(default)]
    pub deadline_ms: i64,
    /// The session's trace (`state.trace`), when traces are on: the job's
    /// span continues it (crate::otel). Left out otherwise, so payloads
    /// keep the earlier release's shape.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Poll {
    #[serde(default)]
    pub visit: u32,
    #[serde(default)]
    pub step: String,
    #[serde(default)]
    pub action: String,
    #[serde(default)]
    pub args: Value,
    /// The session's trace (`state.trace`), when traces are on: the job's
    /// span continues it (crate::otel). Left out otherwise, so payloads
    /// keep the earlier release's shape.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
}

/// A child session to start: given its id, a retried start finds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Child {
    #[serde(default)]
    pub workflow: String,
    #[serde(default)]
    pub session_id: String,
    #[serde(default = "empty_object")]
    pub input: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cancel {
    #[serde(default)]
    pub session_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A delivery carries what it sends, so that it needs no extra read; jobs
/// of releases before that name only the delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deliver {
    pub delivery: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    /// The session's trace (`state.trace`), when traces are on: the job's
    /// span continues it (crate::otel). Left out otherwise, so payloads
    /// keep the earlier release's shape.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
    /// A redelivery (runtime/redeliver.rs): one attempt, no retry schedule.
    /// Left out when false, so other payloads keep their shape.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub once: bool,
}

fn empty_object() -> Value {
    Value::Object(serde_json::Map::new())
}

/// The stored shape of every `call` job: the action names what it does.
#[derive(Serialize, Deserialize)]
struct CallRow<A> {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    visit: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    step: Option<String>,
    #[serde(default)]
    action: String,
    args: A,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    deadline_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    trace: Option<String>,
    /// A release job's purpose (see [`Release`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    release: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct TimerRow {
    #[serde(default)]
    visit: u32,
}

/// A stored payload that this build cannot run.
#[derive(Debug, thiserror::Error)]
#[error("job payload: {0}")]
pub struct Undecodable(String);

impl Task {
    pub fn kind(&self) -> JobKind {
        match self {
            Task::Call(_)
            | Task::StartChild { .. }
            | Task::CancelChild(_)
            | Task::ChatRun(_)
            | Task::Release(_) => JobKind::Call,
            Task::Poll(_) => JobKind::Poll,
            Task::Timer { .. } => JobKind::Timer,
            Task::Deliver(_) => JobKind::Deliver,
        }
    }

    /// The JSON stored in `jobs.payload`.
    pub fn encode(&self) -> Value {
        let encoded = match self {
            Task::Call(c) => serde_json::to_value(c),
            Task::StartChild {
                visit,
                step,
                deadline_ms,
                child,
            } => serde_json::to_value(CallRow {
                visit: Some(*visit),
                step: Some(step.clone()),
                action: START_CHILD.to_string(),
                args: child,
                deadline_ms: Some(*deadline_ms),
                trace: None,
                release: None,
            }),
            Task::CancelChild(cancel) => serde_json::to_value(CallRow {
                visit: None,
                step: None,
                action: CANCEL_CHILD.to_string(),
                args: cancel,
                deadline_ms: None,
                trace: None,
                release: None,
            }),
            Task::ChatRun(child) => serde_json::to_value(CallRow {
                visit: None,
                step: None,
                action: CHAT_RUN.to_string(),
                args: child,
                deadline_ms: None,
                trace: None,
                release: None,
            }),
            Task::Release(r) => serde_json::to_value(CallRow {
                visit: None,
                step: None,
                action: r.action.clone(),
                args: serde_json::json!({"id": r.reference}),
                deadline_ms: Some(r.deadline_ms),
                trace: None,
                release: Some(r.purpose.clone()),
            }),
            Task::Poll(p) => serde_json::to_value(p),
            Task::Timer { visit } => serde_json::to_value(TimerRow { visit: *visit }),
            Task::Deliver(d) => serde_json::to_value(d),
        };
        // Strings, numbers and JSON values only: serializing cannot fail.
        encoded.unwrap_or(Value::Null)
    }

    /// The task of a stored job of class `kind`.
    pub fn decode(kind: JobKind, payload: &Value) -> Result<Task, Undecodable> {
        let bad = |e: serde_json::Error| Undecodable(e.to_string());
        Ok(match kind {
            JobKind::Timer => Task::Timer {
                visit: TimerRow::deserialize(payload).map_err(bad)?.visit,
            },
            JobKind::Poll => Task::Poll(Poll::deserialize(payload).map_err(bad)?),
            JobKind::Deliver => Task::Deliver(Deliver::deserialize(payload).map_err(bad)?),
            JobKind::Call => {
                let row = CallRow::<Value>::deserialize(payload).map_err(bad)?;
                if let Some(purpose) = row.release {
                    return Ok(Task::Release(Release {
                        purpose,
                        reference: row.args["id"].as_str().unwrap_or_default().to_string(),
                        action: row.action,
                        deadline_ms: row.deadline_ms.unwrap_or(0),
                    }));
                }
                match row.action.as_str() {
                    START_CHILD => Task::StartChild {
                        visit: row.visit.unwrap_or(0),
                        step: row.step.unwrap_or_default(),
                        deadline_ms: row.deadline_ms.unwrap_or(0),
                        child: Child::deserialize(&row.args).map_err(bad)?,
                    },
                    CANCEL_CHILD => Task::CancelChild(Cancel::deserialize(&row.args).map_err(bad)?),
                    CHAT_RUN => Task::ChatRun(Child::deserialize(&row.args).map_err(bad)?),
                    other if other.starts_with("workflow.") => {
                        return Err(Undecodable(format!("unknown workflow action `{other}`")));
                    }
                    _ => Task::Call(Call {
                        visit: row.visit.unwrap_or(0),
                        step: row.step.unwrap_or_default(),
                        action: row.action,
                        args: row.args,
                        deadline_ms: row.deadline_ms.unwrap_or(0),
                        trace: row.trace,
                    }),
                }
            }
        })
    }
}

/// A job to run now: claimed by the scheduler, or made by a commit.
#[derive(Debug, Clone)]
pub struct Ready {
    pub id: i64,
    pub session_id: String,
    /// Attempts so far (polls back off by it; deliveries number by it).
    pub attempts: i64,
    pub task: Task,
}

impl Ready {
    pub fn from_row(job: Job) -> Result<Ready, Undecodable> {
        Ok(Ready {
            task: Task::decode(job.kind, &job.payload)?,
            id: job.id,
            session_id: job.session_id,
            attempts: job.attempts,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Payloads as the release before typed tasks stored them (texts from
    /// its `jobs.payload` column): each decodes to the task it meant, and
    /// encodes back to the same text, so that rows written before and
    /// after an upgrade run on either release.
    #[test]
    fn payloads_of_the_previous_release_decode_and_encode_alike() {
        let cases = [
            (
                JobKind::Call,
                r#"{"visit":3,"step":"check","action":"incode.start","args":{"flow":"f"},"deadline_ms":900}"#,
                Task::Call(Call {
                    visit: 3,
                    step: "check".into(),
                    action: "incode.start".into(),
                    args: serde_json::json!({"flow": "f"}),
                    deadline_ms: 900,
                    trace: None,
                }),
            ),
            (
                JobKind::Call,
                r#"{"visit":2,"step":"kyc","action":"workflow.start","args":{"workflow":"child","session_id":"ses_a-2","input":{"x":1}},"deadline_ms":50}"#,
                Task::StartChild {
                    visit: 2,
                    step: "kyc".into(),
                    deadline_ms: 50,
                    child: Child {
                        workflow: "child".into(),
                        session_id: "ses_a-2".into(),
                        input: serde_json::json!({"x": 1}),
                    },
                },
            ),
            (
                JobKind::Call,
                r#"{"action":"workflow.cancel","args":{"session_id":"ses_a-2","reason":"the chat ended"}}"#,
                Task::CancelChild(Cancel {
                    session_id: "ses_a-2".into(),
                    reason: Some("the chat ended".into()),
                }),
            ),
            (
                JobKind::Call,
                r#"{"action":"chat.run","args":{"workflow":"w","session_id":"ses_c-1","input":{"command":"kyc"}}}"#,
                Task::ChatRun(Child {
                    workflow: "w".into(),
                    session_id: "ses_c-1".into(),
                    input: serde_json::json!({"command": "kyc"}),
                }),
            ),
            (
                JobKind::Poll,
                r#"{"visit":4,"step":"wait","action":"ockto.status","args":{"id":"r"}}"#,
                Task::Poll(Poll {
                    visit: 4,
                    step: "wait".into(),
                    action: "ockto.status".into(),
                    args: serde_json::json!({"id": "r"}),
                    trace: None,
                }),
            ),
            (JobKind::Timer, r#"{"visit":7}"#, Task::Timer { visit: 7 }),
            // Release jobs are new; this is their stored shape.
            (
                JobKind::Call,
                r#"{"action":"stripe.cancel","args":{"id":"vs_1"},"deadline_ms":600000,"release":"cancel"}"#,
                Task::Release(Release {
                    purpose: "cancel".into(),
                    action: "stripe.cancel".into(),
                    reference: "vs_1".into(),
                    deadline_ms: 600_000,
                }),
            ),
            (
                JobKind::Deliver,
                r#"{"delivery":"msg_1","endpoint":"http://127.0.0.1:9/h","body":{"type":"session.ended"}}"#,
                Task::Deliver(Deliver {
                    delivery: "msg_1".into(),
                    endpoint: Some("http://127.0.0.1:9/h".into()),
                    body: Some(serde_json::json!({"type": "session.ended"})),
                    trace: None,
                    once: false,
                }),
            ),
            (
                JobKind::Deliver,
                r#"{"delivery":"msg_3","once":true}"#,
                Task::Deliver(Deliver {
                    delivery: "msg_3".into(),
                    endpoint: None,
                    body: None,
                    trace: None,
                    once: true,
                }),
            ),
            (
                JobKind::Deliver,
                r#"{"delivery":"msg_2"}"#,
                Task::Deliver(Deliver {
                    delivery: "msg_2".into(),
                    endpoint: None,
                    body: None,
                    trace: None,
                    once: false,
                }),
            ),
        ];
        for (kind, text, task) in cases {
            let stored: Value = serde_json::from_str(text).unwrap();
            let decoded = Task::decode(kind, &stored).unwrap();
            assert_eq!(decoded, task, "{text}");
            assert_eq!(decoded.kind(), kind);
            assert_eq!(decoded.encode().to_string(), text);
        }
    }

    /// With traces on, call, poll and delivery payloads carry the trace;
    /// it survives a round trip (older releases ignore the member).
    #[test]
    fn a_trace_rides_along_in_call_poll_and_delivery_payloads() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        for (kind, text) in [
            (
                JobKind::Call,
                format!(
                    r#"{{"visit":1,"step":"s","action":"http.call","args":{{}},"deadline_ms":5,"trace":"{tp}"}}"#
                ),
            ),
            (
                JobKind::Poll,
                format!(
                    r#"{{"visit":1,"step":"s","action":"ockto.status","args":{{}},"trace":"{tp}"}}"#
                ),
            ),
            (
                JobKind::Deliver,
                format!(
                    r#"{{"delivery":"msg_1","endpoint":"http://127.0.0.1:9/h","body":{{}},"trace":"{tp}"}}"#
                ),
            ),
        ] {
            let stored: Value = serde_json::from_str(&text).unwrap();
            let task = Task::decode(kind, &stored).unwrap();
            let trace = match &task {
                Task::Call(c) => c.trace.as_deref(),
                Task::Poll(p) => p.trace.as_deref(),
                Task::Deliver(d) => d.trace.as_deref(),
                _ => None,
            };
            assert_eq!(trace, Some(tp), "{text}");
            assert_eq!(task.encode().to_string(), text);
        }
    }

    #[test]
    fn an_unknown_workflow_action_is_refused() {
        let stored = serde_json::json!({"action": "workflow.pause", "args": {}});
        assert!(Task::decode(JobKind::Call, &stored).is_err());
    }
}
