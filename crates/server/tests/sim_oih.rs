//! Integration tests of the built-in Open Integration Hub simulator, over
//! real HTTP, with Gangway's callback endpoint played by a receiver in the test.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use gangway_server::sim::oih::{
    ACCESS_TOKEN_PREFIX, OihKnobs, OihSim, OihSimConfig, REFRESH_TOKEN_PREFIX, shipped_flows,
};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::sync::watch;

const KEY: &str = "hmac-key-0123456789abcdef";
const TOKEN: &str = "cbtok_0123456789abcdef0123456789";
const NOT_FOUND_DELAY_MS: u64 = 150;
const WAIT: Duration = Duration::from_secs(10);

/// One callback as Gangway's endpoint received it.
#[derive(Clone, Debug)]
struct Got {
    token: String,
    body: Value,
    raw: String,
}

#[derive(Clone)]
struct Receiver {
    got: Arc<Mutex<Vec<Got>>>,
    count: Arc<watch::Sender<usize>>,
}

async fn receive(State(r): State<Receiver>, Path(token): Path<String>, raw: String) -> StatusCode {
    let body: Value = serde_json::from_str(&raw).unwrap_or(Value::Null);
    let n = {
        let mut got = r.got.lock().unwrap();
        got.push(Got {
            token: token.clone(),
            body,
            raw,
        });
        got.len()
    };
    r.count.send_replace(n);
    if token == TOKEN {
        StatusCode::OK
    } else {
        StatusCode::UNAUTHORIZED
    }
}

struct Harness {
    base: String,
    public_url: String,
    callback_url: String,
    recv: Receiver,
    http: reqwest::Client,
}

async fn bind() -> (tokio::net::TcpListener, String) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    (l, format!("http://{addr}"))
}

fn sign(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(KEY.as_bytes()).unwrap();
    mac.update(body);
    STANDARD.encode(mac.finalize().into_bytes())
}

fn new_request_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

impl Harness {
    async fn start() -> Harness {
        Harness::start_with(OihKnobs::default()).await
    }

    async fn start_with(knobs: OihKnobs) -> Harness {
        let recv = Receiver {
            got: Arc::default(),
            count: Arc::new(watch::channel(0).0),
        };
        let (l, recv_base) = bind().await;
        let app = Router::new()
            .route("/v1/callbacks/oih/{token}", post(receive))
            .with_state(recv.clone());
        tokio::spawn(async move { axum::serve(l, app).await.unwrap() });

        let (l, base) = bind().await;
        let public_url = format!("{base}/sim/oih");
        let sim = OihSim::new(OihSimConfig {
            flows: shipped_flows(KEY),
            public_url: public_url.clone(),
            not_found_delay_ms: NOT_FOUND_DELAY_MS,
            knobs,
        });
        let app = Router::new().nest("/sim/oih", sim.router());
        tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
        Harness {
            base: public_url.clone(),
            public_url,
            callback_url: format!("{recv_base}/v1/callbacks/oih/{TOKEN}"),
            recv,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        }
    }

    fn url(&self, p: &str) -> String {
        format!("{}{p}", self.base)
    }

