//! A `review` step: the session waits for a person's decision, with the
//! facts the reviewer needs, an optional group and a required deadline.

use super::{Parser, Ref, suggest, valid_name};
use crate::workflow::model::*;
use crate::workflow::yaml::*;
use marked_yaml::types::MarkedMappingNode;

impl Parser<'_> {
    /// `review:` maps each decision (`approved`, `declined`, both required)
    /// to its step; `facts`, `group`, `timeout` and `on_timeout` beside it.
    pub(super) fn review(
        &mut self,
        map: &MarkedMappingNode,
        refs: &mut Vec<Ref>,
    ) -> Option<ReviewStep> {
        self.unknown_keys(
            map,
            &[
                "review",
                "facts",
                "group",
                "timeout",
                "on_timeout",
                "present",
            ],
            "review step",
        );
        let node = get(map, "review")?;
        let mut on_approved = None;
        let mut on_declined = None;
        match node.as_mapping() {
            Some(decisions) => {
                for (decision, target) in decisions.iter() {
                    let what = format!("decision `{}`", decision.as_str());
                    match decision.as_str() {
                        "approved" => on_approved = self.branch(target, refs, &what),
                        "declined" => on_declined = self.branch(target, refs, &what),
                        other => self.err(
                            scalar_pos(decision),
                            format!(
                                "unknown review decision `{other}`: a reviewer decides `approved` or `declined`{}",
                                suggest(other, &["approved", "declined"])
                            ),
                        ),
                    }
                }
                for (decision, found) in [
                    ("approved", on_approved.is_some()),
                    ("declined", on_declined.is_some()),
                ] {
                    if !found && get(decisions, decision).is_none() {
                        self.err(
                            pos(node),
                            format!("`review` needs the step that `{decision}` leads to"),
                        );
                    }
                }
            }
            None => self.err(
                pos(node),
                "`review` must map each decision (`approved`, `declined`) to the step it leads to",
            ),
        }
        let group = match get(map, "group") {
            None => None,
            Some(n) => match n.as_scalar().map(|s| s.as_str().to_string()) {
                Some(g) if valid_name(&g) => Some(g),
                _ => {
                    self.err(
                        pos(n),
                        "`group` names the reviewers' group (lowercase letters, digits, `-` or `_`)",
                    );
                    None
                }
            },
        };
        // Problems here do not stop the checks below: every one is reported.
        let facts = match get(map, "facts") {
            None => Ok(None),
            Some(f) if f.as_mapping().is_none() => {
                self.err(
                    pos(f),
                    "`facts` must be a mapping: what the reviewer sees, by name",
                );
                Err(())
            }
            Some(f) => self
                .template(f, &["input", "state", "session"])
                .map(Some)
                .ok_or(()),
        };
        let timeout_ms = match get(map, "timeout") {
            Some(_) => self.duration(map, "timeout"),
            None => {
                self.err(
                    pos(node),
                    "a review needs a `timeout` (e.g. `timeout: 72h`) and an `on_timeout` step: nothing waits forever",
                );
                None
            }
        };
        let on_timeout = match get(map, "on_timeout") {
            Some(_) => self.step_ref(map, "on_timeout", refs, true),
            None => {
                if get(map, "timeout").is_some() {
                    self.err(
                        pos(node),
                        "a review with a `timeout` needs an `on_timeout` step",
                    );
                }
                None
            }
        };
        let present = match get(map, "present") {
            None => Ok(None),
            Some(p) => {
                if p.as_mapping().and_then(|m| get(m, "kind")).is_none() {
                    self.err(pos(p), "`present` needs a `kind` (progress, for example)");
                }
                self.template(p, &["input", "state", "session"])
                    .map(Some)
                    .ok_or(())
            }
        };
        Some(ReviewStep {
            facts: facts.ok()?,
            present: present.ok()?,
            group,
            timeout_ms: timeout_ms?,
            on_approved: on_approved?,
            on_declined: on_declined?,
            on_timeout: on_timeout?,
        })
    }
}
