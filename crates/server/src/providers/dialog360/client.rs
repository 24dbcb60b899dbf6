//! The 360dialog Partner API connector (providers.md 4): builds the
//! permissions URL with a one-time `state`, confirms a redirect's client and
//! channels with the Partner API, reads channel statuses and creates channel
//! API keys. The partner API key goes only into `X-API-Key`; channel API keys
//! are sealed before they leave this module.

use crate::connectors::{CallError, CallOutput};
use crate::crypto::Sealer;
use crate::ids;
use crate::providers::dialog360::config::{Dialog360Config, Dialog360Hub};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Channels read per Partner API page.
const PAGE: usize = 100;
/// Pages read at most when listing a client's channels.
const MAX_PAGES: usize = 20;

pub struct Dialog360Connector {
    config: Option<Dialog360Config>,
    client: reqwest::Client,
    sealer: Sealer,
    /// Gangway's public base URL: the redirect page lives there.
    base_url: String,
    /// `client.allowed_origins`: the only origins the redirect page posts to.
    allowed_origins: Vec<String>,
}

/// The parameters of a redirect from the permissions page: a hint only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectHint {
    pub state: Option<String>,
    pub client: String,
    pub channels: Vec<String>,
    pub revoked: Vec<String>,
}

/// A client or channel id as 360dialog issues them: short, URL-safe.
pub fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// `[id1,id2]` (literal brackets, unquoted, comma-separated) -> ids.
pub fn parse_id_list(raw: &str) -> Result<Vec<String>, String> {
    let inner = raw.trim();
    let inner = inner
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(inner);
    let mut out = Vec::new();
    for part in inner.split(',') {
        let id = part.trim().trim_matches('"');
        if id.is_empty() {
            continue;
        }
        if !valid_id(id) {
            return Err(format!(
                "`{}` is not a channel id",
                id.chars().take(64).collect::<String>()
            ));
        }
        if !out.iter().any(|o| o == id) {
            out.push(id.to_string());
        }
    }
    if out.len() > 50 {
        return Err("more than 50 channel ids".into());
    }
    Ok(out)
}

impl RedirectHint {
    /// From a query string (`?client=..&channels=[..]&revoked=[..]&state=..`).
    pub fn from_query(query: &str) -> Result<RedirectHint, String> {
        let pairs: Vec<(String, String)> =
            reqwest::Url::parse(&format!("http://x/?{}", query.trim_start_matches('?')))
                .map(|u| {
                    u.query_pairs()
                        .map(|(k, v)| (k.into_owned(), v.into_owned()))
                        .collect()
                })
                .unwrap_or_default();
        let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let client = get("client").unwrap_or_default();
        if !valid_id(&client) {
            return Err("the redirect has no valid `client`".into());
        }
        Ok(RedirectHint {
            state: get("state").filter(|s| !s.is_empty()),
            client,
            channels: parse_id_list(&get("channels").unwrap_or_default())?,
            revoked: parse_id_list(&get("revoked").unwrap_or_default())?,
        })
    }

    /// From event data: `{state, query}` (the browser's postMessage payload)
    /// or `{state, client, channels, revoked}` (the redirect endpoint).
    pub fn from_value(v: &Value) -> Result<RedirectHint, String> {
        let state = v
            .get("state")
            .and_then(Value::as_str)
            .map(str::to_string)
            .filter(|s| !s.is_empty());
        if let Some(q) = v.get("query").and_then(Value::as_str) {
            let mut hint = RedirectHint::from_query(q)?;
            // The state the page was reached with wins over the query's copy.
            if state.is_some() {
                hint.state = state;
            }
            return Ok(hint);
        }
        let list = |k: &str| -> Result<Vec<String>, String> {
            match v.get(k) {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(Value::String(s)) => parse_id_list(s),
                Some(Value::Array(items)) => {
                    let joined: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
                    if joined.len() != items.len() {
                        return Err(format!("`{k}` must list strings"));
                    }
                    parse_id_list(&joined.join(","))
                }
                Some(_) => Err(format!("`{k}` must be a list of ids")),
            }
        };
        let client = v
            .get("client")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if !valid_id(&client) {
            return Err("the redirect has no valid `client`".into());
        }
        Ok(RedirectHint {
            state,
            client,
            channels: list("channels")?,
            revoked: list("revoked")?,
        })
    }

