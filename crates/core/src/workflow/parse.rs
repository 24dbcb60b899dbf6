//! Source text -> validated [`Workflow`], reporting every problem at once.

use super::diagnostics::{Diagnostic, Diagnostics};
use super::model::*;
use super::yaml::{get, kind_name, pos, scalar_pos, to_json, too_deep};
use crate::catalog::Catalog;
use crate::expr::{Expr, Template, compile_string};
use crate::outcome::Outcome;
use indexmap::IndexMap;
use marked_yaml::types::MarkedMappingNode;
use marked_yaml::{LoaderOptions, Node};
use std::collections::HashSet;

const STEP_KINDS: [&str; 6] = ["call", "wait", "decide", "end", "run", "review"];
const DEFAULT_CALL_TIMEOUT_MS: u64 = 30_000;
const DEFAULT_POLL_EVERY_MS: u64 = 5_000;
const DEFAULT_POLL_MAX_MS: u64 = 60_000;
const DEFAULT_RETRY_EVERY_MS: u64 = 1_000;
const DEFAULT_RETRY_MAX_MS: u64 = 30_000;
/// The longest `retention` a workflow may declare: 100 years.
const MAX_RETENTION_MS: u64 = 36_500 * 24 * 3600 * 1000;

mod call_retry;
mod input;
mod review_step;
mod suggest;

use suggest::suggest;

/// Parses and validates one workflow file; `catalog` lists the actions a
/// `call:` may name.
pub fn parse(source: &str, catalog: &Catalog) -> Result<Workflow, Diagnostics> {
    if let Some(d) = too_deep(source) {
        return Err(Diagnostics(vec![d]));
    }
    // Quoted scalars stay strings (`"001"`, `"null"`, `"true"`): only plain
    // ones are read as numbers, booleans or null (yaml.rs `to_json`).
    let opts = LoaderOptions::default()
        .error_on_duplicate_keys(true)
        .prevent_coercion(true);
    let root = match marked_yaml::parse_yaml_with_options(0, source, opts) {
        Ok(n) => n,
        Err(e) => return Err(Diagnostics(vec![load_error(&e)])),
    };
    let mut p = Parser {
        diags: Vec::new(),
        input_fields: None,
        catalog,
    };
    let wf = p.workflow(&root);
    let mut diags = p.diags;
    diags.sort();
    diags.dedup();
    match wf {
        Some(wf) if diags.is_empty() => Ok(wf),
        _ => Err(Diagnostics(diags)),
    }
}

fn load_error(e: &marked_yaml::LoadError) -> Diagnostic {
    use marked_yaml::LoadError as L;
    let (m, msg) = match e {
        L::TopLevelMustBeMapping(m) => (*m, "a workflow must be a YAML mapping".to_string()),
        L::TopLevelMustBeSequence(m) => (*m, "unexpected top-level sequence".to_string()),
        L::UnexpectedAnchor(m) => (*m, "YAML anchors are not supported".to_string()),
        L::MappingKeyMustBeScalar(m) => (*m, "mapping keys must be plain strings".to_string()),
        L::UnexpectedTag(m) => (*m, "YAML tags are not supported".to_string()),
        L::ScanError(m, err) => (*m, format!("invalid YAML: {err}")),
        L::DuplicateKey(inner) => {
            let m = inner
                .key
                .span()
                .start()
                .copied()
                .unwrap_or_else(|| marked_yaml::Marker::new(0, 0, 1, 1));
            (m, format!("duplicate key `{}`", inner.key.as_str()))
        }
    };
    Diagnostic {
        line: m.line().max(1),
        col: m.column().max(1),
        message: msg,
    }
}

struct Parser<'c> {
    diags: Vec<Diagnostic>,
    /// The fields the `input` section declares, once read: what
    /// `input.<field>` may read. `None`: no section, any field.
    input_fields: Option<Vec<String>>,
    catalog: &'c Catalog,
}

/// A step reference with the position it was written at, checked later.
struct Ref {
    target: String,
    at: (usize, usize),
}

