//! The demo's tiny customer backend (`/demo/api/...`), which does what any
//! customer's backend would: it holds the API key and talks to Gangway over
//! HTTP. It creates sessions (the browser gets only `{id, client_secret}`),
//! shows its own staff view of a decision, reads the channel API key of a
//! connected WhatsApp number (shown to the page only masked), and receives
//! the signed webhooks.

use super::site::{FLOWS, Shared};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use gangway_server::api::error::Problem;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StartRequest {
    flow: String,
    /// The shopper's order: the same order resumes the same session.
    order: String,
}

/// `POST /demo/api/sessions {flow, order}`: what a customer backend does.
/// It creates the session with its API key, using the order as the
/// `Idempotency-Key`, so a reload gets the same session with a fresh client
/// secret; the browser gets only `{id, client_secret, client_secret_expires_at}`.
/// A popup flow also names the page's origin (where the redirect page may
/// post) and the page to come back to; the site knows its own origins, and
/// uses the one the request came from.
pub async fn create_session(
    State(shared): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, Problem> {
    let req: StartRequest = serde_json::from_slice(&body).map_err(|e| {
        if e.is_data() {
            Problem::validation(format!("expected {{flow, order}}: {e}"))
        } else {
            Problem::bad_request(format!("malformed JSON: {e}"))
        }
    })?;
    let flow = FLOWS
        .iter()
        .find(|f| f.slug == req.flow)
        .ok_or_else(|| Problem::validation("unknown flow; see /demo"))?;
    let order_ok = (8..=64).contains(&req.order.len())
        && req
            .order
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !order_ok {
        return Err(Problem::validation(
            "`order` must be 8 to 64 letters, digits, `-` or `_`",
        ));
    }
    let mut input = serde_json::from_str::<Value>(flow.input).unwrap_or_else(|_| json!({}));
    if flow.return_to_page {
        let origin = page_origin(&shared, &headers);
        input["origin"] = json!(origin);
        input["return_url"] = json!(format!("{origin}/demo/flows/{}", flow.slug));
    }
    let url = format!("{}/v1/sessions", shared.site.gangway_url);
    let answer = shared
        .http
        .post(&url)
        .bearer_auth(&shared.site.api_key)
        .header(
            "Idempotency-Key",
            format!("demo-{}-{}", flow.slug, req.order),
        )
        .json(&json!({
            "workflow": flow.workflow,
            "reference": format!("demo-order-{}", req.order),
            "input": input,
        }))
        .send()
        .await
        .map_err(unreachable)?;
    let status = answer.status();
    let session: Value = answer.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        tracing::warn!(%status, detail = %session["detail"], "demo backend: creating a session failed");
        return Err(bad_gateway(format!(
            "Gangway refused the session: {}",
            session["detail"].as_str().unwrap_or("no detail")
        )));
    }
    Ok(Json(json!({
        "id": session["id"],
        "client_secret": session["client_secret"],
        "client_secret_expires_at": session["client_secret_expires_at"],
    })))
}

/// The origin the page calling the backend is on, if it is one of the
/// site's own (`http://127.0.0.1:…` or `http://localhost:…`), else the
/// canonical one. The browser's `Origin` only picks among known values.
fn page_origin(shared: &Shared, headers: &HeaderMap) -> String {
    let own = &shared.site.own_origins;
    headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .and_then(|o| own.iter().find(|known| *known == o))
        .or_else(|| own.first())
        .cloned()
        .unwrap_or_else(|| shared.site.gangway_url.clone())
}

fn bad_gateway(detail: impl Into<String>) -> Problem {
    Problem::new(
        StatusCode::BAD_GATEWAY,
        "bad-gateway",
        "Bad gateway",
        detail,
    )
}

fn unreachable(e: reqwest::Error) -> Problem {
    tracing::warn!(error = %e, "demo backend: Gangway did not answer");
    bad_gateway("Gangway did not answer; try again")
}

pub async fn receive_webhook(
    State(shared): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    shared.site.inbox.receive(&headers, &body)
}

pub async fn list_webhooks(State(shared): State<Shared>) -> Json<Value> {
    Json(json!({ "data": shared.site.inbox.list() }))
}

