//! `gangway bench` as a correctness smoke test: a small run must complete
//! every session with the right outcome (errors=0) and survive kill -9, and
//! the floor (`gangway bench floor`) must make the same exchanges.
//! Speed is measured by the benchmark itself (docs/benchmarks.md), never here.
#![allow(clippy::unwrap_used)]

use std::process::Command;

fn field<'a>(line: &'a str, name: &str) -> &'a str {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
        .unwrap_or_else(|| panic!("no `{name}` in summary line: {line}"))
}

#[test]
fn bench_200_sessions_complete_without_errors_and_survive_kill_9() {
    let out = Command::new(env!("CARGO_BIN_EXE_gangway"))
        .args([
            "bench",
            "--sessions",
            "200",
            "--concurrency",
            "20",
            "--check-durability",
            // Enough floor sessions that its CPU is more than a few clock ticks.
            "--floor-sessions",
            "1000",
        ])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench failed: {stdout}\n{stderr}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("sessions_per_s="))
        .unwrap_or_else(|| panic!("no summary line: {stdout}\n{stderr}"));
    assert_eq!(field(line, "errors"), "0", "{line}");
    // Server-side figures are read from the server process, so they exist.
    assert!(
        field(line, "peak_rss_mb").parse::<f64>().unwrap() > 0.0,
        "{line}"
    );
    assert!(stderr.contains("completed sessions are ended"), "{stderr}");
    // Gangway's CPU per session as a multiple of the floor's, from the
    // floor run made before it: a positive number.
    let x: f64 = field(line, "cpu_x_floor").parse().unwrap();
    assert!(x.is_finite() && x > 0.0, "{line}");
    let floor = stderr
        .lines()
        .find_map(|l| l.strip_prefix("bench: floor: sessions_per_s="))
        .unwrap_or_else(|| panic!("no floor summary: {stderr}"));
    assert_eq!(field(floor, "errors"), "0", "{floor}");
    // The floor exchanges what Gangway exchanges: the same payload sizes
    // (ids, secrets and times have fixed lengths; only a score's digits
    // and a time's fraction vary).
    let (floor_create, floor_ended) = payloads(&stderr, "floor");
    let (create, ended) = payloads(&stderr, "gangway");
    assert!((floor_create - create).abs() <= 0.02 * create, "{stderr}");
    assert!((floor_ended - ended).abs() <= 0.02 * ended, "{stderr}");
}

/// Mean create answer and `session.ended` body sizes of a run, from stderr.
fn payloads(stderr: &str, label: &str) -> (f64, f64) {
    let prefix = format!("bench: {label}: payloads on average: create answer ");
    let line = stderr
        .lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("no {label} payload sizes: {stderr}"));
    let numbers: Vec<f64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    assert_eq!(numbers.len(), 2, "{line}");
    assert!(numbers[0] > 0.0 && numbers[1] > 0.0, "{line}");
    (numbers[0], numbers[1])
}

#[test]
fn bench_floor_runs_the_same_exchanges_without_errors() {
    let out = Command::new(env!("CARGO_BIN_EXE_gangway"))
        .args(["bench", "floor", "--sessions", "300", "--concurrency", "20"])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "bench floor failed: {stdout}\n{stderr}"
    );
    let line = stdout
        .lines()
        .find(|l| l.starts_with("sessions_per_s="))
        .unwrap_or_else(|| panic!("no summary line: {stdout}\n{stderr}"));
    // Every session ended with the outcome its score calls for, and every
    // customer webhook's signature verified.
    assert_eq!(field(line, "errors"), "0", "{line}");
    assert!(
        field(line, "sessions_per_s").parse::<f64>().unwrap() > 0.0,
        "{line}"
    );
    // Read from the floor process itself, as a real node's would be.
    let cpu: f64 = field(line, "cpu_ms_per_session").parse().unwrap();
    assert!(cpu.is_finite() && cpu >= 0.0, "{line}");
    assert!(
        field(line, "peak_rss_mb").parse::<f64>().unwrap() > 0.0,
        "{line}"
    );
}

#[test]
fn bench_burst_accepts_every_webhook_and_loses_no_session() {
    let out = Command::new(env!("CARGO_BIN_EXE_gangway"))
        .args([
            "bench",
            "burst",
            "--sessions",
            "300",
            "--concurrency",
            "20",
            "--senders",
            "100",
        ])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "bench burst failed: {stdout}\n{stderr}"
    );
    let line = stdout
        .lines()
        .find(|l| l.starts_with("sessions="))
        .unwrap_or_else(|| panic!("no summary line: {stdout}\n{stderr}"));
    // Every webhook accepted (at once or after a 429/503 and its retry),
    // every session ended with the outcome its score calls for.
    assert_eq!(field(line, "sessions"), "300", "{line}");
    assert_eq!(field(line, "refused"), "0", "{line}");
    assert_eq!(field(line, "lost"), "0", "{line}");
    assert_eq!(field(line, "errors"), "0", "{line}");
    let p99: f64 = field(line, "p99_ms").parse().unwrap();
    assert!(p99.is_finite() && p99 > 0.0, "{line}");
}
