//! `POST /v1/workflows/{id}/dry-run`: a workflow run in an isolated sandbox
//! against the simulators, its trace returned as JSON; the server's own
//! sessions and providers are untouched.
#![allow(clippy::unwrap_used)]

mod common;

use common::Harness;
use serde_json::{Value, json};

fn kinds(trace: &Value) -> Vec<String> {
    trace
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_returns_the_trace_and_touches_nothing_real() {
    let h = Harness::start().await;
    let (status, body) = h
        .post(
            "/v1/workflows/http-score/dry-run",
            json!({"input": {}, "events": [
                {"at": "wait_for_result", "sim": "score", "action": "complete", "body": {"score": 72}}
            ]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ended"], true);
    assert_eq!(body["version"], 4);
    assert_eq!(body["session"]["outcome"], "approved");
    let k = kinds(&body["trace"]);
    for expected in [
        "sandbox.started",
        "session.created",
        "step.entered",
        "provider.call",
        "script.applied",
        "state.set",
        "rule.evaluated",
        "session.ended",
    ] {
        assert!(
            k.contains(&expected.to_string()),
            "{expected} missing in {k:?}"
        );
    }
    let rule = body["trace"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "rule.evaluated" && e["data"]["result"] == true)
        .unwrap();
    assert_eq!(rule["data"]["inputs"]["state.score.body.score"], 72);
    // The server's own store and its provider saw nothing.
    let (_, list) = h.get("/v1/sessions").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 0, "{list}");
    assert!(h.sim_requests().await.is_empty());
    assert!(h.receiver.all().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_runs_children_and_stops_at_its_timeout() {
    let h = Harness::start().await;
    let (status, body) = h
        .post(
            "/v1/workflows/parent-score/dry-run",
            json!({"events": [
                {"at": "scoring", "sim": "score", "action": "complete", "body": {"score": 95}}
            ]}),
        )
        .await;
    // The event names the parent's run step; the provider session is the
    // child's, and the simulator call goes to it.
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["session"]["outcome"], "approved", "{body}");
    assert_eq!(body["session"]["reason"], "top score 95");
    assert!(kinds(&body["trace"]).contains(&"child.created".to_string()));
    // Naming the child's own step works as well.
    let (status, body) = h
        .post(
            "/v1/workflows/parent-score/dry-run",
            json!({"events": [
                {"at": "wait_for_result", "sim": "score", "action": "complete", "body": {"score": 60}}
            ]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["session"]["outcome"], "review", "{body}");
    assert_eq!(
        body["session"]["reason"],
        "score 60 passed the child but not our bar"
    );
    let (status, body) = h
        .post("/v1/workflows/http-score/dry-run", json!({"timeout_s": 1}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ended"], false);
    assert_eq!(body["session"]["status"], "waiting");
    assert!(kinds(&body["trace"]).contains(&"script.idle".to_string()));
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_dry_runs_get_problems() {
    let h = Harness::start().await;
    for (path, body, want) in [
        ("/v1/workflows/nope/dry-run", json!({}), 404),
        (
            "/v1/workflows/http-score/dry-run",
            json!({"input": []}),
            422,
        ),
        (
            "/v1/workflows/http-score/dry-run",
            json!({"timeout_s": 0}),
            422,
        ),
        (
            "/v1/workflows/http-score/dry-run",
            json!({"timeout_s": 3600}),
            422,
        ),
        (
            "/v1/workflows/http-score/dry-run",
            json!({"events": [{"at": "nowhere", "signal": "x"}]}),
            422,
        ),
        (
            "/v1/workflows/http-score/dry-run",
            json!({"events": [{"at": "wait_for_result"}]}),
            422,
        ),
        (
            "/v1/workflows/http-score/dry-run",
            json!({"events": [{"at": "wait_for_result", "simm": "x"}]}),
            422,
        ),
        (
            "/v1/workflows/http-score/dry-run",
            json!({"surprise": 1}),
            422,
        ),
    ] {
        let (status, problem) = h.post(path, body.clone()).await;
        assert_eq!(status, want, "{path} {body}: {problem}");
        assert!(
            problem["type"]
                .as_str()
                .unwrap()
                .starts_with("https://gangway.dev/problems/"),
            "{problem}"
        );
    }
    let r = h
        .http
        .post(h.url("/v1/workflows/http-score/dry-run"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

/// Open file descriptors and threads of a process, from /proc.
#[cfg(target_os = "linux")]
fn resources(pid: u32) -> (usize, usize) {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let threads = status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap();
    (fds, threads)
}

/// Posts a dry run, again while every dry-run slot is taken (503), until
/// it gets another answer.
#[cfg(target_os = "linux")]
async fn dry_run_when_free(h: &Harness, workflow: &str, body: Value) -> (u16, Value) {
    common::eventually("a free dry-run slot", 60, || {
        let body = body.clone();
        async move {
            let (status, answer) = h
                .post(&format!("/v1/workflows/{workflow}/dry-run"), body)
                .await;
            (status != 503).then_some((status, answer))
        }
    })
    .await
}

/// Issue 18 finding 1: a dry run gives back every file, thread and task it
/// took, whether it ends, fails, times out or its client goes away; before,
/// each kept its SQLite files (5 fds) and its committer thread, and one whose
/// client left kept its engine and listener too.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread")]
async fn dry_runs_give_back_what_they_took() {
    let h = Harness::start().await;
    let pid = h.server_pid();
    let (fds0, threads0) = resources(pid);
    let complete = json!({"events": [
        {"at": "wait_for_result", "sim": "score", "action": "complete", "body": {"score": 72}}
    ]});
    for _ in 0..40 {
        let (status, body) = dry_run_when_free(&h, "http-score", complete.clone()).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["ended"], true, "{body}");
    }
    // Failing midway: the simulator has no such action.
    for _ in 0..4 {
        let (status, body) = dry_run_when_free(
            &h,
            "http-score",
            json!({"events": [{"at": "wait_for_result", "sim": "score", "action": "explode"}]}),
        )
        .await;
        assert_eq!(status, 422, "{body}");
    }
    // Timing out.
    for _ in 0..3 {
        let (status, body) = dry_run_when_free(&h, "http-score", json!({"timeout_s": 1})).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["ended"], false, "{body}");
    }
    // Clients that give up on runs that would go on for a minute: each
    // waits until its run's engine has started (the server logs each
    // sandbox's database), then leaves.
    let sandboxes = || h.server_log().matches("sandbox.db").count();
    let mut abandoned = 0;
    while abandoned < 3 {
        let before = sandboxes();
        let client = reqwest::Client::new();
        let request = client
            .post(h.url("/v1/workflows/http-score/dry-run"))
            .bearer_auth(&h.api_key)
            .json(&json!({"timeout_s": 60}))
            .send();
        let started = common::eventually("the abandoned run to start", 60, || async {
            (sandboxes() > before).then_some(())
        });
        tokio::select! {
            r = request => {
                // Only "every slot is taken" may come back before a minute.
                let status = r.unwrap().status().as_u16();
                assert_eq!(status, 503, "a 60 s dry run answered early");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            () = started => abandoned += 1,
        }
        drop(client);
    }
    // Everything comes back (blocking-pool threads linger up to 10 s idle);
    // a dry run abandoned but still running would hold its files for 60 s.
    let mut last = (0, 0);
    let settled = tokio::time::timeout(std::time::Duration::from_secs(45), async {
        loop {
            last = resources(pid);
            if last.0 <= fds0 + 6 && last.1 <= threads0 + 3 {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(
        settled.is_ok(),
        "before: {fds0} fds, {threads0} threads; after 53 dry runs: {} fds, {} threads",
        last.0,
        last.1
    );
    // And dry runs still work.
    let (status, body) = dry_run_when_free(&h, "http-score", complete).await;
    assert_eq!(status, 200, "{body}");
}

/// Issue 18 finding 1: at most `limits.dry_runs` (2 by default) run at once;
/// one more gets 503 problem JSON with `Retry-After` and starts nothing.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_past_the_cap_is_refused_with_retry_after() {
    let h = Harness::start().await;
    let sandboxes = || h.server_log().matches("sandbox.db").count();
    let before = sandboxes();
    // Two runs that would go on for a minute take both slots.
    let client = reqwest::Client::new();
    let holders: Vec<_> = (0..2)
        .map(|_| {
            let request = client
                .post(h.url("/v1/workflows/http-score/dry-run"))
                .bearer_auth(&h.api_key)
                .json(&json!({"timeout_s": 60}))
                .send();
            tokio::spawn(request)
        })
        .collect();
    common::eventually("both slots to be taken", 60, || async {
        (sandboxes() >= before + 2).then_some(())
    })
    .await;
    let third = client
        .post(h.url("/v1/workflows/http-score/dry-run"))
        .bearer_auth(&h.api_key)
        .json(&json!({"timeout_s": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(third.status(), 503);
    assert_eq!(
        third.headers()["content-type"],
        "application/problem+json",
        "{:?}",
        third.headers()
    );
    let retry_after: u64 = third.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1, "Retry-After {retry_after}");
    let problem: Value = third.json().await.unwrap();
    assert_eq!(problem["status"], 503, "{problem}");
    // The refused run started no engine of its own, and on-call sees it.
    assert_eq!(sandboxes(), before + 2, "{}", h.server_log());
    let metrics = h
        .http
        .get(h.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let refused = metrics
        .lines()
        .find(|l| {
            l.starts_with("gangway_http_requests_total{")
                && l.contains("route=\"/v1/workflows/{id}/dry-run\"")
                && l.contains("status=\"503\"")
        })
        .unwrap_or_else(|| panic!("no 503 counted for the dry-run route:\n{metrics}"));
    assert!(refused.ends_with(" 1"), "{refused}");
    for holder in holders {
        holder.abort();
    }
}

/// Stripe in a dry run: the script submits a failure the user can fix, then
/// a pass, through the simulator's control API.
#[tokio::test(flavor = "multi_thread")]
async fn a_stripe_retry_in_a_dry_run() {
    let h = Harness::start().await;
    let (status, body) = h
        .post(
            "/v1/workflows/stripe-identity/dry-run",
            json!({"input": {}, "events": [
                {"at": "verify", "sim": "stripe", "action": "submit",
                 "body": {"result": "requires_input", "code": "document_expired"}},
                {"at": "retry", "sim": "stripe", "action": "submit", "body": {"result": "verified"}}
            ]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["session"]["outcome"], "approved", "{body}");
    assert_eq!(body["session"]["output"]["last_name"], "Rosen");
}
