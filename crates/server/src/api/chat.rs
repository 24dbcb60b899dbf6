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
use axum::http::{HeaderMap, StatusCode, header};
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

pub async fn socket(
    State(st): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if !origin_allowed(&st, &headers) {
        return super::error::Problem::new(
            StatusCode::FORBIDDEN,
            "origin-not-allowed",
            "Origin not allowed",
            "this page's origin is not in client.allowed_origins",
        )
        .into_response();
    }
    ws.max_message_size(64 * 1024)
        .on_upgrade(move |socket| serve(st, id, socket))
}

/// Same origin as the request, or one of `client.allowed_origins`. (The
/// secret authenticates; this keeps other sites from even trying.)
fn origin_allowed(st: &AppState, headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return true;
    };
    let origin = origin.trim_end_matches('/');
    if st
        .engine
        .config
        .client
        .allowed_origins
        .iter()
        .any(|o| o.trim_end_matches('/').eq_ignore_ascii_case(origin))
    {
        return true;
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin_host = origin.split_once("://").map(|(_, h)| h);
    host.is_some() && host == origin_host
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

async fn serve(st: AppState, id: String, socket: WebSocket) {
    let (mut tx, mut rx) = socket.split();
    let hello = match tokio::time::timeout(HELLO_TIMEOUT, rx.next()).await {
        Ok(Some(Ok(Message::Text(t)))) => serde_json::from_str::<Value>(&t).ok(),
        _ => None,
    };
    let Some(hello) = hello.filter(|h| h["type"] == "hello") else {
        let _ = tx
            .send(close(
                CLOSE_BAD_REQUEST,
                "send {\"type\":\"hello\",\"secret\":...} first",
            ))
            .await;
        return;
    };
    let secret = hello["secret"].as_str().unwrap_or_default();
    let row = match check_client_secret(&st, &id, secret).await {
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
    let mut seen = hello["last_id"].as_i64().unwrap_or(0).max(0);
    let engine = st.engine.clone();
    // Subscribe before reading the backlog so nothing falls in between.
    let mut live = engine.hub.subscribe(&row.id);
    let mut shutdown = engine.shutdown.subscribe();
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
        .store
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
                    for ev in engine.store.client_events_after(&row.id, seen).await.unwrap_or_default() {
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

/// One message from the client: a line typed in the chat.
async fn said(st: &AppState, session_id: &str, text: &str) -> Value {
    let v: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return json!({"type": "error", "message": format!("not JSON: {e}")}),
    };
    let client_id = v["client_id"].as_str().unwrap_or_default();
    let error = |m: &str| json!({"type": "error", "client_id": v["client_id"], "message": m});
    if v["type"] != "say" {
        return error(
            "unknown message type; send {\"type\":\"say\",\"text\":...,\"client_id\":...}",
        );
    }
    if client_id.is_empty() || client_id.len() > 64 {
        return error("`client_id` must be 1 to 64 characters, unique per line");
    }
    let Some(line) = v["text"].as_str().map(str::trim).filter(|t| !t.is_empty()) else {
        return error("`text` must be a non-empty string");
    };
    if line.chars().count() > chat::MAX_TEXT {
        return error("the line is too long (4000 characters at most)");
    }
    let work = ChatWork::Say(Say {
        session_id: session_id.to_string(),
        client_id: client_id.to_string(),
        text: line.to_string(),
    });
    match st.engine.chat(work).await {
        Ok(Said::Posted { id }) => json!({"type": "ack", "client_id": client_id, "id": id}),
        Ok(Said::Duplicate) => json!({"type": "ack", "client_id": client_id, "duplicate": true}),
        Ok(Said::Ended) => error("the chat has ended"),
        Ok(Said::NotAChat) => error("this session presents no chat now"),
        Ok(Said::NotFound) => error("no such session"),
        Err(e) => {
            tracing::warn!(session = session_id, error = %e, "chat line not taken");
            error("the line could not be stored right now; send it again")
        }
    }
}
