//! The Open Integration Hub assistant end to end: a chat session over the
//! real WebSocket, commands run as child sessions, flows triggered on the
//! OIH simulator (a real HTTP server) that calls Gangway back.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Harness, Options, eventually};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A browser's side of the chat socket.
struct Chat {
    ws: Socket,
    /// Every message frame received, in order.
    frames: Vec<Value>,
    last_id: i64,
    n: u32,
}

impl Chat {
    async fn open(h: &Harness, id: &str, secret: &str, last_id: i64) -> Chat {
        Chat::open_at(h.port, id, secret, last_id).await
    }

    async fn open_at(port: u16, id: &str, secret: &str, last_id: i64) -> Chat {
        let url = format!("ws://127.0.0.1:{port}/v1/client/sessions/{id}/chat");
        let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let mut chat = Chat {
            ws,
            frames: Vec::new(),
            last_id,
            n: 0,
        };
        chat.send(json!({"type": "hello", "secret": secret, "last_id": last_id}))
            .await;
        chat.until("ready", |f| f["type"] == "ready").await;
        chat
    }

    async fn send(&mut self, v: Value) {
        self.ws.send(Message::text(v.to_string())).await.unwrap();
    }

    /// Sends a line and waits for its acknowledgement; returns its message id.
    async fn say(&mut self, text: &str) -> i64 {
        self.n += 1;
        let client_id = format!("t{}", self.n);
        self.send(json!({"type": "say", "text": text, "client_id": client_id}))
            .await;
        let ack = self
            .until(&format!("ack of {text}"), |f| {
                f["client_id"] == client_id.as_str()
            })
            .await;
        assert_eq!(ack["type"], "ack", "{ack}");
        ack["id"].as_i64().unwrap()
    }

    /// Reads frames until one matches (within 20 s); message frames are kept.
    async fn until(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        if let Some(f) = self.frames.iter().find(|f| pred(f)) {
            return f.clone();
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let next = tokio::time::timeout(left, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("no {what} within 20 s; got {:#?}", self.frames));
            let Some(Ok(msg)) = next else {
                panic!(
                    "socket closed while waiting for {what}; got {:#?}",
                    self.frames
                )
            };
            if let Message::Close(c) = &msg {
                panic!(
                    "socket closed ({c:?}) while waiting for {what}; got {:#?}",
                    self.frames
                )
            }
            let Message::Text(t) = msg else { continue };
            let f: Value = serde_json::from_str(&t).unwrap();
            if f["type"] == "message" {
                let id = f["id"].as_i64().unwrap();
                assert!(
                    id > self.last_id,
                    "message {id} after {} (a repeat)",
                    self.last_id
                );
                self.last_id = id;
                self.frames.push(f.clone());
            }
            if pred(&f) {
                return f;
            }
        }
    }

    /// The final message of the run answering message `id`.
    async fn reply(&mut self, id: i64) -> Value {
        self.until(&format!("the end of the run for message {id}"), |f| {
            f["message"]["reply_to"] == id && f["message"]["state"] == "ended"
        })
        .await["message"]
            .clone()
    }

    /// The assistant's immediate answer to message `id`.
    async fn answer(&mut self, id: i64) -> String {
        self.until(&format!("the answer to message {id}"), |f| {
            f["message"]["reply_to"] == id && f["message"]["role"] == "assistant"
        })
        .await["message"]["text"]
            .as_str()
            .unwrap()
            .to_string()
    }

    fn about(&self, id: i64) -> Vec<Value> {
        self.frames
            .iter()
            .filter(|f| f["message"]["reply_to"] == id)
            .map(|f| f["message"].clone())
            .collect()
    }
}

async fn start_chat(h: &Harness) -> (String, String) {
    start_chat_of(h, "oih-assistant-fast").await
}

async fn start_chat_of(h: &Harness, workflow: &str) -> (String, String) {
    let (status, body) = h.post("/v1/sessions", json!({"workflow": workflow})).await;
    assert_eq!(status, 201, "{body}");
    (
        body["id"].as_str().unwrap().to_string(),
        body["client_secret"].as_str().unwrap().to_string(),
    )
}

