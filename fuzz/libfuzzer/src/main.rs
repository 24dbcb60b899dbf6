//! libFuzzer entry point for Gangway's fuzz targets (`gangway_fuzz::TARGETS`):
//! `FUZZ_TARGET=<name>` picks one, so one instrumented build serves all.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

static TARGET: LazyLock<&'static gangway_fuzz::Target> = LazyLock::new(|| {
    // libfuzzer-sys aborts in its panic hook, even on a panic the code under
    // test catches (the cel crate's, which `Expr::eval` turns into an
    // error). The default hook prints it and lets it unwind; a panic that
    // escapes the target still aborts (libfuzzer-sys's catch_unwind).
    drop(std::panic::take_hook());
    let name = std::env::var("FUZZ_TARGET").unwrap_or_default();
    gangway_fuzz::target(&name).unwrap_or_else(|| {
        let names: Vec<_> = gangway_fuzz::TARGETS.iter().map(|t| t.name).collect();
        panic!("FUZZ_TARGET must name one of {names:?}, not {name:?}")
    })
});

fuzz_target!(|data: &[u8]| (TARGET.run)(data));
