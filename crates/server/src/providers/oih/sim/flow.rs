//! Flow definitions as the simulator holds them: id, status, webhook
//! authentication, the script a run plays, and the callback knobs.
//!
//! Deserialised from config or `PUT control/flows/{flowId}` with snake_case
//! names and providers.md 5.4's camelCase ones as aliases: `{id, status,
//! requireWebhookAuth, hmacHeaderKey, hmacAlgorithm, hmacKey, script, knobs}`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Whether hooks reach the flow (OIH: `active` once started, `inactive` once stopped).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlowStatus {
    #[default]
    #[serde(alias = "started")]
    Active,
    #[serde(alias = "stopped")]
    Inactive,
}

/// The HMAC algorithms OIH's secret service validates with.
pub const HMAC_ALGORITHMS: [&str; 2] = ["sha256", "sha512"];

/// One flow of the simulated hub.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimFlow {
    /// Any string (real ids are 24-hex ObjectIds).
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub status: FlowStatus,
    /// `flowSettings.webhooks.requireWebhookAuth`: POST hooks need a valid HMAC.
    #[serde(default, alias = "requireWebhookAuth")]
    pub require_webhook_auth: bool,
    /// The header carrying the HMAC (case-insensitive).
    #[serde(default = "default_header_key", alias = "hmacHeaderKey")]
    pub hmac_header_key: String,
    /// `sha256` or `sha512`.
    #[serde(default = "default_algorithm", alias = "hmacAlgorithm")]
    pub hmac_algorithm: String,
    /// The key of the flow's HMAC secret; empty: no secret, every signed call is refused.
    #[serde(default, alias = "hmacKey")]
    pub hmac_key: String,
    /// What a run does after the hook's 200.
    #[serde(default)]
    pub script: Vec<ScriptStep>,
    /// Callback knobs of this flow, on top of the global ones.
    #[serde(default)]
    pub knobs: OihKnobs,
}

fn default_header_key() -> String {
    "x-hmac".into()
}

fn default_algorithm() -> String {
    "sha256".into()
}

impl Default for SimFlow {
    fn default() -> Self {
        SimFlow {
            id: String::new(),
            status: FlowStatus::Active,
            require_webhook_auth: false,
            hmac_header_key: default_header_key(),
            hmac_algorithm: default_algorithm(),
            hmac_key: String::new(),
            script: Vec::new(),
            knobs: OihKnobs::default(),
        }
    }
}

/// The HMAC key never appears in `Debug` output.
impl std::fmt::Debug for SimFlow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimFlow")
            .field("id", &self.id)
            .field("status", &self.status)
            .field("require_webhook_auth", &self.require_webhook_auth)
            .field("hmac_header_key", &self.hmac_header_key)
            .field("hmac_algorithm", &self.hmac_algorithm)
            .field("hmac_key", &"***")
            .field("script", &self.script)
            .field("knobs", &self.knobs)
            .finish()
    }
}

impl SimFlow {
    /// Checks what serde cannot: the algorithm and the header name.
    pub fn validate(&self) -> Result<(), String> {
        if !HMAC_ALGORITHMS.contains(&self.hmac_algorithm.as_str()) {
            return Err(format!(
                "hmacAlgorithm `{}` is not supported; expected sha256 or sha512",
                self.hmac_algorithm
            ));
        }
        if axum::http::HeaderName::from_bytes(self.hmac_header_key.as_bytes()).is_err() {
            return Err(format!(
                "hmacHeaderKey `{}` is not a valid header name",
                self.hmac_header_key
            ));
        }
        Ok(())
    }

    /// The flow as the control API shows it: the HMAC key masked.
    pub(super) fn masked(&self) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Some(k) = v.get_mut("hmac_key") {
            *k = Value::from(if self.hmac_key.is_empty() { "" } else { "***" });
        }
        v
    }
}

