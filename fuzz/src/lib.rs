//! Fuzz targets for Gangway's parsers and verifiers (docs/fuzzing.md).
//!
//! Each target is a `fn(&[u8])` that must never panic, overflow its stack
//! or hang, whatever the bytes; the functions it calls are the ones the
//! server runs on untrusted input. [`mutate`] and the `gangway-fuzz` binary
//! run them on the stable toolchain: a bounded mutation loop over the
//! committed corpus (`fuzz/corpus/<target>/`), each target in its own
//! process so a crash of any kind is caught and its input kept.

pub mod mutate;
pub mod split;
pub mod targets;

/// One fuzz target.
pub struct Target {
    pub name: &'static str,
    /// What it feeds, for `gangway-fuzz list`.
    pub about: &'static str,
    pub run: fn(&[u8]),
    /// Tokens the mutator inserts (keywords, delimiters of the format).
    pub dict: &'static [&'static str],
}

/// Every target, in the order `scripts/fuzz` runs them.
pub const TARGETS: &[Target] = &[
    targets::workflow::TARGET,
    targets::expr::TARGET,
    targets::template::TARGET,
    targets::config::TARGET,
    targets::webhook_http::TARGET,
    targets::incode::TARGET,
    targets::dialog360::TARGET,
    targets::oih::TARGET,
    targets::stripe::TARGET,
    targets::ockto::TARGET,
    targets::chat::TARGET,
];

pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

/// Where the committed corpus and the found crashes live.
pub fn fuzz_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// The corpus of a target, sorted by name (seeds and regressions).
pub fn corpus(name: &str) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz_dir().join(dir).join(name)) else {
            continue;
        };
        for e in entries.flatten() {
            if let Ok(bytes) = std::fs::read(e.path()) {
                out.push((e.path().display().to_string(), bytes));
            }
        }
    }
    out.sort();
    out
}