/// `GET {path}` on Gangway with the API key, as JSON.
async fn gangway_get(shared: &Shared, path: &str) -> Result<(StatusCode, Value), Problem> {
    let r = shared
        .http
        .get(format!("{}{path}", shared.site.gangway_url))
        .bearer_auth(&shared.site.api_key)
        .send()
        .await
        .map_err(unreachable)?;
    let status = r.status();
    Ok((status, r.json().await.unwrap_or(Value::Null)))
}

/// The session `id`, if it belongs to the order named by `?order=` (the
/// page may ask only about its own order's session).
async fn order_session(shared: &Shared, id: &str, query: Option<&str>) -> Result<Value, Problem> {
    let order = query
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("order=")))
        .filter(|o| !o.is_empty())
        .ok_or_else(|| Problem::validation("`?order=` names the order the session belongs to"))?;
    let valid_id = !id.is_empty()
        && id.len() <= 64
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid_id {
        return Err(Problem::not_found("no such session"));
    }
    let (_, session) = gangway_get(shared, &format!("/v1/sessions/{id}")).await?;
    if session["reference"].as_str() != Some(&format!("demo-order-{order}")) {
        return Err(Problem::not_found("no such session for this order"));
    }
    Ok(session)
}

/// `GET /demo/api/sessions/{id}/decision?order=`: the outcome and the rules
/// that decided it, read from the session's timeline with the API key, as a
/// customer backend would show its own staff. Only for the order's session.
pub async fn decision(
    State(shared): State<Shared>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, Problem> {
    let session = order_session(&shared, &id, query.as_deref()).await?;
    let (_, timeline) = gangway_get(&shared, &format!("/v1/sessions/{id}/timeline")).await?;
    // The rules of the last decide step: the ones that made the decision.
    let evaluated: Vec<&Value> = timeline["entries"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .filter(|e| e["kind"] == "rule.evaluated" || e["kind"] == "rule.default")
                .collect()
        })
        .unwrap_or_default();
    let last_step = evaluated.last().map(|e| e["step"].clone());
    let rules: Vec<Value> = evaluated
        .iter()
        .filter(|e| Some(&e["step"]) == last_step.as_ref())
        .map(|e| json!({"step": e["step"], "when": e["data"]["when"], "result": e["data"]["result"], "default": e["data"]["next"]}))
        .collect();
    Ok(Json(json!({
        "status": session["status"],
        "outcome": session["outcome"],
        "reason": session["reason"],
        "rules": rules,
    })))
}

/// The last four characters of a key, the rest masked.
fn masked(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    let tail: String = chars[chars.len().saturating_sub(4)..].iter().collect();
    format!("••••••••{tail}")
}

/// `GET /demo/api/sessions/{id}/channel-key?order=`: whether the backend
/// now holds the WhatsApp channel's API key. The backend reads it from
/// Gangway's audited secrets endpoint (and would store it); the page only
/// learns which channel it is for and the key's last four characters.
pub async fn channel_key(
    State(shared): State<Shared>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, Problem> {
    let session = order_session(&shared, &id, query.as_deref()).await?;
    if session["outcome"] != "approved" {
        return Ok(Json(json!({"ready": false, "keys": []})));
    }
    let (status, got) = gangway_get(&shared, &format!("/v1/sessions/{id}/secrets")).await?;
    if !status.is_success() {
        return Err(bad_gateway(format!(
            "Gangway refused the secrets read: HTTP {status}"
        )));
    }
    let keys: Vec<Value> = got["secrets"]
        .as_array()
        .map(|all| {
            all.iter()
                .filter_map(|s| {
                    let value = s["value"].as_str()?;
                    Some(json!({"channel_id": s["channel_id"], "hint": masked(value)}))
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Json(json!({"ready": !keys.is_empty(), "keys": keys})))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_masked_key_shows_only_its_last_four_characters() {
        assert_eq!(super::masked("d360ck_abcdef1234"), "••••••••1234");
        assert_eq!(super::masked("ab"), "••••••••ab");
    }
}