    pub fn to_value(&self) -> Value {
        json!({"state": self.state, "client": self.client, "channels": self.channels, "revoked": self.revoked})
    }
}

fn fail(transient: bool, message: impl Into<String>, record: Value) -> CallError {
    CallError {
        transient,
        retry_after: None,
        message: message.into(),
        record,
    }
}

fn arg<'a>(args: &'a Value, name: &str) -> Option<&'a str> {
    args.get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn id_list(args: &Value, name: &str) -> Result<Vec<String>, CallError> {
    let items = args.get(name).and_then(Value::as_array).ok_or_else(|| {
        fail(
            false,
            format!("argument `{name}` must be a list of channel ids"),
            Value::Null,
        )
    })?;
    items
        .iter()
        .map(|v| match v.as_str() {
            Some(s) if valid_id(s) => Ok(s.to_string()),
            _ => Err(fail(
                false,
                format!("argument `{name}` holds something that is not a channel id"),
                Value::Null,
            )),
        })
        .collect()
}

/// The serialized origin of a URL string (`https://shop.example`), or `None`.
fn normalize_origin(s: &str) -> Option<String> {
    let url = reqwest::Url::parse(s.trim()).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    let origin = url.origin().ascii_serialization();
    (origin != "null").then_some(origin)
}

impl Dialog360Connector {
    pub fn new(
        config: Option<Dialog360Config>,
        timeout: Duration,
        sealer: Sealer,
        base_url: String,
        allowed_origins: Vec<String>,
    ) -> Result<Dialog360Connector, String> {
        let client = crate::egress::provider_client(reqwest::Client::builder().timeout(timeout))?;
        Ok(Dialog360Connector {
            config,
            client,
            sealer,
            base_url,
            allowed_origins,
        })
    }

    fn config(&self) -> Result<&Dialog360Config, CallError> {
        self.config.as_ref().ok_or_else(|| {
            fail(
                false,
                "the dialog360 connector is not configured ([dialog360] in the config)",
                Value::Null,
            )
        })
    }

    /// The named hub, else `default_hub`, else the first configured.
    fn hub(&self, name: Option<&str>) -> Result<(String, &Dialog360Hub), CallError> {
        let cfg = self.config()?;
        let wanted = name.or(cfg.default_hub.as_deref());
        let found = match wanted {
            Some(n) => cfg.hubs.get_key_value(n),
            None => cfg.hubs.first(),
        };
        found.map(|(k, h)| (k.clone(), h)).ok_or_else(|| {
            fail(
                false,
                format!(
                    "no 360dialog hub `{}` under [dialog360.hubs]",
                    wanted.unwrap_or_default()
                ),
                Value::Null,
            )
        })
    }

    /// Whether a customer page on `origin` may receive the redirect: an
    /// allowed origin, or Gangway's own.
    fn origin_allowed(&self, origin: &str) -> bool {
        self.allowed_origins
            .iter()
            .filter_map(|o| normalize_origin(o))
            .chain(normalize_origin(&self.base_url))
            .any(|o| o == origin)
    }

    /// The origin the redirect page posts to: the `origin` argument (which
    /// must be an allowed origin), else the origin of `return_url`, else the
    /// first allowed origin, else Gangway's own origin.
    fn opener_origin(
        &self,
        requested: Option<&str>,
        return_url: Option<&str>,
    ) -> Result<String, CallError> {
        if let Some(r) = requested {
            let o = normalize_origin(r).ok_or_else(|| {
                fail(
                    false,
                    format!("argument `origin`: `{r}` is not an origin like https://shop.example"),
                    Value::Null,
                )
            })?;
            if !self.origin_allowed(&o) {
                return Err(fail(
                    false,
                    format!("argument `origin`: `{o}` is not in client.allowed_origins"),
                    Value::Null,
                ));
            }
            return Ok(o);
        }
        if let Some(o) = return_url.and_then(normalize_origin) {
            return Ok(o);
        }
        self.allowed_origins
            .iter()
            .find_map(|o| normalize_origin(o))
            .or_else(|| normalize_origin(&self.base_url))
            .ok_or_else(|| fail(false, "no origin to send the redirect to", Value::Null))
    }

