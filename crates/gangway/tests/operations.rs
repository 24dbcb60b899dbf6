//! Operations endpoints (issue 18 #8): with `admin_listen` set, `/metrics`
//! is served only on that address, not on the API port; `/healthz` and
//! `/readyz` answer on both (a balancer checks the port it sends traffic
//! to). Unset, `/metrics` stays on the API port.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Harness, Options};

async fn get(url: &str) -> (u16, String) {
    let r = reqwest::get(url).await.unwrap();
    let status = r.status().as_u16();
    (status, r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_are_served_only_on_admin_listen_when_it_is_set() {
    let admin_port = common::free_port();
    let h = Harness::start_with(Options {
        top_config: format!("admin_listen = \"127.0.0.1:{admin_port}\"\n"),
        ..Default::default()
    })
    .await;
    let admin = |path: &str| format!("http://127.0.0.1:{admin_port}{path}");

    let (status, body) = get(&h.url("/metrics")).await;
    assert_eq!(status, 404, "{body}");
    assert!(
        body.contains("problem") || body.contains("not-found"),
        "{body}"
    );
    let (status, body) = get(&admin("/metrics")).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("gangway_http_connections"), "{body}");
    assert!(body.contains("gangway_cluster_sessions"), "{body}");

    for path in ["/healthz", "/readyz"] {
        assert_eq!(get(&h.url(path)).await.0, 200, "{path} on the API port");
        assert_eq!(get(&admin(path)).await.0, 200, "{path} on the admin port");
    }
    // Nothing of the API on the admin listener.
    let (status, _) = get(&admin("/v1/workflows")).await;
    assert_eq!(status, 404);
    let (status, _) = get(&admin("/openapi.json")).await;
    assert_eq!(status, 404);
    // The API itself is unchanged.
    let (status, body) = h.get("/v1/workflows").await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_admin_listen_metrics_stay_on_the_api_port() {
    let h = Harness::start().await;
    let (status, body) = get(&h.url("/metrics")).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("gangway_cluster_sessions"), "{body}");
    // Plain HTTP sends no HSTS (only a TLS listener does, tests/tls.rs).
    let r = reqwest::get(h.url("/healthz")).await.unwrap();
    assert!(r.headers().get("strict-transport-security").is_none());
}
