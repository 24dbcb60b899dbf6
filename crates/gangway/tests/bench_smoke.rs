//! `gangway bench` as a correctness smoke test: a small run must complete
//! every session with the right outcome (errors=0) and survive kill -9.
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
}
