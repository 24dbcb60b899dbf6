//! Chats: a session whose step presents `kind: chat` keeps a transcript and
//! runs commands. The presentation lists the commands and the workflow each
//! one runs; every command run is a child session (`<chat id>-<message
//! id>`), so it is as durable as any session and several run at once.
//!
//! Messages are the chat session's client events named `chat`, numbered by
//! the session's client sequence: they are written in the transaction that
//! changes what they describe, pushed live to the WebSocket and SSE
//! streams, and replayed after a reconnect from the last id a client saw.
//! A run's presentation changes (a progress line, a sign-in link) and its
//! ending become `run` messages in the same transaction.
//!
//! State kept in the chat session's `state.chat`: the runs in flight (for
//! `/status`) and `memory`, values a command's output asked to keep on the
//! server (`remember`, e.g. the hub's secret id after `/auth`). Memory is
//! passed to later runs as `input.memory` and never shown in the chat.

use super::committer::{AfterTransition, Change, Out};
use super::executor::Running;
use super::job::{Cancel, Child, Task};
use super::{CreateRequest, Engine, Error};
use crate::store::SessionRow;
use async_trait::async_trait;
use gangway_core::SessionStatus;
use gangway_core::engine::{self, Input};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// The client event that carries chat messages.
pub const CHAT_EVENT: &str = "chat";
/// Longest message a user may send.
pub const MAX_TEXT: usize = 4000;
/// Runs in flight in one chat at most.
const MAX_RUNNING: usize = 20;

/// One command of a chat, as its presentation lists it.
#[derive(Debug, Clone, Deserialize)]
pub struct CommandSpec {
    pub name: String,
    /// The workflow a run of this command starts.
    pub run: String,
    #[serde(default)]
    pub usage: Option<String>,
    #[serde(default)]
    pub help: Option<String>,
    #[serde(default)]
    pub args: ArgsKind,
    /// Keys of the run's output kept server-side (in memory) after an
    /// approved run, and left out of the chat.
    #[serde(default)]
    pub remember: Vec<String>,
    /// Fixed input for every run of this command (e.g. a deadline), under
    /// what the typed line gives.
    #[serde(default)]
    pub input: Map<String, Value>,
}

/// How a command reads what follows its name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArgsKind {
    /// Nothing may follow.
    #[default]
    None,
    /// Free text: `input.text`.
    Text,
    /// `<flow-id> [json object]`: `input.flow` and `input.data`.
    Flow,
}

/// The commands of the chat a session presents, if it presents one.
pub fn commands(row: &SessionRow) -> Option<Vec<CommandSpec>> {
    if row.state.status == SessionStatus::Ended {
        return None;
    }
    let present = row.state.present.as_ref()?;
    if present.get("kind").and_then(Value::as_str) != Some("chat") {
        return None;
    }
    let list = present.get("commands").cloned().unwrap_or(json!([]));
    serde_json::from_value(list).ok()
}

/// What a line typed in the chat asks for.
#[derive(Debug, PartialEq)]
pub enum Parsed {
    Help,
    Status,
    /// An immediate answer (unknown command, bad arguments, ...).
    Reply(String),
    Run {
        command: usize,
        input: Value,
    },
}

fn usage(c: &CommandSpec) -> String {
    c.usage.clone().unwrap_or_else(|| format!("/{}", c.name))
}