/// Callback knobs (providers.md 5.4). Global ones come from config and
/// `POST control/knobs`; a flow's own are added on top (booleans or-ed, the
/// larger delay). A run keeps the knobs in force when it was triggered.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OihKnobs {
    /// Every callback is sent twice (same `seq`).
    pub callback_twice: bool,
    /// No callback is ever sent (the run still plays its script).
    pub never_callback: bool,
    /// The first callback is sent, and answered, before the hook's 200.
    pub early: bool,
    /// The last progress before a final callback is held back and sent after it.
    pub reorder: bool,
    /// The token (last path segment of `callbackUrl`) is replaced by a wrong one.
    pub bad_auth: bool,
    /// Callbacks name a request id that no run has (the right token, a
    /// stray `requestId`), as a hub that mixes up its runs would.
    pub bad_request_id: bool,
    /// Extra delay before each callback.
    pub delay_ms: u64,
    /// A callback that got no answer or a 5xx is re-sent up to this many
    /// times, backing off from 200 ms to 2 s, as a hub's component that
    /// retries would (0: one attempt, the default).
    pub retries: u32,
    /// Callbacks wait while the global knob is on, and go when it is turned
    /// off (at most 10 minutes): a test can time them without a race.
    pub hold: bool,
}

impl OihKnobs {
    /// These knobs with `other`'s on top.
    pub fn merged(&self, other: &OihKnobs) -> OihKnobs {
        OihKnobs {
            callback_twice: self.callback_twice || other.callback_twice,
            never_callback: self.never_callback || other.never_callback,
            early: self.early || other.early,
            reorder: self.reorder || other.reorder,
            bad_auth: self.bad_auth || other.bad_auth,
            bad_request_id: self.bad_request_id || other.bad_request_id,
            delay_ms: self.delay_ms.max(other.delay_ms),
            retries: self.retries.max(other.retries),
            hold: self.hold || other.hold,
        }
    }
}

/// One step of a flow's script: wait `after_ms`, then act. On the wire
/// `{"after_ms": 300, "result": {"message": "…", "data": {...}}}`, with
/// exactly one of `progress`, `result`, `error` or `builtin`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawStep", into = "RawStep")]
pub struct ScriptStep {
    pub after_ms: u64,
    pub action: StepAction,
}

/// What a step does.
#[derive(Clone, Debug, PartialEq)]
pub enum StepAction {
    /// Sends a `progress` callback (strings templated with `{{input.*}}`).
    Progress(StepMessage),
    /// Sends a `result` callback.
    Result(StepMessage),
    /// Sends an `error` callback.
    Error(StepMessage),
    /// Runs one of the simulator's own components.
    Builtin(Builtin),
}

/// The `message` and `data` of a callback a step sends.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepMessage {
    #[serde(default)]
    pub message: String,
    #[serde(default = "empty_object")]
    pub data: Value,
}

fn empty_object() -> Value {
    Value::Object(Map::new())
}

/// Components the simulator plays itself, because their callbacks are
/// computed rather than written down.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Builtin {
    /// `result`: a customer derived from `input.customer_id` or `input.email`.
    LookupCustomer,
    /// `result`: a contact with an id derived from the request id, echoing `input.name`/`input.email`.
    CreateContact,
    /// `progress` with a login URL, then `result` (signed in) or `error` (declined).
    OauthLogin,
    /// `result` with the Graph profile read with the secret `input.secret_id`, or `error`.
    GraphMe,
}

impl ScriptStep {
    pub fn progress(after_ms: u64, message: &str, data: Value) -> ScriptStep {
        ScriptStep::with(
            after_ms,
            StepAction::Progress(StepMessage::new(message, data)),
        )
    }

    pub fn result(after_ms: u64, message: &str, data: Value) -> ScriptStep {
        ScriptStep::with(
            after_ms,
            StepAction::Result(StepMessage::new(message, data)),
        )
    }

    pub fn error(after_ms: u64, message: &str, data: Value) -> ScriptStep {
        ScriptStep::with(after_ms, StepAction::Error(StepMessage::new(message, data)))
    }

    pub fn builtin(after_ms: u64, builtin: Builtin) -> ScriptStep {
        ScriptStep::with(after_ms, StepAction::Builtin(builtin))
    }

