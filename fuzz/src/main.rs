//! `gangway-fuzz`: runs the fuzz targets on the stable toolchain.
//!
//! ```text
//! gangway-fuzz list
//! gangway-fuzz check [--seconds N] [--seed S] [TARGET...]   each target in a child process
//! gangway-fuzz run TARGET [--seconds N] [--seed S]          one target, in this process
//! gangway-fuzz replay TARGET FILE...                        run files through a target
//! ```
//!
//! `check` is what `scripts/fuzz` runs: a child per target, so that a
//! panic, a stack overflow, an abort or a hang (no progress for
//! `--hang-seconds`) all end the same way: the input is kept under
//! `fuzz/artifacts/<target>/` and the run fails.

use gangway_fuzz::mutate::{Mutator, Rng};
use gangway_fuzz::{TARGETS, Target, corpus, fuzz_dir, target};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The server runs handlers on tokio workers with 2 MiB stacks: inputs
/// run on a thread with no more, so a recursion that would overflow
/// there overflows here.
const STACK: usize = 2 * 1024 * 1024;
/// Longest input the mutator makes.
const MAX_LEN: usize = 64 * 1024;
/// A child that exits with this code found a hang.
const HANG_EXIT: i32 = 77;

struct Options {
    seconds: u64,
    seed: u64,
    hang_seconds: u64,
    names: Vec<String>,
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: gangway-fuzz list | check [--seconds N] [--seed S] [--hang-seconds N] [TARGET...] | run TARGET [--seconds N] [--seed S] | replay TARGET FILE..."
    );
    ExitCode::from(2)
}

fn parse_options(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        seconds: 15,
        seed: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64),
        hang_seconds: 10,
        names: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut number = |flag: &str| -> Result<u64, String> {
            it.next()
                .and_then(|v| v.parse().ok())
                .ok_or(format!("{flag} takes a number"))
        };
        match a.as_str() {
            "--seconds" => o.seconds = number("--seconds")?,
            "--seed" => o.seed = number("--seed")?,
            "--hang-seconds" => o.hang_seconds = number("--hang-seconds")?,
            name => o.names.push(name.to_string()),
        }
    }
    Ok(o)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(command) = args.first() else {
        return usage();
    };
    let options = match parse_options(&args[1..]) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return usage();
        }
    };
    match command.as_str() {
        "list" => {
            for t in TARGETS {
                println!("{:<14} {}", t.name, t.about);
            }
            ExitCode::SUCCESS
        }
        "check" => check(&options),
        "run" => match options.names.as_slice() {
            [name] => match target(name) {
                Some(t) => run(t, &options),
                None => unknown(name),
            },
            _ => usage(),
        },
        "replay" => match options.names.split_first() {
            Some((name, files)) if !files.is_empty() => match target(name) {
                Some(t) => replay(t, files),
                None => unknown(name),
            },
            _ => usage(),
        },
        _ => usage(),
    }
}

fn unknown(name: &str) -> ExitCode {
    eprintln!("no fuzz target `{name}`; `gangway-fuzz list` names them");
    ExitCode::from(2)
}

fn artifacts(name: &str) -> PathBuf {
    fuzz_dir().join("artifacts").join(name)
}

/// Runs each target in a child process for `seconds`; keeps the input of
/// any child that did not end cleanly.
fn check(o: &Options) -> ExitCode {
    let names: Vec<&str> = if o.names.is_empty() {
        TARGETS.iter().map(|t| t.name).collect()
    } else {
        o.names.iter().map(String::as_str).collect()
    };
    let Ok(exe) = std::env::current_exe() else {
        eprintln!("cannot find this executable to run the targets");
        return ExitCode::FAILURE;
    };
    let mut failed = Vec::new();
    for (i, name) in names.iter().enumerate() {
        if target(name).is_none() {
            return unknown(name);
        }
        let seed = o.seed.wrapping_add(i as u64);
        let started = Instant::now();
        let status = Command::new(&exe)
            .args(["run", name, "--seconds"])
            .arg(o.seconds.to_string())
            .args(["--seed", &seed.to_string(), "--hang-seconds"])
            .arg(o.hang_seconds.to_string())
            .status();
        let why = match status {
            Ok(s) if s.success() => None,
            Ok(s) if s.code() == Some(HANG_EXIT) => Some("timeout".to_string()),
            Ok(s) => Some(format!("crash ({s})")),
            Err(e) => Some(format!("could not start: {e}")),
        };
        let Some(why) = why else {
            continue;
        };
        let current = artifacts(name).join(".current");
        let kept = match std::fs::read(&current) {
            Ok(input) => {
                let kind = if why == "timeout" { "timeout" } else { "crash" };
                let file = artifacts(name).join(format!(
                    "{kind}-{}",
                    gangway_server::ids::digest(&input)
                        .chars()
                        .take(16)
                        .collect::<String>()
                ));
                let _ = std::fs::write(&file, &input);
                file.display().to_string()
            }
            Err(_) => "(input not found)".into(),
        };
        eprintln!(
            "FAIL {name}: {why} after {:.1}s, seed {seed}; input kept at {kept}\n  replay: cargo run -p gangway-fuzz -- replay {name} {kept}",
            started.elapsed().as_secs_f64()
        );
        failed.push(*name);
    }
    if failed.is_empty() {
        println!("fuzz: {} targets, no crash", names.len());
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "fuzz: {} of {} targets failed: {}",
            failed.len(),
            names.len(),
            failed.join(", ")
        );
        ExitCode::FAILURE
    }
}