/// Reads one line typed in the chat (pure, so it is tested alone).
pub fn parse(text: &str, commands: &[CommandSpec]) -> Parsed {
    let text = text.trim();
    let Some(rest) = text.strip_prefix('/') else {
        return Parsed::Reply("I run commands only. Type /help to see what I can do.".into());
    };
    let (name, args) = match rest.find(char::is_whitespace) {
        Some(i) => (&rest[..i], rest[i..].trim()),
        None => (rest, ""),
    };
    match name {
        "help" => return Parsed::Help,
        "status" => return Parsed::Status,
        _ => {}
    }
    let Some(index) = commands.iter().position(|c| c.name == name) else {
        let shown: String = name.chars().take(40).collect();
        return Parsed::Reply(format!(
            "Unknown command /{shown}. Type /help to see the commands."
        ));
    };
    let c = &commands[index];
    let mut input = Map::new();
    match c.args {
        ArgsKind::None if !args.is_empty() => {
            return Parsed::Reply(format!(
                "/{} takes no arguments. Usage: {}",
                c.name,
                usage(c)
            ));
        }
        ArgsKind::None => {}
        ArgsKind::Text => {
            input.insert("text".into(), json!(args));
        }
        ArgsKind::Flow => {
            let (flow, data) = match args.find(char::is_whitespace) {
                Some(i) => (&args[..i], args[i..].trim()),
                None => (args, ""),
            };
            if flow.is_empty() {
                return Parsed::Reply(format!("Which flow? Usage: {}", usage(c)));
            }
            if !crate::providers::oih::client::valid_flow_id(flow) {
                return Parsed::Reply(format!(
                    "`{}` is not a flow id: use letters, digits, `_` or `-`. Usage: {}",
                    flow.chars().take(64).collect::<String>(),
                    usage(c)
                ));
            }
            let data = if data.is_empty() {
                json!({})
            } else {
                match serde_json::from_str::<Value>(data) {
                    Ok(v @ Value::Object(_)) => v,
                    Ok(_) => {
                        return Parsed::Reply(format!(
                            "The input must be a JSON object, like {{\"customer_id\": \"c-42\"}}. Usage: {}",
                            usage(c)
                        ));
                    }
                    Err(e) => {
                        return Parsed::Reply(format!(
                            "The input is not valid JSON ({e}). Example: /{} {flow} {{\"customer_id\": \"c-42\"}}",
                            c.name
                        ));
                    }
                }
            };
            input.insert("flow".into(), json!(flow));
            input.insert("data".into(), data);
        }
    }
    Parsed::Run {
        command: index,
        input: Value::Object(input),
    }
}

fn help_text(commands: &[CommandSpec]) -> String {
    let mut lines = vec![
        "Commands:".to_string(),
        "/help: this list".into(),
        "/status: the commands running in this chat".into(),
    ];
    for c in commands {
        lines.push(match &c.help {
            Some(h) => format!("{}: {h}", usage(c)),
            None => usage(c),
        });
    }
    lines.join("\n")
}

/// `state.chat` of a chat session.
fn chat_state(row: &mut SessionRow) -> &mut Map<String, Value> {
    let slot = row
        .state
        .vars
        .entry("chat")
        .or_insert_with(|| json!({"running": {}, "memory": {}}));
    if !slot.is_object() {
        *slot = json!({"running": {}, "memory": {}});
    }
    let map = slot.as_object_mut().expect("made an object above");
    for key in ["running", "memory"] {
        if !map.get(key).is_some_and(Value::is_object) {
            map.insert(key.into(), json!({}));
        }
    }
    map
}

fn running(row: &mut SessionRow) -> &mut Map<String, Value> {
    chat_state(row)
        .get_mut("running")
        .and_then(Value::as_object_mut)
        .expect("chat_state makes it")
}

/// A line a user sent.
#[derive(Debug, Clone)]
pub struct Say {
    pub session_id: String,
    /// Chosen by the client; a resend after a lost answer is recognised by it.
    pub client_id: String,
    pub text: String,
}

/// Work for the committer that belongs to chats.
#[derive(Debug, Clone)]
pub enum ChatWork {
    Say(Say),
    /// A run's child session could not be created (its workflow is gone).
    RunNotStarted {
        chat_id: String,
        job: i64,
        run_id: String,
        reason: String,
    },
}

impl ChatWork {
    /// The chat session this work is for.
    pub fn session_id(&self) -> &str {
        match self {
            ChatWork::Say(say) => &say.session_id,
            ChatWork::RunNotStarted { chat_id, .. } => chat_id,
        }
    }
}

/// How a line was taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Said {
    /// Stored as message `id`.
    Posted {
        id: i64,
    },
    /// A line with this client id was taken before.
    Duplicate,
    NotAChat,
    Ended,
    NotFound,
    /// Not stored: the session is at a limit.
    Refused(super::Refused),
}

/// After a transition: a chat that ended cancels its runs in flight; a
/// run's ending or new presentation is written into its chat.
pub(super) struct Messages;

#[async_trait]
impl AfterTransition for Messages {
    async fn after_transition(
        &self,
        out: &mut Out<'_>,
        row: &SessionRow,
        change: Change,
    ) -> Result<(), crate::store::Error> {
        if change.ended_now && row.state.vars.contains_key("chat") {
            chat_ended(out, row).await?;
        }
        if let Some(chat_id) = engine::parent_of(&row.id) {
            if change.ended_now {
                run_ended(out, row, chat_id).await?;
            } else if change.view_changed {
                run_view(out, row, chat_id).await?;
            }
        }
        Ok(())
    }
}

