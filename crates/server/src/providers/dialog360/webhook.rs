//! 360dialog's inbound side (providers.md 4): partner webhooks at
//! `POST /v1/webhooks/360dialog?token=…`, and Gangway's redirect page at
//! `/v1/redirect/360dialog/{state}` where the permissions popup lands.
//! Neither decides anything: a partner event makes the session re-read its
//! channels, and a redirect is a hint the workflow confirms with the Partner
//! API. The page hands the parameters to the opener with an explicit
//! target origin and closes, or, with no opener, finishes by posting them.

use super::client::RedirectHint;
use crate::api::AppState;
use crate::api::auth::{ClientAddr, auth_failed};
use crate::api::error::Problem;
use crate::api::extract::JsonBody;
use crate::ids;
use crate::store::NewEvent;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

/// The namespace 360dialog references (our `state`, client ids) live in.
const NAMESPACE: &str = "dialog360";
/// Longest redirect query recorded.
const MAX_QUERY: usize = 4096;

pub fn token_param(query: Option<&str>) -> Option<String> {
    let q = query?;
    reqwest::Url::parse(&format!("http://x/?{q}"))
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
}

/// The event name a partner event becomes. Cancellations end a waiting
/// session; every other event only makes it re-read its channels.
fn event_name(event: &str) -> String {
    match event {
        "cancellation_request" | "cancellation_processed" => "dialog360.cancellation".into(),
        other => format!("dialog360.{other}"),
    }
}

/// `POST /v1/webhooks/360dialog?token=…`: the token first (401, nothing
/// stored), then the envelope `{id?, event, data}`, stored deduplicated on
/// `id` (else event + channel/client id) and routed by the client id.
pub async fn webhook(
    State(st): State<AppState>,
    ClientAddr(source): ClientAddr,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Json<Value>, Problem> {
    let Some(cfg) = st
        .engine
        .config()
        .section::<super::config::Dialog360Config>()
    else {
        return Err(Problem::not_found(
            "the dialog360 connector is not configured",
        ));
    };
    let given = token_param(query.as_deref()).unwrap_or_default();
    if !ids::secure_eq(given.as_bytes(), cfg.webhook_token.as_bytes()) {
        metrics::counter!("gangway_inbound_rejected_total", "source" => "dialog360").increment(1);
        tracing::debug!(%source, "360dialog webhook rejected: missing or wrong token");
        return Err(auth_failed(
            &st,
            source,
            "webhook:360dialog",
            Problem::unauthorized("missing or wrong webhook token"),
        ));
    }
    let PartnerEvent {
        event,
        channel,
        client,
        event_key,
        data,
    } = parse_partner_event(&body)?;
    let event = event.as_str();
    let Some(client) = client else {
        tracing::info!(event, "360dialog webhook names no client; recorded nowhere");
        return Ok(Json(json!({"received": true, "correlated": false})));
    };
    let client = client.as_str();
    let channel = channel.as_deref();
    let data = &data;
    let (namespace, reference) = route(&st, client, data).await?;
    let ingested = st
        .engine
        .ingest(NewEvent {
            source: "dialog360".into(),
            event_key,
            namespace,
            reference,
            name: event_name(event),
            data: json!({"event": event, "channel_id": channel, "client_id": client, "status": data.get("status")}),
            received_at: ids::now_ms(),
        })
        .await?;
    if !ingested.duplicate
        && !ingested.applied
        && let Some(sid) = &ingested.session_id
    {
        st.engine.expedite_poll(sid).await?;
    }
    Ok(Json(
        json!({"received": true, "duplicate": ingested.duplicate}),
    ))
}

/// A partner event's envelope `{id?, event, data}`, read.
#[derive(Debug)]
pub struct PartnerEvent {
    pub event: String,
    pub channel: Option<String>,
    /// The client the event is about; `None`: recorded nowhere.
    pub client: Option<String>,
    /// `id`, else event + channel (or client) id.
    pub event_key: String,
    /// `data` when it is an object, else the whole body.
    pub data: Value,
}

/// Reads an authenticated partner webhook's body (pure: fuzzed in `fuzz/`).
pub fn parse_partner_event(body: &[u8]) -> Result<PartnerEvent, Problem> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| Problem::bad_request(format!("malformed JSON: {e}")))?;
    let event = v
        .get("event")
        .or_else(|| v.get("type"))
        .and_then(Value::as_str)
        .filter(|e| {
            !e.is_empty() && e.len() <= 64 && e.chars().all(|c| c.is_ascii_lowercase() || c == '_')
        })
        .ok_or_else(|| {
            Problem::validation("the webhook needs a string field `event` (e.g. channel_running)")
        })?;
    let data = v.get("data").filter(|d| d.is_object()).unwrap_or(&v);
    let s = |p: &str| {
        data.pointer(p)
            .and_then(Value::as_str)
            .filter(|s| super::client::valid_id(s))
    };
    let (channel, client) = if event.starts_with("client_") {
        (None, s("/id").or(s("/client_id")))
    } else {
        (
            s("/channel_id").or(s("/id")),
            s("/client_id").or(s("/client/id")),
        )
    };
    let event_key = match v
        .get("id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        Some(id) => id.chars().take(128).collect(),
        None => format!("{event}:{}", channel.or(client).unwrap_or_default()),
    };
    Ok(PartnerEvent {
        event: event.to_string(),
        channel: channel.map(str::to_string),
        client: client.map(str::to_string),
        event_key,
        data: data.clone(),
    })
}

