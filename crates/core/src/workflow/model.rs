//! The validated, compiled form of a workflow that the engine runs.

use super::input::InputSchema;
use crate::expr::{Expr, Template};
use crate::outcome::Outcome;
use indexmap::IndexMap;

#[derive(Debug, Clone)]
pub struct Workflow {
    pub id: String,
    pub version: u32,
    pub description: String,
    /// What a session's input must be (the `input` section); `None` when
    /// the workflow does not declare it, and any object is accepted.
    pub input: Option<InputSchema>,
    /// `retention`: how long (ms) a session's personal data is kept after
    /// it ends; `None`: the server's `retention.default`.
    pub retention: Option<u64>,
    /// The first step, `start:` or else the first one listed.
    pub start: String,
    pub steps: IndexMap<String, Step>,
    /// Each step's 1-based line in the source (where its name is written),
    /// for the graph the console draws beside the YAML.
    pub lines: IndexMap<String, usize>,
}

#[derive(Debug, Clone)]
pub enum Step {
    Call(CallStep),
    Wait(WaitStep),
    Decide(DecideStep),
    End(EndStep),
    Run(RunStep),
    Review(ReviewStep),
}

impl Step {
    pub fn kind(&self) -> &'static str {
        match self {
            Step::Call(_) => "call",
            Step::Wait(_) => "wait",
            Step::Decide(_) => "decide",
            Step::End(_) => "end",
            Step::Run(_) => "run",
            Step::Review(_) => "review",
        }
    }

    /// Steps this one can lead to.
    pub fn successors(&self) -> Vec<&str> {
        match self {
            Step::Call(c) => std::iter::once(c.next.as_str())
                .chain(c.on_error.as_deref())
                .collect(),
            Step::Wait(w) => {
                w.on.values()
                    .map(String::as_str)
                    .chain(std::iter::once(w.on_timeout.as_str()))
                    .collect()
            }
            Step::Decide(d) => d
                .rules
                .iter()
                .map(|r| r.next.as_str())
                .chain(std::iter::once(d.default.as_str()))
                .chain(d.on_error.as_deref())
                .collect(),
            Step::End(_) => Vec::new(),
            Step::Run(r) => {
                r.on.values()
                    .map(String::as_str)
                    .chain(r.default.as_deref())
                    .chain(std::iter::once(r.on_timeout.as_str()))
                    .collect()
            }
            Step::Review(r) => vec![
                r.on_approved.as_str(),
                r.on_declined.as_str(),
                r.on_timeout.as_str(),
            ],
        }
    }
}

/// Runs a connector action; its result is stored in `state.<save_as>`.
#[derive(Debug, Clone)]
pub struct CallStep {
    pub action: String,
    pub with: Template,
    pub save_as: String,
    /// Evaluated over `result`: the provider reference webhooks will carry.
    pub provider_ref: Option<Expr>,
    /// Retry budget: transient failures are retried until this has passed.
    pub timeout_ms: u64,
    pub next: String,
    /// Where to go when the call fails for good; without it the session ends `failed`.
    pub on_error: Option<String>,
    /// Run the call again, backing off, while a condition over its result
    /// holds (a read that lags behind a webhook), until `timeout` passes.
    pub retry: Option<RetrySpec>,
}

/// `retry:` of a call step.
#[derive(Debug, Clone)]
pub struct RetrySpec {
    /// `while`: over `result` (and `input`, `state`, `session`); true runs
    /// the call again.
    pub condition: Expr,
    /// Delay before the first re-run; it doubles after each one.
    pub every_ms: u64,
    /// The longest delay between re-runs.
    pub max_every_ms: u64,
}

/// Parks the session until one of the named events or the deadline.
#[derive(Debug, Clone)]
pub struct WaitStep {
    pub on: IndexMap<String, String>,
    pub timeout_ms: u64,
    /// Optional absolute deadline (Unix ms, over `input`, `state`,
    /// `session`): the wait ends at the earlier of it and entry + timeout,
    /// so that re-entering a wait does not restart its deadline.
    pub until: Option<Expr>,
    pub on_timeout: String,
    pub poll: Option<PollSpec>,
    /// What the browser shows while the session waits here.
    pub present: Option<Template>,
}

/// Server-side polling while waiting: used when webhooks are late or absent.
#[derive(Debug, Clone)]
pub struct PollSpec {
    pub action: String,
    pub with: Template,
    pub every_ms: u64,
    pub max_every_ms: u64,
    /// When set, every poll result is stored in `state.<save_as>` and the
    /// wait's `present` is rendered again, so a presentation can follow the
    /// provider (a rotated QR code) while the session keeps waiting.
    pub save_as: Option<String>,
    /// Conditions over `result`, first true emits that event.
    pub emit: Vec<(String, Expr)>,
}

/// Runs another workflow as a child session and continues on its outcome.
/// The child's outcome, reason and state land in `state.<save_as>`; while
/// it runs, the browser presents what the child presents.
#[derive(Debug, Clone)]
pub struct RunStep {
    /// The child workflow's id (its latest version when the child starts).
    pub workflow: String,
    /// 1-based line and column of the `run:` value, for load-time checks.
    pub at: (usize, usize),
    /// The child's input.
    pub with: Template,
    pub save_as: String,
    pub timeout_ms: u64,
    /// Outcome of the child -> next step.
    pub on: IndexMap<Outcome, String>,
    /// For outcomes not in `on`; without it the session ends with the
    /// child's outcome and reason.
    pub default: Option<String>,
    pub on_timeout: String,
}

/// Hands the decision to people: the session waits in the review queue,
/// with the facts a reviewer needs, until a reviewer approves or declines
/// it or the deadline passes (then `on_timeout`, so nothing waits forever).
#[derive(Debug, Clone)]
pub struct ReviewStep {
    /// What the reviewer sees (a JSON value over `input`, `state`,
    /// `session`), rendered when the step is entered.
    pub facts: Option<Template>,
    /// Who should decide: an assignee group the queue can be filtered by.
    pub group: Option<String>,
    /// What the browser shows meanwhile (a `progress` message, say).
    pub present: Option<Template>,
    pub timeout_ms: u64,
    pub on_approved: String,
    pub on_declined: String,
    pub on_timeout: String,
}

#[derive(Debug, Clone)]
pub struct DecideStep {
    pub rules: Vec<Rule>,
    pub default: String,
    /// Where to go when a rule cannot be evaluated (a missing field, a wrong
    /// type); without it the session ends `failed` with the error.
    pub on_error: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub when: Expr,
    pub next: String,
    /// The paths the rule reads, compiled, for the rule trace.
    pub reads: Vec<(String, Expr)>,
}

#[derive(Debug, Clone)]
pub struct EndStep {
    pub outcome: Outcome,
    pub reason: Template,
    /// What the session hands back (a JSON value over `input`, `state`,
    /// `session`): in the session's API view and webhooks, and shown as a
    /// chat command's result.
    pub output: Option<Template>,
}

impl Workflow {
    pub fn step(&self, name: &str) -> Option<&Step> {
        self.steps.get(name)
    }
}