/// A chat command (`Work::Chat`), in the committer's batch.
pub(super) async fn apply(
    out: &mut Out<'_>,
    work: &ChatWork,
    limits: &crate::config::LimitsConfig,
) -> Result<Said, crate::store::Error> {
    let now = out.now;
    match work {
        ChatWork::Say(say) => said(out, say, limits).await,
        ChatWork::RunNotStarted {
            chat_id,
            job,
            run_id,
            reason,
        } => {
            out.tx.delete_job(*job).await?;
            let Some(mut row) = out.tx.lock_session(chat_id).await? else {
                return Ok(Said::NotFound);
            };
            let entry = running(&mut row).remove(run_id);
            let reply_to = entry.as_ref().and_then(|e| e.get("reply_to")).cloned();
            let command = entry.as_ref().and_then(|e| e.get("command")).cloned();
            let msg = json!({"role": "run", "run": run_id, "reply_to": reply_to, "command": command,
                "state": "ended", "outcome": "failed", "reason": reason});
            let id = out.client_event(&mut row, CHAT_EVENT, msg);
            row.updated_at = now;
            out.tx.update_session(&row).await?;
            Ok(Said::Posted { id })
        }
    }
}

async fn said(
    out: &mut Out<'_>,
    say: &Say,
    limits: &crate::config::LimitsConfig,
) -> Result<Said, crate::store::Error> {
    let (now, lease_ms) = (out.now, out.lease_ms);
    let Some(mut row) = out.tx.lock_session(&say.session_id).await? else {
        return Ok(Said::NotFound);
    };
    if row.state.status == SessionStatus::Ended {
        return Ok(Said::Ended);
    }
    let Some(commands) = commands(&row) else {
        return Ok(Said::NotAChat);
    };
    if let Some(why) = super::intake::chat_refusal(limits, &row) {
        out.refused(&mut row, "chat.message", "chat", why);
        out.tx.update_session(&row).await?;
        return Ok(Said::Refused(why));
    }
    // The line is kept as an inbound event too: its client id makes a
    // resend (after a lost acknowledgement) a no-op.
    let stored = out
        .tx
        .insert_event(
            &crate::store::NewEvent {
                source: "chat".into(),
                event_key: format!("{}:{}", row.id, say.client_id),
                namespace: "session".into(),
                reference: row.id.clone(),
                name: "chat.message".into(),
                data: json!({"client_id": say.client_id, "text": say.text}),
                received_at: now,
            },
            Some(&row.id),
        )
        .await?;
    let Some(event_id) = stored else {
        return Ok(Said::Duplicate);
    };
    row.state.intake.signals += 1;
    out.tx.consume_event(event_id, now).await?;
    let user = json!({"role": "user", "text": say.text, "client_id": say.client_id});
    let id = out.client_event(&mut row, CHAT_EVENT, user);
    let reply = |text: String| json!({"role": "assistant", "text": text, "reply_to": id});
    match parse(&say.text, &commands) {
        Parsed::Help => {
            out.client_event(&mut row, CHAT_EVENT, reply(help_text(&commands)));
        }
        Parsed::Status => {
            let text = status_text(&mut row, now);
            out.client_event(&mut row, CHAT_EVENT, reply(text));
        }
        Parsed::Reply(text) => {
            out.client_event(&mut row, CHAT_EVENT, reply(text));
        }
        Parsed::Run { .. } if running(&mut row).len() >= MAX_RUNNING => {
            let text = format!(
                "{MAX_RUNNING} commands are already running here; wait for one to finish (/status)."
            );
            out.client_event(&mut row, CHAT_EVENT, reply(text));
        }
        Parsed::Run { command, input } => {
            let c = &commands[command];
            let run_id = format!("{}-{id}", row.id);
            let memory = chat_state(&mut row)
                .get("memory")
                .cloned()
                .unwrap_or(json!({}));
            let mut input = match input {
                Value::Object(typed) => {
                    let mut all = c.input.clone();
                    all.extend(typed);
                    Value::Object(all)
                }
                other => other,
            };
            input["command"] = json!(c.name);
            input["chat_id"] = json!(row.id);
            input["memory"] = memory;
            running(&mut row).insert(
                run_id.clone(),
                json!({"command": c.name, "text": say.text, "reply_to": id, "since": now, "remember": c.remember}),
            );
            let started = json!({"role": "run", "run": run_id, "reply_to": id, "command": c.name, "state": "started"});
            out.client_event(&mut row, CHAT_EVENT, started);
            let step = row.state.step.clone();
            out.timeline(
                &mut row,
                "chat.command",
                step,
                json!({"command": c.name, "run": run_id, "workflow": c.run}),
            );
            let run = Child {
                workflow: c.run.clone(),
                session_id: run_id,
                input,
            };
            out.run_now(&row, Task::ChatRun(run), now + lease_ms)
                .await?;
        }
    }
    row.updated_at = now;
    out.tx.update_session(&row).await?;
    Ok(Said::Posted { id })
}

