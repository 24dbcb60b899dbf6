//! `GANGWAY_*` environment variables as config keys: `GANGWAY_LISTEN` sets
//! `listen`, `GANGWAY_ENGINE__BATCH_SIZE` sets `engine.batch_size`.
//! Variables under a reserved prefix are left alone: `GANGWAY_X_` for the
//! operator's own tools (a wrapper script's settings), `GANGWAY_TEST_`,
//! `GANGWAY_DEMO_` and `GANGWAY_BENCH_` for Gangway's test suites, demo and
//! load generator, `GANGWAY_CLI_` for its client commands (`gangway
//! workflows`). Any other `GANGWAY_*` variable must name a key: a typo
//! is an error naming the variable, never silently ignored.

use super::origin::Origins;
use super::{Config, ConfigError};
use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, MapAccess, Visitor};
use std::cell::Cell;

pub(super) const PREFIX: &str = "GANGWAY_";
/// Prefixes after `GANGWAY_` that are not config keys.
pub(super) const RESERVED: [&str; 5] = ["X_", "TEST_", "DEMO_", "BENCH_", "CLI_"];

/// One variable applied to the config.
pub(super) struct Applied {
    pub var: String,
    /// The key, `engine.batch_size`.
    pub key: String,
    pub path: Vec<String>,
    /// The value as written, for a second reading as text.
    pub raw: String,
}

/// Applies the `GANGWAY_*` variables of `env` to `root`.
/// The deepest key a variable may name (`http.services.<name>.headers.<h>`
/// is five levels).
const MAX_DEPTH: usize = 8;

pub(super) fn apply(
    root: &mut toml::Table,
    env: &[(String, String)],
    origins: &mut Origins,
) -> Result<Vec<Applied>, ConfigError> {
    let mut applied = Vec::new();
    let keys = top_level_keys();
    for (var, value) in env {
        let Some(rest) = var.strip_prefix(PREFIX) else {
            continue;
        };
        if rest.is_empty() || RESERVED.iter().any(|p| rest.starts_with(p)) {
            continue;
        }
        let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
        let key = path.join(".");
        let err = |message: String| ConfigError::Key {
            key: key.clone(),
            message,
            origin: Some(format!("environment variable {var}")),
        };
        // No key is nested deeper; a name like GANGWAY_A__A__…__A (found
        // by fuzzing) would otherwise nest tables until the stack overflows.
        if path.len() > MAX_DEPTH {
            let start = path[..3].join(".");
            return Err(ConfigError::Key {
                key: format!("{start}…"),
                message: format!(
                    "a key {} levels deep; configuration keys are at most {MAX_DEPTH} levels deep",
                    path.len()
                ),
                origin: Some(format!(
                    "an environment variable starting {PREFIX}{}",
                    rest.split("__").take(3).collect::<Vec<_>>().join("__")
                )),
            });
        }
        if path.iter().any(String::is_empty) {
            return Err(err(format!(
                "`{var}` has an empty part: separate a section and its key with two underscores, as in GANGWAY_ENGINE__BATCH_SIZE"
            )));
        }
        match keys.iter().find(|(k, _)| *k == path[0]) {
            None => return Err(err(unknown(&path[0], &keys))),
            Some((k, Shape::Value)) if path.len() > 1 => {
                return Err(err(format!(
                    "`{k}` is a single value, not a section; set it with {PREFIX}{}",
                    k.to_ascii_uppercase()
                )));
            }
            Some(_) => {}
        }
        set_path(root, &path, parse_value(value)).map_err(err)?;
        origins.env(&key, var, value.is_empty());
        applied.push(Applied {
            var: var.clone(),
            key,
            path,
            raw: value.clone(),
        });
    }
    Ok(applied)
}