    /// The customer page the redirect page links back to when it has no
    /// opener (a blocked popup, the same-tab fallback): an absolute http(s)
    /// URL on an allowed origin, without credentials.
    fn return_url(&self, requested: Option<&str>) -> Result<Option<String>, CallError> {
        let Some(r) = requested else {
            return Ok(None);
        };
        let bad = |why: &str| {
            fail(
                false,
                format!(
                    "argument `return_url`: `{}` {why}",
                    r.chars().take(200).collect::<String>()
                ),
                Value::Null,
            )
        };
        if r.len() > 2048 {
            return Err(bad("is longer than 2048 bytes"));
        }
        let url = reqwest::Url::parse(r.trim())
            .map_err(|_| bad("is not an absolute URL like https://shop.example/onboarding"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad("is not an http(s) URL"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad("carries credentials"));
        }
        let origin = url.origin().ascii_serialization();
        if !self.origin_allowed(&origin) {
            return Err(bad("is not on an origin in client.allowed_origins"));
        }
        Ok(Some(url.to_string()))
    }

    fn api(&self, path: &str) -> Result<String, CallError> {
        Ok(format!(
            "{}{path}",
            self.config()?.base_url.trim_end_matches('/')
        ))
    }

    /// Builds the permissions URL; no provider call. The one-time `state`
    /// doubles as the provider reference that routes the redirect here.
    pub fn start(&self, args: &Value) -> Result<CallOutput, CallError> {
        let cfg = self.config()?;
        let session_id = arg(args, "session_id")
            .ok_or_else(|| fail(false, "argument `session_id` is empty", Value::Null))?;
        let (hub_name, hub) = self.hub(arg(args, "hub"))?;
        let return_url = self.return_url(arg(args, "return_url"))?;
        let origin = self.opener_origin(arg(args, "origin"), return_url.as_deref())?;
        let state = ids::new_secret("d360st");
        let redirect_url = format!("{}/v1/redirect/360dialog/{state}", self.base_url);
        let mut url = reqwest::Url::parse(&format!(
            "{}/dashboard/app/{}/permissions",
            cfg.hub_url.trim_end_matches('/'),
            hub.partner_id
        ))
        .map_err(|e| fail(false, format!("dialog360.hub_url: {e}"), Value::Null))?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("redirect_url", &redirect_url);
            q.append_pair("state", &state);
            q.append_pair("partner", session_id);
            for name in ["number", "email", "name", "next", "client_id"] {
                if let Some(v) = arg(args, name) {
                    q.append_pair(name, v);
                }
            }
        }
        Ok(CallOutput {
            result: json!({
                "state": state,
                "url": url.as_str(),
                "hub": hub_name,
                "payment": hub.payment.as_str(),
                "partner_id": hub.partner_id,
                "origin": origin,
                "return_url": return_url,
                "redirect_url": redirect_url,
                "created_ms": ids::now_ms(),
            }),
            record: json!({"call": "permissions URL", "hub": hub_name, "payment": hub.payment.as_str(), "origin": origin}),
        })
    }

