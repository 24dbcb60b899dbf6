//! One flow run: the trigger's contract fields, the script played step by
//! step, and the [`Outbox`] that numbers callbacks and sends them the way the
//! knobs say. Callbacks are retried only as the `retries` knob says.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::oneshot;

use super::builtin;
use super::flow::{OihKnobs, SimFlow, StepAction};
use super::template::Context;
use super::{OihSim, SentCallback, random_hex};
use crate::sim::now_rfc3339;

/// A run gated on the hook's response starts at the latest this long after it.
const START_FALLBACK: Duration = Duration::from_secs(1);
/// The longest a callback is held by the `hold` knob.
const MAX_HOLD: Duration = Duration::from_secs(600);
/// The first and the longest pause between re-sends of one callback.
const FIRST_RETRY_PAUSE: Duration = Duration::from_millis(200);
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(2);

/// What Gangway's trigger body says (providers.md 5.2).
#[derive(Clone, Debug)]
pub(super) struct Trigger {
    pub flow_id: String,
    /// The body's `requestId`, else the hook's request id.
    pub request_id: String,
    pub session_id: String,
    pub input: Value,
    pub callback_url: Option<String>,
}

const CONTRACT_FIELDS: [&str; 4] = ["requestId", "sessionId", "callbackUrl", "input"];

impl Trigger {
    /// From the flow's data (a POST body, or a GET query as strings). Without
    /// an `input` field, the other fields are the input; a string `input`
    /// holding a JSON object (GET) is parsed.
    pub fn from_data(flow_id: &str, hook_request_id: &str, data: &Value) -> Trigger {
        let text = |k: &str| {
            data.get(k)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let input = match data.get("input") {
            Some(Value::Object(m)) => Value::Object(m.clone()),
            Some(Value::String(s)) => serde_json::from_str::<Value>(s)
                .ok()
                .filter(Value::is_object)
                .unwrap_or_else(|| json!({})),
            Some(_) => json!({}),
            None => Value::Object(
                data.as_object()
                    .map(|m| {
                        m.iter()
                            .filter(|(k, _)| !CONTRACT_FIELDS.contains(&k.as_str()))
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect()
                    })
                    .unwrap_or_default(),
            ),
        };
        Trigger {
            flow_id: flow_id.to_owned(),
            request_id: text("requestId").unwrap_or_else(|| hook_request_id.to_owned()),
            session_id: text("sessionId").unwrap_or_default(),
            input,
            callback_url: text("callbackUrl").filter(|u| {
                reqwest::Url::parse(u).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
            }),
        }
    }

    pub fn context(&self) -> Context<'_> {
        Context {
            input: &self.input,
            request_id: &self.request_id,
            session_id: &self.session_id,
            flow_id: &self.flow_id,
        }
    }
}

/// When a run begins relative to the hook's response.
pub(super) enum Start {
    /// Once the 200 has been handed over (this fires).
    AfterResponse(oneshot::Receiver<()>),
    /// At once; the hook answers after this fires (first callback answered).
    Early(oneshot::Sender<()>),
}

/// A run in progress: what builtins work with.
pub(super) struct Run {
    pub sim: OihSim,
    pub trigger: Trigger,
    pub out: Outbox,
}

/// Starts a run of `flow` on its own task.
pub(super) fn spawn(sim: OihSim, flow: SimFlow, trigger: Trigger, knobs: OihKnobs, start: Start) {
    let (gate, early) = match start {
        Start::AfterResponse(rx) => (Some(rx), None),
        Start::Early(tx) => (None, Some(tx)),
    };
    let out = Outbox::new(&sim, &trigger, knobs, early);
    let mut run = Run { sim, trigger, out };
    tokio::spawn(async move {
        if let Some(gate) = gate {
            // Normally a matter of microseconds; the bound covers a response
            // held forever (`hang` after the effect) or a buffering layer.
            let _ = tokio::time::timeout(START_FALLBACK, gate).await;
        }
        run.play(&flow).await;
    });
}

