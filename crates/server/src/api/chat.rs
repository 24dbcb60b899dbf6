//! The chat WebSocket, `/v1/client/sessions/{id}/chat`. A browser cannot set
//! headers on a WebSocket, and a secret in the URL ends up in logs, so the
//! client secret comes in the first message:
//!
//! ```text
//! -> {"type": "hello", "secret": "<client secret>", "last_id": 12}
//! <- {"type": "ready", "last_id": 14}      after the messages it missed
//! <- {"type": "message", "id": 13, "at": "...", "message": {...}}
//! -> {"type": "say", "text": "/me", "client_id": "c-1"}
//! <- {"type": "ack", "client_id": "c-1", "id": 15}   (or "error")
//! <- {"type": "ended", "outcome": "...", "reason": "..."}
//! ```
//!
//! Messages are the chat session's `chat` client events (runtime/chat.rs);
//! `last_id` resumes after the last one a client saw, so a reconnect shows
//! each message once. A resent `say` with the same `client_id` is taken once.

use super::AppState;
use super::extract::check_client_secret;
use crate::runtime::chat::{self, CHAT_EVENT, ChatWork, Said, Say};
use crate::runtime::view;
use crate::store::ClientEvent;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

/// How long a new socket may take to say hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// Close codes in the application range (4000-4999).
const CLOSE_UNAUTHORIZED: u16 = 4401;
const CLOSE_BAD_REQUEST: u16 = 4400;
const CLOSE_GOING_AWAY: u16 = 1001;
/// `limits.streams_per_session` sockets and streams follow the session.
const CLOSE_TOO_MANY: u16 = 4429;

pub async fn socket(
    State(st): State<AppState>,
    super::auth::ClientAddr(source): super::auth::ClientAddr,
    Path(id): Path<String>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if !super::origin::allowed(&st, &headers) {
        return super::origin::refused().into_response();
    }
    // An address locked out after failed authentications gets no socket.
    if let Err(refused) = st.limits.check_lockout(source) {
        return super::error::Problem::from(refused).into_response();
    }
    ws.max_message_size(64 * 1024)
        .on_upgrade(move |socket| serve(st, source, id, socket))
}

fn frame(v: &Value) -> Message {
    Message::Text(Utf8Bytes::from(v.to_string()))
}

fn close(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from(reason.to_string()),
    }))
}

fn message_frame(ev: &ClientEvent) -> Value {
    json!({"type": "message", "id": ev.seq, "at": view::time_json(Some(ev.at)), "message": ev.data})
}

