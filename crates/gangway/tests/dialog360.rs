//! 360dialog WhatsApp onboarding end to end on the server: the real binary
//! against the 360dialog simulator over HTTP. The "browser" here is the test:
//! it opens the permissions page, submits it, follows the redirect to
//! Gangway's page and posts what that page's script posts.
#![allow(clippy::unwrap_used)]

mod common;

use common::{D360_WEBHOOK_TOKEN, Harness, SHOP_ORIGIN, eventually};
use serde_json::{Value, json};

/// A client that does not follow redirects (to read the hub's `Location`).
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

struct Started {
    id: String,
    secret: String,
    /// The permissions URL the browser opens.
    url: String,
    state: String,
}

async fn start(h: &Harness, workflow: &str, input: Value) -> Started {
    let (status, s) = h
        .post(
            "/v1/sessions",
            json!({"workflow": workflow, "input": input}),
        )
        .await;
    assert_eq!(status, 201, "{s}");
    let id = s["id"].as_str().unwrap().to_string();
    let secret = s["client_secret"].as_str().unwrap().to_string();
    h.wait_session(&id, "the popup step", |s| s["step"] == "permission")
        .await;
    let view = client_view(h, &id, &secret).await;
    let present = &view["step"]["present"];
    assert_eq!(present["kind"], "popup", "{view}");
    Started {
        id,
        secret,
        url: present["url"].as_str().unwrap().to_string(),
        state: present["state"].as_str().unwrap().to_string(),
    }
}

async fn client_view(h: &Harness, id: &str, secret: &str) -> Value {
    let r = h
        .http
        .get(h.url(&format!("/v1/client/sessions/{id}")))
        .bearer_auth(secret)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// The user on the hub page: Accept (or Cancel), with a number, optionally
/// revoking earlier channels and granting key permission (Direct Payment).
/// Returns the `Location` Gangway's redirect page is reached at.
async fn grant(s: &Started, email: &str, number: &str, revoke: &[&str], keys: bool) -> String {
    let page_url = reqwest::Url::parse(&s.url).unwrap();
    let b = browser();
    let page = b.get(page_url.clone()).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("Connect your WhatsApp number"), "{html}");
    let q: Vec<(String, String)> = page_url.query_pairs().into_owned().collect();
    let get = |k: &str| {
        q.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let mut form = vec![
        ("action".to_string(), "accept".to_string()),
        ("redirect_url".into(), get("redirect_url")),
        ("state".into(), get("state")),
        ("partner".into(), get("partner")),
        ("email".into(), email.into()),
        ("number".into(), number.into()),
    ];
    for r in revoke {
        form.push(("revoke".into(), r.to_string()));
    }
    let mut post_url = page_url.clone();
    post_url.set_query(None);
    let mut r = b.post(post_url.clone()).form(&form).send().await.unwrap();
    if r.status() == 200 {
        // Direct Payment: the price and payment page, then the real Accept.
        let html = r.text().await.unwrap();
        assert!(html.contains("Price and payment"), "{html}");
        form.push(("payment_confirmed".into(), "on".into()));
        if keys {
            form.push(("key_permission".into(), "on".into()));
        }
        r = b.post(post_url).form(&form).send().await.unwrap();
    }
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap_or_default());
    r.headers()["location"].to_str().unwrap().to_string()
}

