//! Prints a session's timeline as it grows: steps, provider calls with their
//! (already redacted) answers, state changes as a diff, rule evaluations,
//! waits and the events that ended them.

use gangway_server::sandbox::{Finished, TraceItem};
use gangway_server::store::TimelineEntry;
use serde_json::{Map, Value};
use std::process::ExitCode;

/// Longest JSON value printed on one line.
const MAX_VALUE: usize = 240;

pub struct Printer {
    workflow: String,
    input: Value,
}

impl Printer {
    pub fn new(workflow: &str, input: &Value) -> Printer {
        Printer {
            workflow: workflow.to_string(),
            input: input.clone(),
        }
    }

    pub fn print(&mut self, item: &TraceItem) {
        match item {
            TraceItem::Started { session_id } => {
                println!(
                    "sandbox: session {session_id} of workflow `{}`",
                    self.workflow
                );
                println!("         input {}", short(&self.input));
            }
            TraceItem::Entry {
                at_ms,
                entry,
                child,
            } => {
                // A child's steps are indented under the step that runs it.
                let margin = if child.is_some() { "  ┊ " } else { "" };
                for line in describe(entry) {
                    println!("{at_ms:>7} ms  {margin}{line}");
                }
            }
            TraceItem::StateSet { key, value } => {
                println!("             + state.{key} = {}", short(value))
            }
            TraceItem::StateRemoved { key } => println!("             - state.{key}"),
            TraceItem::Presented(p) if p["kind"] == "qr" && p["payload"].is_string() => {
                // As the seed's sandbox logs it: the code itself, scannable
                // from the terminal, with the phone page's URL beside it.
                let payload = p["payload"].as_str().unwrap_or_default();
                println!("             browser shows a QR code; the phone opens {payload}");
                if let Ok(code) = qrcode::QrCode::new(payload.as_bytes()) {
                    let art = code
                        .render::<qrcode::render::unicode::Dense1x2>()
                        .dark_color(qrcode::render::unicode::Dense1x2::Light)
                        .light_color(qrcode::render::unicode::Dense1x2::Dark)
                        .build();
                    for line in art.lines() {
                        println!("             {line}");
                    }
                }
            }
            TraceItem::Presented(p) => {
                let kind = p["kind"].as_str().unwrap_or("step");
                let target = p["url"]
                    .as_str()
                    .or(p["deep_link"].as_str())
                    .map(str::to_string)
                    .unwrap_or_else(|| short(p));
                println!("             browser shows {kind}: {target}");
            }
            TraceItem::Applied(ev) => println!("             → {}", ev.describe()),
            TraceItem::Idle { step, next_at } => match next_at {
                Some(at) => println!(
                    "             … waiting in `{step}`; the next scripted event is for `{at}`"
                ),
                None => println!(
                    "             … waiting in `{step}`; no scripted event left: the step's own deadline decides"
                ),
            },
        }
    }

    /// The last line, and the exit status: 0 only when the workflow ended.
    pub fn finished(&self, f: &Finished, timeout: u64) -> ExitCode {
        if f.ended {
            println!(
                "sandbox: the workflow ended with outcome `{}`",
                f.session["outcome"].as_str().unwrap_or("?")
            );
            ExitCode::SUCCESS
        } else {
            println!("             ✗ not ended after {timeout} s (use --timeout to wait longer)");
            ExitCode::FAILURE
        }
    }
}

