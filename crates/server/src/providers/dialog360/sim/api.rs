//! The Partner API under `/api/v2/`: clients, channels, API keys.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{ApiError, Dialog360Sim, SimChannel, SimPartner, d360_error, lock, random_id};

impl Dialog360Sim {
    /// Checks `X-API-Key` for `pid`: 401 for a wrong key, 403 for another partner's id.
    fn auth(&self, headers: &HeaderMap, pid: &str) -> Result<SimPartner, ApiError> {
        let key = headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let Some(owner) = self
            .shared
            .config
            .partners
            .iter()
            .find(|p| crate::ids::secure_eq(p.api_key.as_bytes(), key.as_bytes()))
        else {
            return Err((StatusCode::UNAUTHORIZED, "missing or invalid X-API-Key"));
        };
        if owner.partner_id != pid {
            return Err((
                StatusCode::FORBIDDEN,
                "the API key does not belong to this partner",
            ));
        }
        Ok(owner.clone())
    }
}

/// `?filters=<JSON>&limit=&offset=&sort=` of the list calls.
#[derive(Debug, Default, Deserialize)]
pub(super) struct ListQuery {
    filters: Option<String>,
    limit: Option<usize>,
    offset: Option<usize>,
    sort: Option<String>,
}

/// The query, or a 400 in 360dialog's envelope (axum's own is plain text).
fn list_query(q: Result<Query<ListQuery>, QueryRejection>) -> Result<ListQuery, ApiError> {
    q.map(|Query(q)| q).map_err(|_| {
        (
            StatusCode::BAD_REQUEST,
            "invalid query: limit and offset must be numbers",
        )
    })
}

fn filters(q: &ListQuery) -> Result<Map<String, Value>, ApiError> {
    match &q.filters {
        None => Ok(Map::new()),
        Some(f) => match serde_json::from_str::<Value>(f) {
            Ok(Value::Object(m)) => Ok(m),
            // `null` is what a client serializing "no filter" sends.
            Ok(Value::Null) => Ok(Map::new()),
            _ => Err((StatusCode::BAD_REQUEST, "filters must be a JSON object")),
        },
    }
}

/// The value at a dotted path (`setup_info.phone_number`) of an item.
fn at_path<'a>(item: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(item, |v, key| v.get(key))
}

/// A page of the items (as the API shows them) that match every filter,
/// sorted: `{count, filters, sort, limit, offset, total, <key>: [...]}`.
/// A filter key is a field or a dotted path; one the items lack matches
/// nothing (A: 360dialog does not say). `sort` is a field, `-` for
/// descending; without one the items keep their creation order.
fn list_page(mut items: Vec<Value>, q: &ListQuery, f: Map<String, Value>, key: &str) -> Value {
    items.retain(|item| f.iter().all(|(k, want)| at_path(item, k) == Some(want)));
    let sort = q
        .sort
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty() && *s != "-" && *s != "+");
    let applied = match sort {
        Some(field) => {
            let (desc, name) = match field.strip_prefix('-') {
                Some(name) => (true, name),
                None => (false, field.trim_start_matches('+')),
            };
            items.sort_by(|a, b| {
                let (a, b) = (at_path(a, name), at_path(b, name));
                let order = match (a.and_then(Value::as_str), b.and_then(Value::as_str)) {
                    (Some(a), Some(b)) => a.cmp(b),
                    _ => a.map(Value::to_string).cmp(&b.map(Value::to_string)),
                };
                if desc { order.reverse() } else { order }
            });
            field.to_owned()
        }
        None => "created_at".to_owned(),
    };
    let total = items.len();
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let offset = q.offset.unwrap_or(0);
    let page: Vec<Value> = items.into_iter().skip(offset).take(limit).collect();
    json!({
        "count": page.len(),
        "filters": f,
        "sort": [applied],
        "limit": limit,
        "offset": offset,
        "total": total,
        key: page,
    })
}

