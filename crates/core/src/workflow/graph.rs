//! A workflow as a graph for people to read: every step a node, every way
//! out of a step an edge labelled with what takes it (an event, a rule, an
//! outcome of a child, `timeout`, `error`), and the outcomes the workflow can
//! end with as terminal nodes. The console draws it (web/console/graph.js);
//! it is computed here, from the validated workflow, so that the drawing
//! never disagrees with what the engine runs.

use super::model::{Step, Workflow};
use crate::outcome::Outcome;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Graph {
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Node {
    /// The step's name, or `outcome:<outcome>` for a terminal node (step
    /// names cannot hold `:`).
    pub id: String,
    /// `call`, `wait`, `decide`, `end`, `run`, `review`, or `outcome`.
    pub kind: &'static str,
    pub label: String,
    /// What the step does, in a few words (the action it calls, the
    /// workflow it runs, the group that reviews); empty when nothing to add.
    pub detail: String,
    /// The 1-based source line of the step; `None` for outcomes.
    pub line: Option<usize>,
    /// The workflow's first step.
    pub start: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Edge {
    pub from: String,
    pub to: String,
    pub label: String,
    /// Not written in the source: a call without `on_error` ends the
    /// session `failed` when the call fails for good.
    pub implicit: bool,
}

/// The id of an outcome's terminal node.
pub fn outcome_node(outcome: Outcome) -> String {
    format!("outcome:{}", outcome.as_str())
}

/// The graph of a validated workflow.
pub fn graph_of(wf: &Workflow) -> Graph {
    let mut nodes = Vec::with_capacity(wf.steps.len() + Outcome::ALL.len());
    let mut edges = Vec::new();
    let mut outcomes: Vec<Outcome> = Vec::new();
    for (name, step) in &wf.steps {
        let edge = |to: &str, label: &str| Edge {
            from: name.clone(),
            to: to.to_string(),
            label: label.to_string(),
            implicit: false,
        };
        let detail = match step {
            Step::Call(c) => {
                edges.push(edge(&c.next, "ok"));
                match &c.on_error {
                    Some(e) => edges.push(edge(e, "error")),
                    None => {
                        outcomes.push(Outcome::Failed);
                        edges.push(Edge {
                            implicit: true,
                            ..edge(&outcome_node(Outcome::Failed), "error")
                        });
                    }
                }
                c.action.clone()
            }
            Step::Wait(w) => {
                for (event, to) in &w.on {
                    edges.push(edge(to, event));
                }
                edges.push(edge(&w.on_timeout, "timeout"));
                w.poll
                    .as_ref()
                    .map(|p| format!("polls {}", p.action))
                    .unwrap_or_default()
            }
            Step::Decide(d) => {
                for rule in &d.rules {
                    edges.push(edge(&rule.next, rule.when.source()));
                }
                edges.push(edge(&d.default, "default"));
                if let Some(e) = &d.on_error {
                    edges.push(edge(e, "error"));
                }
                match d.rules.len() {
                    1 => "1 rule".to_string(),
                    n => format!("{n} rules"),
                }
            }
            Step::End(e) => {
                outcomes.push(e.outcome);
                edges.push(edge(&outcome_node(e.outcome), ""));
                String::new()
            }
            Step::Run(r) => {
                for (outcome, to) in &r.on {
                    edges.push(edge(to, outcome.as_str()));
                }
                if let Some(d) = &r.default {
                    edges.push(edge(d, "default"));
                }
                edges.push(edge(&r.on_timeout, "timeout"));
                format!("runs {}", r.workflow)
            }
            Step::Review(r) => {
                edges.push(edge(&r.on_approved, "approved"));
                edges.push(edge(&r.on_declined, "declined"));
                edges.push(edge(&r.on_timeout, "timeout"));
                r.group
                    .as_ref()
                    .map(|g| format!("group {g}"))
                    .unwrap_or_default()
            }
        };
        nodes.push(Node {
            id: name.clone(),
            kind: step.kind(),
            label: name.clone(),
            detail,
            line: wf.lines.get(name).copied(),
            start: *name == wf.start,
        });
    }
    for outcome in Outcome::ALL {
        if outcomes.contains(&outcome) {
            nodes.push(Node {
                id: outcome_node(outcome),
                kind: "outcome",
                label: outcome.as_str().to_string(),
                detail: String::new(),
                line: None,
                start: false,
            });
        }
    }
    Graph { nodes, edges }
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;
    use crate::catalog::{ActionSpec, Catalog};

    const ACTIONS: &[ActionSpec] = &[ActionSpec {
        name: "http.request",
        required: &["service", "path"],
        optional: &[],
        url_paths: &[],
        summary: "",
    }];

    fn parse(src: &str) -> Workflow {
        crate::workflow::parse(src, &Catalog::new([ACTIONS])).expect("valid")
    }

    #[test]
    fn steps_branches_and_outcomes() {
        let wf = parse(concat!(
            "id: g\nversion: 1\nsteps:\n",
            "  check:\n    call: http.request\n    with: {service: s, path: /x}\n",
            "    save_as: s\n    next: wait\n",
            "  wait:\n    wait:\n      s.done: decide\n    timeout: 1m\n    on_timeout: late\n",
            "  decide:\n    decide:\n      - when: state.s.score > 5\n        next: ok\n",
            "    default: late\n",
            "  ok:\n    end: approved\n    reason: ok\n",
            "  late:\n    end: expired\n    reason: late\n",
        ));
        let g = graph_of(&wf);
        let ids: Vec<&str> = g.nodes.iter().map(|n| n.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "check",
                "wait",
                "decide",
                "ok",
                "late",
                "outcome:approved",
                "outcome:failed",
                "outcome:expired"
            ]
        );
        assert_eq!(g.nodes[0].line, Some(4));
        assert!(g.nodes[0].start);
        assert_eq!(g.nodes[0].detail, "http.request");
        assert_eq!(g.nodes[1].line, Some(9));
        let e = |from: &str, to: &str| {
            g.edges
                .iter()
                .find(|e| e.from == from && e.to == to)
                .map(|e| (e.label.as_str(), e.implicit))
        };
        assert_eq!(e("check", "wait"), Some(("ok", false)));
        assert_eq!(e("check", "outcome:failed"), Some(("error", true)));
        assert_eq!(e("wait", "decide"), Some(("s.done", false)));
        assert_eq!(e("wait", "late"), Some(("timeout", false)));
        assert_eq!(e("decide", "ok"), Some(("state.s.score > 5", false)));
        assert_eq!(e("decide", "late"), Some(("default", false)));
        assert_eq!(e("ok", "outcome:approved"), Some(("", false)));
        assert_eq!(g.edges.len(), 8);
    }
}
