//! Integration tests of the built-in 360dialog simulator, over real HTTP,
//! with a partner webhook receiver in the test.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::routing::post;
use gangway_server::sim::dialog360::{Dialog360Sim, Dialog360SimConfig, SimPartner};
use serde_json::{Value, json};

const KEY: &str = "partner-key-0123456789";
const DIRECT_KEY: &str = "direct-key-0123456789";

#[derive(Default)]
struct Hooks {
    got: Mutex<Vec<(Option<String>, Value)>>,
}

async fn hook(
    State(h): State<Arc<Hooks>>,
    RawQuery(q): RawQuery,
    axum::Json(v): axum::Json<Value>,
) -> &'static str {
    h.got.lock().unwrap().push((q, v));
    "ok"
}

struct Harness {
    base: String,
    hooks: Arc<Hooks>,
    http: reqwest::Client,
}

async fn bind() -> (tokio::net::TcpListener, String) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    (l, format!("http://{addr}"))
}

impl Harness {
    async fn start() -> Harness {
        let hooks = Arc::new(Hooks::default());
        let (l, recv) = bind().await;
        let r = Router::new()
            .route("/hook", post(hook))
            .with_state(hooks.clone());
        tokio::spawn(async move { axum::serve(l, r).await.unwrap() });
        let partner = |id: &str, key: &str, direct: bool| SimPartner {
            partner_id: id.into(),
            api_key: key.into(),
            direct,
            webhook_url: Some(format!("{recv}/hook?token=tok")),
            redirect_prefix: "https://gw.example/v1/redirect/360dialog/".into(),
        };
        let sim = Dialog360Sim::new(Dialog360SimConfig {
            partners: vec![partner("p1", KEY, false), partner("pd", DIRECT_KEY, true)],
            advance_ms: 30,
        });
        let (l, base) = bind().await;
        let app = Router::new().nest("/sim/360dialog", sim.router());
        tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
        Harness {
            base: format!("{base}/sim/360dialog"),
            hooks,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        }
    }

    fn url(&self, p: &str) -> String {
        format!("{}{p}", self.base)
    }