    fn with(after_ms: u64, action: StepAction) -> ScriptStep {
        ScriptStep { after_ms, action }
    }
}

impl StepMessage {
    pub fn new(message: &str, data: Value) -> StepMessage {
        StepMessage {
            message: message.to_owned(),
            data,
        }
    }
}

/// The wire form of a step.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    #[serde(default, alias = "afterMs")]
    after_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    progress: Option<StepMessage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    result: Option<StepMessage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<StepMessage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    builtin: Option<Builtin>,
}

impl TryFrom<RawStep> for ScriptStep {
    type Error = String;

    fn try_from(raw: RawStep) -> Result<Self, String> {
        let mut actions = Vec::new();
        actions.extend(raw.progress.map(StepAction::Progress));
        actions.extend(raw.result.map(StepAction::Result));
        actions.extend(raw.error.map(StepAction::Error));
        actions.extend(raw.builtin.map(StepAction::Builtin));
        match (actions.pop(), actions.is_empty()) {
            (Some(action), true) => Ok(ScriptStep::with(raw.after_ms, action)),
            _ => Err(
                "a script step needs exactly one of `progress`, `result`, `error` or `builtin`"
                    .into(),
            ),
        }
    }
}

impl From<ScriptStep> for RawStep {
    fn from(step: ScriptStep) -> Self {
        let mut raw = RawStep {
            after_ms: step.after_ms,
            progress: None,
            result: None,
            error: None,
            builtin: None,
        };
        match step.action {
            StepAction::Progress(m) => raw.progress = Some(m),
            StepAction::Result(m) => raw.result = Some(m),
            StepAction::Error(m) => raw.error = Some(m),
            StepAction::Builtin(b) => raw.builtin = Some(b),
        }
        raw
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn camel_case_flow_from_json() {
        let flow: Result<SimFlow, _> = serde_json::from_value(json!({
            "id": "f1", "status": "inactive", "requireWebhookAuth": true,
            "hmacHeaderKey": "x-sig", "hmacAlgorithm": "sha512", "hmacKey": "k",
            "script": [
                {"after_ms": 10, "progress": {"message": "hi {{input.name}}"}},
                {"afterMs": 5, "builtin": "lookup-customer"}
            ]
        }));
        let flow = flow.unwrap_or_default();
        assert_eq!(flow.id, "f1");
        assert_eq!(flow.status, FlowStatus::Inactive);
        assert!(flow.require_webhook_auth);
        assert_eq!(flow.hmac_algorithm, "sha512");
        assert_eq!(flow.script.len(), 2);
        assert_eq!(
            flow.script[0].action,
            StepAction::Progress(StepMessage::new("hi {{input.name}}", json!({})))
        );
        assert_eq!(
            flow.script[1],
            ScriptStep::builtin(5, Builtin::LookupCustomer)
        );
        assert!(!format!("{flow:?}").contains("\"k\""));
    }

    #[test]
    fn step_needs_exactly_one_action() {
        let two = serde_json::from_value::<ScriptStep>(
            json!({"progress": {"message": "a"}, "result": {"message": "b"}}),
        );
        assert!(two.is_err());
        let none = serde_json::from_value::<ScriptStep>(json!({"after_ms": 1}));
        assert!(none.is_err());
    }

    #[test]
    fn step_round_trips() {
        let step = ScriptStep::error(7, "boom", json!({"code": 1}));
        let v = serde_json::to_value(&step).unwrap_or_default();
        assert_eq!(
            v,
            json!({"after_ms": 7, "error": {"message": "boom", "data": {"code": 1}}})
        );
        assert_eq!(serde_json::from_value::<ScriptStep>(v).ok(), Some(step));
    }

    #[test]
    fn knobs_merge() {
        let a = OihKnobs {
            early: true,
            delay_ms: 5,
            ..OihKnobs::default()
        };
        let b = OihKnobs {
            reorder: true,
            delay_ms: 2,
            ..OihKnobs::default()
        };
        let m = a.merged(&b);
        assert!(m.early && m.reorder && !m.bad_auth);
        assert_eq!(m.delay_ms, 5);
    }
}
