//! Every committed corpus entry and regression input runs through its
//! target without a crash (on a 2 MiB stack, like a tokio worker). This is
//! the part of fuzzing `cargo test` runs; `scripts/fuzz` mutates.

use gangway_fuzz::{TARGETS, corpus};

#[test]
fn every_corpus_entry_runs_clean() {
    for t in TARGETS {
        let entries = corpus(t.name);
        assert!(!entries.is_empty(), "fuzz/corpus/{} is empty", t.name);
        let run = t.run;
        let name = t.name;
        std::thread::Builder::new()
            .stack_size(2 * 1024 * 1024)
            .spawn(move || {
                for (path, bytes) in &entries {
                    eprintln!("{name}: {path}");
                    run(bytes);
                }
            })
            .expect("thread")
            .join()
            .unwrap_or_else(|_| panic!("a {} corpus entry crashed (see above)", t.name));
    }
}