    async fn api(&self, key: &str, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(self.url(&format!("/api/v2{path}")))
            .header("X-API-Key", key)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    async fn create_key(&self, key: &str, pid: &str, ch: &str) -> (u16, Value) {
        let r = self
            .http
            .post(self.url(&format!("/api/v2/partners/{pid}/channels/{ch}/api_keys")))
            .header("X-API-Key", key)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    async fn control(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(self.url(&format!("/control{path}")))
            .json(&body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    /// Accept on the permissions page; returns the redirect `Location`.
    async fn accept(&self, pid: &str, extra: &[(&str, &str)]) -> (u16, String) {
        let mut form = vec![
            ("action", "accept"),
            (
                "redirect_url",
                "https://gw.example/v1/redirect/360dialog/st1",
            ),
            ("state", "st1"),
            ("partner", "ses_1"),
        ];
        form.extend_from_slice(extra);
        let r = self
            .http
            .post(self.url(&format!("/dashboard/app/{pid}/permissions")))
            .form(&form)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let loc = r
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        (status, loc)
    }

    async fn wait_status(&self, pid: &str, key: &str, ch: &str, status: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (_, v) = self
                .api(
                    key,
                    &format!("/partners/{pid}/channels?filters=%7B%22id%22%3A%22{ch}%22%7D"),
                )
                .await;
            if v["partner_channels"][0]["status"] == status {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "channel never reached {status}: {v}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn events(&self) -> Vec<String> {
        self.hooks
            .got
            .lock()
            .unwrap()
            .iter()
            .map(|(_, v)| v["event"].as_str().unwrap().to_string())
            .collect()
    }
}

fn parse_location(loc: &str) -> (String, Vec<String>) {
    let u = reqwest::Url::parse(loc).unwrap();
    let get = |k: &str| {
        u.query_pairs()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    let channels = get("channels")
        .trim_matches(['[', ']'])
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    (get("client"), channels)
}

#[tokio::test]
async fn permissions_page_redirect_format_and_progression() {
    let h = Harness::start().await;
    // The page honours the query and refuses foreign redirect URLs.
    let page = h
        .http
        .get(h.url("/dashboard/app/p1/permissions?email=a%40b.c&number=%2B491&redirect_url=https%3A%2F%2Fgw.example%2Fv1%2Fredirect%2F360dialog%2Fst1&state=st1"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("value=\"a@b.c\"") && html.contains("value=\"+491\""));
    assert!(!html.contains("Price and payment"));
    let bad = h
        .http
        .get(h.url("/dashboard/app/p1/permissions?redirect_url=https%3A%2F%2Fevil.example%2F"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);

    let (status, loc) = h
        .accept("p1", &[("email", "a@b.c"), ("number", "+491")])
        .await;
    assert_eq!(status, 303);
    // Literal brackets, comma-separated; state appended.
    assert!(
        loc.starts_with("https://gw.example/v1/redirect/360dialog/st1?client="),
        "{loc}"
    );
    assert!(
        loc.contains("&channels=[") && loc.ends_with("]&state=st1"),
        "{loc}"
    );
    let (client, channels) = parse_location(&loc);
    assert_eq!(channels.len(), 1);
    let ch = &channels[0];

    // Partner API: the client and channel are listed, filtered and paged.
    let (s, v) = h
        .api(
            KEY,
            &format!("/partners/p1/clients?filters=%7B%22id%22%3A%22{client}%22%7D"),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(v["clients"][0]["id"], client.as_str());
    assert_eq!(v["clients"][0]["partner_payload"], "ses_1");
    let (_, v) = h
        .api(KEY, &format!("/partners/p1/channels?filters=%7B%22client_id%22%3A%22{client}%22%7D&limit=1&offset=0"))
        .await;
    assert_eq!(v["total"], 1);
    assert_eq!(v["partner_channels"][0]["id"], ch.as_str());

    // Key creation is refused before `running`.
    let (s, v) = h.create_key(KEY, "p1", ch).await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["meta"]["success"], false);

    h.wait_status("p1", KEY, ch, "running").await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while !h.events().contains(&"channel_live".to_string()) {
        assert!(Instant::now() < deadline, "{:?}", h.events());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        h.events(),
        vec![
            "client_created",
            "channel_created",
            "channel_submitted",
            "channel_ready",
            "channel_running",
            "channel_live"
        ]
    );
    // The webhook URL is used verbatim (with its token); envelope {id, event, data}.
    let got = h.hooks.got.lock().unwrap().clone();
    assert_eq!(got[0].0.as_deref(), Some("token=tok"));
    assert_eq!(got[4].1["data"]["id"], ch.as_str());
    assert_eq!(got[4].1["data"]["client"]["id"], client.as_str());
    assert!(got[4].1["id"].as_str().unwrap().starts_with("evt_"));

    // A key now; a second one replaces the first.
    let (s, v) = h.create_key(KEY, "p1", ch).await;
    assert_eq!(s, 201, "{v}");
    let k1 = v["api_keys"][0]["id"].clone();
    let (_, v) = h.create_key(KEY, "p1", ch).await;
    let r = h
        .http
        .get(h.url(&format!("/api/v2/partners/p1/channels/{ch}/api_keys")))
        .header("X-API-Key", KEY)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(r["api_keys"].as_array().unwrap().len(), 1);
    assert_eq!(r["api_keys"][0]["id"], v["api_keys"][0]["id"]);
    assert_ne!(r["api_keys"][0]["id"], k1);
    assert!(
        r["api_keys"][0].get("api_key").is_none(),
        "listing never shows a key"
    );

    // Revoke from a second visit: `revoked=[…]`, and the channel leaves the list.
    let (_, loc) = h
        .accept("p1", &[("email", "a@b.c"), ("revoke", ch.as_str())])
        .await;
    assert!(
        loc.contains(&format!("channels=[]&revoked=[{ch}]")),
        "{loc}"
    );
    let (_, v) = h
        .api(
            KEY,
            &format!("/partners/p1/channels?filters=%7B%22client_id%22%3A%22{client}%22%7D"),
        )
        .await;
    assert_eq!(v["total"], 0);

    // Cancel: no redirect.
    let r = h
        .http
        .post(h.url("/dashboard/app/p1/permissions"))
        .form(&[("action", "cancel")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn auth_controls_knobs_faults_and_direct_payment() {
    let h = Harness::start().await;
    // Wrong key 401, another partner's id 403.
    assert_eq!(h.api("nope", "/partners/p1/channels").await.0, 401);
    assert_eq!(h.api(KEY, "/partners/pd/channels").await.0, 403);

    // Hold at ready, then force statuses and events.
    let (s, _) = h.control("/knobs", json!({"hold_at": "ready"})).await;
    assert_eq!(s, 200);
    let (_, loc) = h.accept("p1", &[("number", "+492")]).await;
    let (_, chs) = parse_location(&loc);
    let ch = &chs[0];
    h.wait_status("p1", KEY, ch, "ready").await;
    let (s, v) = h.control(&format!("/{ch}/running"), json!({})).await;
    assert_eq!(s, 200, "{v}");
    h.wait_status("p1", KEY, ch, "running").await;
    let (s, _) = h
        .control(&format!("/{ch}/event/cancellation_request"), json!({}))
        .await;
    assert_eq!(s, 200);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !h.events().contains(&"cancellation_request".to_string()) {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(h.control("/nochannel/running", json!({})).await.0, 404);

    // Seeded channels of another partner are invisible to ours.
    let (_, seeded) = h
        .control(
            "/seed",
            json!({"partner_id": "other", "channels": 2, "status": "running"}),
        )
        .await;
    let foreign = seeded["channels"][0].as_str().unwrap();
    let (_, v) = h
        .api(
            KEY,
            &format!("/partners/p1/channels?filters=%7B%22id%22%3A%22{foreign}%22%7D"),
        )
        .await;
    assert_eq!(v["total"], 0);
    assert_eq!(h.create_key(KEY, "p1", foreign).await.0, 404);

    // Faults: 503 twice, then 429 with Retry-After, on the Partner API only.
    let (s, _) = h
        .control(
            "/faults",
            json!({"rules": [
                {"match": {"method": "GET", "path": "/api/v2/partners/*/channels"}, "times": 2, "fault": {"status": 503}},
                {"match": {"method": "GET", "path": "/api/v2/partners/*/clients"}, "times": 1, "fault": {"status": 429, "retry_after": 3}}
            ]}),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(h.api(KEY, "/partners/p1/channels").await.0, 503);
    let (s, body) = h.api(KEY, "/partners/p1/channels").await;
    assert_eq!(s, 503);
    assert_eq!(body["meta"]["http_code"], 503);
    assert_eq!(h.api(KEY, "/partners/p1/channels").await.0, 200);
    let r = h
        .http
        .get(h.url("/api/v2/partners/p1/clients"))
        .header("X-API-Key", KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "3");
    let log: Vec<Value> = h
        .http
        .get(h.url("/control/requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let statuses: Vec<u64> = log.iter().map(|e| e["status"].as_u64().unwrap()).collect();
    assert!(statuses.ends_with(&[503, 503, 200, 429]), "{statuses:?}");
    assert!(
        !serde_json::to_string(&log).unwrap().contains(KEY),
        "no secrets in the log"
    );

    // Dropped and duplicated webhooks.
    let before = h.events().len();
    h.control("/knobs", json!({"drop": true, "hold_at": null}))
        .await;
    h.control(&format!("/{ch}/event/channel_live"), json!({}))
        .await;
    h.control("/knobs", json!({"drop": false, "duplicate": 2}))
        .await;
    h.control(&format!("/{ch}/event/account_violation"), json!({}))
        .await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while h.events().len() < before + 3 {
        assert!(Instant::now() < deadline, "{:?}", h.events());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let got = h.hooks.got.lock().unwrap().clone();
    let tail: Vec<&Value> = got[before..].iter().map(|(_, v)| v).collect();
    assert!(tail.iter().all(|v| v["event"] == "account_violation"));
    assert!(
        tail.iter().all(|v| v["id"] == tail[0]["id"]),
        "copies share the event id"
    );
    h.control("/knobs", json!({"duplicate": 0, "bad_auth": true}))
        .await;
    h.control(&format!("/{ch}/event/channel_live"), json!({}))
        .await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let got = h.hooks.got.lock().unwrap().clone();
        if let Some((q, _)) = got.get(before + 3) {
            assert_eq!(q.as_deref(), Some("token=wrong-token"));
            break;
        }
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // Direct Payment: a price page, and keys only with the client's permission.
    h.control("/knobs", json!({"bad_auth": false})).await;
    let page = h
        .http
        .get(h.url("/dashboard/app/pd/permissions"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Direct Payment") && !page.contains("key_permission"));
    // Accept shows the price and payment page first; no channel yet.
    let r = h
        .http
        .post(h.url("/dashboard/app/pd/permissions"))
        .form(&[("action", "accept"), ("number", "+493"), ("state", "st1")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("Price and payment") && html.contains("name=\"key_permission\""));
    assert!(
        html.contains("name=\"number\" value=\"+493\""),
        "the first form is carried over"
    );
    // "Pay and continue" without the permission box.
    let (_, loc) = h
        .accept("pd", &[("number", "+493"), ("payment_confirmed", "on")])
        .await;
    let (client, chs) = parse_location(&loc);
    h.wait_status("pd", DIRECT_KEY, &chs[0], "running").await;
    let (s, v) = h.create_key(DIRECT_KEY, "pd", &chs[0]).await;
    assert_eq!(s, 403, "{v}");
    let r = h
        .http
        .post(h.url(&format!("/client-hub/{client}/permission")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(h.create_key(DIRECT_KEY, "pd", &chs[0]).await.0, 201);

    // Reorder: channel_ready is held back and sent after channel_running.
    h.control("/knobs", json!({"reorder": true})).await;
    let (_, loc) = h.accept("p1", &[("number", "+494")]).await;
    let (_, chs) = parse_location(&loc);
    let deadline = Instant::now() + Duration::from_secs(5);
    let order = loop {
        let got = h.hooks.got.lock().unwrap().clone();
        let order: Vec<String> = got
            .iter()
            .filter(|(_, v)| v["data"]["id"] == chs[0].as_str())
            .map(|(_, v)| v["event"].as_str().unwrap().to_string())
            .collect();
        if order.len() == 5 {
            break order;
        }
        assert!(Instant::now() < deadline, "{order:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(
        order,
        vec![
            "channel_created",
            "channel_submitted",
            "channel_running",
            "channel_ready",
            "channel_live"
        ]
    );

    // Reset forgets everything.
    h.control("/reset", json!({})).await;
    let (_, v) = h.api(KEY, "/partners/p1/channels").await;
    assert_eq!(v["total"], 0);
}

/// The list calls as public Partner API clients send them
/// (`yuenkik6/WABA360Dialog.NET`, `GetPartnerChannels.cs` and
/// `GetPartnerClients.cs`: `limit`, `offset`, `sort=-` and `filters` as JSON
/// with dotted keys; with `X-API-Key` in place of its legacy bearer login),
/// and the redirect as 360dialog's `ConnectButton` parses it.
#[tokio::test]
async fn partner_api_lists_as_public_clients_call_them() {
    let h = Harness::start().await;
    let (_, first) = h
        .accept("p1", &[("email", "a@x.example"), ("number", "+4911")])
        .await;
    let (_, second) = h
        .accept("p1", &[("email", "b@x.example"), ("number", "+4922")])
        .await;
    // ConnectButton: `client`, then `channels` without its brackets, split on commas.
    let search = |loc: &str, name: &str| {
        reqwest::Url::parse(loc)
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .unwrap()
    };
    let channels = search(&second, "channels");
    let second_channel = channels[1..channels.len() - 1]
        .split(',')
        .next()
        .unwrap()
        .to_owned();
    let second_client = search(&second, "client");
    assert_ne!(search(&first, "client"), second_client);

    let list = |path: &str, filters: Value| {
        h.http
            .get(h.url(&format!("/api/v2/partners/p1/{path}")))
            .header("X-API-Key", KEY)
            .query(&[
                ("limit", "20"),
                ("offset", "0"),
                ("sort", "-"),
                ("filters", &filters.to_string()),
            ])
            .send()
    };
    let r = list("channels", json!({"setup_info.phone_number": "+4922"}))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["total"], 1, "{v}");
    assert_eq!(v["partner_channels"][0]["id"], second_channel.as_str());
    assert_eq!(
        (v["limit"].clone(), v["offset"].clone()),
        (json!(20), json!(0))
    );
    assert!(
        v["sort"].as_array().unwrap().iter().all(Value::is_string),
        "{v}"
    );
    let r = list(
        "channels",
        json!({"client.contact_info.email": "a@x.example"}),
    )
    .await
    .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["total"], 1, "{v}");
    assert_ne!(v["partner_channels"][0]["id"], second_channel.as_str());

    let r = list("clients", json!({"contact_info.email": "b@x.example"}))
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["total"], 1, "{v}");
    assert_eq!(v["clients"][0]["id"], second_client.as_str());
    assert!(v["clients"][0]["name"].is_string() && v["clients"][0]["status"].is_string());
    assert!(v["sort"].is_array(), "{v}");
    let r = h
        .http
        .get(h.url("/api/v2/partners/p1/clients"))
        .header("X-API-Key", KEY)
        .query(&[("limit", "1"), ("offset", "1")])
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        (v["count"].clone(), v["total"].clone()),
        (json!(1), json!(2))
    );
    assert_eq!(v["clients"][0]["id"], second_client.as_str(), "paged");

    // A malformed query is refused in 360dialog's error envelope.
    let r = h
        .http
        .get(h.url("/api/v2/partners/p1/channels?limit=twenty"))
        .header("X-API-Key", KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["meta"]["http_code"], 400, "{v}");
}
