//! The sandbox's events file: what the "outside world" does while a workflow
//! runs, each entry applied once the session waits in a given step.
//!
//! ```yaml
//! events:
//!   - at: wait_for_result      # when the session waits in this step
//!     sim: score               # POST /sim/score/control/{provider session}/complete
//!     action: complete
//!     body: {score: 72}
//!   - at: verify
//!     signal: abandoned        # what the browser would send
//! ```

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Script {
    events: Vec<ScriptEvent>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptEvent {
    /// The wait step the session must be in before this event is applied.
    pub at: String,
    /// A simulator (`score`, `incode`, ...) whose control call to make.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sim: Option<String>,
    /// The control action: `/sim/{sim}/control/{provider session id}/{action}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// JSON body of the control call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    /// A browser signal to send instead of a simulator call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl ScriptEvent {
    pub fn describe(&self) -> String {
        match (&self.signal, &self.sim, &self.action) {
            (Some(s), _, _) => format!("browser signal `{s}`"),
            (None, Some(sim), Some(action)) => {
                let body = self
                    .body
                    .as_ref()
                    .map(|b| format!(" {b}"))
                    .unwrap_or_default();
                format!("{sim} simulator: {action}{body}")
            }
            _ => "nothing".into(),
        }
    }
}

/// Checks that each event does one thing (what serde cannot say).
pub fn check(events: &[ScriptEvent]) -> Result<(), String> {
    for (i, ev) in events.iter().enumerate() {
        let n = i + 1;
        match (&ev.signal, &ev.sim, &ev.action) {
            (Some(_), None, None) | (None, Some(_), Some(_)) => {}
            (Some(_), _, _) => {
                return Err(format!(
                    "event {n} (at `{}`): give either `signal` or `sim` + `action`, not both",
                    ev.at
                ));
            }
            _ => {
                return Err(format!(
                    "event {n} (at `{}`) needs `signal`, or `sim` and `action`",
                    ev.at
                ));
            }
        }
    }
    Ok(())
}

/// Parses an events file; errors carry `file:line:col`.
pub fn parse(name: &str, text: &str) -> Result<Vec<ScriptEvent>, String> {
    let mut events = match marked_yaml::from_yaml::<Script>(0, text) {
        Ok(v) => v.events,
        Err(marked_yaml::FromYamlError::ParseYaml(e)) => return Err(format!("{name}:{e}")),
        Err(marked_yaml::FromYamlError::FromNode(e)) => {
            let at = e
                .start_mark()
                .map(|m| format!("{name}:{}:{}", m.line(), m.column()))
                .unwrap_or_else(|| name.to_string());
            return Err(format!("{at}: {e}"));
        }
    };
    // marked-yaml's serde sees every scalar as a string; bodies get YAML's
    // own types (numbers, booleans) from the node tree instead.
    if let Ok(root) = marked_yaml::parse_yaml(0, text) {
        let typed = gangway_core::workflow::yaml_to_json(&root);
        for (i, ev) in events.iter_mut().enumerate() {
            let t = &typed["events"][i];
            if ev.body.is_some() {
                ev.body = Some(t["body"].clone());
            }
            if ev.data.is_some() {
                ev.data = Some(t["data"].clone());
            }
        }
    }
    check(&events).map_err(|e| format!("{name}: {e}"))?;
    Ok(events)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_sim_and_signal_events() {
        let evs = parse(
            "e.yaml",
            "events:\n- at: wait\n  sim: score\n  action: complete\n  body: {score: 72}\n- at: verify\n  signal: abandoned\n",
        )
        .unwrap();
        assert_eq!(evs.len(), 2);
        assert_eq!(
            evs[0].describe(),
            "score simulator: complete {\"score\":72}"
        );
        assert_eq!(evs[1].describe(), "browser signal `abandoned`");
    }

    #[test]
    fn errors_name_the_place() {
        let err = parse("e.yaml", "events:\n- at: wait\n  simm: score\n").unwrap_err();
        assert!(err.starts_with("e.yaml:3:"), "{err}");
        assert!(err.contains("simm"), "{err}");
        let err = parse("e.yaml", "events:\n- at: wait\n").unwrap_err();
        assert!(err.contains("needs `signal`"), "{err}");
    }
}
