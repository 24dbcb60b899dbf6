//! Rate limits: guessing API keys, client secrets, Incode webhook client
//! credentials and webhook signatures gets 429 with Retry-After after a few
//! failures per address, and the failures are logged as counts per address
//! instead of a line each; X-Forwarded-For counts only from trusted
//! proxies; the per-key, per-session and per-address buckets refuse with
//! the limit named.
#![allow(clippy::unwrap_used)]

mod common;

use base64::Engine;
use common::{Harness, Options, create_key};
use futures::StreamExt;
use serde_json::{Value, json};
use std::collections::HashMap;

/// Makes one request.
type Request<'a> = dyn Fn() -> reqwest::RequestBuilder + 'a;

/// The default `rate_limits.failed_auth.per_minute`.
const ALLOWED_FAILURES: usize = 30;

/// Sends `n` requests made by `make(i)`, 32 at a time: the count of each
/// status, and every 429's `Retry-After` and body.
async fn flood<F>(n: usize, make: F) -> (HashMap<u16, usize>, Vec<(u64, Value)>)
where
    F: Fn(usize) -> reqwest::RequestBuilder,
{
    let answers: Vec<(u16, Option<u64>, Value)> = futures::stream::iter(0..n)
        .map(|i| {
            let req = make(i);
            async move {
                let r = req.send().await.unwrap();
                let status = r.status().as_u16();
                let retry = r
                    .headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap().parse().unwrap());
                (status, retry, r.json().await.unwrap_or(Value::Null))
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let mut counts = HashMap::new();
    let mut refused = Vec::new();
    for (status, retry, body) in answers {
        *counts.entry(status).or_default() += 1;
        if status == 429 {
            refused.push((retry.expect("429 without Retry-After"), body));
        }
    }
    (counts, refused)
}

/// After the allowance, `failed` answers (401) turn into 429s that say
/// when to retry and which limit refused.
fn assert_throttled(
    what: &str,
    n: usize,
    failed: u16,
    counts: &HashMap<u16, usize>,
    refused: &[(u64, Value)],
) {
    let failures = counts.get(&failed).copied().unwrap_or(0);
    assert!(
        (ALLOWED_FAILURES..ALLOWED_FAILURES + 5).contains(&failures),
        "{what}: {failures} answers {failed} before throttling: {counts:?}"
    );
    assert_eq!(failures + refused.len(), n, "{what}: {counts:?}");
    for (retry, body) in refused {
        assert!((1..=60).contains(retry), "{what}: Retry-After {retry}");
        assert_eq!(body["status"], 429, "{what}: {body}");
        assert_eq!(body["limit"], "failed_auth", "{what}: {body}");
    }
}

async fn metrics(h: &Harness) -> String {
    h.http
        .get(h.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The server log without terminal colour codes.
fn server_log(h: &Harness) -> String {
    let raw = std::fs::read_to_string(h.log_path()).unwrap();
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // `ESC [ ... m`
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The server log's aggregated failure lines for `source`: (lines,
/// failures, refused).
fn failure_log(h: &Harness, source: &str) -> (usize, u64, u64) {
    let log = server_log(h);
    let field = |line: &str, name: &str| -> u64 {
        line.split(&format!("{name}="))
            .nth(1)
            .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("failed authentication from this address"))
        .filter(|l| l.contains(&format!("source={source} ")))
        .collect();
    (
        lines.len(),
        lines.iter().map(|l| field(l, "failures")).sum(),
        lines.iter().map(|l| field(l, "refused")).sum(),
    )
}

/// Waits until the log accounts for `n` requests from `source`.
async fn logged(h: &Harness, source: &str, n: u64) -> usize {
    common::eventually(
        &format!("the failures of {source} in the log"),
        20,
        || async {
            let (lines, failures, refused) = failure_log(h, source);
            (failures + refused == n).then_some(lines)
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn guessed_api_keys_get_429_and_forwarded_addresses_from_strangers_are_ignored() {
    let h = Harness::start_with(Options {
        extra_config: "[rate_limits.failed_auth]\nlog_interval = \"1s\"\n".into(),
        ..Options::default()
    })
    .await;
    // A key in use before the attack, and one made for later.
    assert_eq!(h.get("/v1/sessions").await.0, 200);
    let unused = create_key(&h.config, "unused", &[]);
    // 5,000 wrong keys, each claiming another address: nobody vouches for
    // that header here, so they all count against the connection's.
    let url = h.url("/v1/sessions");
    let (counts, refused) = flood(5_000, |i| {
        h.http
            .get(&url)
            .bearer_auth(format!("gw_{i:064x}"))
            .header("X-Forwarded-For", format!("198.51.100.{}", i % 250))
    })
    .await;
    assert_throttled("wrong API keys", 5_000, 401, &counts, &refused);
    // The address is locked out: even a right key it never used before...
    let (status, body) = {
        let r = h.http.get(&url).bearer_auth(&unused).send().await.unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    };
    assert_eq!(status, 429, "{body}");
    // ...but not a key this node authenticated before the guessing began.
    assert_eq!(h.get("/v1/sessions").await.0, 200);

    let m = metrics(&h).await;
    assert!(
        m.contains("gangway_rate_limited_total{limit=\"failed_auth\"}"),
        "{m}"
    );
    assert!(
        m.contains("gangway_auth_failures_total{kind=\"api_key\"}"),
        "{m}"
    );
    // Logged as counts per address, never a line per request.
    let lines = logged(&h, "127.0.0.1", 5_001).await;
    assert!(lines <= 30, "{lines} log lines for one address");
    let log = server_log(&h);
    assert!(
        !log.contains("198.51.100."),
        "an untrusted forwarded address was used"
    );
    assert!(!log.contains(&unused), "a key reached the log");
}

/// Wrong client secrets, Incode client credentials and webhook signatures
/// from three clients behind a trusted proxy: each client is throttled on
/// its own, by the address the proxy forwarded.
#[tokio::test(flavor = "multi_thread")]
async fn guessing_through_a_trusted_proxy_is_limited_per_forwarded_address() {
    let h = Harness::start_with(Options {
        extra_config: "[rate_limits]\ntrusted_proxies = [\"127.0.0.0/8\"]\n\n[rate_limits.failed_auth]\nlog_interval = \"1s\"\n".into(),
        ..Options::default()
    })
    .await;
    let s = h.create_score_session("guessed").await;
    let id = s["id"].as_str().unwrap();
    let secret = s["client_secret"].as_str().unwrap().to_string();
    let client_url = h.url(&format!("/v1/client/sessions/{id}"));
    // The proxy's chain: the client, then an earlier proxy of ours.
    let via = |client: &str| format!("{client}, 127.0.0.9");

    let (counts, refused) = flood(2_000, |i| {
        h.http
            .get(&client_url)
            .bearer_auth(format!("gwcs_{i:064x}"))
            .header("X-Forwarded-For", via("203.0.113.1"))
    })
    .await;
    assert_throttled("wrong client secrets", 2_000, 401, &counts, &refused);

    let token_url = h.url("/v1/webhooks/incode/token");
    let (counts, refused) = flood(1_000, |i| {
        let basic =
            base64::engine::general_purpose::STANDARD.encode(format!("incode-tests:guess-{i}"));
        h.http
            .post(&token_url)
            .header("Authorization", format!("Basic {basic}"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("X-Forwarded-For", via("203.0.113.2"))
            .body("grant_type=client_credentials")
    })
    .await;
    assert_throttled("Incode token guesses", 1_000, 401, &counts, &refused);

    let webhook_url = h.url("/v1/webhooks/http/score");
    let (counts, refused) = flood(2_000, |i| {
        h.http
            .post(&webhook_url)
            .header("Content-Type", "application/json")
            .header("X-Score-Signature", format!("sha256={i:064x}"))
            .header("X-Forwarded-For", via("203.0.113.3"))
            .body(json!({"id": "x", "status": "completed"}).to_string())
    })
    .await;
    assert_throttled("bad webhook signatures", 2_000, 401, &counts, &refused);

    // The proxy itself and other clients behind it are not locked out.
    let r = h
        .http
        .get(&client_url)
        .bearer_auth(&secret)
        .header("X-Forwarded-For", via("203.0.113.4"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = h
        .http
        .get(&client_url)
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A locked-out client is refused even with the right secret.
    let r = h
        .http
        .get(&client_url)
        .bearer_auth(&secret)
        .header("X-Forwarded-For", via("203.0.113.1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);

    for (source, n) in [
        ("203.0.113.1", 2_001),
        ("203.0.113.2", 1_000),
        ("203.0.113.3", 2_000),
    ] {
        let lines = logged(&h, source, n).await;
        assert!(lines <= 30, "{lines} log lines for {source}");
    }
    let log = server_log(&h);
    assert!(
        !log.contains("webhook rejected"),
        "a line per rejected webhook"
    );
    assert!(log.contains("kinds=client_secret="), "{log}");
    assert!(log.contains("kinds=incode_token="), "{log}");
    assert!(log.contains("kinds=webhook:http="), "{log}");
    let m = metrics(&h).await;
    for kind in ["client_secret", "incode_token", "webhook:http"] {
        assert!(
            m.contains(&format!("gangway_auth_failures_total{{kind=\"{kind}\"}}")),
            "{kind}: {m}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn per_key_per_session_and_per_address_buckets() {
    let h = Harness::start_with(Options {
        extra_config: r#"
[rate_limits.api_key]
per_second = 1
burst = 4

[rate_limits.client_secret]
per_second = 1
burst = 4

[rate_limits.source]
per_second = 1
burst = 4
"#
        .into(),
        ..Options::default()
    })
    .await;
    let s = h.create_score_session("buckets").await;
    let id = s["id"].as_str().unwrap();
    let secret = s["client_secret"].as_str().unwrap().to_string();
    let key = create_key(&h.config, "busy", &[]);

    let workflows = || h.http.get(h.url("/v1/workflows")).bearer_auth(&key);
    let view = || {
        h.http
            .get(h.url(&format!("/v1/client/sessions/{id}")))
            .bearer_auth(&secret)
    };
    let webhook = || h.http.post(h.url("/v1/webhooks/nowhere"));
    let cases: [(&str, &Request, u16); 3] = [
        ("api_key", &workflows, 200),
        ("client_secret", &view, 200),
        ("source", &webhook, 404),
    ];
    for (limit, make, ok) in &cases {
        let mut statuses = Vec::new();
        for _ in 0..12 {
            let r = make().send().await.unwrap();
            let status = r.status().as_u16();
            if status == 429 {
                assert!(r.headers().contains_key("retry-after"), "{limit}");
                let body: Value = r.json().await.unwrap();
                assert_eq!(body["limit"], *limit, "{body}");
            }
            statuses.push(status);
        }
        let passed = statuses.iter().filter(|s| *s == ok).count();
        assert!((4..=6).contains(&passed), "{limit}: {statuses:?}");
        assert_eq!(
            passed + statuses.iter().filter(|s| **s == 429).count(),
            12,
            "{limit}: {statuses:?}"
        );
    }
    // Another key has a bucket of its own.
    let other = create_key(&h.config, "other", &[]);
    let r = h
        .http
        .get(h.url("/v1/workflows"))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let m = metrics(&h).await;
    for limit in ["api_key", "client_secret", "source"] {
        assert!(
            m.contains(&format!("gangway_rate_limited_total{{limit=\"{limit}\"}}")),
            "{limit}: {m}"
        );
    }
}