    /// Providers.md 4.2: the state matches, the client is ours, every
    /// channel is the client's. A mismatch is a result (`confirmed: false`),
    /// not an error, so that the workflow keeps waiting.
    pub async fn confirm(&self, args: &Value) -> Result<CallOutput, CallError> {
        let started = Instant::now();
        let (hub_name, hub) = self.hub(arg(args, "hub"))?;
        let expected = arg(args, "state").unwrap_or_default();
        let rejected = |reason: String, hint: Value| {
            Ok(CallOutput {
                record: json!({"confirmed": false, "reason": reason, "redirect": hint, "hub": hub_name}),
                result: json!({"confirmed": false, "reason": reason, "client": null, "channels": [], "revoked": []}),
            })
        };
        let hint = match RedirectHint::from_value(args.get("redirect").unwrap_or(&Value::Null)) {
            Ok(h) => h,
            Err(e) => return rejected(format!("malformed redirect: {e}"), Value::Null),
        };
        let state_ok = !expected.is_empty()
            && hint
                .state
                .as_deref()
                .is_some_and(|s| ids::secure_eq(s.as_bytes(), expected.as_bytes()));
        if !state_ok {
            return rejected(
                "the redirect's state is not this session's".into(),
                hint.to_value(),
            );
        }
        let (clients, _) = self
            .get(
                hub,
                &format!("/partners/{}/clients", hub.partner_id),
                &[("filters", json!({"id": hint.client}).to_string())],
                "GET /partners/{partner_id}/clients",
            )
            .await?;
        let known_client = clients
            .get("clients")
            .and_then(Value::as_array)
            .is_some_and(|cs| cs.iter().any(|c| c.get("id") == Some(&json!(hint.client))));
        if !known_client {
            return rejected(
                format!(
                    "client {} is not a client of partner {}",
                    hint.client, hub.partner_id
                ),
                hint.to_value(),
            );
        }
        let channels = self.client_channels(hub, &hint.client).await?;
        if let Some(unknown) = hint
            .channels
            .iter()
            .find(|id| !channels.iter().any(|c| c.get("id") == Some(&json!(id))))
        {
            return rejected(
                format!(
                    "channel {unknown} is not a channel of client {} at partner {}",
                    hint.client, hub.partner_id
                ),
                hint.to_value(),
            );
        }
        let remaining: Vec<&String> = hint
            .channels
            .iter()
            .filter(|c| !hint.revoked.contains(c))
            .collect();
        Ok(CallOutput {
            record: json!({
                "calls": ["GET /partners/{partner_id}/clients", "GET /partners/{partner_id}/channels"],
                "confirmed": true, "hub": hub_name, "client": hint.client,
                "channels": remaining, "revoked": hint.revoked,
                "duration_ms": started.elapsed().as_millis(),
            }),
            result: json!({
                "confirmed": true, "reason": null, "client": hint.client,
                "channels": remaining, "granted": hint.channels, "revoked": hint.revoked,
            }),
        })
    }

    /// Reads the statuses of `channels` (the client's channel list, paged).
    pub async fn channels(&self, args: &Value) -> Result<CallOutput, CallError> {
        let started = Instant::now();
        let (_, hub) = self.hub(arg(args, "hub"))?;
        let client = arg(args, "client")
            .filter(|c| valid_id(c))
            .ok_or_else(|| fail(false, "argument `client` is not a client id", Value::Null))?;
        let wanted = id_list(args, "channels")?;
        let listed = self.client_channels(hub, client).await?;
        let mut statuses = serde_json::Map::new();
        let mut phone_numbers = serde_json::Map::new();
        for id in &wanted {
            let phone = listed
                .iter()
                .find(|c| c.get("id") == Some(&json!(id)))
                .and_then(|c| c.pointer("/setup_info/phone_number"))
                .and_then(Value::as_str)
                .map_or(Value::Null, |p| Value::String(p.to_string()));
            phone_numbers.insert(id.clone(), phone);
            let status = listed
                .iter()
                .find(|c| c.get("id") == Some(&json!(id)))
                .map(|c| {
                    c.get("status")
                        .and_then(Value::as_str)
                        .unwrap_or("unknown")
                        .to_string()
                })
                .unwrap_or_else(|| "missing".into());
            statuses.insert(id.clone(), Value::String(status));
        }
        let all = |f: &dyn Fn(&str) -> bool| {
            !statuses.is_empty() && statuses.values().all(|s| f(s.as_str().unwrap_or_default()))
        };
        let all_running = all(&|s| s == "running");
        let all_gone = all(&|s| s == "missing" || s == "revoked");
        let any_error = statuses.values().any(|s| s == "error");
        let pending: Vec<&String> = statuses
            .iter()
            .filter(|(_, s)| *s != "running")
            .map(|(k, _)| k)
            .collect();
        Ok(CallOutput {
            record: json!({"call": "GET /partners/{partner_id}/channels", "statuses": statuses, "duration_ms": started.elapsed().as_millis()}),
            result: json!({"statuses": statuses, "phone_numbers": phone_numbers, "all_running": all_running, "any_error": any_error, "all_gone": all_gone, "pending": pending}),
        })
    }