async fn serve(st: AppState, source: std::net::IpAddr, id: String, socket: WebSocket) {
    let (mut tx, mut rx) = socket.split();
    let hello = match tokio::time::timeout(HELLO_TIMEOUT, rx.next()).await {
        Ok(Some(Ok(Message::Text(t)))) => parse_hello(&t),
        _ => None,
    };
    let Some(hello) = hello else {
        let _ = tx
            .send(close(
                CLOSE_BAD_REQUEST,
                "send {\"type\":\"hello\",\"secret\":...} first",
            ))
            .await;
        return;
    };
    let row = match check_client_secret(&st, source, &id, &hello.secret).await {
        Ok(row) => row,
        Err(p) => {
            let _ = tx
                .send(frame(&json!({"type": "error", "message": p.detail})))
                .await;
            let _ = tx.send(close(CLOSE_UNAUTHORIZED, "unauthorized")).await;
            return;
        }
    };
    if chat::commands(&row).is_none() && row.state.status != gangway_core::SessionStatus::Ended {
        let _ = tx
            .send(close(CLOSE_BAD_REQUEST, "this session presents no chat"))
            .await;
        return;
    }
    let mut seen = hello.last_id;
    let engine = st.engine.clone();
    // Subscribe before reading the backlog so nothing falls in between.
    let max = engine.config().limits.streams_per_session;
    let Some(mut live) = engine.subscribe_client_events(&row.id) else {
        let message = format!(
            "{max} event streams and chat sockets already follow this session (limits.streams_per_session); close one first"
        );
        let _ = tx
            .send(frame(&json!({"type": "error", "message": message})))
            .await;
        let _ = tx.send(close(CLOSE_TOO_MANY, "too many streams")).await;
        return;
    };
    let mut shutdown = engine.shutdown_signal();
    let mut ended = false;
    macro_rules! deliver {
        ($ev:expr) => {{
            let ev: &ClientEvent = $ev;
            seen = seen.max(ev.seq);
            let out = if ev.event == CHAT_EVENT {
                Some(message_frame(ev))
            } else if ev.event == "ended" {
                ended = true;
                Some(json!({"type": "ended", "outcome": ev.data["outcome"], "reason": ev.data["reason"]}))
            } else {
                None
            };
            if let Some(out) = out
                && tx.send(frame(&out)).await.is_err()
            {
                return;
            }
        }};
    }
    let backlog = engine
        .client_events_after(&row.id, seen)
        .await
        .unwrap_or_default();
    for ev in &backlog {
        deliver!(ev);
    }
    if tx
        .send(frame(&json!({"type": "ready", "last_id": seen})))
        .await
        .is_err()
    {
        return;
    }
    if ended {
        let _ = tx.send(close(1000, "the chat has ended")).await;
        return;
    }
    loop {
        tokio::select! {
            ev = live.recv() => match ev {
                Ok(ev) if ev.seq > seen => deliver!(&ev),
                Ok(_) => {}
                Err(RecvError::Lagged(_)) => {
                    for ev in engine.client_events_after(&row.id, seen).await.unwrap_or_default() {
                        deliver!(&ev);
                    }
                }
                Err(RecvError::Closed) => return,
            },
            msg = rx.next() => match msg {
                Some(Ok(Message::Text(t))) => {
                    let answer = said(&st, &row.id, &t).await;
                    if tx.send(frame(&answer)).await.is_err() {
                        return;
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
            _ = async { let _ = shutdown.wait_for(|s| *s).await; } => {
                let _ = tx.send(frame(&json!({"type": "reconnect"}))).await;
                let _ = tx.send(close(CLOSE_GOING_AWAY, "server shutting down; reconnect")).await;
                return;
            }
        }
        if ended {
            let _ = tx.send(close(1000, "the chat has ended")).await;
            return;
        }
    }
}

/// The first message: `{"type": "hello", "secret": ..., "last_id": ...}`.
#[derive(Debug)]
pub struct Hello {
    /// Empty when missing (then the secret check refuses it).
    pub secret: String,
    /// The last message id the client saw (0 if none).
    pub last_id: i64,
}

/// Reads the first message (pure: fuzzed in `fuzz/`); `None` if it is not
/// a hello.
pub fn parse_hello(text: &str) -> Option<Hello> {
    let hello = serde_json::from_str::<Value>(text).ok()?;
    if hello["type"] != "hello" {
        return None;
    }
    Some(Hello {
        secret: hello["secret"].as_str().unwrap_or_default().to_string(),
        last_id: hello["last_id"].as_i64().unwrap_or(0).max(0),
    })
}

/// A `say` message, checked: the client's id for the line and the line.
#[derive(Debug)]
pub struct SayLine {
    pub client_id: String,
    pub line: String,
}

/// Reads a message after the hello (pure: fuzzed in `fuzz/`): a `say`, or
/// the error frame to answer.
pub fn parse_say(text: &str) -> Result<SayLine, Value> {
    let v: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return Err(json!({"type": "error", "message": format!("not JSON: {e}")})),
    };
    let client_id = v["client_id"].as_str().unwrap_or_default();
    let error = |m: &str| json!({"type": "error", "client_id": v["client_id"], "message": m});
    if v["type"] != "say" {
        return Err(error(
            "unknown message type; send {\"type\":\"say\",\"text\":...,\"client_id\":...}",
        ));
    }
    if client_id.is_empty() || client_id.len() > 64 {
        return Err(error(
            "`client_id` must be 1 to 64 characters, unique per line",
        ));
    }
    let Some(line) = v["text"].as_str().map(str::trim).filter(|t| !t.is_empty()) else {
        return Err(error("`text` must be a non-empty string"));
    };
    if line.chars().count() > chat::MAX_TEXT {
        return Err(error("the line is too long (4000 characters at most)"));
    }
    Ok(SayLine {
        client_id: client_id.to_string(),
        line: line.to_string(),
    })
}

/// One message from the client: a line typed in the chat.
async fn said(st: &AppState, session_id: &str, text: &str) -> Value {
    let SayLine { client_id, line } = match parse_say(text) {
        Ok(say) => say,
        Err(frame) => return frame,
    };
    let error = |m: &str| json!({"type": "error", "client_id": client_id, "message": m});
    let work = ChatWork::Say(Say {
        session_id: session_id.to_string(),
        client_id: client_id.clone(),
        text: line,
    });
    match st.engine.chat(work).await {
        Ok(Said::Posted { id }) => json!({"type": "ack", "client_id": client_id, "id": id}),
        Ok(Said::Duplicate) => json!({"type": "ack", "client_id": client_id, "duplicate": true}),
        Ok(Said::Ended) => error("the chat has ended"),
        Ok(Said::NotAChat) => error("this session presents no chat now"),
        Ok(Said::NotFound) => error("no such session"),
        Ok(Said::Refused(why)) => error(&format!("{}; the line was not stored", why.reason())),
        Err(e) => {
            tracing::warn!(session_id = session_id, error = %e, "chat line not taken");
            error("the line could not be stored right now; send it again")
        }
    }
}