/// The error for a variable that names no key: which variables exist, and
/// where the operator's own settings belong.
fn unknown(name: &str, keys: &[(&'static str, Shape)]) -> String {
    let upper = |k: &str| k.to_ascii_uppercase();
    let values: Vec<String> = keys
        .iter()
        .filter(|(_, s)| *s == Shape::Value)
        .map(|(k, _)| format!("{PREFIX}{}", upper(k)))
        .collect();
    let sections: Vec<String> = keys
        .iter()
        .filter(|(_, s)| *s == Shape::Section)
        .map(|(k, _)| upper(k))
        .collect();
    // `GANGWAY_ENGINE_BATCH_SIZE`: one underscore where two belong.
    let hint = keys
        .iter()
        .filter(|(_, s)| *s == Shape::Section)
        .find_map(|(k, _)| {
            let rest = name.strip_prefix(k)?.strip_prefix('_')?;
            Some(format!(
                " For `{k}.{rest}` write {PREFIX}{}__{} (two underscores between section and key).",
                upper(k),
                upper(rest)
            ))
        })
        .unwrap_or_default();
    format!(
        "no such key.{hint} The variables that set keys are {} and {PREFIX}<SECTION>__<KEY> for the sections {} (e.g. {PREFIX}ENGINE__BATCH_SIZE). Variables starting with {} are reserved and ignored: name a wrapper script's own settings {PREFIX}X_...",
        values.join(", "),
        sections.join(", "),
        RESERVED
            .iter()
            .map(|p| format!("{PREFIX}{p}"))
            .collect::<Vec<_>>()
            .join(", "),
    )
}

/// `GANGWAY_X=5` is an integer, `true` a boolean, `["a","b"]` a list;
/// anything else is a string. (A string key given a number is read again
/// as text by the loader.)
fn parse_value(raw: &str) -> toml::Value {
    let probe = format!("v = {raw}");
    match probe.parse::<toml::Table>() {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(raw.to_string())),
        Err(_) => toml::Value::String(raw.to_string()),
    }
}

pub(super) fn set_path(
    root: &mut toml::Table,
    path: &[String],
    value: toml::Value,
) -> Result<(), String> {
    let Some((last, parents)) = path.split_last() else {
        return Err("empty key".into());
    };
    let mut table = root;
    for p in parents {
        let entry = table
            .entry(p.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        table = entry
            .as_table_mut()
            .ok_or_else(|| format!("`{p}` is not a section"))?;
    }
    table.insert(last.clone(), value);
    Ok(())
}

/// What a top-level key holds.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Shape {
    /// A single value: `listen`, `database_url`.
    Value,
    /// A struct or a map: `[engine]`, `[http]`, `[incode]`.
    Section,
}

/// The top-level keys of `Config` and their shapes, asked from serde
/// itself, so that the list follows the type as keys are added, then the
/// registered providers' sections (`GANGWAY_INCODE__API_KEY`).
pub(super) fn top_level_keys() -> Vec<(&'static str, Shape)> {
    let fields = Cell::new(&[][..]);
    let _ = Config::deserialize(FieldNames(&fields));
    let mut keys: Vec<(&'static str, Shape)> = fields
        .get()
        .iter()
        .map(|&f| {
            let shape = Cell::new(Shape::Value);
            let _ = Config::deserialize(OneField {
                field: f,
                shape: &shape,
            });
            (f, shape.get())
        })
        .collect();
    keys.extend(super::sections::keys().map(|k| (k, Shape::Section)));
    keys
}

/// Ends a probe: the probes only look, they never build a value.
#[derive(Debug)]
struct Stop;

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("probe")
    }
}

impl std::error::Error for Stop {}

impl de::Error for Stop {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        Stop
    }
}

/// A deserializer that records the field names of the struct asked for.
struct FieldNames<'a>(&'a Cell<&'static [&'static str]>);

impl<'de> Deserializer<'de> for FieldNames<'_> {
    type Error = Stop;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
        Err(Stop)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Stop> {
        self.0.set(fields);
        Err(Stop)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

/// A struct with one field, whose value records its shape.
struct OneField<'a> {
    field: &'static str,
    shape: &'a Cell<Shape>,
}

impl<'de> Deserializer<'de> for OneField<'_> {
    type Error = Stop;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Stop> {
        visitor.visit_map(OneFieldMap {
            field: Some(self.field),
            shape: self.shape,
        })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

struct OneFieldMap<'a> {
    field: Option<&'static str>,
    shape: &'a Cell<Shape>,
}

impl<'de> MapAccess<'de> for OneFieldMap<'_> {
    type Error = Stop;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Stop> {
        match self.field.take() {
            Some(f) => seed
                .deserialize(de::value::StrDeserializer::<Stop>::new(f))
                .map(Some),
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Stop> {
        seed.deserialize(ShapeOf(self.shape))
    }
}

/// Records whether a value is read as a struct or map (a section) or as
/// anything else.
struct ShapeOf<'a>(&'a Cell<Shape>);

impl<'de> Deserializer<'de> for ShapeOf<'_> {
    type Error = Stop;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
        self.0.set(Shape::Value);
        Err(Stop)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Stop> {
        self.0.set(Shape::Section);
        Err(Stop)
    }

    fn deserialize_map<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
        self.0.set(Shape::Section);
        Err(Stop)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Stop> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, Stop> {
        visitor.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct enum identifier
        ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_variable_nested_past_any_key_is_refused_not_a_stack_overflow() {
        let var = format!("{PREFIX}{}LISTEN", "LISER__".repeat(4097));
        let mut root = toml::Table::new();
        let mut origins = Origins::default();
        let err = apply(&mut root, &[(var, "127.0.0.1:0".into())], &mut origins)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("at most 8 levels deep"), "{err}");
        assert!(
            err.len() < 400,
            "the error does not echo the whole name: {err}"
        );
    }

    #[test]
    fn top_level_keys_come_from_the_type() {
        let keys = top_level_keys();
        let shape = |k: &str| keys.iter().find(|(n, _)| *n == k).map(|(_, s)| *s);
        assert_eq!(shape("listen"), Some(Shape::Value));
        assert_eq!(shape("public_url"), Some(Shape::Value));
        assert_eq!(shape("workflows_dir"), Some(Shape::Value));
        assert_eq!(shape("engine"), Some(Shape::Section));
        assert_eq!(shape("incode"), Some(Shape::Section));
        assert_eq!(shape("http"), Some(Shape::Section));
        assert_eq!(shape("bin"), None);
    }
}
