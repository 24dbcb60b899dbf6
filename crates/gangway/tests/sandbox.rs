//! `gangway sandbox`: a workflow run in-process against the simulators, its
//! trace printed step by step; exit 0 only when the workflow ended.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn sandbox(args: &[&str]) -> (Option<i32>, String, String) {
    let out: Output = Command::new(env!("CARGO_BIN_EXE_gangway"))
        .arg("sandbox")
        .args(args)
        .current_dir(root())
        .env_remove("RUST_LOG")
        .env_remove("GANGWAY_DATABASE_URL")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn http_score_runs_to_approved_with_a_readable_trace() {
    let (code, out, err) = sandbox(&[
        "workflows/http-score.yaml",
        "--input",
        "examples/score-input.json",
        "--events",
        "examples/score-approve.yaml",
    ]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    for expected in [
        "▸ step `start_provider` (call)",
        "call http.request: POST /sim/score/v1/sessions → 201",
        "waiting for score.completed",
        "→ score simulator: complete {\"score\":72}",
        "event `score.completed` ends the wait",
        "+ state.score = ",
        "rule 1 `state.score.body.score >= 50` → true",
        "■ approved — score 72 is at least 50",
        "ended with outcome `approved`",
    ] {
        assert!(out.contains(expected), "missing `{expected}` in:\n{out}");
    }
    assert!(err.trim().is_empty(), "the server's logs stay quiet: {err}");
}

#[test]
fn incode_pass_and_abandon_signal() {
    let (code, out, err) = sandbox(&[
        "workflows/incode-identity.yaml",
        "--events",
        "examples/incode-pass.yaml",
    ]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(
        out.contains("browser shows iframe: http://127.0.0.1:"),
        "{out}"
    );
    assert!(out.contains("■ approved"), "{out}");
    assert!(
        !out.contains("eyJ"),
        "session tokens are sealed in the trace: {out}"
    );

    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("abandon.yaml");
    std::fs::write(&events, "events:\n  - at: verify\n    signal: abandoned\n").unwrap();
    let (code, out, err) = sandbox(&[
        "workflows/incode-identity.yaml",
        "--events",
        events.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("→ browser signal `abandoned`"), "{out}");
    assert!(out.contains("■ canceled"), "{out}");
}

#[test]
fn a_workflow_that_does_not_end_exits_1() {
    let (code, out, _) = sandbox(&["workflows/http-score.yaml", "--timeout", "1"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("no scripted event left"), "{out}");
    assert!(out.contains("not ended after 1 s"), "{out}");
}

#[test]
fn bad_files_exit_2_with_their_place() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.yaml");
    std::fs::write(
        &events,
        "events:\n  - at: wait_for_result\n    simm: score\n",
    )
    .unwrap();
    let (code, _, err) = sandbox(&[
        "workflows/http-score.yaml",
        "--events",
        events.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("events.yaml:3:"), "{err}");
    assert!(err.contains("simm"), "{err}");

    std::fs::write(&events, "events:\n  - at: nowhere\n    signal: x\n").unwrap();
    let (code, _, err) = sandbox(&[
        "workflows/http-score.yaml",
        "--events",
        events.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("step `nowhere`"), "{err}");

    let wf = dir.path().join("broken.yaml");
    std::fs::write(&wf, "id: broken\nversion: 1\nsteps:\n  a:\n    end: nope\n").unwrap();
    let (code, _, err) = sandbox(&[wf.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("broken.yaml:5:"), "{err}");
}

#[test]
fn a_run_step_naming_an_unknown_workflow_is_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let wf = dir.path().join("parent.yaml");
    std::fs::write(
        &wf,
        "id: parent\nversion: 1\nsteps:\n  kid:\n    run: no-such-flow\n    timeout: 1m\n    on_timeout: done\n  done:\n    end: expired\n    reason: late\n",
    )
    .unwrap();
    let (code, out, err) = sandbox(&[wf.to_str().unwrap()]);
    assert_ne!(code, Some(0), "{out}");
    assert!(
        err.contains(
            "parent.yaml:5:10: step `kid` runs workflow `no-such-flow`, which is not loaded"
        ),
        "{err}"
    );
}

#[test]
fn ockto_mortgage_runs_its_template_with_the_qr_code_in_the_terminal() {
    let (code, out, err) = sandbox(&[
        "workflows/ockto-mortgage.yaml",
        "--input",
        "examples/ockto-input.json",
        "--events",
        "examples/ockto-approve.yaml",
    ]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    for expected in [
        "runs workflow `ockto-session` as child session",
        "┊ ▸ step `check_sources` (call)",
        "browser shows a QR code; the phone opens http://127.0.0.1:",
        "▄▄▄▄▄",
        "→ ockto simulator: scan",
        "┊   event `ockto.scanned` ends the wait (poll)",
        "→ ockto simulator: share {\"profile\":\"approve\"}",
        "┊   call ockto.result: GET /sessions/{id}/result → 200",
        "event `child.ended` ends the wait",
        "rule 4 `state.ockto.state.result.summary.contract != 'permanent'` → false",
        "■ approved — loan of 250000 approved",
        "ended with outcome `approved`",
    ] {
        assert!(out.contains(expected), "missing `{expected}` in:\n{out}");
    }
}