pub(super) async fn api_clients(
    State(sim): State<Dialog360Sim>,
    Path(pid): Path<String>,
    q: Result<Query<ListQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Response {
    if let Err((status, message)) = sim.auth(&headers, &pid) {
        return d360_error(status, message);
    }
    let (q, f) = match list_query(q).and_then(|q| filters(&q).map(|f| (q, f))) {
        Ok(qf) => qf,
        Err((status, message)) => return d360_error(status, message),
    };
    let inner = lock(&sim.shared.inner);
    let clients: Vec<Value> = inner
        .clients
        .values()
        .filter(|c| c.partner_id == pid)
        .map(|c| {
            json!({
                "id": c.id,
                "name": c.name,
                "status": "active",
                "partner_payload": c.partner_payload,
                "contact_info": {"email": c.email},
            })
        })
        .collect();
    Json(list_page(clients, &q, f, "clients")).into_response()
}

pub(super) async fn api_channels(
    State(sim): State<Dialog360Sim>,
    Path(pid): Path<String>,
    q: Result<Query<ListQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Response {
    if let Err((status, message)) = sim.auth(&headers, &pid) {
        return d360_error(status, message);
    }
    let (q, f) = match list_query(q).and_then(|q| filters(&q).map(|f| (q, f))) {
        Ok(qf) => qf,
        Err((status, message)) => return d360_error(status, message),
    };
    let inner = lock(&sim.shared.inner);
    let channels: Vec<Value> = inner
        .channels
        .values()
        .filter(|c| c.partner_id == pid && !c.revoked)
        .map(|c| Dialog360Sim::channel_json(&inner, c))
        .collect();
    Json(list_page(channels, &q, f, "partner_channels")).into_response()
}

/// The channel of partner `pid`, or the error response.
fn partner_channel(sim: &Dialog360Sim, pid: &str, cid: &str) -> Result<SimChannel, ApiError> {
    lock(&sim.shared.inner)
        .channels
        .get(cid)
        .filter(|c| c.partner_id == pid && !c.revoked)
        .cloned()
        .ok_or((StatusCode::NOT_FOUND, "channel not found"))
}

fn key_allowed(sim: &Dialog360Sim, partner: &SimPartner, ch: &SimChannel) -> bool {
    !partner.direct
        || lock(&sim.shared.inner)
            .clients
            .get(&ch.client_id)
            .is_some_and(|c| c.key_permission)
}

pub(super) async fn api_create_key(
    State(sim): State<Dialog360Sim>,
    Path((pid, cid)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let partner = match sim.auth(&headers, &pid) {
        Ok(p) => p,
        Err((status, message)) => return d360_error(status, message),
    };
    let ch = match partner_channel(&sim, &pid, &cid) {
        Ok(c) => c,
        Err((status, message)) => return d360_error(status, message),
    };
    if ch.status != "running" {
        return d360_error(
            StatusCode::BAD_REQUEST,
            &format!(
                "API keys can only be created for running channels (status is {})",
                ch.status
            ),
        );
    }
    if !key_allowed(&sim, &partner, &ch) {
        return d360_error(
            StatusCode::FORBIDDEN,
            "the client has not granted the partner permission to create API keys",
        );
    }
    let key_id = format!("key_{}", random_id(10));
    let key = format!("d360ck_{}", random_id(32));
    if let Some(c) = lock(&sim.shared.inner).channels.get_mut(&cid) {
        // A new key replaces the previous one (A).
        c.api_key = Some((key_id.clone(), key.clone()));
    }
    (
        StatusCode::CREATED,
        Json(json!({"api_keys": [{"id": key_id, "api_key": key, "address": "https://waba-v2.360dialog.io", "app_id": format!("app_{cid}")}]})),
    )
        .into_response()
}

pub(super) async fn api_list_keys(
    State(sim): State<Dialog360Sim>,
    Path((pid, cid)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let partner = match sim.auth(&headers, &pid) {
        Ok(p) => p,
        Err((status, message)) => return d360_error(status, message),
    };
    let ch = match partner_channel(&sim, &pid, &cid) {
        Ok(c) => c,
        Err((status, message)) => return d360_error(status, message),
    };
    if !key_allowed(&sim, &partner, &ch) {
        return d360_error(
            StatusCode::FORBIDDEN,
            "the client has not granted the partner permission to create API keys",
        );
    }
    let keys: Vec<Value> = ch
        .api_key
        .iter()
        .map(|(id, _)| json!({"id": id, "address": "https://waba-v2.360dialog.io", "app_id": format!("app_{cid}")}))
        .collect();
    Json(json!({"api_keys": keys})).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_filter_on_dotted_paths_sort_and_page() {
        let items = vec![
            json!({"id": "b", "setup_info": {"phone_number": "+2"}, "created_at": "2"}),
            json!({"id": "a", "setup_info": {"phone_number": "+1"}, "created_at": "1"}),
            json!({"id": "c", "setup_info": {"phone_number": "+1"}, "created_at": "3"}),
        ];
        let q = |sort: Option<&str>, limit: Option<usize>| ListQuery {
            sort: sort.map(str::to_owned),
            limit,
            ..ListQuery::default()
        };
        let mut f = Map::new();
        f.insert("setup_info.phone_number".into(), json!("+1"));
        let v = list_page(items.clone(), &q(Some("-created_at"), None), f, "x");
        assert_eq!(
            (v["total"].clone(), v["x"][0]["id"].clone()),
            (json!(2), json!("c"))
        );
        assert_eq!(v["sort"], json!(["-created_at"]));
        let mut f = Map::new();
        f.insert("waba_account.id".into(), json!("w"));
        assert_eq!(list_page(items.clone(), &q(None, None), f, "x")["total"], 0);
        let v = list_page(items, &q(Some("-"), Some(1)), Map::new(), "x");
        assert_eq!(
            (v["count"].clone(), v["total"].clone()),
            (json!(1), json!(3))
        );
        assert_eq!(v["x"][0]["id"], "b", "no sort keeps the creation order");
    }
}