async fn oih_post(h: &Harness, path: &str, body: Value) -> u16 {
    h.http
        .post(format!("{}/sim/oih{path}", h.sim_url))
        .json(&body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn oih_get(h: &Harness, path: &str) -> Value {
    h.http
        .get(format!("{}/sim/oih{path}", h.sim_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn run_flow_replies_with_its_result_and_help_and_status_answer_at_once() {
    let h = Harness::start().await;
    let (id, secret) = start_chat(&h).await;
    let mut chat = Chat::open(&h, &id, &secret, 0).await;

    let help = chat.say("/help").await;
    let text = chat.answer(help).await;
    assert!(text.contains("/run-flow <flow-id> [json]"), "{text}");
    assert!(text.contains("/status"), "{text}");

    let m = chat
        .say(r#"/run-flow lookup-customer {"customer_id": "c-42"}"#)
        .await;
    let reply = chat.reply(m).await;
    assert_eq!(reply["outcome"], "approved", "{reply}");
    assert_eq!(reply["command"], "run-flow");
    let customer = &reply["output"]["customer"];
    assert!(
        customer.is_object(),
        "the customer record comes back: {reply}"
    );
    // Acknowledged at once, before the result.
    let started = chat.about(m)[0].clone();
    assert_eq!(started["state"], "started", "{started}");

    let status = chat.say("/status").await;
    assert_eq!(
        chat.answer(status).await,
        "Nothing is running in this chat."
    );

    // The hub was triggered with POST and an HMAC, never GET.
    let log = oih_get(&h, "/control/requests").await;
    let hooks: Vec<&Value> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["path"].as_str().unwrap_or_default().starts_with("/hook/"))
        .collect();
    assert!(!hooks.is_empty(), "{log}");
    assert!(hooks.iter().all(|r| r["method"] == "POST"), "{log}");
}

#[tokio::test]
async fn progress_lines_arrive_before_the_result_in_order() {
    let h = Harness::start().await;
    let (id, secret) = start_chat(&h).await;
    let mut chat = Chat::open(&h, &id, &secret, 0).await;
    let m = chat.say("/run-flow slow-progress").await;
    let reply = chat.reply(m).await;
    assert_eq!(reply["outcome"], "approved", "{reply}");
    let states: Vec<String> = chat
        .about(m)
        .iter()
        .map(|x| x["state"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        states,
        ["started", "progress", "progress", "progress", "ended"],
        "{:#?}",
        chat.about(m)
    );
    let lines: Vec<Value> = chat
        .about(m)
        .iter()
        .filter(|x| x["state"] == "progress")
        .map(|x| x["present"]["message"].clone())
        .collect();
    assert!(lines.iter().all(Value::is_string), "{lines:?}");
    assert_eq!(
        lines.len(),
        lines.iter().collect::<std::collections::HashSet<_>>().len(),
        "three different lines: {lines:?}"
    );
}

#[tokio::test]
async fn failures_timeouts_and_refusals_get_a_clear_reply() {
    let h = Harness::start().await;
    let (id, secret) = start_chat(&h).await;
    let mut chat = Chat::open(&h, &id, &secret, 0).await;

    let fail = chat.say("/run-flow always-fail").await;
    let never = chat.say("/run-flow never-callback").await;
    let not_listed = chat.say("/run-flow drop-all-tables").await;
    let reply = chat.reply(fail).await;
    assert_eq!(reply["outcome"], "failed", "{reply}");
    assert!(
        reply["reason"]
            .as_str()
            .unwrap()
            .contains("always-fail failed"),
        "{reply}"
    );
    let reply = chat.reply(never).await;
    assert_eq!(reply["outcome"], "expired", "{reply}");
    assert!(
        reply["reason"]
            .as_str()
            .unwrap()
            .contains("did not answer in time"),
        "{reply}"
    );
    let reply = chat.reply(not_listed).await;
    assert_eq!(reply["outcome"], "declined", "{reply}");
    assert!(
        reply["reason"].as_str().unwrap().contains("allow-list"),
        "{reply}"
    );

    // A flow stopped at the hub: its delayed 404 is reported, not retried.
    assert_eq!(
        oih_post(&h, "/control/flows/create-contact/stop", json!({})).await,
        200
    );
    let stopped = chat
        .say(r#"/run-flow create-contact {"name": "Ada"}"#)
        .await;
    let reply = chat.reply(stopped).await;
    assert_eq!(reply["outcome"], "failed", "{reply}");
    let timeline = h.timeline(&format!("{id}-{stopped}")).await;
    let text = timeline.to_string();
    assert!(text.contains("does not exist or is not started"), "{text}");

    // Bad lines: a helpful answer, nothing started.
    for (line, hint) in [
        ("/frobnicate", "Unknown command /frobnicate"),
        ("/run-flow lookup-customer {oops", "not valid JSON"),
        ("/run-flow", "Usage: /run-flow <flow-id> [json]"),
        ("hello there", "/help"),
    ] {
        let m = chat.say(line).await;
        let text = chat.answer(m).await;
        assert!(text.contains(hint), "{line}: {text}");
    }
    // A command whose workflow is not loaded fails its run with the reason.
    let gone = chat.say("/gone").await;
    let reply = chat.reply(gone).await;
    assert_eq!(reply["outcome"], "failed", "{reply}");
    assert!(
        reply["reason"]
            .as_str()
            .unwrap()
            .contains("no-such-workflow"),
        "{reply}"
    );
    // A run whose input its workflow's schema refuses fails at once, saying
    // which field, instead of being retried.
    let bad = chat.say("/bad-input lookup-customer").await;
    let reply = chat.reply(bad).await;
    assert_eq!(reply["outcome"], "failed", "{reply}");
    let reason = reply["reason"].as_str().unwrap();
    assert!(
        reason.contains("does not fit") && reason.contains("/timeout_ms"),
        "{reply}"
    );
}

#[tokio::test]
async fn two_flows_at_once_are_matched_to_their_commands() {
    let h = Harness::start().await;
    let (id, secret) = start_chat(&h).await;
    let mut chat = Chat::open(&h, &id, &secret, 0).await;
    let slow = chat.say("/run-flow slow-progress").await;
    let quick = chat
        .say(r#"/run-flow create-contact {"name": "Grace Hopper", "email": "grace@example.com"}"#)
        .await;
    let status = chat.say("/status").await;
    let text = chat.answer(status).await;
    assert!(text.contains("/run-flow slow-progress"), "{text}");
    let quick_reply = chat.reply(quick).await;
    let slow_reply = chat.reply(slow).await;
    assert_eq!(quick_reply["outcome"], "approved", "{quick_reply}");
    assert_eq!(slow_reply["outcome"], "approved", "{slow_reply}");
    assert_eq!(quick_reply["run"], format!("{id}-{quick}"));
    assert_eq!(slow_reply["run"], format!("{id}-{slow}"));
    assert!(
        quick_reply.to_string().contains("Grace Hopper"),
        "the contact flow's result answers its own command: {quick_reply}"
    );
    assert!(
        !slow_reply.to_string().contains("Grace Hopper"),
        "{slow_reply}"
    );
}

/// Runs `lookup-customer` while the hub's callbacks are refused: the run
/// ends `expired` and no progress line reaches the chat.
async fn expires_unheard(chat: &mut Chat, customer: &str) {
    let m = chat
        .say(&format!(
            r#"/run-flow lookup-customer {{"customer_id": "{customer}"}}"#
        ))
        .await;
    let reply = chat.reply(m).await;
    assert_eq!(reply["outcome"], "expired", "{reply}");
    let progress = chat
        .about(m)
        .iter()
        .filter(|x| x["state"] == "progress")
        .count();
    assert_eq!(progress, 0);
}

#[tokio::test]
async fn duplicate_and_late_callbacks_give_one_reply_and_a_wrong_token_gets_401() {
    let h = Harness::start().await;
    let (id, secret) = start_chat(&h).await;
    let mut chat = Chat::open(&h, &id, &secret, 0).await;
    assert_eq!(
        oih_post(&h, "/control/knobs", json!({"callback_twice": true})).await,
        200
    );
    let m = chat.say("/run-flow slow-progress").await;
    let reply = chat.reply(m).await;
    assert_eq!(reply["outcome"], "approved");
    // Every copy was answered; a marker line afterwards proves no late extra reply.
    let sent = eventually("the simulator sent 8 callbacks", 10, || async {
        let sent = oih_get(&h, "/control/callbacks").await;
        let all: Vec<Value> = sent["callbacks"].as_array().cloned().unwrap_or_default();
        (all.len() >= 8 && all.iter().all(|c| c["status"] != 0)).then_some(all)
    })
    .await;
    let marker = chat.say("/status").await;
    chat.answer(marker).await;
    let states: Vec<Value> = chat.about(m).iter().map(|x| x["state"].clone()).collect();
    assert_eq!(
        states.len(),
        5,
        "one message per callback, not two: {states:?}"
    );
    let statuses: Vec<u64> = sent.iter().map(|c| c["status"].as_u64().unwrap()).collect();
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 409),
        "{statuses:?}"
    );
    assert!(
        statuses.contains(&409),
        "the copy of the result is refused: {statuses:?}"
    );

    // A wrong token: 401 and nothing stored.
    let before = h.timeline(&id).await["entries"].as_array().unwrap().len();
    let resp = h
        .http
        .post(h.url("/v1/callbacks/oih/gwcb_not-a-real-token"))
        .json(&json!({"requestId": "0123456789abcdef0123456789abcdef", "seq": 1, "type": "result", "data": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let problem: Value = resp.json().await.unwrap();
    assert_eq!(problem["status"], 401, "{problem}");
    assert_eq!(
        h.timeline(&id).await["entries"].as_array().unwrap().len(),
        before
    );

    // The simulator's `bad_auth`: its callbacks are refused, the run times out.
    assert_eq!(
        oih_post(&h, "/control/knobs", json!({"bad_auth": true})).await,
        200
    );
    expires_unheard(&mut chat, "c-1").await;

    // The right token but a request id of no run of it: 409, nothing
    // reaches the chat, the run times out.
    assert_eq!(
        oih_post(
            &h,
            "/control/knobs",
            json!({"bad_auth": false, "bad_request_id": true})
        )
        .await,
        200
    );
    let before = h.timeline(&id).await["entries"].as_array().unwrap().len();
    expires_unheard(&mut chat, "c-2").await;
    let sent = oih_get(&h, "/control/callbacks").await;
    let refused: Vec<u64> = sent["callbacks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["flowId"] == "lookup-customer")
        .filter_map(|c| c["status"].as_u64())
        .collect();
    assert!(refused.contains(&409), "{sent}");
    // The run (a child session of the chat) stored none of them.
    let entries = h.timeline(&id).await["entries"].as_array().unwrap().clone();
    let run = entries[before..]
        .iter()
        .find(|e| e["kind"] == "chat.run_started")
        .map(|e| e["data"]["run"].as_str().unwrap().to_string())
        .expect("the run started");
    let run_entries = h.timeline(&run).await["entries"].clone();
    let events: Vec<&Value> = run_entries
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "event.received")
        .collect();
    assert!(
        events.is_empty(),
        "a refused callback stored nothing: {events:?}"
    );
}

#[tokio::test]
async fn early_and_reordered_callbacks_still_reach_the_run() {
    let h = Harness::start().await;
    let (id, secret) = start_chat(&h).await;
    let mut chat = Chat::open(&h, &id, &secret, 0).await;
    assert_eq!(
        oih_post(&h, "/control/knobs", json!({"early": true})).await,
        200
    );
    let m = chat
        .say(r#"/run-flow lookup-customer {"customer_id": "c-9"}"#)
        .await;
    assert_eq!(chat.reply(m).await["outcome"], "approved");
    assert_eq!(
        oih_post(
            &h,
            "/control/knobs",
            json!({"early": false, "reorder": true})
        )
        .await,
        200
    );
    let m = chat.say("/run-flow slow-progress").await;
    let reply = chat.reply(m).await;
    assert_eq!(reply["outcome"], "approved", "{reply}");
    // The last progress line came after the result: dropped (409).
    let sent = eventually("callbacks answered", 10, || async {
        let all: Vec<Value> = oih_get(&h, "/control/callbacks").await["callbacks"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        (all.iter()
            .filter(|c| c["flowId"] == "slow-progress")
            .count()
            >= 4
            && all.iter().all(|c| c["status"] != 0))
        .then_some(all)
    })
    .await;
    assert!(
        sent.iter()
            .any(|c| c["flowId"] == "slow-progress" && c["status"] == 409),
        "{sent:#?}"
    );
}

#[tokio::test]
async fn a_dropped_socket_resumes_from_the_last_id_seen() {
    let h = Harness::start().await;
    let (id, secret) = start_chat(&h).await;
    let mut chat = Chat::open(&h, &id, &secret, 0).await;
    let m = chat.say("/run-flow slow-progress").await;
    chat.until("the first progress line", |f| {
        f["message"]["reply_to"] == m && f["message"]["state"] == "progress"
    })
    .await;
    let seen = chat.last_id;
    let before: Vec<Value> = chat.frames.clone();
    drop(chat);
    // Reconnect from the last id seen: the rest arrives once, nothing again.
    let mut again = Chat::open(&h, &id, &secret, seen).await;
    let reply = again.reply(m).await;
    assert_eq!(reply["outcome"], "approved");
    let mut ids: Vec<i64> = before
        .iter()
        .chain(again.frames.iter())
        .map(|f| f["id"].as_i64().unwrap())
        .collect();
    let n = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), n, "no message twice");
    // A line resent with the same client id (its ack was lost) is taken once.
    again
        .send(json!({"type": "say", "text": "/status", "client_id": "same"}))
        .await;
    again
        .until("first ack", |f| {
            f["type"] == "ack" && f["client_id"] == "same"
        })
        .await;
    again
        .send(json!({"type": "say", "text": "/status", "client_id": "same"}))
        .await;
    let dup = again
        .until("second ack", |f| {
            f["type"] == "ack" && f["client_id"] == "same" && f["duplicate"] == true
        })
        .await;
    assert_eq!(dup["duplicate"], true);

    // A wrong secret is refused before anything is sent.
    let url = format!("ws://127.0.0.1:{}/v1/client/sessions/{id}/chat", h.port);
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    ws.send(Message::text(
        json!({"type": "hello", "secret": "gwcs_wrong", "last_id": 0}).to_string(),
    ))
    .await
    .unwrap();
    let mut saw_message = false;
    let mut close_code = None;
    while let Ok(Some(Ok(msg))) = tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
        match msg {
            Message::Text(t) => saw_message |= t.contains("\"message\",\"id\""),
            Message::Close(Some(c)) => {
                close_code = Some(u16::from(c.code));
                break;
            }
            _ => {}
        }
    }
    assert!(!saw_message);
    assert_eq!(close_code, Some(4401));
}

#[tokio::test]
async fn a_restart_while_a_flow_waits_for_its_callback_loses_nothing() {
    let mut h = Harness::start().await;
    // The shipped assistant: a deadline well beyond the restart.
    let (id, secret) = start_chat_of(&h, "oih-assistant").await;
    let mut chat = Chat::open(&h, &id, &secret, 0).await;
    // The hub holds its callback until the server is down, then sends it
    // and re-sends it while it finds no server, as a component that retries.
    assert_eq!(
        oih_post(&h, "/control/knobs", json!({"hold": true, "retries": 100})).await,
        200
    );
    let m = chat
        .say(r#"/run-flow lookup-customer {"customer_id": "c-3"}"#)
        .await;
    let run = format!("{id}-{m}");
    eventually("the run waits for its callback", 20, || async {
        let (status, s) = h.get(&format!("/v1/sessions/{run}")).await;
        (status == 200 && s["step"] == "running").then_some(())
    })
    .await;
    let seen = chat.last_id;
    drop(chat);
    h.kill9_server();
    assert_eq!(
        oih_post(&h, "/control/knobs", json!({"hold": false})).await,
        200
    );
    eventually(
        "a callback refused while the server is down",
        20,
        || async {
            let sent = oih_get(&h, "/control/callbacks").await;
            sent["callbacks"]
                .as_array()?
                .iter()
                .any(|c| c["status"] == 0)
                .then_some(())
        },
    )
    .await;
    h.start_server();
    let mut chat = Chat::open(&h, &id, &secret, seen).await;
    let reply = chat.reply(m).await;
    assert_eq!(reply["outcome"], "approved", "{reply}");
    // The hub logs an attempt once it has read the answer, which may be
    // after the server already applied the callback and replied in the
    // chat: wait for the log to show it.
    let statuses = eventually("the hub logs the re-sent callback's 200", 20, || async {
        let sent = oih_get(&h, "/control/callbacks").await;
        let statuses: Vec<u64> = sent["callbacks"]
            .as_array()?
            .iter()
            .filter_map(|c| c["status"].as_u64())
            .collect();
        (statuses.last() == Some(&200)).then_some(statuses)
    })
    .await;
    assert_eq!(statuses.first(), Some(&0), "{statuses:?}");
}

/// The value of a hidden form field in the simulator's pages.
fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no field {name} in {html}"))
        + marker.len();
    let end = start + html[start..].find('"').unwrap();
    html[start..end]
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// What a user does in the sign-in popup: sign in, allow, land on the hub's
/// callback page.
async fn sign_in(h: &Harness, login_url: &str) {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = http
        .get(login_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut form: Vec<(String, String)> = [
        "response_type",
        "client_id",
        "redirect_uri",
        "scope",
        "state",
    ]
    .iter()
    .map(|k| ((*k).to_string(), hidden(&page, k)))
    .collect();
    form.extend([
        ("step".into(), "signin".into()),
        ("email".into(), "ada.lovelace@example.com".into()),
        ("password".into(), "correct horse".into()),
    ]);
    let authorize = format!("{}/sim/oih/idp/authorize", h.sim_url);
    let consent = http
        .post(&authorize)
        .form(&form)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let r = http
        .post(&authorize)
        .form(&[
            ("step", "consent"),
            ("consent", hidden(&consent, "consent").as_str()),
            ("decision", "allow"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let back = r.headers()["location"].to_str().unwrap().to_string();
    let done = http.get(&back).send().await.unwrap();
    assert_eq!(done.status(), 200, "{back}");
}

#[tokio::test]
async fn auth_then_me_shows_who_signed_in_and_their_profile_and_no_secret_reaches_the_chat() {
    let h = Harness::start().await;
    let (id, secret) = start_chat(&h).await;
    let mut chat = Chat::open(&h, &id, &secret, 0).await;

    // /me before /auth: refused with a hint, and nothing is triggered.
    let me = chat.say("/me").await;
    let reply = chat.reply(me).await;
    assert_eq!(reply["outcome"], "declined", "{reply}");
    assert!(
        reply["reason"]
            .as_str()
            .unwrap()
            .contains("Run /auth first"),
        "{reply}"
    );
    let log = oih_get(&h, "/control/requests").await;
    assert!(!log.to_string().contains("graph-me"), "{log}");

    let auth = chat.say("/auth").await;
    let link = chat
        .until("the sign-in link", |f| {
            f["message"]["reply_to"] == auth && f["message"]["present"]["url"].is_string()
        })
        .await;
    let login_url = link["message"]["present"]["url"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        login_url.starts_with(&format!("{}/sim/oih/idp/authorize?", h.sim_url)),
        "{login_url}"
    );
    assert_eq!(link["message"]["present"]["kind"], "popup");
    sign_in(&h, &login_url).await;
    let reply = chat.reply(auth).await;
    assert_eq!(reply["outcome"], "approved", "{reply}");
    assert_eq!(
        reply["reason"],
        "Signed in as Ada Lovelace (ada.lovelace@example.com)"
    );
    assert_eq!(
        reply["output"],
        json!({"name": "Ada Lovelace", "email": "ada.lovelace@example.com"}),
        "the secret id stays on the server"
    );

    let me = chat.say("/me").await;
    let reply = chat.reply(me).await;
    assert_eq!(reply["outcome"], "approved", "{reply}");
    let profile = &reply["output"]["profile"];
    assert_eq!(profile["displayName"], "Ada Lovelace", "{reply}");
    assert_eq!(profile["mail"], "ada.lovelace@example.com", "{reply}");

    // Nothing secret reached the browser's socket, the customer's views or the log.
    let secrets = oih_get(&h, "/control/secrets").await;
    let secret_id = secrets["secrets"][0]["id"].as_str().unwrap().to_string();
    let transcript = serde_json::to_string(&chat.frames).unwrap();
    for leak in [
        secret_id.as_str(),
        "oihsim_at_",
        "oihsim_rt_",
        common::OIH_HMAC_KEY,
        "gwcb_",
    ] {
        assert!(!transcript.contains(leak), "{leak} reached the chat");
    }
    let log = h.server_log();
    for leak in ["oihsim_at_", "oihsim_rt_", common::OIH_HMAC_KEY, "gwcb_"] {
        assert!(!log.contains(leak), "{leak} in the server log");
    }
    for run in [format!("{id}-{auth}"), format!("{id}-{me}"), id.clone()] {
        let t = h.timeline(&run).await.to_string();
        for leak in ["oihsim_at_", common::OIH_HMAC_KEY, "gwcb_"] {
            assert!(!t.contains(leak), "{leak} in the timeline of {run}");
        }
    }
    // The client view of the chat carries no memory.
    let view: Value = h
        .http
        .get(h.url(&format!("/v1/client/sessions/{id}")))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!view.to_string().contains(&secret_id), "{view}");
}

/// Two nodes on PostgreSQL: a line typed on one node's socket, its run and
/// its callbacks on that node; a socket on the other node sees every
/// message, through the database's notifications.
#[tokio::test]
async fn cluster_chat_messages_reach_a_socket_on_another_node() {
    let mut h = Harness::start_with(Options {
        postgres: true,
        ..Options::default()
    })
    .await;
    let n = h.add_node();
    let other_port = h.nodes[n].0;
    let (id, secret) = start_chat(&h).await;
    let mut watcher = Chat::open(&h, &id, &secret, 0).await;
    let mut typist = Chat::open_at(other_port, &id, &secret, 0).await;
    let m = typist.say("/run-flow slow-progress").await;
    let on_other = watcher.reply(m).await;
    assert_eq!(on_other["outcome"], "approved", "{on_other}");
    let states: Vec<Value> = watcher
        .about(m)
        .iter()
        .map(|x| x["state"].clone())
        .collect();
    assert_eq!(states.len(), 5, "every message once: {states:?}");
    assert_eq!(typist.reply(m).await, on_other);
}

#[tokio::test]
async fn ending_the_chat_cancels_its_runs_and_a_late_socket_gets_the_transcript_then_a_close() {
    let h = Harness::start().await;
    let (id, secret) = start_chat_of(&h, "oih-assistant").await;
    let mut chat = Chat::open(&h, &id, &secret, 0).await;
    let m = chat.say("/run-flow never-callback").await;
    let run = format!("{id}-{m}");
    eventually("the run waits for its callback", 20, || async {
        let (status, s) = h.get(&format!("/v1/sessions/{run}")).await;
        (status == 200 && s["step"] == "running").then_some(())
    })
    .await;
    let (status, body) = h
        .post(
            &format!("/v1/sessions/{id}/cancel"),
            json!({"reason": "closed by the shop"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    chat.until("the end of the chat", |f| f["type"] == "ended")
        .await;
    let ended = h.wait_ended(&run).await;
    assert_eq!(ended["outcome"], "canceled", "{ended}");

    // A socket opened now: the transcript, `ended`, then a normal close.
    let url = format!("ws://127.0.0.1:{}/v1/client/sessions/{id}/chat", h.port);
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    ws.send(Message::text(
        json!({"type": "hello", "secret": secret, "last_id": 0}).to_string(),
    ))
    .await
    .unwrap();
    let mut types = Vec::new();
    let mut close_code = None;
    while let Ok(Some(Ok(msg))) = tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
        match msg {
            Message::Text(t) => types.push(
                serde_json::from_str::<Value>(&t).unwrap()["type"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            ),
            Message::Close(Some(c)) => {
                close_code = Some(u16::from(c.code));
                break;
            }
            _ => {}
        }
    }
    assert_eq!(close_code, Some(1000), "{types:?}");
    assert!(
        types.contains(&"message".to_string())
            && types.ends_with(&["ended".to_string(), "ready".to_string()]),
        "{types:?}"
    );
}

/// Issue 18 finding 6: chat sockets count against `limits.streams_per_session`
/// (with event streams); one more is told why and closed with 4429, and a
/// closed socket frees its place. Chat lines count against
/// `limits.signals_per_session`: one more is refused and not stored.
#[tokio::test]
async fn chat_sockets_and_lines_per_session_are_bounded() {
    let h = Harness::start_with(Options {
        extra_toml: "[limits]\nstreams_per_session = 2\nsignals_per_session = 3\n",
        ..Default::default()
    })
    .await;
    let (id, secret) = start_chat(&h).await;
    let mut first = Chat::open(&h, &id, &secret, 0).await;
    let second = Chat::open(&h, &id, &secret, 0).await;
    let url = format!("ws://127.0.0.1:{}/v1/client/sessions/{id}/chat", h.port);
    let (mut third, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    third
        .send(Message::text(
            json!({"type": "hello", "secret": secret, "last_id": 0}).to_string(),
        ))
        .await
        .unwrap();
    let mut told = None;
    let mut closed = None;
    while let Some(Ok(msg)) = third.next().await {
        match msg {
            Message::Text(t) => told = Some(serde_json::from_str::<Value>(&t).unwrap()),
            Message::Close(c) => {
                closed = c.map(|c| u16::from(c.code));
                break;
            }
            _ => {}
        }
    }
    assert_eq!(closed, Some(4429), "{told:?}");
    let told = told.unwrap();
    assert_eq!(told["type"], "error");
    assert!(
        told["message"]
            .as_str()
            .unwrap()
            .contains("limits.streams_per_session"),
        "{told}"
    );
    drop(second);
    let mut again = eventually("a place for another socket", 20, || async {
        let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
        ws.send(Message::text(
            json!({"type": "hello", "secret": secret, "last_id": 0}).to_string(),
        ))
        .await
        .unwrap();
        while let Some(Ok(msg)) = ws.next().await {
            match msg {
                Message::Text(t) if t.contains("\"ready\"") => return Some(ws),
                Message::Close(_) => return None,
                _ => {}
            }
        }
        None
    })
    .await;
    let _ = again.close(None).await;
    // Three lines are stored; the fourth is refused.
    for line in ["/help", "/status", "/help"] {
        first.say(line).await;
    }
    first
        .send(json!({"type": "say", "text": "/status", "client_id": "over"}))
        .await;
    let refused = first
        .until("the refusal", |f| f["client_id"] == "over")
        .await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("limits.signals_per_session"),
        "{refused}"
    );
    let (_, session) = h.get(&format!("/v1/sessions/{id}")).await;
    assert_eq!(session["refused_events"], 1, "{session}");
}

/// Issue 18 finding 9: a run's callback token is stored only as its SHA-256
/// hash (derived again from the request id when the trigger is sent): the
/// token the hub received appears nowhere in the database files, the WAL
/// included, during the run or after it.
#[tokio::test]
async fn callback_tokens_never_reach_the_database_in_plaintext() {
    // A proxy in front of the hub's webhooks service sees the trigger.
    let tap = common::lb::Lb::start().await;
    let h = Harness::start_with(Options {
        oih_base_url: Some(tap.url.clone()),
        ..Default::default()
    })
    .await;
    tap.set_nodes(vec![format!("{}/sim/oih", h.sim_url)]);
    let (id, secret) = start_chat(&h).await;
    let mut chat = Chat::open(&h, &id, &secret, 0).await;
    let m = chat
        .say(r#"/run-flow lookup-customer {"customer_id": "c-7"}"#)
        .await;
    let token = eventually("the trigger at the hub", 20, || async {
        tap.bodies().iter().find_map(|b| {
            let v: Value = serde_json::from_slice(b).ok()?;
            let url = v["callbackUrl"].as_str()?;
            Some(url.rsplit('/').next()?.to_string())
        })
    })
    .await;
    assert!(token.starts_with("gwcb_"), "{token}");
    let leaked = |all: &[u8]| all.windows(token.len()).any(|w| w == token.as_bytes());
    assert!(
        !leaked(&h.database_bytes().await),
        "the callback token is in the database while the run goes on"
    );
    let reply = chat.reply(m).await;
    assert_eq!(
        reply["outcome"], "approved",
        "the callbacks found the run: {reply}"
    );
    assert!(
        !leaked(&h.database_bytes().await),
        "the callback token is in the database files after the run"
    );
}
