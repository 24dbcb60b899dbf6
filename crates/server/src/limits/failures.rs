//! Failed authentications, counted per source address and logged once per
//! interval: one line per address with its counts by kind and how many of
//! its requests were refused with 429, instead of a line per request (a
//! guessing client would otherwise write the log full).

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Mutex;

/// Addresses counted apart per interval; more than that are summed up in
/// one line, so that memory and the log stay bounded under a spread attack.
const MAX_SOURCES: usize = 10_000;
/// Addresses logged one by one per interval (the busiest first).
const MAX_LINES: usize = 50;

#[derive(Default)]
struct Counts {
    by_kind: BTreeMap<&'static str, u64>,
    refused: u64,
}

impl Counts {
    fn failures(&self) -> u64 {
        self.by_kind.values().sum()
    }
}

#[derive(Default)]
struct Interval {
    sources: HashMap<IpAddr, Counts>,
    /// Beyond `MAX_SOURCES`: `(failures, refused)` of the others.
    overflow: (u64, u64),
}

#[derive(Default)]
pub struct FailureLog {
    current: Mutex<Interval>,
}

impl FailureLog {
    fn with(&self, source: IpAddr, f: impl FnOnce(Option<&mut Counts>, &mut (u64, u64))) {
        let mut i = self.current.lock().unwrap_or_else(|p| p.into_inner());
        let Interval { sources, overflow } = &mut *i;
        if sources.len() < MAX_SOURCES || sources.contains_key(&source) {
            f(Some(sources.entry(source).or_default()), overflow);
        } else {
            f(None, overflow);
        }
    }

    /// A failed authentication of `kind` (e.g. `api_key`, `webhook:incode`).
    pub fn failure(&self, source: IpAddr, kind: &'static str) {
        self.with(source, |c, overflow| match c {
            Some(c) => *c.by_kind.entry(kind).or_default() += 1,
            None => overflow.0 += 1,
        });
    }

    /// A request refused because its source failed too often.
    pub fn refused(&self, source: IpAddr) {
        self.with(source, |c, overflow| match c {
            Some(c) => c.refused += 1,
            None => overflow.1 += 1,
        });
    }

    /// Logs the interval's counts (nothing when there were none) and starts
    /// a new interval.
    pub fn flush(&self, interval_s: u64) {
        let done = std::mem::take(&mut *self.current.lock().unwrap_or_else(|p| p.into_inner()));
        let mut sources: Vec<(IpAddr, Counts)> = done.sources.into_iter().collect();
        sources.sort_by_key(|(_, c)| std::cmp::Reverse(c.failures() + c.refused));
        let (mut more_failures, mut more_refused) = done.overflow;
        let mut more_sources = 0usize;
        for (n, (source, counts)) in sources.into_iter().enumerate() {
            if n >= MAX_LINES {
                more_sources += 1;
                more_failures += counts.failures();
                more_refused += counts.refused;
                continue;
            }
            let kinds = counts
                .by_kind
                .iter()
                .map(|(k, n)| format!("{k}={n}"))
                .collect::<Vec<_>>()
                .join(" ");
            tracing::warn!(
                source = %source,
                failures = counts.failures(),
                refused = counts.refused,
                kinds = %kinds,
                interval_s,
                "failed authentication from this address"
            );
        }
        if more_failures + more_refused > 0 {
            tracing::warn!(
                sources = more_sources,
                failures = more_failures,
                refused = more_refused,
                interval_s,
                "failed authentication from further addresses"
            );
        }
    }
}