fn describe(e: &TimelineEntry) -> Vec<String> {
    let d = &e.data;
    let s = |k: &str| d[k].as_str().unwrap_or_default().to_string();
    match e.kind.as_str() {
        "session.created" => vec![format!(
            "session created ({} v{})",
            s("workflow"),
            d["version"]
        )],
        "step.entered" => vec![format!(
            "▸ step `{}` ({})",
            e.step.as_deref().unwrap_or("?"),
            s("kind")
        )],
        "provider.call" | "call.failed" => {
            let mut out = Vec::new();
            let attempts = d["attempts"].as_array().cloned().unwrap_or_default();
            for a in &attempts {
                out.extend(attempt_lines(&s("action"), a));
            }
            if attempts.is_empty() {
                out.push(format!("  {} {}", e.kind, short(d)));
            }
            if let Some(err) = d["error"].as_str() {
                out.push(format!("  ✗ {err}"));
            }
            out
        }
        "wait.started" => {
            let events: Vec<String> = d["events"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            let left = d["deadline_ms"]
                .as_i64()
                .map(|ms| format!(", deadline in {} s", (ms - e.at).max(0) / 1000))
                .unwrap_or_default();
            vec![format!("  waiting for {}{left}", events.join(" | "))]
        }
        "event.received" => vec![format!(
            "  event `{}` received from {}",
            s("event"),
            s("source")
        )],
        "event.accepted" => vec![format!(
            "  event `{}` ends the wait ({})",
            s("event"),
            s("source")
        )],
        "event.replayed" => vec![format!(
            "  event `{}` had arrived early; replayed",
            s("event")
        )],
        "child.started" => vec![format!(
            "  runs workflow `{}` as child session {}",
            s("workflow"),
            s("session_id")
        )],
        "child.created" => vec![format!(
            "  child {} started ({} v{})",
            s("session_id"),
            s("workflow"),
            d["version"]
        )],
        "provider.poll" => {
            let what = d["call"].as_str().unwrap_or("status");
            let status = d["status"]
                .as_str()
                .map(|s| format!(" → {s}"))
                .unwrap_or_default();
            vec![format!("  poll {what}{status}")]
        }
        "poll.failed" => vec![format!(
            "  poll failed: {}; again in {} ms",
            s("error"),
            d["retry_at_ms"].as_i64().map_or(0, |at| (at - e.at).max(0))
        )],
        "poll.matched" => vec![format!("  polling found `{}`", s("event"))],
        "call.retrying" => vec![format!(
            "  `{}` holds: call again in {} ms (retry {})",
            s("while"),
            d["at_ms"].as_i64().map_or(0, |at| (at - e.at).max(0)),
            d["retry"]
        )],
        "call.retries_exhausted" => vec![format!(
            "  `{}` still holds at the step's deadline: going on",
            s("while")
        )],
        "wait.timed_out" => vec![format!("  wait timed out {}", short(d))],
        "rule.evaluated" => vec![format!(
            "  rule {} `{}` → {}{}",
            d["rule"],
            s("when"),
            d["result"],
            read_values(&d["inputs"])
        )],
        "rule.default" => vec![format!("  no rule matched → default `{}`", s("next"))],
        "rule.error" => vec![format!(
            "  rule {} `{}` failed: {}",
            d["rule"],
            s("when"),
            s("error")
        )],
        "session.ended" => vec![format!("■ {} — {}", s("outcome"), s("reason"))],
        other => vec![format!("  {other} {}", short(d))],
    }
}

/// One provider call attempt: what was called, its status and answer.
/// Connectors describe calls in their own words (`call`, `calls`, or
/// `method` + `path`); whatever else they recorded is printed as details.
fn attempt_lines(action: &str, a: &Value) -> Vec<String> {
    let what = if let Some(c) = a["call"].as_str() {
        c.to_string()
    } else if let Some(calls) = a["calls"].as_array() {
        calls
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" + ")
    } else {
        format!(
            "{} {}",
            a["method"].as_str().unwrap_or(""),
            a["path"].as_str().unwrap_or("")
        )
    };
    let status = a["status"]
        .as_u64()
        .map(|s| format!(" → {s}"))
        .unwrap_or_default();
    let took = a["duration_ms"]
        .as_u64()
        .map(|ms| format!(" ({ms} ms)"))
        .unwrap_or_default();
    let mut out = vec![format!("  call {action}: {what}{status}{took}")];
    if let Some(err) = a["error"].as_str() {
        out.push(format!("      error: {err}"));
    }
    if !a["response"].is_null() {
        out.push(format!("      answer {}", short(&a["response"])));
    }
    const SHOWN: [&str; 10] = [
        "call",
        "calls",
        "method",
        "path",
        "status",
        "duration_ms",
        "error",
        "response",
        "request",
        "service",
    ];
    if let Some(map) = a.as_object() {
        let details: Map<String, Value> = map
            .iter()
            .filter(|(k, _)| !SHOWN.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !details.is_empty() {
            out.push(format!("      {}", short(&Value::Object(details))));
        }
    }
    out
}

/// `   (state.x = 1, input.y = "a")`: what a rule read.
fn read_values(inputs: &Value) -> String {
    match inputs.as_object() {
        Some(m) if !m.is_empty() => {
            let parts: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{k} = {}", short(v)))
                .collect();
            format!("   ({})", parts.join(", "))
        }
        _ => String::new(),
    }
}

/// Compact JSON, cut to one readable line.
fn short(v: &Value) -> String {
    let text = v.to_string();
    if text.chars().count() <= MAX_VALUE {
        return text;
    }
    let cut: String = text.chars().take(MAX_VALUE).collect();
    format!("{cut}…")
}