    /// The trigger body of Gangway's contract.
    fn body(&self, request_id: &str, input: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "requestId": request_id,
            "sessionId": "ses_test",
            "input": input,
            "callbackUrl": self.callback_url,
        }))
        .unwrap()
    }

    /// A signed POST trigger; returns the request id sent, status and body.
    async fn trigger(&self, flow: &str, input: Value) -> (String, u16, Value) {
        let id = new_request_id();
        let body = self.body(&id, input);
        let r = self
            .http
            .post(self.url(&format!("/hook/{flow}")))
            .header("content-type", "application/json")
            .header("x-request-id", &id)
            .header("x-hmac", sign(&body))
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (id, status, r.json().await.unwrap_or(Value::Null))
    }

    async fn control(&self, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .request(method, self.url(&format!("/control{path}")))
            .json(&body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    async fn knobs(&self, knobs: Value) {
        let (s, _) = self.control(reqwest::Method::POST, "/knobs", knobs).await;
        assert_eq!(s, 200);
    }

    fn callbacks(&self, request_id: &str) -> Vec<Got> {
        self.recv
            .got
            .lock()
            .unwrap()
            .iter()
            .filter(|g| g.body["requestId"] == request_id)
            .cloned()
            .collect()
    }

    /// Waits until `request_id` has at least `n` callbacks; returns them.
    async fn wait_callbacks(&self, request_id: &str, n: usize) -> Vec<Got> {
        let mut changes = self.recv.count.subscribe();
        let deadline = Instant::now() + WAIT;
        loop {
            let got = self.callbacks(request_id);
            if got.len() >= n {
                return got;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                tokio::time::timeout(left, changes.changed()).await.is_ok(),
                "only {} of {n} callbacks for {request_id}: {got:?}",
                got.len()
            );
        }
    }

    async fn requests(&self) -> Vec<Value> {
        let (s, v) = self
            .control(reqwest::Method::GET, "/requests", Value::Null)
            .await;
        assert_eq!(s, 200);
        v.as_array().cloned().unwrap_or_default()
    }
}

fn seqs(got: &[Got]) -> Vec<u64> {
    got.iter()
        .map(|g| g.body["seq"].as_u64().unwrap())
        .collect()
}

fn types(got: &[Got]) -> Vec<String> {
    got.iter()
        .map(|g| g.body["type"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn hook_answers_like_oih() {
    let h = Harness::start().await;
    let id = new_request_id();
    let body = h.body(&id, json!({"customer_id": "42"}));

    // No Content-Type: 415.
    let r = h
        .http
        .post(h.url("/hook/lookup-customer"))
        .header("x-hmac", sign(&body))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"error": "Content-Type header is missing"})
    );

    // Wrong, missing, or over other bytes: 403.
    for hmac in [Some("d3Jvbmc="), None, Some(sign(b"{}").as_str())] {
        let mut req = h
            .http
            .post(h.url("/hook/lookup-customer"))
            .header("content-type", "application/json")
            .body(body.clone());
        if let Some(v) = hmac {
            req = req.header("x-hmac", v);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 403);
        assert_eq!(
            r.json::<Value>().await.unwrap(),
            json!({"error": "Unauthorized"})
        );
    }

    // Signed: 200 echoing x-request-id, also with a path suffix.
    for path in ["/hook/lookup-customer", "/hook/lookup-customer/anything"] {
        let r = h
            .http
            .post(h.url(path))
            .header("content-type", "application/json")
            .header("x-request-id", "my-request-1")
            .header("x-hmac", sign(&body))
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.json::<Value>().await.unwrap(),
            json!({"data": {"requestId": "my-request-1", "message": "thank you"}})
        );
    }

    // Without x-request-id: a random 32-hex id each time.
    let mut ids = Vec::new();
    for _ in 0..2 {
        let r = h
            .http
            .post(h.url("/hook/lookup-customer"))
            .header("content-type", "application/json")
            .header("x-hmac", sign(&body))
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        let rid = v["data"]["requestId"].as_str().unwrap().to_owned();
        assert!(rid.len() == 32 && rid.chars().all(|c| c.is_ascii_hexdigit()));
        ids.push(rid);
    }
    assert_ne!(ids[0], ids[1]);

    // The callbacks name the body's requestId (Gangway's run id).
    let got = h.wait_callbacks(&id, 4).await;
    assert!(got.iter().all(|g| g.token == TOKEN));
}

