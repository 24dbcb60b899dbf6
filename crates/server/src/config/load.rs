//! Reads the layers in order (the embedded defaults, the file, the
//! environment), expands references and turns the result into a `Config`.

use super::origin::Origins;
use super::{Config, ConfigError, DEFAULT_TOML, env, expand, key_err};
use std::collections::HashSet;

impl Config {
    /// Loads defaults, then `file` (if any), then the environment.
    pub fn load(file: Option<&std::path::Path>) -> Result<Config, ConfigError> {
        // `vars()` would panic on a variable that is not UTF-8.
        let env: Vec<(String, String)> = std::env::vars_os()
            .map(|(k, v)| {
                (
                    k.to_string_lossy().into_owned(),
                    v.to_string_lossy().into_owned(),
                )
            })
            .collect();
        Self::load_with(file, &env)
    }

    pub fn load_with(
        file: Option<&std::path::Path>,
        env: &[(String, String)],
    ) -> Result<Config, ConfigError> {
        let text = match file {
            Some(path) => {
                let shown = path.display().to_string();
                let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
                    path: shown.clone(),
                    error,
                })?;
                Some((shown, text))
            }
            None => None,
        };
        Self::load_layers(text.as_ref().map(|(p, t)| (p.as_str(), t.as_str())), env)
    }

    /// [`Config::load_with`] with the file's text given: `shown` names it
    /// in errors (fuzzed in `fuzz/`).
    pub fn load_str(
        shown: &str,
        text: &str,
        env: &[(String, String)],
    ) -> Result<Config, ConfigError> {
        Self::load_layers(Some((shown, text)), env)
    }

    fn load_layers(
        file: Option<(&str, &str)>,
        env: &[(String, String)],
    ) -> Result<Config, ConfigError> {
        let mut origins = Origins::default();
        let mut root = parse("config.default.toml", DEFAULT_TOML)?;
        if let Some((shown, text)) = file {
            merge(&mut root, parse(shown, text)?);
            origins.file(shown, text);
        }
        let applied = env::apply(&mut root, env, &mut origins)?;
        let mut value = toml::Value::Table(root);
        expand_all(&mut value, &mut String::new(), env).map_err(|e| origins.attach(e))?;
        let config = typed(value, &applied, env).map_err(|e| origins.attach(e))?;
        config.check().map_err(|e| origins.attach(e))?;
        Ok(config)
    }
}

/// The merged tree as a `Config`. A variable's value that reads as a
/// number or boolean where the key wants text (`GANGWAY_INCODE__API_KEY=
/// 12345`) is read again as the text it was written as.
fn typed(
    mut value: toml::Value,
    applied: &[env::Applied],
    env: &[(String, String)],
) -> Result<Config, ConfigError> {
    let mut reread = HashSet::new();
    loop {
        let (key, message) = match deserialize(&value) {
            Ok(config) => return Ok(config),
            Err(e) => e,
        };
        let as_text = applied.iter().rev().find(|a| a.key == key).filter(|a| {
            message.starts_with("invalid type:")
                && !message.starts_with("invalid type: string")
                && reread.insert(a.key.clone())
        });
        let Some(a) = as_text else {
            return Err(key_err(key, message));
        };
        let text = expand::expand(&a.raw, env).map_err(|m| key_err(&a.key, m))?;
        let toml::Value::Table(root) = &mut value else {
            return Err(key_err("(root)", "is not a table"));
        };
        env::set_path(root, &a.path, toml::Value::String(text))
            .map_err(|m| key_err(&a.key, format!("{m} (from {})", a.var)))?;
    }
}

/// The tree as a `Config`: the registered providers' sections are lifted
/// out and parsed by their providers, the rest by serde. Errors are the
/// key (`incode.api_key`) and the message alone: the serde error's Display
/// adds "in `key`" on lines of its own, and the key is said by the caller.
fn deserialize(value: &toml::Value) -> Result<Config, (String, String)> {
    let toml::Value::Table(root) = value else {
        return Err(("(root)".into(), "is not a table".into()));
    };
    let mut rest = root.clone();
    let mut sections = Vec::new();
    for p in crate::providers::REGISTRY {
        if let Some(v) = rest.remove(p.config.key) {
            let parsed = (p.config.parse)(v).map_err(|e| {
                let key = match e.path.as_str() {
                    "." => p.config.key.to_string(),
                    path => format!("{}.{path}", p.config.key),
                };
                (key, flat(&e.message))
            })?;
            sections.push((p.config.key, parsed));
        }
    }
    let mut config = serde_path_to_error::deserialize::<_, Config>(toml::Value::Table(rest))
        .map_err(|e| {
            let key = e.path().to_string();
            let message = flat(e.into_inner().message());
            // An unknown top-level key: serde lists the fields of `Config`,
            // which no longer hold the provider sections; name those too.
            let message = if !key.contains('.') && message.starts_with("unknown field") {
                let names: Vec<String> =
                    super::sections::keys().map(|k| format!("`{k}`")).collect();
                format!("{message}; or a provider section: {}", names.join(", "))
            } else {
                message
            };
            (if key == "." { "(root)".into() } else { key }, message)
        })?;
    for (key, parsed) in sections {
        config.sections.insert(key, parsed);
    }
    Ok(config)
}

/// Parses one TOML layer; a syntax error points at its line and column.
fn parse(path: &str, text: &str) -> Result<toml::Table, ConfigError> {
    text.parse::<toml::Table>().map_err(|e| {
        let (line, column) = e
            .span()
            .map_or((1, 1), |span| line_column(text, span.start));
        ConfigError::Syntax {
            path: path.to_string(),
            line,
            column,
            message: flat(e.message()),
        }
    })
}

/// A message on one line.
fn flat(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// 1-based line and column (in characters) of a byte offset.
pub(super) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[start..].chars().count() + 1)
}

fn merge(base: &mut toml::Table, overlay: toml::Table) {
    for (k, v) in overlay {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// Expands the references in every string value; errors name the key.
fn expand_all(
    v: &mut toml::Value,
    path: &mut String,
    env: &[(String, String)],
) -> Result<(), ConfigError> {
    match v {
        toml::Value::String(s) => {
            *s = expand::expand(s, env).map_err(|m| key_err(path.clone(), m))?;
        }
        toml::Value::Table(t) => {
            for (k, v) in t.iter_mut() {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
                expand_all(v, path, env)?;
                path.truncate(len);
            }
        }
        toml::Value::Array(items) => {
            for (i, v) in items.iter_mut().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                expand_all(v, path, env)?;
                path.truncate(len);
            }
        }
        _ => {}
    }
    Ok(())
}
