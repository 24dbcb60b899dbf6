//! State, inputs, effects and records of the engine.

use crate::outcome::{Outcome, SessionStatus};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Everything the engine knows about one session between transitions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionState {
    pub status: SessionStatus,
    /// The step the session is in (the last one once ended).
    pub step: Option<String>,
    /// Bumped on every step entry; inputs carrying an older visit are stale.
    pub visit: u32,
    pub outcome: Option<Outcome>,
    pub reason: Option<String>,
    /// `state` in expressions: call results by `save_as`, the last event.
    pub vars: Map<String, Value>,
    pub wait: Option<Waiting>,
    /// What the browser presents now (iframe, qr, popup, chat), if anything.
    pub present: Option<Value>,
    pub providers: Vec<ProviderRef>,
    pub ended_ms: Option<i64>,
    /// Arguments of the call in flight (for correlating its provider reference).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_args: Option<Value>,
    /// Arguments of the current wait's poll, reused by every poll.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll_args: Option<Value>,
    /// The child session a `run` step waits for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub child: Option<String>,
    /// What an `end` step with `output` handed back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    /// Counts the server keeps to bound what the session takes from
    /// outside; transitions neither read nor change them.
    #[serde(default, skip_serializing_if = "Intake::is_empty")]
    pub intake: Intake,
    /// A call step with `retry`: its deadline and the next delay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retrying: Option<Retrying>,
    /// The W3C `traceparent` of the request that created the session, kept
    /// by the server (traces on) so that the session's later work joins
    /// that trace; transitions neither read nor change it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
    /// Provider sessions the workflow itself closed (a step that called the
    /// provider's release action on one succeeded), kept by the server so
    /// that the session's end does not close them again; transitions
    /// neither read nor change it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub released: Vec<ProviderRef>,
}

/// What a session took in from outside, and what it refused.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intake {
    /// Browser input stored for it: signals and chat lines.
    #[serde(default)]
    pub signals: u64,
    /// Inputs refused and not stored: those after its end, or beyond a
    /// limit of the server's.
    #[serde(default)]
    pub refused: u64,
}

impl Intake {
    pub fn is_empty(&self) -> bool {
        self.signals == 0 && self.refused == 0
    }
}

/// Where a call step with `retry` stands: the step's deadline (entry +
/// `timeout`), the delay before the next re-run, and the re-runs so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retrying {
    pub deadline_ms: i64,
    pub interval_ms: u64,
    pub retries: u32,
}

impl Default for SessionState {
    fn default() -> Self {
        SessionState {
            status: SessionStatus::Running,
            step: None,
            visit: 0,
            outcome: None,
            reason: None,
            vars: Map::new(),
            wait: None,
            present: None,
            providers: Vec::new(),
            ended_ms: None,
            call_args: None,
            poll_args: None,
            child: None,
            output: None,
            intake: Intake::default(),
            retrying: None,
            trace: None,
            released: Vec::new(),
        }
    }
}

/// What a waiting session waits for, since when and until when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Waiting {
    pub events: Vec<String>,
    pub since_ms: i64,
    pub deadline_ms: i64,
    /// Current polling interval, doubled each time a poll finds nothing.
    pub poll_interval_ms: Option<u64>,
    /// Set while a `review` step waits for a reviewer's decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<ReviewWait>,
}

/// A wait for a reviewer: the group the review is assigned to, if any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewWait {
    pub group: Option<String>,
}

/// A reviewer's decision on a `review` step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Approved,
    Declined,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Approved => "approved",
            Decision::Declined => "declined",
        }
    }
}

/// Who did something to a session from outside (a reviewer's decision):
/// `kind` says what `id` names (`api_key` today; operators later).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub kind: String,
    pub id: String,
}

/// A provider session this session started: `{connector, provider_session_id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderRef {
    pub connector: String,
    pub provider_session_id: String,
}

/// Read-only facts about the session that expressions may read.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub input: &'a Value,
    /// `session` in expressions: id and reference.
    pub session: &'a Value,
}

/// Something that happened to a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Input {
    Start,
    CallSucceeded {
        visit: u32,
        result: Value,
    },
    CallFailed {
        visit: u32,
        error: String,
    },
    PollResult {
        visit: u32,
        result: Value,
    },
    Event {
        name: String,
        source: String,
        data: Value,
    },
    Timeout {
        visit: u32,
    },
    Cancel {
        reason: String,
    },
    /// A reviewer decided the `review` step of this visit.
    Review {
        visit: u32,
        decision: Decision,
        note: String,
        by: Actor,
    },
}

/// Work the runtime must do after committing the transition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Effect {
    /// Run a connector action, retrying transient failures until `deadline_ms`.
    Call {
        visit: u32,
        step: String,
        action: String,
        args: Value,
        deadline_ms: i64,
        /// Not before this time (a `retry` re-run); at once when `None`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        not_before_ms: Option<i64>,
    },
    /// Deliver `Input::Timeout { visit }` at `at_ms`.
    Timer { visit: u32, at_ms: i64 },
    /// Run a status action at `at_ms` and report `Input::PollResult`.
    Poll {
        visit: u32,
        step: String,
        action: String,
        args: Value,
        at_ms: i64,
    },
    /// The wait is over: drop its timer and poll.
    ClearWaitJobs,
    /// Inbound events naming this provider reference belong to this session.
    Correlate {
        action: String,
        args: Value,
        reference: String,
    },
    /// Tell the customer's backend (and the browser) about a change.
    Notify { event: NotifyKind },
    /// Start a child session of `workflow` with this id; when it ends, the
    /// runtime sends this session the event `child.ended`.
    StartChild {
        visit: u32,
        step: String,
        workflow: String,
        session_id: String,
        input: Value,
        deadline_ms: i64,
    },
    /// The parent stopped waiting: cancel the child.
    CancelChild { session_id: String, reason: String },
    /// The session entered a `review` step: put it in the review queue.
    OpenReview {
        step: String,
        group: Option<String>,
        facts: Value,
        since_ms: i64,
        deadline_ms: i64,
    },
    /// The review is over (decided, timed out, canceled): out of the queue.
    CloseReview,
}

/// The event a parent receives when its child session ends.
pub const CHILD_ENDED: &str = "child.ended";

/// The id of the child a `run` step starts: derived from the parent's id and
/// the step visit, so that a retried start finds the same child, and a child
/// names its parent (`ses_…-7` belongs to `ses_…`). Generated ids never
/// contain `-`, so no customer-made session can pose as a child.
pub fn child_session_id(parent: &str, visit: u32) -> String {
    format!("{parent}-{visit}")
}

/// The parent of a child session id, if it is one.
pub fn parent_of(session_id: &str) -> Option<&str> {
    let (parent, visit) = session_id.rsplit_once('-')?;
    (!parent.is_empty() && !visit.is_empty() && visit.bytes().all(|b| b.is_ascii_digit()))
        .then_some(parent)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyKind {
    Updated,
    Ended,
}

impl NotifyKind {
    pub fn event_type(self) -> &'static str {
        match self {
            NotifyKind::Updated => "session.updated",
            NotifyKind::Ended => "session.ended",
        }
    }
}

/// A timeline entry produced by a transition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub kind: String,
    pub step: Option<String>,
    pub data: Value,
}

/// The result of applying one input.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub state: SessionState,
    pub effects: Vec<Effect>,
    pub records: Vec<Record>,
    /// False when the input did not apply (stale, not awaited, already ended):
    /// an event that did not apply stays buffered for a later wait.
    pub applied: bool,
}