/// What the redirect page's script does: post its query to the server.
async fn land(h: &Harness, location: &str) -> (u16, Value) {
    let url = reqwest::Url::parse(location).unwrap();
    let page = h.http.get(url.clone()).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let query = format!("?{}", url.query().unwrap_or_default());
    let r = h
        .http
        .post(h.url(url.path()))
        .json(&json!({"query": query}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn entries<'a>(t: &'a Value, kind: &str) -> Vec<&'a Value> {
    t["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == kind)
        .collect()
}

fn accepted(t: &Value) -> Vec<String> {
    entries(t, "event.accepted")
        .iter()
        .map(|e| e["data"]["event"].as_str().unwrap().to_string())
        .collect()
}

async fn secrets(h: &Harness, id: &str) -> Value {
    let (status, body) = h.get(&format!("/v1/sessions/{id}/secrets")).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn knobs(h: &Harness, k: Value) {
    let (status, body) = h.d360_post("/control/knobs", k).await;
    assert_eq!(status, 200, "{body}");
}

/// A channel's status at the simulator.
async fn sim_status(h: &Harness, channel: &str) -> String {
    let all = h.d360_get("/control/channels").await;
    all["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == channel)
        .map(|c| c["status"].as_str().unwrap().to_string())
        .unwrap_or_default()
}

fn channel_of(location: &str) -> String {
    let url = reqwest::Url::parse(location).unwrap();
    let ch = url
        .query_pairs()
        .find(|(k, _)| k == "channels")
        .unwrap()
        .1
        .into_owned();
    ch.trim_matches(['[', ']']).to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn happy_path_stores_the_key_sealed_and_hands_it_out_only_through_secrets() {
    let h = Harness::start().await;
    let s = start(
        &h,
        "whatsapp-onboarding",
        json!({"email": "ada@shop.example", "number": "+4915112345678", "origin": SHOP_ORIGIN}),
    )
    .await;
    // The permissions URL: the public partner id, our state and redirect, all encoded.
    assert!(
        s.url
            .contains("/sim/360dialog/dashboard/app/gangway-partner/permissions?redirect_url=http%3A%2F%2F127.0.0.1"),
        "{}",
        s.url
    );
    assert!(s.url.contains(&format!("state={}", s.state)));
    assert!(s.url.contains(&format!("partner={}", s.id)));
    assert!(s.url.contains("email=ada%40shop.example"));
    assert!(!s.url.contains(common::D360_API_KEY));

    let location = grant(&s, "ada@shop.example", "+4915112345678", &[], false).await;
    assert!(location.contains(&format!("/v1/redirect/360dialog/{}?client=", s.state)));
    assert!(location.contains("&channels=["), "{location}");
    let channel = channel_of(&location);
    let (status, body) = land(&h, &location).await;
    assert_eq!(status, 200, "{body}");

    let ended = h.wait_ended(&s.id).await;
    assert_eq!(ended["outcome"], "approved", "{ended}");
    // The output names the client, its channels and their numbers.
    let out = &ended["output"];
    let channels = out["channels"].as_array().expect("channels in the output");
    assert!(!channels.is_empty(), "{ended}");
    for ch in channels {
        let phone = out["phone_numbers"][ch.as_str().unwrap()].as_str();
        assert!(phone.is_some_and(|p| p.starts_with('+')), "{ended}");
    }
    assert!(out["client"].is_string(), "{ended}");
    assert!(
        ended["reason"]
            .as_str()
            .unwrap()
            .contains(&format!("/v1/sessions/{}/secrets", s.id))
    );
    let t = h.timeline(&s.id).await;
    assert_eq!(
        accepted(&t),
        vec!["dialog360.redirect", "dialog360.channels_running"],
        "{t:#}"
    );
    // Partner webhooks reached the session (and only made it re-read).
    assert!(
        entries(&t, "event.received")
            .iter()
            .any(|e| e["data"]["event"] == "dialog360.channel_running"),
        "{t:#}"
    );

    // The key, once, through the audited endpoint.
    let got = secrets(&h, &s.id).await;
    assert_eq!(got["ready"], true);
    let key = got["secrets"][0]["value"].as_str().unwrap().to_string();
    assert!(key.starts_with("d360ck_"), "{got}");
    assert_eq!(got["secrets"][0]["channel_id"], channel.as_str());
    let t = h.timeline(&s.id).await;
    let audit = entries(&t, "secrets.accessed");
    assert_eq!(audit.len(), 1, "{t:#}");
    assert_eq!(
        audit[0]["data"]["opened"][0]["channel_id"],
        channel.as_str()
    );

    // ... and nowhere else: not in the database file, the logs, the
    // timeline, the customer view or webhooks, or the browser's view.
    let all = h.database_bytes().await;
    assert!(
        !all.windows(key.len()).any(|w| w == key.as_bytes()),
        "the channel API key is in the database files in plaintext"
    );
    assert!(!h.server_log().contains(&key), "the key is in a log line");
    for secret in [common::D360_API_KEY, D360_WEBHOOK_TOKEN] {
        assert!(
            !h.server_log().contains(secret),
            "a partner secret is in a log line"
        );
    }
    assert!(!t.to_string().contains(&key));
    assert!(!h.session(&s.id).await.to_string().contains(&key));
    let view = client_view(&h, &s.id, &s.secret).await;
    assert!(!view.to_string().contains(&key));
    assert!(!view.to_string().contains("sealed:"));
    let delivered = eventually("the session.ended webhook", 20, || async {
        let got = h.receiver.for_session(&s.id, "session.ended");
        (!got.is_empty()).then_some(got)
    })
    .await;
    assert!(!delivered[0].body.to_string().contains(&key));
    assert!(
        delivered[0].body.to_string().contains("/secrets"),
        "the webhook says the key is ready: {}",
        delivered[0].body
    );
    let mut events = h
        .http
        .get(h.url(&format!("/v1/client/sessions/{}/events", s.id)))
        .bearer_auth(&s.secret)
        .send()
        .await
        .unwrap();
    let mut stream = String::new();
    while let Ok(Some(chunk)) =
        tokio::time::timeout(std::time::Duration::from_secs(5), events.chunk())
            .await
            .unwrap_or(Ok(None))
    {
        stream.push_str(&String::from_utf8_lossy(&chunk));
        if stream.contains("event: ended") {
            break;
        }
    }
    assert!(stream.contains("event: ended"), "{stream}");
    assert!(!stream.contains(&key));

    // A second read is audited too; without an API key there is nothing.
    secrets(&h, &s.id).await;
    assert_eq!(
        entries(&h.timeline(&s.id).await, "secrets.accessed").len(),
        2
    );
    // Both reads are in the audit log as well, by the key that read, with
    // no secret in them (the log outlives the session's data).
    let admin = common::create_key(&h.config, "auditor", &["admin"]);
    let log = h
        .http
        .get(h.url(&format!(
            "/v1/admin/audit?action=secrets.read&session_id={}",
            s.id
        )))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let reads = log["data"].as_array().unwrap();
    assert_eq!(reads.len(), 2, "{log:#}");
    assert!(
        reads[0]["actor"]
            .as_str()
            .unwrap()
            .starts_with("api_key:key_"),
        "{log:#}"
    );
    assert_eq!(reads[0]["data"], json!({"opened": 1}));
    assert!(!log.to_string().contains(&key));
    let anon = h
        .http
        .get(h.url(&format!("/v1/sessions/{}/secrets", s.id)))
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status(), 401);
    let with_client_secret = h
        .http
        .get(h.url(&format!("/v1/sessions/{}/secrets", s.id)))
        .bearer_auth(&s.secret)
        .send()
        .await
        .unwrap();
    assert_eq!(with_client_secret.status(), 401);

    // Replaying the redirect after success: rejected and counted, nothing
    // stored, nothing changes.
    let before = h.session(&s.id).await;
    let (status, body) = land(&h, &location).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["type"].as_str().unwrap().contains("conflict"),
        "{body}"
    );
    let after = h.session(&s.id).await;
    assert_eq!(before["outcome"], after["outcome"]);
    assert_eq!(
        after["refused_events"].as_u64().unwrap(),
        before["refused_events"].as_u64().unwrap() + 1,
        "{after}"
    );
    let t = h.timeline(&s.id).await;
    assert_eq!(
        entries(&t, "event.received")
            .iter()
            .filter(|e| e["data"]["event"] == "dialog360.redirect")
            .count(),
        1,
        "{t:#}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn redirect_page_posts_to_the_customer_origin_only() {
    let h = Harness::start().await;
    let s = start(&h, "whatsapp-fast", json!({"origin": SHOP_ORIGIN})).await;
    let r = h
        .http
        .get(h.url(&format!(
            "/v1/redirect/360dialog/{}?client=abc&channels=[x1]&state={}",
            s.state, s.state
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("script-src 'nonce-"), "{csp}");
    assert_eq!(r.headers()["referrer-policy"], "no-referrer");
    let html = r.text().await.unwrap();
    assert!(
        html.contains(&format!("var TARGET_ORIGIN = \"{SHOP_ORIGIN}\";")),
        "{html}"
    );
    assert!(html.contains(
        "postMessage({type: \"gangway:360dialog\", state: STATE, query: query}, TARGET_ORIGIN)"
    ));
    assert!(!html.contains("\"*\""), "never a wildcard target origin");
    assert!(!html.contains("'*'"));
    assert!(html.contains("window.close()"));
    assert!(
        html.contains(&format!("href=\"{SHOP_ORIGIN}\"")),
        "a link back without opener"
    );
    // Nothing was recorded by the GET.
    let t = h.timeline(&s.id).await;
    assert!(entries(&t, "event.received").is_empty());

    // With a return URL: the page links back to it, and posts to its origin.
    let back = format!("{SHOP_ORIGIN}/onboarding/whatsapp?step=2&x=<b>");
    let s3 = start(&h, "whatsapp-fast", json!({"return_url": back})).await;
    let html = h
        .http
        .get(h.url(&format!("/v1/redirect/360dialog/{}", s3.state)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains(&format!(
            "href=\"{SHOP_ORIGIN}/onboarding/whatsapp?step=2&amp;x=%3Cb%3E\""
        )),
        "{html}"
    );
    assert!(html.contains(&format!("var TARGET_ORIGIN = \"{SHOP_ORIGIN}\";")));

    // Without an origin in the input: the first allowed origin.
    let s2 = start(&h, "whatsapp-fast", json!({})).await;
    let html = h
        .http
        .get(h.url(&format!("/v1/redirect/360dialog/{}", s2.state)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains(&format!("var TARGET_ORIGIN = \"{SHOP_ORIGIN}\";")));

    // An unknown state: an error page with no script at all.
    let r = h
        .http
        .get(h.url("/v1/redirect/360dialog/d360st_forged"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(!r.text().await.unwrap().contains("postMessage"));

    // An origin, or a page to return to, that the customer did not allow
    // fails the session at start.
    for input in [
        json!({"origin": "https://evil.example"}),
        json!({"return_url": "https://evil.example/phish"}),
        json!({"return_url": "javascript:alert(1)"}),
    ] {
        let (status, created) = h
            .post(
                "/v1/sessions",
                json!({"workflow": "whatsapp-fast", "input": input}),
            )
            .await;
        assert_eq!(status, 201);
        let ended = h.wait_ended(created["id"].as_str().unwrap()).await;
        assert_eq!(ended["outcome"], "failed");
        let reason = ended["reason"].as_str().unwrap();
        assert!(
            reason.contains("allowed_origins") || reason.contains("http(s)"),
            "{input}: {ended}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_and_replayed_redirects_are_rejected_and_recorded() {
    let h = Harness::start().await;
    let s = start(&h, "whatsapp-fast", json!({"email": "eve@shop.example"})).await;
    let deadline = h.session(&s.id).await["waiting_on"]["deadline"].clone();
    assert!(deadline.is_string());

    // A channel that belongs to another partner's client.
    let (status, other) = h
        .d360_post(
            "/control/seed",
            json!({"partner_id": "someone-else", "channels": 1}),
        )
        .await;
    assert_eq!(status, 200, "{other}");
    let foreign = other["channels"][0].as_str().unwrap();
    let foreign_client = other["client_id"].as_str().unwrap();
    // Our own client, with a real channel, but claiming the foreign one too.
    let location = grant(&s, "eve@shop.example", "+4915100000001", &[], false).await;
    let ours = channel_of(&location);
    let forged = location.replace(
        &format!("channels=[{ours}]"),
        &format!("channels=[{ours},{foreign}]"),
    );
    let (status, body) = land(&h, &forged).await;
    assert_eq!(status, 200, "{body}");
    let t = eventually("the rejected confirmation", 20, || async {
        let t = h.timeline(&s.id).await;
        entries(&t, "rule.evaluated")
            .iter()
            .any(|e| e["data"]["result"] == true && e["data"]["when"] == "!state.grant.confirmed")
            .then_some(t)
    })
    .await;
    let calls = entries(&t, "provider.call");
    let rejected = calls.iter().find(|c| c["step"] == "confirm").unwrap();
    assert!(
        rejected
            .to_string()
            .contains(&format!("channel {foreign} is not a channel of client")),
        "{rejected}"
    );
    let s_now = h
        .wait_session(&s.id, "back in the popup step", |x| {
            x["step"] == "permission" && x["status"] == "waiting"
        })
        .await;
    assert_eq!(s_now["status"], "waiting");
    assert_eq!(
        s_now["waiting_on"]["deadline"], deadline,
        "a rejected redirect does not move the deadline"
    );

    // A client of another partner, with its own channel.
    let foreign_loc = location
        .split("?client=")
        .next()
        .map(|base| {
            format!(
                "{base}?client={foreign_client}&channels=[{foreign}]&state={}",
                s.state
            )
        })
        .unwrap();
    let (status, _) = land(&h, &foreign_loc).await;
    assert_eq!(status, 200);
    eventually("the second rejection", 20, || async {
        let t = h.timeline(&s.id).await;
        entries(&t, "provider.call")
            .iter()
            .any(|c| {
                c.to_string().contains(&format!(
                    "client {foreign_client} is not a client of partner"
                ))
            })
            .then_some(())
    })
    .await;

    // A forged state: unknown at the redirect endpoint, nothing stored.
    let r = h
        .http
        .post(h.url("/v1/redirect/360dialog/d360st_0000forged"))
        .json(&json!({"query": format!("?client=x&channels=[{ours}]")}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    // ... and through the browser's signal (the postMessage route): the
    // workflow checks the state and keeps waiting.
    let sig = h
        .http
        .post(h.url(&format!("/v1/client/sessions/{}/signal", s.id)))
        .bearer_auth(&s.secret)
        .json(&json!({"name": "dialog360_redirect", "data": {"state": "d360st_wrong", "query": location.split_once('?').unwrap().1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(sig.status(), 200);
    eventually("the state mismatch", 20, || async {
        let t = h.timeline(&s.id).await;
        entries(&t, "provider.call")
            .iter()
            .any(|c| {
                c.to_string()
                    .contains("the redirect's state is not this session's")
            })
            .then_some(())
    })
    .await;
    let waiting = h
        .wait_session(&s.id, "still waiting", |x| {
            x["step"] == "permission" && x["status"] == "waiting"
        })
        .await;
    assert_eq!(waiting["outcome"], Value::Null);

    // The genuine redirect still works.
    let (status, _) = land(&h, &location).await;
    assert_eq!(status, 200);
    let ended = h.wait_ended(&s.id).await;
    assert_eq!(ended["outcome"], "approved", "{ended}");
    // The token-less and wrong-token webhooks are refused before parsing.
    for url in [
        h.url("/v1/webhooks/360dialog"),
        h.url("/v1/webhooks/360dialog?token=wrong"),
    ] {
        let r = h.http.post(url).body("not json").send().await.unwrap();
        assert_eq!(r.status(), 401);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn stuck_channel_expires_lost_webhooks_are_polled_duplicates_ignored() {
    let h = Harness::start().await;
    // Stuck in `ready`: the channel deadline ends the session `expired`.
    knobs(&h, json!({"hold_at": "ready"})).await;
    let s = start(&h, "whatsapp-fast", json!({})).await;
    let location = grant(&s, "stuck@shop.example", "+4915100000002", &[], false).await;
    let channel = channel_of(&location);
    land(&h, &location).await;
    let ended = h.wait_ended(&s.id).await;
    assert_eq!(ended["outcome"], "expired", "{ended}");
    assert!(ended["reason"].as_str().unwrap().contains(&channel));
    assert_eq!(sim_status(&h, &channel).await, "ready");
    let got = secrets(&h, &s.id).await;
    assert_eq!(got["ready"], false);

    // Webhooks lost: polling alone finds `running`.
    knobs(&h, json!({"hold_at": null, "drop": true})).await;
    let s = start(&h, "whatsapp-fast", json!({})).await;
    let location = grant(&s, "lost@shop.example", "+4915100000003", &[], false).await;
    land(&h, &location).await;
    let ended = h.wait_ended(&s.id).await;
    assert_eq!(ended["outcome"], "approved", "{ended}");
    let t = h.timeline(&s.id).await;
    assert!(
        !entries(&t, "event.received")
            .iter()
            .any(|e| e["data"]["source"] == "dialog360"),
        "no partner webhook arrived: {t:#}"
    );
    assert!(accepted(&t).contains(&"dialog360.channels_running".to_string()));

    // Every webhook three times: stored once, the session is approved once.
    knobs(&h, json!({"drop": false, "duplicate": 2})).await;
    let s = start(&h, "whatsapp-fast", json!({})).await;
    let location = grant(&s, "dup@shop.example", "+4915100000004", &[], false).await;
    let channel = channel_of(&location);
    land(&h, &location).await;
    let ended = h.wait_ended(&s.id).await;
    assert_eq!(ended["outcome"], "approved", "{ended}");
    let sent = eventually("three copies of channel_running", 10, || async {
        let w = h.d360_get("/control/webhooks").await;
        let n = w["webhooks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["event"] == "channel_running" && x["channel_id"] == channel.as_str())
            .count();
        (n == 3).then_some(n)
    })
    .await;
    assert_eq!(sent, 3);
    let t = h.timeline(&s.id).await;
    let running = entries(&t, "event.received")
        .iter()
        .filter(|e| e["data"]["event"] == "dialog360.channel_running")
        .count();
    assert_eq!(running, 1, "duplicates are stored once: {t:#}");
    assert_eq!(entries(&t, "session.ended").len(), 1);
    // A duplicate answers 2xx with `duplicate: true`.
    let r = h
        .http
        .post(h.url(&format!("/v1/webhooks/360dialog?token={D360_WEBHOOK_TOKEN}")))
        .json(&json!({"id": "evt_same", "event": "channel_live", "data": {"id": channel, "client_id": "c1"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r: Value = h
        .http
        .post(h.url(&format!("/v1/webhooks/360dialog?token={D360_WEBHOOK_TOKEN}")))
        .json(&json!({"id": "evt_same", "event": "channel_live", "data": {"id": channel, "client_id": "c1"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["duplicate"], true);

    // Webhooks with a wrong token are refused (401, nothing stored); polling
    // still finds `running`.
    knobs(&h, json!({"duplicate": 0, "bad_auth": true})).await;
    let s = start(&h, "whatsapp-fast", json!({})).await;
    let location = grant(&s, "badauth@shop.example", "+4915100000013", &[], false).await;
    let channel = channel_of(&location);
    land(&h, &location).await;
    let ended = h.wait_ended(&s.id).await;
    assert_eq!(ended["outcome"], "approved", "{ended}");
    let t = h.timeline(&s.id).await;
    assert!(
        !entries(&t, "event.received")
            .iter()
            .any(|e| e["data"]["source"] == "dialog360"),
        "{t:#}"
    );
    let refused = eventually("the refused webhooks", 10, || async {
        let w = h.d360_get("/control/webhooks").await;
        let statuses: Vec<u64> = w["webhooks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["channel_id"] == channel.as_str())
            .map(|x| x["status"].as_u64().unwrap())
            .collect();
        (statuses.len() >= 4).then_some(statuses)
    })
    .await;
    assert!(refused.iter().all(|s| *s == 401), "{refused:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn revoke_cancel_and_channel_error() {
    let h = Harness::start().await;
    // A first onboarding gives the client a channel.
    let first = start(&h, "whatsapp-fast", json!({"email": "rev@shop.example"})).await;
    let loc = grant(&first, "rev@shop.example", "+4915100000005", &[], false).await;
    let old = channel_of(&loc);
    land(&h, &loc).await;
    assert_eq!(h.wait_ended(&first.id).await["outcome"], "approved");

    // The same client adds a second number in a new session: its partner
    // webhooks reach the new session (through partner_payload), not the
    // ended first one that confirmed the client.
    let again = start(&h, "whatsapp-fast", json!({"email": "rev@shop.example"})).await;
    let loc2 = grant(&again, "rev@shop.example", "+4915100000015", &[], false).await;
    land(&h, &loc2).await;
    assert_eq!(h.wait_ended(&again.id).await["outcome"], "approved");
    let t = h.timeline(&again.id).await;
    assert!(
        entries(&t, "event.received")
            .iter()
            .any(|e| e["data"]["event"] == "dialog360.channel_running"),
        "{t:#}"
    );

    // Reopening the hub only to remove that permission: canceled.
    let s = start(&h, "whatsapp-fast", json!({"email": "rev@shop.example"})).await;
    let page = browser()
        .get(&s.url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(&format!("value=\"{old}\"")),
        "earlier channels are listed"
    );
    let loc = grant(&s, "rev@shop.example", "", &[&old], false).await;
    assert!(
        loc.contains(&format!("channels=[]&revoked=[{old}]")),
        "{loc}"
    );
    land(&h, &loc).await;
    let ended = h.wait_ended(&s.id).await;
    assert_eq!(ended["outcome"], "canceled", "{ended}");
    assert!(ended["reason"].as_str().unwrap().contains(&old), "{ended}");

    // Cancel pressed on the hub page: no redirect at all.
    let s = start(&h, "whatsapp-fast", json!({})).await;
    let mut u = reqwest::Url::parse(&s.url).unwrap();
    u.set_query(None);
    let r = browser()
        .post(u)
        .form(&[("action", "cancel")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("window.close()"));
    let (status, _) = h
        .post(&format!("/v1/sessions/{}/cancel", s.id), json!({}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(h.wait_ended(&s.id).await["outcome"], "canceled");

    // The client cancels at 360dialog while the channel is being set up.
    knobs(&h, json!({"hold_at": "verified"})).await;
    let s = start(&h, "whatsapp-fast", json!({})).await;
    let loc = grant(&s, "cxl@shop.example", "+4915100000006", &[], false).await;
    let ch = channel_of(&loc);
    land(&h, &loc).await;
    h.wait_session(&s.id, "the channel wait", |x| x["step"] == "channels")
        .await;
    let (status, _) = h
        .d360_post(
            &format!("/control/{ch}/event/cancellation_request"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    let ended = h.wait_ended(&s.id).await;
    assert_eq!(ended["outcome"], "canceled", "{ended}");
    assert_eq!(ended["reason"], "the client asked 360dialog to cancel");

    // Meta refuses the setup: the channel goes to `error`, the session fails.
    let s = start(&h, "whatsapp-fast", json!({})).await;
    let loc = grant(&s, "err@shop.example", "+4915100000007", &[], false).await;
    let ch = channel_of(&loc);
    land(&h, &loc).await;
    h.wait_session(&s.id, "the channel wait", |x| x["step"] == "channels")
        .await;
    let (status, _) = h
        .d360_post(&format!("/control/{ch}/error"), json!({}))
        .await;
    assert_eq!(status, 200);
    let ended = h.wait_ended(&s.id).await;
    assert_eq!(ended["outcome"], "failed", "{ended}");
}

/// What the SDK sends: a browser signal with an id (one per popup opening).
async fn signal(h: &Harness, s: &Started, name: &str, id: &str) {
    let r = h
        .http
        .post(h.url(&format!("/v1/client/sessions/{}/signal", s.id)))
        .bearer_auth(&s.secret)
        .json(&json!({"name": name, "data": {}, "id": id}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["accepted"], true, "{name}: {body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_closed_popup_can_be_opened_again_under_the_same_deadline_or_canceled() {
    let h = Harness::start().await;
    // Closed, closed again, then the grant: approved.
    let s = start(&h, "whatsapp-fast", json!({})).await;
    let deadline = h.session(&s.id).await["waiting_on"]["deadline"].clone();
    signal(&h, &s, "popup_closed", "popup_closed:a1").await;
    let closed = h
        .wait_session(&s.id, "the popup_closed step", |x| {
            x["step"] == "popup_closed" && x["status"] == "waiting"
        })
        .await;
    assert_eq!(
        closed["outcome"],
        Value::Null,
        "a closed popup ends nothing"
    );
    assert_eq!(
        closed["waiting_on"]["deadline"], deadline,
        "the same deadline as the permission step"
    );
    // The browser is offered the same popup again, flagged as closed.
    let view = client_view(&h, &s.id, &s.secret).await;
    let present = &view["step"]["present"];
    assert_eq!(present["kind"], "popup", "{view}");
    assert_eq!(present["closed"], true, "{view}");
    assert_eq!(present["provider"], "360dialog");
    assert_eq!(present["url"], s.url.as_str(), "the same permissions URL");
    assert_eq!(present["state"], s.state.as_str(), "the same state");
    // A second close (after Try again) is recorded too, and changes nothing else.
    signal(&h, &s, "popup_closed", "popup_closed:a2").await;
    let t = eventually("the second close", 20, || async {
        let t = h.timeline(&s.id).await;
        (accepted(&t).len() == 2).then_some(t)
    })
    .await;
    assert_eq!(
        accepted(&t),
        vec!["signal.popup_closed", "signal.popup_closed"]
    );
    let again = h
        .wait_session(&s.id, "still waiting", |x| {
            x["step"] == "popup_closed" && x["status"] == "waiting"
        })
        .await;
    assert_eq!(again["waiting_on"]["deadline"], deadline);
    let location = grant(&s, "retry@shop.example", "+4915100000020", &[], false).await;
    let (status, body) = land(&h, &location).await;
    assert_eq!(status, 200, "{body}");
    let ended = h.wait_ended(&s.id).await;
    assert_eq!(ended["outcome"], "approved", "{ended}");
    assert_eq!(secrets(&h, &s.id).await["ready"], true);

    // Closed, then Cancel: canceled, with the reason.
    let s = start(&h, "whatsapp-fast", json!({})).await;
    signal(&h, &s, "popup_closed", "popup_closed:b1").await;
    h.wait_session(&s.id, "the popup_closed step", |x| {
        x["step"] == "popup_closed"
    })
    .await;
    signal(&h, &s, "cancel", &format!("cancel:{}", s.state)).await;
    let ended = h.wait_ended(&s.id).await;
    assert_eq!(ended["outcome"], "canceled", "{ended}");
    assert_eq!(
        ended["reason"],
        "the user closed the 360dialog window without granting access"
    );
    let t = h.timeline(&s.id).await;
    assert_eq!(
        accepted(&t),
        vec!["signal.popup_closed", "signal.cancel"],
        "{t:#}"
    );
    // The redirect that comes too late is only recorded.
    let location = grant(&s, "late@shop.example", "+4915100000021", &[], false).await;
    let (status, _) = land(&h, &location).await;
    assert_eq!(status, 409);

    // Closed and never reopened: expired at the permission deadline.
    let s = start(&h, "whatsapp-fast", json!({"permission_ms": 3000})).await;
    signal(&h, &s, "popup_closed", "popup_closed:c1").await;
    let ended = h.wait_ended(&s.id).await;
    assert_eq!(ended["outcome"], "expired", "{ended}");
    let t = h.timeline(&s.id).await;
    let timed_out = entries(&t, "wait.timed_out");
    assert_eq!(timed_out.len(), 1, "{t:#}");
    assert_eq!(timed_out[0]["step"], "popup_closed", "{t:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn direct_payment_needs_the_clients_key_permission() {
    let h = Harness::start().await;
    // With the permission given in the flow: approved.
    let s = start(&h, "whatsapp-fast", json!({"hub": "direct"})).await;
    assert!(s.url.contains("/dashboard/app/gangway-direct/permissions"));
    let page = browser()
        .get(&s.url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Direct Payment") && !page.contains("key_permission"),
        "the price page (and the key permission) come after the account step"
    );
    let loc = grant(&s, "dp1@shop.example", "+4915100000008", &[], true).await;
    land(&h, &loc).await;
    let ended = h.wait_ended(&s.id).await;
    assert_eq!(ended["outcome"], "approved", "{ended}");
    assert_eq!(secrets(&h, &s.id).await["ready"], true);

    // Without it: the key cannot be created; at the deadline, review.
    let s = start(&h, "whatsapp-fast", json!({"hub": "direct"})).await;
    let loc = grant(&s, "dp2@shop.example", "+4915100000009", &[], false).await;
    land(&h, &loc).await;
    let ended = h.wait_ended(&s.id).await;
    assert_eq!(ended["outcome"], "review", "{ended}");
    assert!(
        ended["reason"]
            .as_str()
            .unwrap()
            .contains("has not allowed API key creation")
    );
    // It went through the review queue, where nobody decided in time.
    let t = h.timeline(&s.id).await;
    let kinds: Vec<&str> = t["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"review.opened"), "{kinds:?}");
    assert!(!kinds.contains(&"review.decided"), "{kinds:?}");
    let t = h.timeline(&s.id).await;
    assert!(t.to_string().contains("permission_missing"));
    assert_eq!(secrets(&h, &s.id).await["ready"], false);

    // Granted later in the Client Hub while the session waits: approved.
    let s = start(&h, "whatsapp-fast", json!({"hub": "direct"})).await;
    let loc = grant(&s, "dp3@shop.example", "+4915100000010", &[], false).await;
    let client = reqwest::Url::parse(&loc)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "client")
        .unwrap()
        .1
        .into_owned();
    land(&h, &loc).await;
    h.wait_session(&s.id, "the key permission wait", |x| {
        x["step"] == "await_key_permission"
    })
    .await;
    let r = h
        .http
        .post(h.d360(&format!("/client-hub/{client}/permission")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let ended = h.wait_ended(&s.id).await;
    assert_eq!(ended["outcome"], "approved", "{ended}");
}

#[tokio::test(flavor = "multi_thread")]
async fn partner_api_5xx_and_429_are_retried() {
    let h = Harness::start().await;
    let (status, body) = h
        .d360_post(
            "/control/faults",
            json!({"rules": [
                {"match": {"method": "GET", "path": "/api/v2/partners/*/clients"}, "times": 2, "fault": {"status": 503}},
                {"match": {"method": "POST", "path": "/api/v2/partners/*/channels/*/api_keys"}, "times": 1, "fault": {"status": 429, "retry_after": 1}}
            ]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let s = start(&h, "whatsapp-fast", json!({})).await;
    let loc = grant(&s, "flaky@shop.example", "+4915100000011", &[], false).await;
    land(&h, &loc).await;
    let ended = h.wait_ended(&s.id).await;
    assert_eq!(ended["outcome"], "approved", "{ended}");
    let log: Vec<Value> = h
        .http
        .get(h.d360("/control/requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let statuses: Vec<u64> = log
        .iter()
        .filter(|r| r["path"].as_str().unwrap().ends_with("/clients"))
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, vec![503, 503, 200], "{log:?}");
    let keys: Vec<u64> = log
        .iter()
        .filter(|r| r["path"].as_str().unwrap().ends_with("/api_keys"))
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(keys, vec![429, 201], "{log:?}");
    let t = h.timeline(&s.id).await;
    let confirm = entries(&t, "provider.call")
        .into_iter()
        .find(|c| c["step"] == "confirm")
        .unwrap();
    assert_eq!(
        confirm["data"]["attempts"].as_array().unwrap().len(),
        3,
        "{confirm}"
    );

    // A Partner API that keeps failing past the step's deadline: failed.
    h.d360_post(
        "/control/faults",
        json!({"rules": [{"match": {"method": "GET", "path": "/api/v2/partners/*/clients"}, "times": 1000, "fault": {"status": 502}}]}),
    )
    .await;
    let s = start(&h, "whatsapp-fast", json!({})).await;
    let loc = grant(&s, "down@shop.example", "+4915100000012", &[], false).await;
    land(&h, &loc).await;
    let ended = h.wait_ended(&s.id).await;
    assert_eq!(ended["outcome"], "failed", "{ended}");
    let t = h.timeline(&s.id).await;
    let failed = entries(&t, "call.failed");
    assert_eq!(failed.len(), 1, "{t:#}");
    assert!(failed[0].to_string().contains("HTTP 502"), "{}", failed[0]);
}

/// Issue 18 finding 6: a used `state` replayed after the session ended is
/// refused each time (409) and counted; it neither grows the timeline nor
/// stores anything (before: 100 replays, 100 timeline entries).
#[tokio::test(flavor = "multi_thread")]
async fn redirects_replayed_after_the_end_are_counted_not_stored() {
    let h = Harness::start().await;
    let s = start(&h, "whatsapp-fast", json!({"email": "rey@shop.example"})).await;
    let location = grant(&s, "rey@shop.example", "+4915100000077", &[], false).await;
    let (status, body) = land(&h, &location).await;
    assert_eq!(status, 200, "{body}");
    let ended = h.wait_ended(&s.id).await;
    assert_eq!(ended["outcome"], "approved", "{ended}");
    let refused_before = h.session(&s.id).await["refused_events"]
        .as_u64()
        .unwrap_or(0);
    let before = h.timeline(&s.id).await["entries"].as_array().unwrap().len();
    let url = reqwest::Url::parse(&location).unwrap();
    let marker = "replayed-redirect-marker-51c2";
    let query = format!("?{}&m={marker}", url.query().unwrap_or_default());
    for _ in 0..100 {
        let r = h
            .http
            .post(h.url(url.path()))
            .json(&json!({"query": query}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 409);
        assert_eq!(r.headers()["content-type"], "application/problem+json");
    }
    let t = h.timeline(&s.id).await;
    let grown = t["entries"].as_array().unwrap().len() - before;
    assert!(grown <= 1, "{grown} timeline entries for 100 replays");
    assert_eq!(entries(&t, "events.refused").len(), 1, "{t:#}");
    // (A late partner webhook is refused and counted the same way.)
    let session = h.session(&s.id).await;
    let refused = session["refused_events"].as_u64().unwrap_or(0) - refused_before;
    assert!((100..=102).contains(&refused), "{session}");
    assert!(
        !h.database_bytes()
            .await
            .windows(marker.len())
            .any(|w| w == marker.as_bytes()),
        "a refused redirect reached the database"
    );
}