/// The request bodies of OIH's own webhooks tests
/// (`lib/webhooks/spec/http-api.spec.js`) and load test
/// (`dev-tools/docker-compose/src/load-test.js`): the body is parsed by its
/// content type before anything else, as `lib/webhooks/src/body-parser.js`
/// does.
#[tokio::test]
async fn bodies_are_parsed_as_oih_parses_them() {
    let h = Harness::start().await;
    let post = |flow: &str, content_type: &str, body: Vec<u8>| {
        h.http
            .post(h.url(&format!("/hook/{flow}")))
            .header("content-type", content_type)
            .header("x-hmac", sign(&body))
            .body(body)
            .send()
    };

    // Invalid JSON: 400 with OIH's error body, before the flow is even looked
    // up (no delayed 404), and the flow does not run.
    let t = Instant::now();
    let r = post("no-such-flow", "application/json", b"{\"a\":".to_vec())
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(t.elapsed() < Duration::from_millis(NOT_FOUND_DELAY_MS));
    let body: Value = r.json().await.unwrap();
    assert!(body["error"].is_string(), "{body}");
    let r = post("lookup-customer", "application/json", b"42".to_vec())
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // A form: its fields are the flow's data (the run calls back).
    let id = new_request_id();
    let form = serde_urlencoded::to_string([
        ("requestId", id.as_str()),
        ("callbackUrl", h.callback_url.as_str()),
        ("customer_id", "C-77"),
    ])
    .unwrap();
    let r = post(
        "lookup-customer",
        "application/x-www-form-urlencoded",
        form.into_bytes(),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let got = h.wait_callbacks(&id, 1).await;
    assert_eq!(got[0].body["data"]["customer"]["id"], "C-77");

    // text/plain is JSON to OIH; text/csv reaches the flow as {}; an empty
    // JSON body (the load test's) is {}.
    let id = new_request_id();
    let r = post(
        "lookup-customer",
        "text/plain",
        h.body(&id, json!({"customer_id": "C-78"})),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    h.wait_callbacks(&id, 1).await;
    for (content_type, body) in [
        ("text/csv", b"foo,bar,baz\nbaz,bar,foo".to_vec()),
        ("application/json", Vec::new()),
    ] {
        let r = post("lookup-customer", content_type, body).await.unwrap();
        assert_eq!(r.status(), 200, "{content_type}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["data"]["message"], "thank you");
    }
}

#[tokio::test]
async fn unknown_and_stopped_flows_answer_a_delayed_404() {
    let h = Harness::start().await;
    let delay = Duration::from_millis(NOT_FOUND_DELAY_MS);

    let t = Instant::now();
    let (_, status, body) = h.trigger("no-such-flow", json!({})).await;
    assert!(t.elapsed() >= delay);
    assert_eq!(status, 404);
    assert_eq!(
        body,
        json!({"error": "Flow no-such-flow either does not exist or is inactive."})
    );

    let head = |flow: &str| h.http.head(h.url(&format!("/hook/{flow}"))).send();
    assert_eq!(head("lookup-customer").await.unwrap().status(), 200);
    let t = Instant::now();
    assert_eq!(head("no-such-flow").await.unwrap().status(), 404);
    assert!(t.elapsed() >= delay);

    // Stop: 404 for HEAD and POST; start again: 200.
    let (s, v) = h
        .control(
            reqwest::Method::POST,
            "/flows/lookup-customer/stop",
            Value::Null,
        )
        .await;
    assert_eq!((s, &v["status"]), (200, &json!("inactive")));
    assert_eq!(head("lookup-customer").await.unwrap().status(), 404);
    let t = Instant::now();
    let (_, status, body) = h.trigger("lookup-customer", json!({})).await;
    assert!(t.elapsed() >= delay);
    assert_eq!(status, 404);
    assert_eq!(
        body["error"],
        "Flow lookup-customer either does not exist or is inactive."
    );
    h.control(
        reqwest::Method::POST,
        "/flows/lookup-customer/start",
        Value::Null,
    )
    .await;
    assert_eq!(head("lookup-customer").await.unwrap().status(), 200);
    let (id, status, _) = h
        .trigger("lookup-customer", json!({"customer_id": 7}))
        .await;
    assert_eq!(status, 200);
    h.wait_callbacks(&id, 1).await;

    // Unknown flow in the control API.
    let (s, _) = h
        .control(reqwest::Method::POST, "/flows/nope/start", Value::Null)
        .await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn get_hook_skips_auth_and_is_logged_as_get() {
    let h = Harness::start().await;
    let id = new_request_id();
    // lookup-customer requires an HMAC, yet GET runs it with the query as data.
    let r = h
        .http
        .get(h.url("/hook/lookup-customer"))
        .query(&[
            ("customer_id", "42"),
            ("requestId", id.as_str()),
            ("callbackUrl", h.callback_url.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Without x-request-id the hook's own id is random; the run keeps the query's.
    let hook_id = r.json::<Value>().await.unwrap()["data"]["requestId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(hook_id, id);
    let got = h.wait_callbacks(&id, 1).await;
    assert_eq!(got[0].body["data"]["customer"]["id"], "42");

    let (post_id, status, _) = h
        .trigger("lookup-customer", json!({"customer_id": "42"}))
        .await;
    assert_eq!(status, 200);
    let post_got = h.wait_callbacks(&post_id, 1).await;
    assert_eq!(post_got[0].body["data"], got[0].body["data"]);

    let log = h.requests().await;
    let hooks: Vec<(&str, &str, u64)> = log
        .iter()
        .filter(|e| e["path"] == "/hook/lookup-customer")
        .map(|e| {
            (
                e["method"].as_str().unwrap(),
                e["ref"].as_str().unwrap_or_default(),
                e["status"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        hooks,
        vec![
            ("GET", hook_id.as_str(), 200),
            ("POST", post_id.as_str(), 200)
        ]
    );
}

#[tokio::test]
async fn shipped_flows_call_back() {
    let h = Harness::start().await;

    // lookup-customer: deterministic from the customer id or the e-mail.
    let (a, _, _) = h
        .trigger("lookup-customer", json!({"customer_id": "C-1001"}))
        .await;
    let (b, _, _) = h
        .trigger("lookup-customer", json!({"customer_id": "C-1001"}))
        .await;
    let (c, _, _) = h
        .trigger("lookup-customer", json!({"email": "jan@example.org"}))
        .await;
    let (none, _, _) = h.trigger("lookup-customer", json!({})).await;
    let a = h.wait_callbacks(&a, 1).await.remove(0).body;
    let b = h.wait_callbacks(&b, 1).await.remove(0).body;
    let c = h.wait_callbacks(&c, 1).await.remove(0).body;
    assert_eq!(
        (a["seq"].as_u64(), a["type"].as_str()),
        (Some(1), Some("result"))
    );
    assert_eq!(a["data"], b["data"]);
    let customer = &a["data"]["customer"];
    for k in ["id", "name", "email", "tier", "since", "open_orders"] {
        assert!(!customer[k].is_null(), "{k} missing in {customer}");
    }
    assert_eq!(customer["id"], "C-1001");
    assert!(
        a["message"]
            .as_str()
            .unwrap()
            .contains(customer["name"].as_str().unwrap())
    );
    assert_eq!(c["data"]["customer"]["email"], "jan@example.org");
    let none = h.wait_callbacks(&none, 1).await.remove(0).body;
    assert_eq!(none["type"], "error");

    // create-contact: a new id per request, echoing the input.
    let input = json!({"name": "Ada Lovelace", "email": "ada@example.com"});
    let (x, _, _) = h.trigger("create-contact", input.clone()).await;
    let (y, _, _) = h.trigger("create-contact", input).await;
    let x = h.wait_callbacks(&x, 1).await.remove(0).body;
    let y = h.wait_callbacks(&y, 1).await.remove(0).body;
    assert_eq!(x["type"], "result");
    assert_eq!(x["message"], "Created contact Ada Lovelace");
    let contact = &x["data"]["contact"];
    assert_eq!(
        (&contact["name"], &contact["email"]),
        (&json!("Ada Lovelace"), &json!("ada@example.com"))
    );
    assert!(contact["id"].as_str().unwrap().starts_with("ct_"));
    assert_ne!(contact["id"], y["data"]["contact"]["id"]);

    // slow-progress: three progress messages, then the result.
    let (s, _, _) = h.trigger("slow-progress", json!({"note": "q3"})).await;
    let got = h.wait_callbacks(&s, 4).await;
    assert_eq!(seqs(&got), vec![1, 2, 3, 4]);
    assert_eq!(
        types(&got),
        vec!["progress", "progress", "progress", "result"]
    );
    assert!(
        got[0].body["message"]
            .as_str()
            .unwrap()
            .starts_with("step 1 of 3")
    );
    assert!(
        got[2].body["message"]
            .as_str()
            .unwrap()
            .starts_with("step 3 of 3")
    );
    assert_eq!(got[3].body["data"]["note"], "q3");
    assert_eq!(got[3].body["data"]["report"], format!("report-{s}"));

    // always-fail: one error callback with a clear message.
    let (f, _, _) = h.trigger("always-fail", json!({})).await;
    let got = h.wait_callbacks(&f, 1).await;
    assert_eq!(types(&got), vec!["error"]);
    assert!(got[0].body["message"].as_str().unwrap().contains("failed"));
}

#[tokio::test]
async fn never_callback_sends_nothing() {
    let h = Harness::start().await;
    let (silent, status, _) = h.trigger("never-callback", json!({})).await;
    assert_eq!(status, 200);
    // A flow triggered later calls back; by then the first has sent nothing.
    let (marker, _, _) = h.trigger("create-contact", json!({"name": "marker"})).await;
    h.wait_callbacks(&marker, 1).await;
    assert!(h.callbacks(&silent).is_empty());
}

#[tokio::test]
async fn scripts_from_put_with_templating() {
    let h = Harness::start().await;
    let flow = json!({
        "status": "active",
        "requireWebhookAuth": false,
        "script": [
            {"after_ms": 0, "progress": {"message": "Hello {{input.user.name}}, order {{input.order}}"}},
            {"after_ms": 10, "result": {"message": "done for {{sessionId}}", "data": {
                "user": "{{input.user}}", "n": "{{input.order}}", "text": "n={{input.order}}",
                "missing": "{{input.nope.deeper}}", "first_tag": "{{input.tags.0}}"
            }}}
        ]
    });
    let (s, v) = h.control(reqwest::Method::PUT, "/flows/greet", flow).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["id"], "greet");

    // No HMAC needed for this one.
    let id = new_request_id();
    let r = h
        .http
        .post(h.url("/hook/greet"))
        .header("content-type", "application/json")
        .body(h.body(
            &id,
            json!({"user": {"name": "Grace"}, "order": 17, "tags": ["vip"]}),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let got = h.wait_callbacks(&id, 2).await;
    assert_eq!(got[0].body["message"], "Hello Grace, order 17");
    assert_eq!(got[0].body["data"], json!({}));
    assert_eq!(got[1].body["message"], "done for ses_test");
    assert_eq!(
        got[1].body["data"],
        json!({"user": {"name": "Grace"}, "n": 17, "text": "n=17", "missing": "", "first_tag": "vip"})
    );

    // Bad definitions are refused.
    let (s, _) = h
        .control(
            reqwest::Method::PUT,
            "/flows/bad",
            json!({"hmacAlgorithm": "md5"}),
        )
        .await;
    assert_eq!(s, 400);
    let (s, _) = h
        .control(
            reqwest::Method::PUT,
            "/flows/bad",
            json!({"script": [{"progress": {"message": "a"}, "result": {"message": "b"}}]}),
        )
        .await;
    assert_eq!(s, 400);
    let (s, _) = h
        .control(reqwest::Method::PUT, "/flows/bad", json!({"id": "other"}))
        .await;
    assert_eq!(s, 400);

    // The flow list never shows a key.
    let (_, flows) = h.control(reqwest::Method::GET, "/flows", Value::Null).await;
    assert!(!flows.to_string().contains(KEY));
    assert!(flows["flows"].as_array().unwrap().len() >= 8);
}

#[tokio::test]
async fn sha512_and_custom_header() {
    let h = Harness::start().await;
    let (s, _) = h
        .control(
            reqwest::Method::PUT,
            "/flows/strict",
            json!({"requireWebhookAuth": true, "hmacHeaderKey": "X-Signature",
                   "hmacAlgorithm": "sha512", "hmacKey": "k512",
                   "script": [{"result": {"message": "ok"}}]}),
        )
        .await;
    assert_eq!(s, 200);
    let id = new_request_id();
    let body = h.body(&id, json!({}));
    let mut mac = Hmac::<sha2::Sha512>::new_from_slice(b"k512").unwrap();
    mac.update(&body);
    let sig = STANDARD.encode(mac.finalize().into_bytes());
    let send = |header: &'static str, value: String| {
        h.http
            .post(h.url("/hook/strict"))
            .header("content-type", "application/json")
            .header(header, value)
            .body(body.clone())
            .send()
    };
    assert_eq!(send("x-hmac", sig.clone()).await.unwrap().status(), 403);
    assert_eq!(
        send("x-signature", sign(&body)).await.unwrap().status(),
        403
    );
    assert_eq!(send("x-signature", sig).await.unwrap().status(), 200);
    h.wait_callbacks(&id, 1).await;
}

#[tokio::test]
async fn knob_callback_twice() {
    let h = Harness::start().await;
    h.knobs(json!({"callback_twice": true})).await;
    let (id, _, _) = h.trigger("create-contact", json!({"name": "x"})).await;
    let got = h.wait_callbacks(&id, 2).await;
    assert_eq!(seqs(&got), vec![1, 1]);
    assert_eq!(got[0].raw, got[1].raw);
}

#[tokio::test]
async fn knob_never_callback() {
    let h = Harness::start().await;
    h.knobs(json!({"never_callback": true})).await;
    let (silent, status, _) = h.trigger("create-contact", json!({})).await;
    assert_eq!(status, 200);
    h.knobs(json!({"never_callback": false})).await;
    let (marker, _, _) = h.trigger("create-contact", json!({})).await;
    h.wait_callbacks(&marker, 1).await;
    assert!(h.callbacks(&silent).is_empty());
}

#[tokio::test]
async fn knob_early_calls_back_before_the_200() {
    // From config this time.
    let h = Harness::start_with(OihKnobs {
        early: true,
        ..OihKnobs::default()
    })
    .await;
    let (id, status, _) = h.trigger("create-contact", json!({})).await;
    assert_eq!(status, 200);
    // No waiting: the callback was answered before the hook answered.
    assert_eq!(seqs(&h.callbacks(&id)), vec![1]);

    // Later callbacks of the run still come after the 200.
    let (id, status, _) = h.trigger("slow-progress", json!({})).await;
    assert_eq!(status, 200);
    assert!(!h.callbacks(&id).is_empty());
    assert_eq!(seqs(&h.wait_callbacks(&id, 4).await), vec![1, 2, 3, 4]);

    // A flow that never calls back does not hold the answer.
    let (_, status, _) = h.trigger("never-callback", json!({})).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn knob_reorder_sends_the_result_before_the_last_progress() {
    let h = Harness::start().await;
    h.knobs(json!({"reorder": true})).await;
    let (id, _, _) = h.trigger("slow-progress", json!({})).await;
    let got = h.wait_callbacks(&id, 4).await;
    assert_eq!(seqs(&got), vec![1, 2, 4, 3]);
    assert_eq!(
        types(&got),
        vec!["progress", "progress", "result", "progress"]
    );
}

#[tokio::test]
async fn knob_bad_auth_uses_a_wrong_token_and_logs_the_answer() {
    let h = Harness::start().await;
    h.knobs(json!({"bad_auth": true})).await;
    let (id, _, _) = h.trigger("create-contact", json!({})).await;
    let got = h.wait_callbacks(&id, 1).await;
    assert_ne!(got[0].token, TOKEN);
    assert!(!got[0].token.is_empty());

    // Logged: Gangway's 401, the token masked.
    let log = h.requests().await;
    let entry = log
        .iter()
        .find(|e| e["path"].as_str().unwrap().contains("/v1/callbacks/oih/"))
        .unwrap();
    assert_eq!(entry["method"], "POST");
    assert_eq!(entry["status"], 401);
    assert_eq!(entry["ref"], id.as_str());
    assert!(
        entry["path"]
            .as_str()
            .unwrap()
            .ends_with("/v1/callbacks/oih/***")
    );
    let text = serde_json::to_string(&log).unwrap();
    assert!(!text.contains(&got[0].token) && !text.contains(TOKEN));
}

#[tokio::test]
async fn knob_bad_request_id_names_a_run_that_does_not_exist() {
    let h = Harness::start().await;
    h.knobs(json!({"bad_request_id": true})).await;
    let (id, _, _) = h.trigger("create-contact", json!({})).await;
    let mut changes = h.recv.count.subscribe();
    let deadline = Instant::now() + WAIT;
    while h.recv.got.lock().unwrap().is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            tokio::time::timeout(left, changes.changed()).await.is_ok(),
            "no callback arrived"
        );
    }
    let got = h.recv.got.lock().unwrap()[0].clone();
    // The right URL and token, a request id of no run.
    assert_eq!(got.token, TOKEN);
    let stray = got.body["requestId"].as_str().unwrap();
    assert_ne!(stray, id);
    assert_eq!(stray.len(), id.len());
    assert!(h.callbacks(&id).is_empty());
}

#[tokio::test]
async fn knob_delay_ms_per_flow() {
    let h = Harness::start().await;
    let (s, _) = h
        .control(
            reqwest::Method::PUT,
            "/flows/late",
            json!({"script": [{"result": {"message": "late"}}], "knobs": {"delay_ms": 300}}),
        )
        .await;
    assert_eq!(s, 200);
    let id = new_request_id();
    let t = Instant::now();
    let r = h
        .http
        .post(h.url("/hook/late"))
        .header("content-type", "application/json")
        .body(h.body(&id, json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    h.wait_callbacks(&id, 1).await;
    assert!(t.elapsed() >= Duration::from_millis(300));
    // The global knobs were untouched.
    let (_, knobs) = h.control(reqwest::Method::GET, "/knobs", Value::Null).await;
    assert_eq!(knobs["delay_ms"], 0);
}

#[tokio::test]
async fn faults_apply_to_the_hook() {
    let h = Harness::start().await;
    let (s, _) = h
        .control(
            reqwest::Method::POST,
            "/faults",
            json!({"rules": [
                {"match": {"method": "POST", "path": "/hook/create-contact"}, "fault": {"status": 503}},
                {"match": {"path": "/hook/create-contact"}, "fault": {"status": 500}, "after_effect": true}
            ]}),
        )
        .await;
    assert_eq!(s, 200);
    // 503 without effect: the flow does not run.
    let (skipped, status, body) = h.trigger("create-contact", json!({})).await;
    assert_eq!(status, 503);
    assert_eq!(body, json!({"error": "service unavailable"}));
    // 500 after the effect: the flow runs although the caller saw a failure.
    let (ran, status, _) = h.trigger("create-contact", json!({})).await;
    assert_eq!(status, 500);
    h.wait_callbacks(&ran, 1).await;
    let (ok, status, _) = h.trigger("create-contact", json!({})).await;
    assert_eq!(status, 200);
    h.wait_callbacks(&ok, 1).await;
    assert!(h.callbacks(&skipped).is_empty());

    // A hang after the effect: the caller times out, the flow still runs.
    h.control(
        reqwest::Method::POST,
        "/faults",
        json!({"rules": [{"match": {"path": "/hook/create-contact"}, "fault": {"hang": true, "after_effect": true}}]}),
    )
    .await;
    let id = new_request_id();
    let body = h.body(&id, json!({}));
    let sent = h
        .http
        .post(h.url("/hook/create-contact"))
        .header("content-type", "application/json")
        .header("x-hmac", sign(&body))
        .body(body)
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(sent.is_err_and(|e| e.is_timeout()));
    h.wait_callbacks(&id, 1).await;
}

#[tokio::test]
async fn reset_restores_the_configuration() {
    let h = Harness::start().await;
    h.control(reqwest::Method::PUT, "/flows/extra", json!({"script": []}))
        .await;
    h.knobs(json!({"reorder": true})).await;
    h.trigger("create-contact", json!({})).await;
    let (s, _) = h
        .control(reqwest::Method::POST, "/reset", Value::Null)
        .await;
    assert_eq!(s, 200);
    let (_, knobs) = h.control(reqwest::Method::GET, "/knobs", Value::Null).await;
    assert_eq!(knobs["reorder"], false);
    let (_, status, _) = h.trigger("extra", json!({})).await;
    assert_eq!(status, 404);
}

/// The login URL's query parameters.
fn query_of(url: &str) -> Vec<(String, String)> {
    reqwest::Url::parse(url)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn param(q: &[(String, String)], k: &str) -> String {
    q.iter()
        .find(|(n, _)| n == k)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

/// The value of the hidden input `name` in a page.
fn hidden_value(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).unwrap() + marker.len();
    let len = html[start..].find('"').unwrap();
    html[start..start + len].to_owned()
}

impl Harness {
    /// Starts `/auth`'s flow; returns its request id and the login URL.
    async fn start_login(&self) -> (String, String) {
        let (id, status, _) = self.trigger("oauth-login", json!({})).await;
        assert_eq!(status, 200);
        let got = self.wait_callbacks(&id, 1).await;
        let first = &got[0].body;
        assert_eq!(first["seq"], 1);
        assert_eq!(first["type"], "progress");
        assert_eq!(first["message"], "Sign in to continue");
        let url = first["data"]["login_url"].as_str().unwrap().to_owned();
        (id, url)
    }

    /// GET authorize, POST the sign-in; returns the consent page.
    async fn sign_in(&self, login_url: &str, email: &str) -> String {
        let page = self.http.get(login_url).send().await.unwrap();
        assert_eq!(page.status(), 200);
        let csp = page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(csp.contains("default-src 'none'"), "{csp}");
        let html = page.text().await.unwrap();
        for hook in [
            "id=\"email\"",
            "value=\"ada.lovelace@example.com\"",
            "id=\"password\"",
            "<button id=\"sign-in\"",
        ] {
            assert!(html.contains(hook), "{hook} missing");
        }
        assert!(!html.contains("src=") && !html.contains("<link"));
        let q = query_of(login_url);
        let mut form: Vec<(String, String)> = [
            "response_type",
            "client_id",
            "redirect_uri",
            "scope",
            "state",
        ]
        .iter()
        .map(|k| ((*k).to_owned(), hidden_value(&html, k)))
        .collect();
        assert_eq!(param(&form, "state"), param(&q, "state"));
        form.extend([
            ("step".to_owned(), "signin".to_owned()),
            ("email".to_owned(), email.to_owned()),
            ("password".to_owned(), "correct horse".to_owned()),
        ]);
        let r = self
            .http
            .post(self.url("/idp/authorize"))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let consent = r.text().await.unwrap();
        assert!(consent.contains("Gangway Assistant (via Open Integration Hub) wants to"));
        assert!(consent.contains("read your profile"));
        assert!(
            consent.contains("<button id=\"allow\"") && consent.contains("<button id=\"deny\"")
        );
        consent
    }

    /// POSTs the consent decision; returns the redirect.
    async fn decide(&self, consent_page: &str, decision: &str) -> String {
        let r = self
            .http
            .post(self.url("/idp/authorize"))
            .form(&[
                ("step", "consent"),
                ("consent", hidden_value(consent_page, "consent").as_str()),
                ("decision", decision),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303);
        r.headers()["location"].to_str().unwrap().to_owned()
    }
}

#[tokio::test]
async fn oauth_loop_then_graph_me() {
    let h = Harness::start().await;
    let (login_id, login_url) = h.start_login().await;
    let q = query_of(&login_url);
    assert!(login_url.starts_with(&format!("{}/idp/authorize?", h.public_url)));
    assert_eq!(param(&q, "response_type"), "code");
    assert_eq!(param(&q, "client_id"), "oih-secret-service");
    assert_eq!(param(&q, "scope"), "User.Read");
    assert_eq!(
        param(&q, "redirect_uri"),
        format!("{}/secrets/callback", h.public_url)
    );

    let consent = h.sign_in(&login_url, "ada.lovelace@example.com").await;
    assert!(consent.contains("Ada Lovelace"));
    let location = h.decide(&consent, "allow").await;
    assert!(location.starts_with(&format!("{}/secrets/callback?", h.public_url)));
    let lq = query_of(&location);
    let code = param(&lq, "code");
    assert!(!code.is_empty());
    assert_eq!(param(&lq, "state"), param(&q, "state"));

    // The hub's callback page; then the flow's final callback.
    let r = h.http.get(&location).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("You are signed in. You can close this window."));
    assert!(html.contains("window.close()"));
    let got = h.wait_callbacks(&login_id, 2).await;
    assert_eq!(seqs(&got), vec![1, 2]);
    let done = &got[1].body;
    assert_eq!(done["type"], "result");
    assert_eq!(done["message"], "Signed in as Ada Lovelace");
    assert_eq!(
        done["data"]["user"],
        json!({"name": "Ada Lovelace", "email": "ada.lovelace@example.com"})
    );
    let secret_id = done["data"]["secret_id"].as_str().unwrap().to_owned();
    assert!(secret_id.len() == 24 && secret_id.chars().all(|c| c.is_ascii_hexdigit()));

    // Replaying the redirect: an error page, no callback.
    let r = h.http.get(&location).send().await.unwrap();
    assert_eq!(r.status(), 400);
    // The token endpoint over HTTP: the code is spent, and needs the client.
    let token =
        |form: Vec<(&'static str, String)>| h.http.post(h.url("/idp/token")).form(&form).send();
    let base = |secret: &str, grant: &str| {
        vec![
            ("grant_type", grant.to_owned()),
            ("code", code.clone()),
            ("redirect_uri", param(&q, "redirect_uri")),
            ("client_id", "oih-secret-service".to_owned()),
            ("client_secret", secret.to_owned()),
        ]
    };
    let r = token(base("wrong", "authorization_code")).await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_client");
    let r = token(base("wrong", "password")).await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "unsupported_grant_type"
    );

    // graph-me with the secret: the profile, read over HTTP with the token.
    let (me, _, _) = h.trigger("graph-me", json!({"secret_id": secret_id})).await;
    let got = h.wait_callbacks(&me, 1).await;
    let body = &got[0].body;
    assert_eq!(body["type"], "result", "{body}");
    assert_eq!(body["message"], "Profile of Ada Lovelace");
    let profile = body["data"]["profile"].as_object().unwrap();
    let mut keys: Vec<&str> = profile.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        vec![
            "displayName",
            "givenName",
            "id",
            "jobTitle",
            "mail",
            "mobilePhone",
            "officeLocation",
            "preferredLanguage",
            "surname"
        ]
    );
    assert_eq!(profile["givenName"], "Ada");
    assert_eq!(profile["surname"], "Lovelace");
    assert_eq!(profile["mail"], "ada.lovelace@example.com");
    // Deterministic: the same profile a second time.
    let (me2, _, _) = h.trigger("graph-me", json!({"secret_id": secret_id})).await;
    assert_eq!(
        h.wait_callbacks(&me2, 1).await[0].body["data"],
        body["data"]
    );

    // Graph without a valid token: 401 in Graph's shape.
    let r = h.http.get(h.url("/graph/v1.0/me")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "InvalidAuthenticationToken");
    let r = h
        .http
        .get(h.url("/graph/v1.0/me"))
        .bearer_auth(format!("{ACCESS_TOKEN_PREFIX}forged"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // The login attempt sent nothing more after the replay.
    assert_eq!(seqs(&h.callbacks(&login_id)), vec![1, 2]);

    // No token or code in any callback, the request log or the control API.
    let (_, secrets) = h
        .control(reqwest::Method::GET, "/secrets", Value::Null)
        .await;
    assert_eq!(secrets["secrets"][0]["id"], secret_id.as_str());
    assert_eq!(secrets["secrets"][0]["owner"], "ses_test");
    let (_, sent) = h
        .control(reqwest::Method::GET, "/callbacks", Value::Null)
        .await;
    let raw: Vec<String> = h
        .recv
        .got
        .lock()
        .unwrap()
        .iter()
        .map(|g| g.raw.clone())
        .collect();
    let log = serde_json::to_string(&h.requests().await).unwrap();
    let everything = format!("{raw:?}{log}{secrets}{sent}");
    for leak in [
        ACCESS_TOKEN_PREFIX,
        REFRESH_TOKEN_PREFIX,
        code.as_str(),
        KEY,
    ] {
        assert!(!everything.contains(leak), "{leak} leaked");
    }
}

#[tokio::test]
async fn oauth_deny_unknown_secret_and_bad_callbacks() {
    let h = Harness::start().await;
    let (login_id, login_url) = h.start_login().await;
    let consent = h.sign_in(&login_url, "grace.hopper@example.com").await;
    assert!(consent.contains("Grace Hopper"));
    let location = h.decide(&consent, "deny").await;
    let lq = query_of(&location);
    assert_eq!(param(&lq, "error"), "access_denied");
    assert!(param(&lq, "code").is_empty());
    let r = h.http.get(&location).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let got = h.wait_callbacks(&login_id, 2).await;
    assert_eq!(types(&got), vec!["progress", "error"]);
    assert_eq!(got[1].body["message"], "The user declined the sign-in");

    // The consent cannot be answered twice.
    let r = h
        .http
        .post(h.url("/idp/authorize"))
        .form(&[
            ("step", "consent"),
            ("consent", hidden_value(&consent, "consent").as_str()),
            ("decision", "allow"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // An unknown state or a forged code: error pages, no callback.
    let r = h
        .http
        .get(h.url("/secrets/callback?code=abc&state=nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let (login2, url2) = h.start_login().await;
    let state = param(&query_of(&url2), "state");
    let r = h
        .http
        .get(h.url(&format!("/secrets/callback?code=forged&state={state}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // Sign-in without a password shows the page again.
    let q = query_of(&url2);
    let mut form: Vec<(String, String)> = q.clone();
    form.extend([
        ("step".to_owned(), "signin".to_owned()),
        ("email".to_owned(), "ada.lovelace@example.com".to_owned()),
        ("password".to_owned(), String::new()),
    ]);
    let r = h
        .http
        .post(h.url("/idp/authorize"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("id=\"error\""));

    // A foreign redirect_uri is refused with a page, not a redirect.
    let mut bad = q.clone();
    bad.retain(|(k, _)| k != "redirect_uri");
    bad.push(("redirect_uri".into(), "https://evil.example/cb".into()));
    let r = h
        .http
        .get(h.url("/idp/authorize"))
        .query(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // graph-me with an unknown secret.
    let (me, _, _) = h.trigger("graph-me", json!({"secret_id": "nope"})).await;
    let got = h.wait_callbacks(&me, 1).await;
    assert_eq!(got[0].body["type"], "error");
    assert_eq!(
        got[0].body["message"],
        "No secret nope in the secret service: sign in with /auth first"
    );
    // By now the second login has sent only its login URL.
    assert_eq!(seqs(&h.callbacks(&login2)), vec![1]);
}