/// Where a partner event goes: the session that confirmed the client (its
/// provider reference), unless that session has ended and the client's
/// `partner_payload` (our session id, set by the permissions URL's `partner`)
/// names another session: a client that onboards a second number in a new
/// session. Routing only wakes a session; its own status read decides.
async fn route(st: &AppState, client: &str, data: &Value) -> Result<(String, String), Problem> {
    let by_client = NAMESPACE.to_string();
    let confirmed = st.engine.session_for_reference(NAMESPACE, client).await?;
    let payload = data
        .pointer("/client/partner_payload")
        .and_then(Value::as_str)
        .filter(|p| p.starts_with("ses_") && p.len() <= 64 && Some(*p) != confirmed.as_deref());
    if let (Some(sid), Some(payload)) = (&confirmed, payload) {
        let ended = st
            .engine
            .session(sid)
            .await?
            .is_none_or(|row| row.state.outcome.is_some());
        let target_knows_client = st.engine.session(payload).await?.is_some_and(|row| {
            row.state
                .providers
                .iter()
                .any(|p| p.connector == NAMESPACE && p.provider_session_id == client)
        });
        if ended && target_knows_client {
            return Ok(("session".into(), payload.to_string()));
        }
    }
    Ok((by_client, client.to_string()))
}

/// Where the redirect page hands over: the customer page's origin (the
/// opener's, for postMessage) and the page to link back to without an
/// opener, as the session's `dialog360.start` result named them.
struct Customer {
    origin: Option<String>,
    return_url: Option<String>,
}

