//! Channels and partner events: how a channel looks in the Partner API, its
//! progression through the statuses, and the webhooks that announce it.

use std::sync::{Arc, Weak};
use std::time::Duration;

use serde_json::{Value, json};

use super::{Dialog360Sim, Inner, PROGRESSION, SentWebhook, Shared, SimChannel, lock, random_id};
use crate::sim::now_rfc3339;

/// A partner webhook waiting to be sent.
pub(super) struct Outgoing {
    url: String,
    envelope: Value,
    copies: u32,
    delay_ms: u64,
    record: SentWebhook,
}

/// The event a status change sends.
fn event_for(status: &str) -> Option<&'static str> {
    Some(match status {
        "created" => "channel_created",
        "unverified" => "channel_submitted",
        "ready" => "channel_ready",
        "running" => "channel_running",
        "verified" => return None,
        _ => "channel_status_changed",
    })
}

impl Dialog360Sim {
    /// The channel as the Partner API shows it.
    pub(super) fn channel_json(inner: &Inner, ch: &SimChannel) -> Value {
        let client = inner.clients.get(&ch.client_id);
        json!({
            "id": ch.id,
            "client_id": ch.client_id,
            "status": ch.status,
            "account_mode": if ch.status == "running" { "live" } else { "sandbox" },
            "created_at": ch.created_at,
            "client": client.map(|c| json!({"id": c.id, "name": c.name, "partner_payload": c.partner_payload, "contact_info": {"email": c.email}})),
            "setup_info": {"phone_number": ch.phone_number, "phone_name": client.map(|c| c.name.clone())},
            "waba_account": {"id": format!("waba_{}", ch.client_id), "fb_account_status": "verified"},
        })
    }

    /// Sends a partner event about a channel (or a client) to the partner's
    /// webhook URL, honouring the knobs.
    pub(super) fn send_event(&self, event: &str, channel_id: Option<&str>, client_id: &str) {
        let (partner, knobs, data) = {
            let inner = lock(&self.shared.inner);
            let data = match channel_id.and_then(|c| inner.channels.get(c)) {
                Some(ch) => Self::channel_json(&inner, ch),
                None => inner
                    .clients
                    .get(client_id)
                    .map(|c| json!({"id": c.id, "name": c.name, "partner_payload": c.partner_payload}))
                    .unwrap_or(Value::Null),
            };
            let pid = inner
                .clients
                .get(client_id)
                .map(|c| c.partner_id.clone())
                .unwrap_or_default();
            (self.partner(&pid).cloned(), inner.knobs.clone(), data)
        };
        let Some(url) = partner.and_then(|p| p.webhook_url) else {
            return;
        };
        if knobs.drop {
            return;
        }
        let url = if knobs.bad_auth {
            match url.split_once("token=") {
                Some((head, _)) => format!("{head}token=wrong-token"),
                None => url,
            }
        } else {
            url
        };
        let envelope =
            json!({"id": format!("evt_{}", random_id(16)), "event": event, "data": data});
        let out = Outgoing {
            url,
            envelope,
            copies: knobs.duplicate + 1,
            delay_ms: knobs.delay_ms,
            record: SentWebhook {
                at: String::new(),
                event: event.to_string(),
                channel_id: channel_id.map(str::to_string),
                client_id: client_id.to_string(),
                status: 0,
            },
        };
        let mut outbox = self
            .shared
            .outbox
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let tx = outbox.get_or_insert_with(|| self.start_sender());
        if let Err(e) = tx.send(out) {
            // The sender task is gone (runtime shutting down): start anew.
            let tx = outbox.insert(self.start_sender());
            let _ = tx.send(e.0);
        }
    }