impl Parser<'_> {
    fn err(&mut self, at: (usize, usize), message: impl Into<String>) {
        self.diags.push(Diagnostic {
            line: at.0,
            col: at.1,
            message: message.into(),
        });
    }

    fn workflow(&mut self, root: &Node) -> Option<Workflow> {
        let Some(map) = root.as_mapping() else {
            self.err(pos(root), "a workflow must be a YAML mapping");
            return None;
        };
        self.unknown_keys(
            map,
            &[
                "id",
                "version",
                "description",
                "input",
                "retention",
                "start",
                "steps",
            ],
            "workflow",
        );
        let id = self.required_string(map, "id", pos(root));
        if let Some(id) = &id
            && !valid_name(id)
        {
            let at = get(map, "id").map(pos).unwrap_or((1, 1));
            self.err(
                at,
                format!("workflow id `{id}` must be lowercase letters, digits, `-` or `_`"),
            );
        }
        let version = match get(map, "version") {
            None => {
                self.err(pos(root), "missing `version` (a positive integer)");
                None
            }
            Some(n) => match n.as_scalar().and_then(|s| s.as_str().parse::<u32>().ok()) {
                Some(v) if v >= 1 => Some(v),
                _ => {
                    self.err(pos(n), "`version` must be a positive integer");
                    None
                }
            },
        };
        let description = get(map, "description")
            .and_then(|n| n.as_scalar())
            .map(|s| s.as_str().to_string())
            .unwrap_or_default();

        let retention = self.retention(map);

        // Before the steps: their expressions are checked against it.
        let input = map
            .iter()
            .find(|(k, _)| k.as_str() == "input")
            .and_then(|(k, n)| self.input_section(scalar_pos(k), n));

        let Some(steps_node) = get(map, "steps") else {
            self.err(pos(root), "missing `steps`");
            return None;
        };
        let Some(steps_map) = steps_node.as_mapping() else {
            self.err(
                pos(steps_node),
                format!(
                    "`steps` must be a mapping of step names, found {}",
                    kind_name(steps_node)
                ),
            );
            return None;
        };
        if steps_map.is_empty() {
            self.err(pos(steps_node), "`steps` is empty");
            return None;
        }

        let mut steps = IndexMap::new();
        let mut refs: Vec<Ref> = Vec::new();
        let mut step_pos: IndexMap<String, (usize, usize)> = IndexMap::new();
        // Successors by step, from the references each step wrote, so that
        // reachability is checked even when a step has other problems.
        let mut successors: IndexMap<String, Vec<String>> = IndexMap::new();
        for (name, node) in steps_map.iter() {
            let at = scalar_pos(name);
            let name = name.as_str().to_string();
            if !valid_name(&name) {
                self.err(
                    at,
                    format!("step name `{name}` must be lowercase letters, digits, `-` or `_`"),
                );
            }
            step_pos.insert(name.clone(), at);
            let before = refs.len();
            let step = self.step(&name, node, &mut refs);
            successors.insert(
                name.clone(),
                refs[before..].iter().map(|r| r.target.clone()).collect(),
            );
            if let Some(step) = step {
                steps.insert(name, step);
            }
        }

        let start = match get(map, "start") {
            Some(n) => {
                let s = n
                    .as_scalar()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default();
                refs.push(Ref {
                    target: s.clone(),
                    at: pos(n),
                });
                s
            }
            None => steps_map
                .iter()
                .next()
                .map(|(k, _)| k.as_str().to_string())
                .unwrap_or_default(),
        };

        for r in &refs {
            if !step_pos.contains_key(&r.target) {
                let known: Vec<&str> = step_pos.keys().map(String::as_str).collect();
                self.err(
                    r.at,
                    format!("unknown step `{}`{}", r.target, suggest(&r.target, &known)),
                );
            }
        }
        let mut seen = HashSet::new();
        let mut stack = vec![start.clone()];
        while let Some(s) = stack.pop() {
            if !seen.insert(s.clone()) {
                continue;
            }
            if let Some(next) = successors.get(&s) {
                stack.extend(next.iter().cloned());
            }
        }
        for (name, at) in &step_pos {
            if !seen.contains(name) {
                self.err(*at, format!("step `{name}` is unreachable from `{start}`"));
            }
        }
        if steps.len() == step_pos.len() && !steps.values().any(|s| matches!(s, Step::End(_))) {
            self.err(
                pos(steps_node),
                "no `end` step: a workflow must be able to end",
            );
        }

        let lines = step_pos.iter().map(|(k, at)| (k.clone(), at.0)).collect();
        Some(Workflow {
            id: id?,
            version: version?,
            description,
            input,
            retention,
            start,
            steps,
            lines,
        })
    }

    /// `retention`: how long a session's personal data is kept after it
    /// ends (then it is erased, leaving a tombstone).
    fn retention(&mut self, map: &MarkedMappingNode) -> Option<u64> {
        let ms = self.duration(map, "retention")?;
        if ms > MAX_RETENTION_MS {
            if let Some(n) = get(map, "retention") {
                self.err(pos(n), "`retention` must be at most 36500d (100 years)");
            }
            return None;
        }
        Some(ms)
    }

    fn step(&mut self, name: &str, node: &Node, refs: &mut Vec<Ref>) -> Option<Step> {
        let Some(map) = node.as_mapping() else {
            self.err(
                pos(node),
                format!("step `{name}` must be a mapping with one of call, wait, decide, end, run, review"),
            );
            return None;
        };
        let kinds: Vec<&str> = STEP_KINDS
            .iter()
            .copied()
            .filter(|k| get(map, k).is_some())
            .collect();
        match kinds.as_slice() {
            ["call"] => self.call(name, map, refs).map(Step::Call),
            ["wait"] => self.wait(name, map, refs).map(Step::Wait),
            ["decide"] => self.decide(name, map, refs).map(Step::Decide),
            ["end"] => self.end(map).map(Step::End),
            ["run"] => self.run(name, map, refs).map(Step::Run),
            ["review"] => self.review(map, refs).map(Step::Review),
            [] => {
                let keys: Vec<&str> = map.keys().map(|k| k.as_str()).collect();
                let hint = keys.iter().find_map(|k| {
                    let s = suggest(k, &STEP_KINDS);
                    (!s.is_empty()).then_some(s)
                });
                self.err(
                    pos(node),
                    format!(
                        "unknown step kind in `{name}`: expected one of call, wait, decide, end, run, review{}",
                        hint.unwrap_or_default()
                    ),
                );
                None
            }
            many => {
                self.err(
                    pos(node),
                    format!(
                        "step `{name}` has several kinds ({}); use one",
                        many.join(", ")
                    ),
                );
                None
            }
        }
    }

    fn call(
        &mut self,
        name: &str,
        map: &MarkedMappingNode,
        refs: &mut Vec<Ref>,
    ) -> Option<CallStep> {
        self.unknown_keys(
            map,
            &[
                "call",
                "with",
                "save_as",
                "provider_ref",
                "timeout",
                "next",
                "on_error",
                "retry",
            ],
            "call step",
        );
        let (action, with) = self.action_and_args(map)?;
        let provider_ref = get(map, "provider_ref")
            .and_then(|n| self.expr_node(n, &["input", "state", "session", "result"]));
        let timeout_ms = self
            .duration(map, "timeout")
            .unwrap_or(DEFAULT_CALL_TIMEOUT_MS);
        let next = self.step_ref(map, "next", refs, true);
        let on_error = self.step_ref(map, "on_error", refs, false);
        let save_as = get(map, "save_as")
            .and_then(|n| n.as_scalar())
            .map(|s| s.as_str().to_string())
            .unwrap_or_else(|| name.to_string());
        let retry = match get(map, "retry") {
            None => None,
            Some(r) => Some(self.call_retry(r)?),
        };
        Some(CallStep {
            action,
            with,
            save_as,
            provider_ref,
            timeout_ms,
            next: next?,
            on_error,
            retry,
        })
    }

    /// `call:` and `with:` of a call step or poll: known action, known arguments.
    fn action_and_args(&mut self, map: &MarkedMappingNode) -> Option<(String, Template)> {
        let call_node = get(map, "call")?;
        let action = call_node
            .as_scalar()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default();
        let spec = self.catalog.action(&action);
        if spec.is_none() {
            let known = self.catalog.names();
            self.err(
                pos(call_node),
                format!(
                    "unknown connector action `{action}`{}",
                    suggest(&action, &known)
                ),
            );
        }
        let with = match get(map, "with") {
            None => {
                if let Some(spec) = spec {
                    for r in spec.required {
                        self.err(pos(call_node), format!("`{action}` needs argument `{r}`"));
                    }
                }
                Template::literal(serde_json::json!({}))
            }
            Some(w) => {
                let Some(wmap) = w.as_mapping() else {
                    self.err(pos(w), "`with` must be a mapping of arguments");
                    return None;
                };
                if let Some(spec) = spec {
                    for (k, _) in wmap.iter() {
                        if !spec.accepts(k.as_str()) {
                            let all: Vec<&str> =
                                spec.required.iter().chain(spec.optional).copied().collect();
                            self.err(
                                scalar_pos(k),
                                format!(
                                    "unknown argument `{}` for `{action}`{}",
                                    k.as_str(),
                                    suggest(k.as_str(), &all)
                                ),
                            );
                        }
                    }
                    for r in spec.required {
                        if get(wmap, r).is_none() {
                            self.err(pos(w), format!("`{action}` needs argument `{r}`"));
                        }
                    }
                }
                let mut with = self.template(w, &["input", "state", "session"])?;
                for arg in spec.map_or(&[][..], |s| s.url_paths) {
                    if let (Some(node), Err(message)) = (get(wmap, arg), with.url_path_field(arg)) {
                        self.err(pos(node), message);
                    }
                }
                with
            }
        };
        Some((action, with))
    }

    fn wait(
        &mut self,
        _name: &str,
        map: &MarkedMappingNode,
        refs: &mut Vec<Ref>,
    ) -> Option<WaitStep> {
        self.unknown_keys(
            map,
            &["wait", "timeout", "until", "on_timeout", "poll", "present"],
            "wait step",
        );
        let wait_node = get(map, "wait")?;
        let mut on = IndexMap::new();
        match wait_node.as_mapping() {
            Some(events) if !events.is_empty() => {
                for (event, target) in events.iter() {
                    let ev = event.as_str().to_string();
                    if !valid_event(&ev) {
                        self.err(scalar_pos(event), format!("event name `{ev}` must look like `source.name` (letters, digits, `_`, `.`)"));
                    }
                    if let Some(t) = self.branch(target, refs, &format!("event `{ev}`")) {
                        on.insert(ev, t);
                    }
                }
            }
            _ => self.err(
                pos(wait_node),
                "`wait` must map each event name to the step it leads to",
            ),
        }
        let timeout_ms = match get(map, "timeout") {
            Some(_) => self.duration(map, "timeout"),
            None => {
                self.err(
                    pos(wait_node),
                    "a wait needs a `timeout` (e.g. `timeout: 10m`) and an `on_timeout` step",
                );
                None
            }
        };
        let on_timeout = match get(map, "on_timeout") {
            Some(_) => self.step_ref(map, "on_timeout", refs, true),
            None => {
                if get(map, "timeout").is_some() {
                    self.err(
                        pos(wait_node),
                        "a wait with a `timeout` needs an `on_timeout` step",
                    );
                }
                None
            }
        };
        let until =
            get(map, "until").and_then(|n| self.expr_node(n, &["input", "state", "session"]));
        let poll = match get(map, "poll") {
            None => None,
            Some(p) => Some(self.poll(p, &on)?),
        };
        let present = match get(map, "present") {
            None => None,
            Some(p) => {
                if p.as_mapping().and_then(|m| get(m, "kind")).is_none() {
                    self.err(
                        pos(p),
                        "`present` needs a `kind` (iframe, qr, popup or chat)",
                    );
                }
                Some(self.template(p, &["input", "state", "session"])?)
            }
        };
        Some(WaitStep {
            on,
            timeout_ms: timeout_ms?,
            until,
            on_timeout: on_timeout?,
            poll,
            present,
        })
    }

    fn poll(&mut self, node: &Node, on: &IndexMap<String, String>) -> Option<PollSpec> {
        let Some(map) = node.as_mapping() else {
            self.err(
                pos(node),
                "`poll` must be a mapping with `call`, `with` and `emit`",
            );
            return None;
        };
        self.unknown_keys(
            map,
            &["call", "with", "every", "max_every", "save_as", "emit"],
            "poll",
        );
        if get(map, "call").is_none() {
            self.err(
                pos(node),
                "`poll` needs a `call` (the connector's status action)",
            );
            return None;
        }
        let (action, with) = self.action_and_args(map)?;
        let every_ms = self.duration(map, "every").unwrap_or(DEFAULT_POLL_EVERY_MS);
        let max_every_ms = self
            .duration(map, "max_every")
            .unwrap_or(DEFAULT_POLL_MAX_MS)
            .max(every_ms);
        let save_as = match get(map, "save_as") {
            None => None,
            Some(n) => match n.as_scalar().map(|s| s.as_str().to_string()) {
                Some(name) if valid_name(&name) && name != "event" => Some(name),
                _ => {
                    self.err(
                        pos(n),
                        "`save_as` must be a name of lowercase letters, digits, `-` or `_` (not `event`)",
                    );
                    None
                }
            },
        };
        let mut emit = Vec::new();
        match get(map, "emit") {
            None => self.err(pos(node), "`poll` needs `emit`: event names with the CEL condition over `result` that emits each"),
            Some(e) => match e.as_mapping() {
                Some(em) => {
                    for (event, cond) in em.iter() {
                        let ev = event.as_str().to_string();
                        if !on.contains_key(&ev) {
                            self.err(scalar_pos(event), format!("poll emits `{ev}`, which this wait does not wait for"));
                        }
                        if let Some(expr) = self.expr_node(cond, &["input", "state", "session", "result"]) {
                            emit.push((ev, expr));
                        }
                    }
                }
                None => self.err(pos(e), "`emit` must map event names to CEL conditions"),
            },
        }
        Some(PollSpec {
            action,
            with,
            every_ms,
            max_every_ms,
            save_as,
            emit,
        })
    }

    fn decide(
        &mut self,
        _name: &str,
        map: &MarkedMappingNode,
        refs: &mut Vec<Ref>,
    ) -> Option<DecideStep> {
        self.unknown_keys(map, &["decide", "default", "on_error"], "decide step");
        let node = get(map, "decide")?;
        let mut rules = Vec::new();
        match node.as_sequence() {
            Some(seq) if !seq.is_empty() => {
                for item in seq.iter() {
                    let Some(rm) = item.as_mapping() else {
                        self.err(
                            pos(item),
                            "each rule must be a mapping with `when` and `next`",
                        );
                        continue;
                    };
                    self.unknown_keys(rm, &["when", "next"], "rule");
                    let when = match get(rm, "when") {
                        Some(w) => self.expr_node(w, &["input", "state", "session"]),
                        None => {
                            self.err(pos(item), "rule needs `when` (a CEL condition)");
                            None
                        }
                    };
                    let next = self.step_ref(rm, "next", refs, true);
                    if let (Some(when), Some(next)) = (when, next) {
                        let reads = when
                            .read_paths()
                            .into_iter()
                            .filter_map(|p| Expr::compile(&p).ok().map(|e| (p, e)))
                            .collect();
                        rules.push(Rule { when, next, reads });
                    }
                }
            }
            _ => self.err(
                pos(node),
                "`decide` must be a non-empty list of rules `{when, next}`",
            ),
        }
        let default = match get(map, "default") {
            Some(_) => self.step_ref(map, "default", refs, true),
            None => {
                self.err(
                    pos(node),
                    "a decide needs a `default` step for when no rule matches",
                );
                None
            }
        };
        let on_error = self.step_ref(map, "on_error", refs, false);
        Some(DecideStep {
            rules,
            default: default?,
            on_error,
        })
    }

    fn run(&mut self, name: &str, map: &MarkedMappingNode, refs: &mut Vec<Ref>) -> Option<RunStep> {
        self.unknown_keys(
            map,
            &[
                "run",
                "with",
                "save_as",
                "timeout",
                "on",
                "default",
                "on_timeout",
            ],
            "run step",
        );
        let run_node = get(map, "run")?;
        let workflow = run_node
            .as_scalar()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default();
        if !valid_name(&workflow) {
            self.err(
                pos(run_node),
                "`run` names the child workflow's id (lowercase letters, digits, `-` or `_`)",
            );
        }
        let with = match get(map, "with") {
            None => Template::literal(serde_json::json!({})),
            Some(w) => {
                if w.as_mapping().is_none() {
                    self.err(pos(w), "`with` must be a mapping: the child's input");
                    return None;
                }
                self.template(w, &["input", "state", "session"])?
            }
        };
        let timeout_ms = match get(map, "timeout") {
            Some(_) => self.duration(map, "timeout"),
            None => {
                self.err(
                    pos(run_node),
                    "a run step needs a `timeout` (e.g. `timeout: 30m`) and an `on_timeout` step",
                );
                None
            }
        };
        let on_timeout = match get(map, "on_timeout") {
            Some(_) => self.step_ref(map, "on_timeout", refs, true),
            None => {
                if get(map, "timeout").is_some() {
                    self.err(
                        pos(run_node),
                        "a run step with a `timeout` needs an `on_timeout` step",
                    );
                }
                None
            }
        };
        let mut on = IndexMap::new();
        if let Some(on_node) = get(map, "on") {
            match on_node.as_mapping() {
                Some(m) => {
                    for (k, target) in m.iter() {
                        let outcome = match k.as_str().parse::<Outcome>() {
                            Ok(o) => o,
                            Err(e) => {
                                self.err(scalar_pos(k), e);
                                continue;
                            }
                        };
                        if let Some(t) = self.branch(target, refs, &format!("outcome `{outcome}`"))
                        {
                            on.insert(outcome, t);
                        }
                    }
                }
                None => self.err(
                    pos(on_node),
                    "`on` must map each outcome of the child to the step it leads to",
                ),
            }
        }
        let default = self.step_ref(map, "default", refs, false);
        let save_as = get(map, "save_as")
            .and_then(|n| n.as_scalar())
            .map(|s| s.as_str().to_string())
            .unwrap_or_else(|| name.to_string());
        Some(RunStep {
            workflow,
            at: pos(run_node),
            with,
            save_as,
            timeout_ms: timeout_ms?,
            on,
            default,
            on_timeout: on_timeout?,
        })
    }

    /// The step a branch (`event: step`, `outcome: step`) leads to.
    fn branch(&mut self, target: &Node, refs: &mut Vec<Ref>, what: &str) -> Option<String> {
        let Some(t) = target.as_scalar() else {
            self.err(pos(target), format!("{what} must lead to a step name"));
            return None;
        };
        refs.push(Ref {
            target: t.as_str().to_string(),
            at: pos(target),
        });
        Some(t.as_str().to_string())
    }

    fn end(&mut self, map: &MarkedMappingNode) -> Option<EndStep> {
        self.unknown_keys(map, &["end", "reason", "output"], "end step");
        let node = get(map, "end")?;
        let text = node.as_scalar().map(|s| s.as_str()).unwrap_or_default();
        let outcome = match text.parse::<Outcome>() {
            Ok(o) => Some(o),
            Err(e) => {
                self.err(pos(node), e);
                None
            }
        };
        let reason = match get(map, "reason") {
            Some(r) => self.template(r, &["input", "state", "session"]),
            None => {
                self.err(pos(node), "an end step needs a `reason`");
                None
            }
        };
        let output = match get(map, "output") {
            Some(o) => Some(self.template(o, &["input", "state", "session"])?),
            None => None,
        };
        Some(EndStep {
            outcome: outcome?,
            reason: reason?,
            output,
        })
    }

    // ---- leaves ---------------------------------------------------------

    fn unknown_keys(&mut self, map: &MarkedMappingNode, allowed: &[&str], what: &str) {
        for (k, _) in map.iter() {
            if !allowed.contains(&k.as_str()) {
                self.err(
                    scalar_pos(k),
                    format!(
                        "unknown key `{}` in {what}{}",
                        k.as_str(),
                        suggest(k.as_str(), allowed)
                    ),
                );
            }
        }
    }

    fn required_string(
        &mut self,
        map: &MarkedMappingNode,
        key: &str,
        at: (usize, usize),
    ) -> Option<String> {
        match get(map, key) {
            None => {
                self.err(at, format!("missing `{key}`"));
                None
            }
            Some(n) => match n.as_scalar() {
                Some(s) if !s.as_str().is_empty() => Some(s.as_str().to_string()),
                _ => {
                    self.err(pos(n), format!("`{key}` must be a non-empty string"));
                    None
                }
            },
        }
    }

    fn step_ref(
        &mut self,
        map: &MarkedMappingNode,
        key: &str,
        refs: &mut Vec<Ref>,
        required: bool,
    ) -> Option<String> {
        match get(map, key) {
            None => {
                if required {
                    let at = map
                        .span()
                        .start()
                        .map(|m| (m.line(), m.column()))
                        .unwrap_or((1, 1));
                    self.err(at, format!("missing `{key}` (the step to go to)"));
                }
                None
            }
            Some(n) => match n.as_scalar() {
                Some(s) => {
                    refs.push(Ref {
                        target: s.as_str().to_string(),
                        at: pos(n),
                    });
                    Some(s.as_str().to_string())
                }
                None => {
                    self.err(pos(n), format!("`{key}` must be a step name"));
                    None
                }
            },
        }
    }

    fn duration(&mut self, map: &MarkedMappingNode, key: &str) -> Option<u64> {
        let n = get(map, key)?;
        let text = n.as_scalar().map(|s| s.as_str()).unwrap_or_default();
        match humantime::parse_duration(text) {
            Ok(d) if !d.is_zero() => Some(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            _ => {
                self.err(
                    pos(n),
                    format!("`{key}` must be a duration like `30s`, `10m` or `2h`, got `{text}`"),
                );
                None
            }
        }
    }

    /// A bare CEL expression (`when`, `emit`, `provider_ref`); `${...}` around it is accepted.
    fn expr_node(&mut self, node: &Node, allowed: &[&str]) -> Option<Expr> {
        let Some(s) = node.as_scalar() else {
            self.err(pos(node), "expected a CEL expression");
            return None;
        };
        let src = s.as_str().trim();
        let src = src
            .strip_prefix("${")
            .and_then(|r| r.strip_suffix('}'))
            .unwrap_or(src);
        match Expr::compile(src) {
            Ok(e) => {
                self.check_vars(&e, allowed, pos(node));
                Some(e)
            }
            Err(msg) => {
                self.err(pos(node), msg);
                None
            }
        }
    }

    /// A JSON template; every `${...}` must compile and read only `allowed`.
    fn template(&mut self, node: &Node, allowed: &[&str]) -> Option<Template> {
        let ok = self.template_errors(node, allowed);
        if !ok {
            return None;
        }
        let t = Template::compile(&to_json(node)).ok()?;
        Some(t)
    }

    fn template_errors(&mut self, node: &Node, allowed: &[&str]) -> bool {
        match node {
            Node::Scalar(s) => {
                if !s.as_str().contains("${") {
                    return true;
                }
                match compile_string(s.as_str()) {
                    Ok(t) => {
                        for e in t.exprs() {
                            self.check_vars(e, allowed, pos(node));
                        }
                        true
                    }
                    Err(msg) => {
                        self.err(pos(node), msg);
                        false
                    }
                }
            }
            // Check every child (no short-circuit) so all problems are reported.
            Node::Sequence(seq) => {
                let mut ok = true;
                for n in seq.iter() {
                    ok &= self.template_errors(n, allowed);
                }
                ok
            }
            Node::Mapping(map) => {
                let mut ok = true;
                for (_, n) in map.iter() {
                    ok &= self.template_errors(n, allowed);
                }
                ok
            }
        }
    }

    fn check_vars(&mut self, e: &Expr, allowed: &[&str], at: (usize, usize)) {
        self.check_input_reads(e, at);
        for v in e.variables() {
            if !allowed.contains(&v.as_str()) {
                self.err(
                    at,
                    format!(
                        "`{}` reads unknown variable `{v}` (here: {})",
                        e.source(),
                        allowed.join(", ")
                    ),
                );
            }
        }
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

fn valid_event(s: &str) -> bool {
    s.contains('.')
        && !s.starts_with('.')
        && !s.ends_with('.')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-')
}