/// The session that issued `state`, and its [`Customer`], if the state is known.
async fn session_and_customer(
    st: &AppState,
    state: &str,
) -> Result<Option<(String, Customer)>, Problem> {
    if !state.starts_with("d360st_") || state.len() > 128 {
        return Ok(None);
    }
    let Some(sid) = st.engine.session_for_reference(NAMESPACE, state).await? else {
        return Ok(None);
    };
    let Some(row) = st.engine.session(&sid).await? else {
        return Ok(None);
    };
    let started = row
        .state
        .vars
        .values()
        .find(|v| v.get("state").and_then(Value::as_str) == Some(state));
    let field = |name: &str| {
        started
            .and_then(|v| v.get(name))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let customer = Customer {
        origin: field("origin"),
        return_url: field("return_url"),
    };
    Ok(Some((sid, customer)))
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// A JSON string literal safe inside `<script>`.
fn js_string(s: &str) -> String {
    Value::String(s.to_string())
        .to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

fn page(status: StatusCode, nonce: &str, body: String) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    let csp = format!(
        "default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    // The state is in the URL: never send it on as a Referer.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("unsafe-none"),
    );
    r
}

/// `GET /v1/redirect/360dialog/{state}`: the page the permissions popup
/// lands on. It posts the query to the server (recorded, confirmed by the
/// workflow), then hands it to the opener with an explicit target origin and
/// closes; without an opener it shows a link back to the customer's page
/// (`return_url` of `dialog360.start`, else its origin).
pub async fn redirect_page(
    State(st): State<AppState>,
    ClientAddr(source): ClientAddr,
    Path(state): Path<String>,
) -> Result<Response, Problem> {
    let nonce = ids::new_secret("n")
        .trim_start_matches("n_")
        .chars()
        .take(32)
        .collect::<String>();
    let Some((_, customer)) = session_and_customer(&st, &state).await? else {
        // A state is a one-time secret: an unknown one is a failed guess.
        if let Err(refused) = st.limits.failed(source, "redirect:360dialog") {
            return Err(refused.into());
        }
        return Ok(page(
            StatusCode::NOT_FOUND,
            &nonce,
            format!(
                "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Link not valid</title><style nonce=\"{nonce}\">body{{font-family:system-ui,sans-serif;margin:3em}}</style></head><body><h1>This link is not valid</h1><p>It has expired or was never issued. Close this window and start again.</p></body></html>"
            ),
        ));
    };
    let origin = customer
        .origin
        .unwrap_or_else(|| st.engine.config().base_url());
    let back = customer.return_url.unwrap_or_else(|| origin.clone());
    let post_url = format!("/v1/redirect/360dialog/{state}");
    let body = format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>WhatsApp number connected</title>
<style nonce="{nonce}">body{{font-family:system-ui,sans-serif;margin:3em;color:#222}} #back{{display:none}}</style></head>
<body><h1 id="msg">Finishing…</h1><p id="back">You can <a id="link" href="{back_attr}">return to the page you came from</a>.</p>
<script nonce="{nonce}">
(function () {{
  var TARGET_ORIGIN = {origin_js};
  var STATE = {state_js};
  var query = window.location.search;
  function done(text) {{
    document.getElementById("msg").textContent = text;
    document.getElementById("back").style.display = "block";
  }}
  var sent = fetch({post_js}, {{
    method: "POST", credentials: "omit", keepalive: true,
    headers: {{"Content-Type": "application/json"}},
    body: JSON.stringify({{query: query}})
  }});
  if (window.opener && !window.opener.closed) {{
    window.opener.postMessage({{type: "gangway:360dialog", state: STATE, query: query}}, TARGET_ORIGIN);
    sent.finally(function () {{ window.close(); }});
  }} else {{
    sent.then(function (r) {{
      done(r.ok ? "Your WhatsApp number is connected. We are confirming it now." : "This permission request was already used or has ended.");
    }}, function () {{ done("We could not reach the server. Please try again."); }});
  }}
}})();
</script></body></html>"#,
        back_attr = html_escape(&back),
        origin_js = js_string(&origin),
        state_js = js_string(&state),
        post_js = js_string(&post_url),
    );
    Ok(page(StatusCode::OK, &nonce, body))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedirectBody {
    /// `window.location.search` of the redirect page.
    query: String,
}

/// `POST /v1/redirect/360dialog/{state}`: records the redirect as the event
/// `dialog360.redirect` for the session that issued the state. Unknown
/// states are 404 and store nothing; a state whose session has ended is
/// answered 409 and only counted (`refused_events`), one whose running
/// session does not wait for a redirect now (used) is recorded in the
/// timeline and answered 409; the workflow confirms everything else with
/// the Partner API.
pub async fn redirect_post(
    State(st): State<AppState>,
    ClientAddr(source): ClientAddr,
    Path(state): Path<String>,
    JsonBody(body): JsonBody<RedirectBody>,
) -> Result<Json<Value>, Problem> {
    let Some((sid, _)) = session_and_customer(&st, &state).await? else {
        metrics::counter!("gangway_inbound_rejected_total", "source" => "dialog360:redirect")
            .increment(1);
        tracing::debug!(%source, "360dialog redirect with an unknown state rejected");
        return Err(auth_failed(
            &st,
            source,
            "redirect:360dialog",
            Problem::not_found("no permission request has this state (forged or expired)"),
        ));
    };
    if body.query.len() > MAX_QUERY {
        return Err(Problem::validation("`query` is longer than 4096 bytes"));
    }
    // Parsed here only to describe it; the workflow decides on it.
    let hint = RedirectHint::from_query(&body.query);
    let data = json!({
        "state": state,
        "query": body.query,
        "client": hint.as_ref().ok().map(|h| h.client.clone()),
        "channels": hint.as_ref().ok().map(|h| h.channels.clone()),
        "revoked": hint.as_ref().ok().map(|h| h.revoked.clone()),
        "error": hint.as_ref().err(),
    });
    let ingested = st
        .engine
        .ingest(NewEvent {
            source: "dialog360:redirect".into(),
            event_key: ids::new_id("rdr"),
            namespace: "session".into(),
            reference: sid,
            name: "dialog360.redirect".into(),
            data,
            received_at: ids::now_ms(),
        })
        .await?;
    // After the end or at a limit: counted, not stored.
    if let Some(why) = ingested.refused {
        return Err(Problem::refused(why));
    }
    if !ingested.applied {
        return Err(Problem::conflict(
            "this permission request was already used or its session is not waiting for it; the attempt is recorded",
        ));
    }
    Ok(Json(json!({"received": true})))
}

/// Every sealed secret in a session's state (`state.<step>.secrets[]`), opened.
pub fn open_secrets(engine: &crate::runtime::Engine, state: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    let Some(vars) = state.as_object() else {
        return out;
    };
    for (saved_as, v) in vars {
        let Some(items) = v.get("secrets").and_then(Value::as_array) else {
            continue;
        };
        for item in items {
            // Only values a connector sealed are secrets; anything else in a
            // `secrets` list (e.g. a provider's own field) is not shown.
            let Some(sealed) = item
                .get("value")
                .and_then(Value::as_str)
                .filter(|v| v.starts_with("sealed:"))
            else {
                continue;
            };
            let mut shown = item.clone();
            match engine.open_sealed(sealed) {
                Ok(plain) => shown["value"] = Value::String(plain),
                Err(_) => {
                    shown["value"] = Value::Null;
                    shown["error"] = json!("sealed under another encryption_key");
                }
            }
            shown["step"] = json!(saved_as);
            out.push(shown);
        }
    }
    out
}

/// `GET /v1/sessions/{id}/secrets` (API key): the secrets a session's
/// provider calls produced (360dialog channel API keys), opened. Every read
/// is recorded in the timeline as `secrets.accessed`, without the values.
pub async fn secrets(
    State(st): State<AppState>,
    key: crate::api::auth::ApiKey<crate::api::auth::scope::SecretsRead>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let row = st
        .engine
        .session(&id)
        .await?
        .ok_or_else(|| Problem::not_found("no session with this id"))?;
    let vars = Value::Object(row.state.vars.clone());
    let secrets = open_secrets(&st.engine, &vars);
    let described: Vec<Value> = secrets
        .iter()
        .map(|s| json!({"name": s.get("name"), "channel_id": s.get("channel_id"), "key_id": s.get("key_id")}))
        .collect();
    let audit = crate::audit::session(
        crate::audit::action::SECRETS_READ,
        &key.actor(),
        &id,
        crate::ids::now_ms(),
        json!({"opened": described.len()}),
    );
    st.engine
        .record(
            &id,
            "secrets.accessed",
            json!({"by_key": key.id, "opened": described}),
            Some(audit),
        )
        .await?;
    tracing::info!(session_id = %id, key_id = %key.id, count = secrets.len(), "session secrets read");
    Ok(
        Json(json!({"session_id": id, "ready": !secrets.is_empty(), "secrets": secrets}))
            .into_response(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_strings_cannot_close_the_script() {
        assert_eq!(js_string("</script>"), "\"\\u003c/script\\u003e\"");
        assert_eq!(html_escape("\"><x"), "&quot;&gt;&lt;x");
        assert_eq!(event_name("cancellation_request"), "dialog360.cancellation");
        assert_eq!(event_name("channel_running"), "dialog360.channel_running");
        assert_eq!(token_param(Some("a=1&token=abc%2B")), Some("abc+".into()));
    }
}