fn status_text(row: &mut SessionRow, now: i64) -> String {
    let runs = running(row);
    if runs.is_empty() {
        return "Nothing is running in this chat.".into();
    }
    let mut lines = vec![format!("{} running:", runs.len())];
    for r in runs.values() {
        let text = r.get("text").and_then(Value::as_str).unwrap_or_default();
        let since = r.get("since").and_then(Value::as_i64).unwrap_or(now);
        lines.push(format!("{text} (for {} s)", (now - since).max(0) / 1000));
    }
    lines.join("\n")
}

/// A run's presentation changed: a progress line or a link for the chat.
async fn run_view(
    out: &mut Out<'_>,
    run: &SessionRow,
    chat_id: &str,
) -> Result<(), crate::store::Error> {
    let now = out.now;
    let Some(present) = super::view::client_json(run)
        .pointer("/step/present")
        .cloned()
        .filter(|p| {
            p.get("message").is_some_and(|m| !m.is_null())
                || p.get("url").is_some_and(|u| !u.is_null())
        })
    else {
        return Ok(());
    };
    let Some(mut row) = out.tx.lock_session(chat_id).await? else {
        return Ok(());
    };
    if commands(&row).is_none() {
        return Ok(());
    }
    let Some(entry) = running(&mut row).get(&run.id).cloned() else {
        return Ok(());
    };
    let msg = json!({"role": "run", "run": run.id, "reply_to": entry.get("reply_to"),
        "command": entry.get("command"), "state": "progress", "present": present});
    out.client_event(&mut row, CHAT_EVENT, msg);
    row.updated_at = now;
    out.tx.update_session(&row).await
}

/// A run ended: its reply (outcome, reason, output without what is
/// remembered) goes to the chat, remembered values to its memory.
async fn run_ended(
    out: &mut Out<'_>,
    run: &SessionRow,
    chat_id: &str,
) -> Result<(), crate::store::Error> {
    let now = out.now;
    let Some(mut row) = out.tx.lock_session(chat_id).await? else {
        return Ok(());
    };
    if commands(&row).is_none() {
        return Ok(());
    }
    let Some(entry) = running(&mut row).remove(&run.id) else {
        return Ok(());
    };
    let remember: Vec<String> = entry
        .get("remember")
        .and_then(|r| serde_json::from_value(r.clone()).ok())
        .unwrap_or_default();
    let mut output = run.state.output.clone();
    if let Some(Value::Object(out)) = output.as_mut() {
        let approved = run.state.outcome == Some(gangway_core::Outcome::Approved);
        for key in &remember {
            if let Some(v) = out.remove(key)
                && approved
                && let Some(memory) = chat_state(&mut row)
                    .get_mut("memory")
                    .and_then(Value::as_object_mut)
            {
                memory.insert(key.clone(), v);
            }
        }
    }
    let msg = json!({"role": "run", "run": run.id, "reply_to": entry.get("reply_to"),
        "command": entry.get("command"), "state": "ended",
        "outcome": run.state.outcome, "reason": run.state.reason, "output": output});
    out.client_event(&mut row, CHAT_EVENT, msg);
    row.updated_at = now;
    out.tx.update_session(&row).await
}

/// The chat itself ended: its runs still in flight are canceled.
async fn chat_ended(out: &mut Out<'_>, row: &SessionRow) -> Result<(), crate::store::Error> {
    let lease_until = out.now + out.lease_ms;
    let Some(Value::Object(chat)) = row.state.vars.get("chat") else {
        return Ok(());
    };
    let runs: Vec<String> = chat
        .get("running")
        .and_then(Value::as_object)
        .map(|r| r.keys().cloned().collect())
        .unwrap_or_default();
    for run in runs {
        let cancel = Cancel {
            session_id: run,
            reason: Some("the chat ended".into()),
        };
        out.run_now(row, Task::CancelChild(cancel), lease_until)
            .await?;
    }
    Ok(())
}