    /// `POST .../channels/{id}/api_keys` for each channel. A 403 (the client
    /// has not allowed key creation) is a result: `permission_missing`.
    pub async fn create_keys(&self, args: &Value) -> Result<CallOutput, CallError> {
        let started = Instant::now();
        let (_, hub) = self.hub(arg(args, "hub"))?;
        let channels = id_list(args, "channels")?;
        let mut secrets = Vec::new();
        let mut key_ids = Vec::new();
        for ch in &channels {
            let path = format!("/partners/{}/channels/{ch}/api_keys", hub.partner_id);
            let what = "POST /partners/{partner_id}/channels/{channel_id}/api_keys";
            let resp = match self
                .send(self.client.post(self.api(&path)?), hub, what)
                .await
            {
                Ok((v, _)) => v,
                Err(e) if e.record.get("status") == Some(&json!(403)) => {
                    let reason = "the client has not allowed API key creation (Direct Payment): grant it in the flow or in the Client Hub";
                    return Ok(CallOutput {
                        record: json!({"call": what, "channel": ch, "status": 403, "permission_missing": true}),
                        result: json!({"created": false, "permission_missing": true, "reason": reason, "channel": ch, "secrets": []}),
                    });
                }
                Err(e) => return Err(e),
            };
            // Documented `{"api_keys": [...]}`; one client sees a flat object (3P).
            let key = resp
                .get("api_keys")
                .and_then(Value::as_array)
                .and_then(|a| a.first())
                .unwrap_or(&resp);
            let Some(api_key) = key
                .get("api_key")
                .and_then(Value::as_str)
                .filter(|k| !k.is_empty())
            else {
                return Err(fail(
                    true,
                    format!("{what} answered without an api_key"),
                    json!({"call": what, "channel": ch}),
                ));
            };
            key_ids.push(key.get("id").cloned().unwrap_or(Value::Null));
            secrets.push(json!({
                "name": "channel_api_key",
                "channel_id": ch,
                "key_id": key.get("id"),
                "address": key.get("address"),
                "app_id": key.get("app_id"),
                "value": self.sealer.seal(api_key),
            }));
        }
        Ok(CallOutput {
            record: json!({"calls": channels.len(), "channels": channels, "key_ids": key_ids, "duration_ms": started.elapsed().as_millis()}),
            result: json!({"created": true, "permission_missing": false, "reason": null, "secrets": secrets}),
        })
    }

    /// Whether the client allows key creation: the key list answers 403 when not.
    pub async fn key_permission(&self, args: &Value) -> Result<CallOutput, CallError> {
        let (_, hub) = self.hub(arg(args, "hub"))?;
        let channels = id_list(args, "channels")?;
        let Some(ch) = channels.first() else {
            return Err(fail(false, "argument `channels` is empty", Value::Null));
        };
        let what = "GET /partners/{partner_id}/channels/{channel_id}/api_keys";
        let path = format!("/partners/{}/channels/{ch}/api_keys", hub.partner_id);
        let allowed = match self
            .send(self.client.get(self.api(&path)?), hub, what)
            .await
        {
            Ok(_) => true,
            Err(e) if e.record.get("status") == Some(&json!(403)) => false,
            Err(e) => return Err(e),
        };
        Ok(CallOutput {
            record: json!({"call": what, "channel": ch, "allowed": allowed}),
            result: json!({"allowed": allowed}),
        })
    }

    /// Every channel of `client` (paged with `limit`/`offset`).
    async fn client_channels(
        &self,
        hub: &Dialog360Hub,
        client: &str,
    ) -> Result<Vec<Value>, CallError> {
        let mut all = Vec::new();
        for page in 0..MAX_PAGES {
            let (resp, _) = self
                .get(
                    hub,
                    &format!("/partners/{}/channels", hub.partner_id),
                    &[
                        ("filters", json!({"client_id": client}).to_string()),
                        ("limit", PAGE.to_string()),
                        ("offset", (page * PAGE).to_string()),
                    ],
                    "GET /partners/{partner_id}/channels",
                )
                .await?;
            let items = resp
                .get("partner_channels")
                .and_then(Value::as_array)
                .cloned()
                .ok_or_else(|| {
                    fail(
                        true,
                        "GET /partners/{partner_id}/channels answered without partner_channels",
                        Value::Null,
                    )
                })?;
            let n = items.len();
            all.extend(items);
            let total = resp.get("total").and_then(Value::as_u64).unwrap_or(0);
            if n < PAGE || all.len() as u64 >= total {
                break;
            }
        }
        Ok(all)
    }

    async fn get(
        &self,
        hub: &Dialog360Hub,
        path: &str,
        query: &[(&str, String)],
        what: &str,
    ) -> Result<(Value, u16), CallError> {
        self.send(self.client.get(self.api(path)?).query(query), hub, what)
            .await
    }