impl Run {
    async fn play(&mut self, flow: &SimFlow) {
        if self.trigger.callback_url.is_none() {
            tracing::warn!(flow = %flow.id, request_id = %self.trigger.request_id,
                "OIH simulator: the trigger has no usable callbackUrl; no callback will be sent");
        }
        for step in &flow.script {
            if step.after_ms > 0 {
                tokio::time::sleep(Duration::from_millis(step.after_ms)).await;
            }
            if !self.out.alive() {
                return;
            }
            let (kind, m) = match &step.action {
                StepAction::Progress(m) => (Kind::Progress, m),
                StepAction::Result(m) => (Kind::Result, m),
                StepAction::Error(m) => (Kind::Error, m),
                StepAction::Builtin(b) => {
                    builtin::play(*b, self).await;
                    continue;
                }
            };
            let ctx = self.trigger.context();
            let (message, data) = (ctx.render_text(&m.message), ctx.render(&m.data));
            self.out.emit(kind, message, data).await;
        }
        self.out.flush().await;
    }
}

/// The `type` of a callback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Progress,
    Result,
    Error,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Progress => "progress",
            Kind::Result => "result",
            Kind::Error => "error",
        }
    }
}

struct Callback {
    seq: u64,
    kind: Kind,
    message: String,
    data: Value,
}

/// Numbers a run's callbacks and sends them, applying the knobs.
pub(super) struct Outbox {
    sim: OihSim,
    flow_id: String,
    request_id: String,
    url: Option<String>,
    knobs: OihKnobs,
    epoch: u64,
    seq: u64,
    /// The progress `reorder` holds back until the next final callback.
    held: Option<Callback>,
    /// Fired once the first callback has been answered (`early`).
    early: Option<oneshot::Sender<()>>,
}

impl Outbox {
    fn new(
        sim: &OihSim,
        trigger: &Trigger,
        knobs: OihKnobs,
        early: Option<oneshot::Sender<()>>,
    ) -> Outbox {
        let url = trigger.callback_url.clone();
        // A run that will never call back must not hold the hook's answer.
        let early = early.filter(|_| url.is_some() && !knobs.never_callback);
        Outbox {
            sim: sim.clone(),
            flow_id: trigger.flow_id.clone(),
            request_id: trigger.request_id.clone(),
            url,
            knobs,
            epoch: sim.lock().epoch,
            seq: 0,
            held: None,
            early,
        }
    }

    /// False once the simulator was reset after the run began.
    pub fn alive(&self) -> bool {
        self.sim.lock().epoch == self.epoch
    }

    /// Gives the next `seq` to a callback and sends it (or, for `reorder`,
    /// holds a progress back until the next final one has gone).
    pub async fn emit(&mut self, kind: Kind, message: String, data: Value) {
        self.seq += 1;
        let cb = Callback {
            seq: self.seq,
            kind,
            message,
            data,
        };
        if !self.knobs.reorder {
            return self.send(cb).await;
        }
        if kind == Kind::Progress {
            if let Some(earlier) = self.held.replace(cb) {
                self.send(earlier).await;
            }
        } else {
            self.send(cb).await;
            self.flush().await;
        }
    }

    /// Sends a held-back progress now (before waiting on the user, say).
    pub async fn flush(&mut self) {
        if let Some(cb) = self.held.take() {
            self.send(cb).await;
        }
    }

