//! Where each key was set, so that an error points at its source: a file
//! position (`gangway.toml:12:1`) or an environment variable
//! (`environment variable GANGWAY_ENGINE__BATCH_SIZE`). Keys are written as
//! errors name them: `webhooks.endpoints[0].url`.

use super::ConfigError;
use super::load::line_column;
use std::collections::HashMap;
use toml_edit::{Item, Table, Value};

#[derive(Default)]
pub(super) struct Origins(HashMap<String, String>);

impl Origins {
    /// Records the position of every key in a file that parsed as TOML.
    pub(super) fn file(&mut self, path: &str, text: &str) {
        if let Ok(doc) = toml_edit::ImDocument::parse(text) {
            let mut walk = Walk {
                path,
                text,
                origins: self,
            };
            walk.table(doc.as_table(), "");
        }
    }

    /// Records that the environment variable `var` set `key` (later layers
    /// win, as they do for values).
    pub(super) fn env(&mut self, key: &str, var: &str, empty: bool) {
        let what = if empty {
            format!("environment variable {var} (set but empty)")
        } else {
            format!("environment variable {var}")
        };
        // A variable replaces the whole value: positions of keys under it
        // in the file no longer apply.
        self.0.retain(|k, _| !is_under(k, key));
        self.0.insert(key.to_string(), what);
    }

    /// The error with its source, when known: the key's own, else that of
    /// the nearest section above it.
    pub(super) fn attach(&self, e: ConfigError) -> ConfigError {
        match e {
            ConfigError::Key {
                key,
                message,
                origin: None,
            } => {
                let origin = self.of(&key);
                ConfigError::Key {
                    key,
                    message,
                    origin,
                }
            }
            other => other,
        }
    }

    fn of(&self, key: &str) -> Option<String> {
        let mut k = key;
        loop {
            if let Some(o) = self.0.get(k) {
                return Some(o.clone());
            }
            k = &k[..k.rfind(['.', '['])?];
        }
    }
}

/// `a.b[0]` and `a.b.c` are under `a.b`; `a.bc` is not.
fn is_under(k: &str, parent: &str) -> bool {
    k.strip_prefix(parent)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
}

struct Walk<'a> {
    path: &'a str,
    text: &'a str,
    origins: &'a mut Origins,
}

impl Walk<'_> {
    fn record(&mut self, key: String, span: Option<std::ops::Range<usize>>) {
        if let Some(span) = span {
            let (line, column) = line_column(self.text, span.start);
            self.origins
                .0
                .insert(key, format!("{}:{line}:{column}", self.path));
        }
    }

    fn table(&mut self, t: &Table, prefix: &str) {
        for (k, item) in t.iter() {
            let key = join(prefix, k);
            self.record(key.clone(), t.key(k).and_then(|k| k.span()));
            self.item(item, &key);
        }
    }

    fn item(&mut self, item: &Item, key: &str) {
        match item {
            Item::Table(t) => self.table(t, key),
            Item::ArrayOfTables(a) => {
                for (i, t) in a.iter().enumerate() {
                    let k = format!("{key}[{i}]");
                    self.record(k.clone(), t.span());
                    self.table(t, &k);
                }
            }
            Item::Value(v) => self.value(v, key),
            Item::None => {}
        }
    }

    fn value(&mut self, v: &Value, key: &str) {
        match v {
            Value::InlineTable(t) => {
                for (k, v) in t.iter() {
                    let sub = join(key, k);
                    self.record(sub.clone(), t.key(k).and_then(|k| k.span()));
                    self.value(v, &sub);
                }
            }
            Value::Array(a) => {
                for (i, v) in a.iter().enumerate() {
                    let sub = format!("{key}[{i}]");
                    self.record(sub.clone(), v.span());
                    self.value(v, &sub);
                }
            }
            _ => {}
        }
    }
}

fn join(prefix: &str, k: &str) -> String {
    if prefix.is_empty() {
        k.to_string()
    } else {
        format!("{prefix}.{k}")
    }
}