    /// One task sends every webhook in order (the hub's order is what tests
    /// and `reorder` rely on).
    fn start_sender(&self) -> tokio::sync::mpsc::UnboundedSender<Outgoing> {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Outgoing>();
        let weak: Weak<Shared> = Arc::downgrade(&self.shared);
        tokio::spawn(async move {
            while let Some(out) = rx.recv().await {
                let Some(shared) = weak.upgrade() else { return };
                if out.delay_ms > 0 {
                    tokio::time::sleep(Duration::from_millis(out.delay_ms)).await;
                }
                for _ in 0..out.copies {
                    let status = match shared.http.post(&out.url).json(&out.envelope).send().await {
                        Ok(r) => r.status().as_u16(),
                        Err(_) => 0,
                    };
                    lock(&shared.inner).webhooks.push(SentWebhook {
                        at: now_rfc3339(),
                        status,
                        ..out.record.clone()
                    });
                }
            }
        });
        tx
    }

    /// Moves a channel to `status` and sends its event.
    pub(super) fn set_status(&self, channel_id: &str, status: &str) -> Option<String> {
        let client = {
            let mut inner = lock(&self.shared.inner);
            let ch = inner.channels.get_mut(channel_id)?;
            if ch.status == status {
                return Some(ch.client_id.clone());
            }
            ch.status = status.to_string();
            ch.client_id.clone()
        };
        if let Some(ev) = event_for(status) {
            self.send_event(ev, Some(channel_id), &client);
        }
        if status == "running" {
            self.send_event("channel_live", Some(channel_id), &client);
        }
        Some(client)
    }

    /// Moves a channel to `status` without sending anything.
    fn set_status_quietly(&self, channel_id: &str, status: &str) -> Option<String> {
        let mut inner = lock(&self.shared.inner);
        let ch = inner.channels.get_mut(channel_id)?;
        ch.status = status.to_string();
        Some(ch.client_id.clone())
    }

    /// Advances a channel along [`PROGRESSION`] until it runs or is held.
    pub(super) fn spawn_advance(&self, channel_id: String) {
        let weak: Weak<Shared> = Arc::downgrade(&self.shared);
        let epoch = lock(&self.shared.inner).epoch;
        tokio::spawn(async move {
            loop {
                let Some(shared) = weak.upgrade() else { return };
                let sim = Dialog360Sim { shared };
                tokio::time::sleep(Duration::from_millis(sim.advance_ms())).await;
                let next = {
                    let inner = lock(&sim.shared.inner);
                    if inner.epoch != epoch {
                        return;
                    }
                    let Some(ch) = inner.channels.get(&channel_id) else {
                        return;
                    };
                    if ch.revoked || inner.knobs.hold_at.as_deref() == Some(ch.status.as_str()) {
                        None
                    } else {
                        match PROGRESSION.iter().position(|s| *s == ch.status) {
                            Some(i) if i + 1 < PROGRESSION.len() => Some(PROGRESSION[i + 1]),
                            Some(_) => return,
                            // Forced to another status: stays there.
                            None => None,
                        }
                    }
                };
                if let Some(next) = next {
                    let reorder = lock(&sim.shared.inner).knobs.reorder;
                    match (reorder, next) {
                        // The ready event is held back ...
                        (true, "ready") => {
                            sim.set_status_quietly(&channel_id, next);
                        }
                        // ... and sent after the running one.
                        (true, "running") => {
                            if let Some(client) = sim.set_status_quietly(&channel_id, next) {
                                sim.send_event("channel_running", Some(&channel_id), &client);
                                sim.send_event("channel_ready", Some(&channel_id), &client);
                                sim.send_event("channel_live", Some(&channel_id), &client);
                            }
                        }
                        _ => {
                            sim.set_status(&channel_id, next);
                        }
                    }
                }
            }
        });
    }

    pub(super) fn new_channel(&self, client_id: &str, partner_id: &str, phone: &str) -> String {
        let id = random_id(8);
        lock(&self.shared.inner).channels.insert(
            id.clone(),
            SimChannel {
                id: id.clone(),
                client_id: client_id.to_string(),
                partner_id: partner_id.to_string(),
                status: "created".into(),
                phone_number: phone.to_string(),
                created_at: now_rfc3339(),
                revoked: false,
                api_key: None,
            },
        );
        id
    }
}