/// The mutation loop, in this process. Each input is written to
/// `artifacts/<target>/.current` first (one positioned write), so that a
/// parent finds it whatever kills this process.
fn run(t: &'static Target, o: &Options) -> ExitCode {
    let seeds: Vec<Vec<u8>> = corpus(t.name).into_iter().map(|(_, b)| b).collect();
    let seeds = if seeds.is_empty() {
        vec![Vec::new()]
    } else {
        seeds
    };
    let dir = artifacts(t.name);
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("cannot create {}: {e}", dir.display());
        return ExitCode::FAILURE;
    }
    let current = match std::fs::File::create(dir.join(".current")) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("cannot write {}: {e}", dir.display());
            return ExitCode::FAILURE;
        }
    };
    quiet_panics();
    let execs = Arc::new(AtomicU64::new(0));
    watchdog(Arc::clone(&execs), Duration::from_secs(o.hang_seconds));
    let deadline = Instant::now() + Duration::from_secs(o.seconds);
    let seed = o.seed;
    let counter = Arc::clone(&execs);
    let worker = std::thread::Builder::new()
        .name(format!("fuzz-{}", t.name))
        .stack_size(STACK)
        .spawn(move || {
            let keep = |input: &[u8]| {
                let _ = current.set_len(0);
                let _ = current.write_all_at(input, 0);
            };
            // The seeds themselves first.
            for s in &seeds {
                keep(s);
                (t.run)(s);
                counter.fetch_add(1, Ordering::Relaxed);
            }
            let mut m = Mutator {
                rng: Rng::new(seed),
                dict: t.dict,
                max_len: MAX_LEN,
            };
            while Instant::now() < deadline {
                for _ in 0..64 {
                    let base = &seeds[m.rng.below(seeds.len())];
                    let other = &seeds[m.rng.below(seeds.len())];
                    let input = m.mutate(base, other);
                    keep(&input);
                    (t.run)(&input);
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    let ok = match worker {
        Ok(w) => w.join().is_ok(),
        Err(e) => {
            eprintln!("cannot start the fuzz thread: {e}");
            false
        }
    };
    let n = execs.load(Ordering::Relaxed);
    if !ok {
        let last = LAST_PANIC.lock().map(|m| m.clone()).unwrap_or_default();
        eprintln!("{} panicked: {last}", t.name);
        return ExitCode::FAILURE;
    }
    let _ = std::fs::remove_file(dir.join(".current"));
    println!(
        "{:<14} {n} inputs in {}s ({}/s), seed {seed}, no crash",
        t.name,
        o.seconds,
        n / o.seconds.max(1)
    );
    let _ = std::io::stdout().flush();
    ExitCode::SUCCESS
}

/// The last panic's message and place. Code under test may catch panics
/// (the CEL evaluator's, see `Expr::eval`): printing each one would bury
/// the output, so the hook only records it, and a panic that ends the
/// fuzz thread is printed from here.
static LAST_PANIC: std::sync::Mutex<String> = std::sync::Mutex::new(String::new());

fn quiet_panics() {
    std::panic::set_hook(Box::new(|info| {
        if let Ok(mut last) = LAST_PANIC.lock() {
            *last = info.to_string();
        }
    }));
}

/// Ends the process with [`HANG_EXIT`] when no input finishes for `limit`.
fn watchdog(execs: Arc<AtomicU64>, limit: Duration) {
    let _ = std::thread::Builder::new()
        .name("fuzz-watchdog".into())
        .spawn(move || {
            let mut last = execs.load(Ordering::Relaxed);
            let mut since = Instant::now();
            loop {
                std::thread::sleep(Duration::from_millis(250));
                let now = execs.load(Ordering::Relaxed);
                if now != last {
                    last = now;
                    since = Instant::now();
                } else if since.elapsed() > limit {
                    eprintln!("no input finished in {}s: a hang", limit.as_secs());
                    std::process::exit(HANG_EXIT);
                }
            }
        });
}

fn replay(t: &'static Target, files: &[String]) -> ExitCode {
    for f in files {
        let input = match std::fs::read(f) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("cannot read {f}: {e}");
                return ExitCode::FAILURE;
            }
        };
        let run = t.run;
        let done = std::thread::Builder::new()
            .stack_size(STACK)
            .spawn(move || run(&input))
            .map(|h| h.join().is_ok());
        if !matches!(done, Ok(true)) {
            eprintln!("{f}: crashed");
            return ExitCode::FAILURE;
        }
        println!("{f}: ok");
    }
    ExitCode::SUCCESS
}