    async fn send(&mut self, cb: Callback) {
        if self.knobs.never_callback || !self.alive() {
            return;
        }
        let Some(url) = self.url.clone() else {
            return;
        };
        if self.knobs.delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(self.knobs.delay_ms)).await;
        }
        if self.knobs.hold {
            let held = std::time::Instant::now();
            while self.sim.knobs().hold && self.alive() && held.elapsed() < MAX_HOLD {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            if !self.alive() {
                return;
            }
        }
        let url = if self.knobs.bad_auth {
            with_last_segment(&url, &random_hex(24)).unwrap_or(url)
        } else {
            url
        };
        let masked = mask_token(&url);
        let request_id = if self.knobs.bad_request_id {
            random_hex(16)
        } else {
            self.request_id.clone()
        };
        let body = json!({
            "requestId": request_id,
            "seq": cb.seq,
            "type": cb.kind.as_str(),
            "data": cb.data,
            "message": cb.message,
        });
        let copies = if self.knobs.callback_twice { 2 } else { 1 };
        for _ in 0..copies {
            let mut pause = FIRST_RETRY_PAUSE;
            for attempt in 0..=self.knobs.retries {
                if attempt > 0 {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(MAX_RETRY_PAUSE);
                    if !self.alive() {
                        return;
                    }
                }
                let status = self.send_once(&url, &masked, &body, &cb).await;
                if status != 0 && status < 500 {
                    break;
                }
            }
        }
        if let Some(tx) = self.early.take() {
            let _ = tx.send(());
        }
    }

    /// One callback attempt, recorded; Gangway's status, 0 when none came.
    async fn send_once(&self, url: &str, masked: &str, body: &Value, cb: &Callback) -> u16 {
        let status = match self.sim.shared.http.post(url).json(body).send().await {
            Ok(r) => r.status().as_u16(),
            Err(e) => {
                tracing::debug!(url = %masked, error = %e.without_url(), "OIH simulator: callback failed");
                0
            }
        };
        tracing::debug!(request_id = %self.request_id, seq = cb.seq, status, "OIH simulator: callback sent");
        self.sim
            .shared
            .faults
            .record("POST", masked, status, Some(self.request_id.clone()));
        self.sim.lock().callbacks.push(SentCallback {
            at: now_rfc3339(),
            request_id: self.request_id.clone(),
            flow_id: self.flow_id.clone(),
            seq: cb.seq,
            kind: cb.kind.as_str().to_owned(),
            url: masked.to_owned(),
            status,
        });
        status
    }
}

/// `url` with its last path segment (the callback token) replaced.
fn with_last_segment(url: &str, segment: &str) -> Option<String> {
    let mut u = reqwest::Url::parse(url).ok()?;
    {
        let mut segs = u.path_segments_mut().ok()?;
        segs.pop_if_empty().pop().push(segment);
    }
    Some(u.to_string())
}

/// A callback URL fit for logs: token masked, no query or fragment.
pub(super) fn mask_token(url: &str) -> String {
    let Ok(mut u) = reqwest::Url::parse(url) else {
        return "<invalid url>".into();
    };
    u.set_query(None);
    u.set_fragment(None);
    match with_last_segment(u.as_str(), "***") {
        Some(m) => m,
        None => "<invalid url>".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masking() {
        assert_eq!(
            mask_token("http://gw:8080/v1/callbacks/oih/tok123?x=1#f"),
            "http://gw:8080/v1/callbacks/oih/***"
        );
        assert_eq!(
            with_last_segment("http://gw/v1/callbacks/oih/tok/", "bad").as_deref(),
            Some("http://gw/v1/callbacks/oih/bad")
        );
        assert_eq!(mask_token("not a url"), "<invalid url>");
    }

    #[test]
    fn trigger_fields() {
        let t = Trigger::from_data(
            "f",
            "hook-id",
            &json!({"requestId": "r1", "sessionId": "s1", "input": {"a": 1}, "callbackUrl": "http://x/cb/t"}),
        );
        assert_eq!((t.request_id.as_str(), t.session_id.as_str()), ("r1", "s1"));
        assert_eq!(t.input, json!({"a": 1}));
        assert_eq!(t.callback_url.as_deref(), Some("http://x/cb/t"));
        // A GET query: strings, no `input`.
        let t = Trigger::from_data(
            "f",
            "hook-id",
            &json!({"customer_id": "7", "callbackUrl": "ftp://x"}),
        );
        assert_eq!(t.request_id, "hook-id");
        assert_eq!(t.input, json!({"customer_id": "7"}));
        assert_eq!(t.callback_url, None);
        let t = Trigger::from_data("f", "h", &json!({"input": "{\"b\": true}"}));
        assert_eq!(t.input, json!({"b": true}));
    }
}