    /// Sends with `X-API-Key` and classifies the answer (providers.md 1.4).
    async fn send(
        &self,
        req: reqwest::RequestBuilder,
        hub: &Dialog360Hub,
        what: &str,
    ) -> Result<(Value, u16), CallError> {
        let req = req
            .header("X-API-Key", &hub.api_key)
            .header("accept", "application/json");
        crate::connectors::send_json(
            req,
            "dialog360",
            what,
            &["/meta/developer_message", "/error"],
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_the_redirect_format() {
        let h = RedirectHint::from_query(
            "?client=oaY9LLfUCL&channels=[y9MiLoCH,abc]&revoked=[old1]&state=s1",
        )
        .unwrap();
        assert_eq!(h.client, "oaY9LLfUCL");
        assert_eq!(h.channels, vec!["y9MiLoCH", "abc"]);
        assert_eq!(h.revoked, vec!["old1"]);
        assert_eq!(h.state.as_deref(), Some("s1"));
        let h = RedirectHint::from_query("client=c1&channels=%5Bx1%5D").unwrap();
        assert_eq!(h.channels, vec!["x1"]);
        assert!(RedirectHint::from_query("channels=[x]").is_err());
        assert!(RedirectHint::from_query("client=c&channels=[a<b]").is_err());
        let v = RedirectHint::from_value(&json!({"state": "s", "query": "?client=c&channels=[a]"}))
            .unwrap();
        assert_eq!(v.state.as_deref(), Some("s"));
        assert_eq!(v.channels, vec!["a"]);
    }

    #[test]
    fn the_permissions_url_encodes_every_value() {
        let mut hubs = indexmap::IndexMap::new();
        hubs.insert(
            "main".to_string(),
            Dialog360Hub {
                partner_id: "p1".into(),
                api_key: "secret-partner-key".into(),
                payment: crate::providers::dialog360::config::Dialog360Payment::Direct,
            },
        );
        let c = Dialog360Connector::new(
            Some(Dialog360Config {
                base_url: "http://127.0.0.1:1/api/v2".into(),
                hub_url: "http://127.0.0.1:1".into(),
                webhook_token: "x".repeat(32),
                default_hub: None,
                hubs,
            }),
            Duration::from_secs(1),
            Sealer::ephemeral(),
            "https://gw.example".into(),
            vec!["https://shop.example".into()],
        )
        .unwrap();
        let out = c
            .start(&json!({"session_id": "ses_1", "email": "a+b@x.y", "name": "A & B"}))
            .unwrap();
        let url = out.result["url"].as_str().unwrap();
        assert!(url.starts_with("http://127.0.0.1:1/dashboard/app/p1/permissions?redirect_url=https%3A%2F%2Fgw.example%2Fv1%2Fredirect%2F360dialog%2Fd360st_"));
        assert!(url.contains("&email=a%2Bb%40x.y&name=A+%26+B"));
        assert!(!url.contains("secret-partner-key"));
        assert_eq!(out.result["origin"], "https://shop.example");
        assert_eq!(out.result["payment"], "direct");
        assert!(
            c.start(&json!({"session_id": "s", "origin": "https://evil.example"}))
                .is_err()
        );
        assert!(c.start(&json!({"session_id": "s", "hub": "nope"})).is_err());
        assert_eq!(out.result["return_url"], Value::Null);
    }

    #[test]
    fn the_return_url_must_be_on_an_allowed_origin() {
        let c = Dialog360Connector::new(
            None,
            Duration::from_secs(1),
            Sealer::ephemeral(),
            "https://gw.example".into(),
            vec!["https://shop.example".into(), "https://b.example".into()],
        )
        .expect("client");
        assert_eq!(
            c.return_url(Some("https://shop.example/onboard?step=2"))
                .unwrap()
                .as_deref(),
            Some("https://shop.example/onboard?step=2")
        );
        // Without `origin`, the page's origin is where the opener is.
        assert_eq!(
            c.opener_origin(None, Some("https://b.example/x")).unwrap(),
            "https://b.example"
        );
        assert_eq!(c.opener_origin(None, None).unwrap(), "https://shop.example");
        for bad in [
            "https://evil.example/",
            "javascript:alert(1)",
            "/relative",
            "https://user:pw@shop.example/",
            "https://shop.example.evil.example/",
        ] {
            assert!(c.return_url(Some(bad)).is_err(), "{bad}");
        }
    }
}