/// The `chat.run` job: starts a command's run as a child session. A
/// retried start finds the same child (its id is given).
pub(super) async fn run_job(engine: &Arc<Engine>, job: Running<'_>, run: Child) {
    let Child {
        workflow,
        session_id: run_id,
        input,
    } = run;
    if engine::parent_of(&run_id) != Some(job.session_id) {
        tracing::error!(session_id = %job.session_id, run = %run_id, "chat.run names no child of its chat; dropping the job");
        let _ = engine.store.finish_job(job.id).await;
        return;
    }
    let chat = match engine.store.session(job.session_id).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            let _ = engine.store.finish_job(job.id).await;
            return;
        }
        Err(e) => {
            tracing::warn!(session_id = %job.session_id, error = %e, "cannot read the chat; the run starts when the job's lease runs out");
            return;
        }
    };
    let created = engine
        .create(CreateRequest {
            api_key_id: chat.api_key_id.clone(),
            workflow: workflow.clone(),
            input,
            reference: Some(chat.id.clone()),
            idempotency_key: None,
            request_hash: String::new(),
            session_id: Some(run_id.clone()),
            trace: chat.state.trace.clone(),
        })
        .await;
    match created {
        Ok(c) => {
            // Visit 0 is never current: this only deletes the job and
            // records the start, in one transaction.
            let record = json!({"run": c.row.id, "workflow": c.row.workflow_id, "version": c.row.version, "restarted": c.replayed});
            engine
                .job_result(
                    job.session_id,
                    job.id,
                    Input::CallSucceeded {
                        visit: 0,
                        result: Value::Null,
                    },
                    Some(("chat.run_started".into(), record)),
                )
                .await;
        }
        Err(e @ (Error::UnknownWorkflow(_) | Error::InvalidInput { .. })) => {
            // Starting again would fail the same way: say so in the chat.
            let reason = match e {
                Error::InvalidInput { errors, .. } => format!(
                    "this command's input does not fit workflow `{workflow}`: {}",
                    errors
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
                _ => format!("this command's workflow `{workflow}` is not loaded"),
            };
            let work = ChatWork::RunNotStarted {
                chat_id: job.session_id.to_string(),
                job: job.id,
                run_id,
                reason,
            };
            let _ = engine.chat(work).await;
        }
        Err(e) => {
            tracing::warn!(session_id = %job.session_id, error = %e, "chat run not started; retried when the job's lease runs out");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commands() -> Vec<CommandSpec> {
        serde_json::from_value(json!([
            {"name": "me", "run": "oih-me"},
            {"name": "run-flow", "run": "oih-run-flow", "args": "flow", "usage": "/run-flow <flow-id> [json]"},
        ]))
        .unwrap_or_default()
    }

    fn reply(text: &str) -> String {
        match parse(text, &commands()) {
            Parsed::Reply(r) => r,
            other => format!("not a reply: {other:?}"),
        }
    }

    #[test]
    fn reads_commands_and_their_arguments() {
        let c = commands();
        assert_eq!(parse("/help", &c), Parsed::Help);
        assert_eq!(parse("  /status ", &c), Parsed::Status);
        assert_eq!(
            parse("/me", &c),
            Parsed::Run {
                command: 0,
                input: json!({})
            }
        );
        assert_eq!(
            parse("/run-flow lookup-customer {\"customer_id\": \"c-1\"}", &c),
            Parsed::Run {
                command: 1,
                input: json!({"flow": "lookup-customer", "data": {"customer_id": "c-1"}})
            }
        );
        assert_eq!(
            parse("/run-flow slow-progress", &c),
            Parsed::Run {
                command: 1,
                input: json!({"flow": "slow-progress", "data": {}})
            }
        );
    }

    #[test]
    fn bad_lines_get_a_helpful_reply() {
        assert!(reply("hello").contains("/help"));
        assert!(reply("/nope").contains("Unknown command /nope"));
        assert!(reply("/me now").contains("takes no arguments"));
        assert!(reply("/run-flow").contains("Usage: /run-flow <flow-id> [json]"));
        assert!(reply("/run-flow a/b").contains("is not a flow id"));
        assert!(reply("/run-flow f {oops").contains("not valid JSON"));
        assert!(reply("/run-flow f [1]").contains("must be a JSON object"));
    }
}
