//! Provider sections: each registered provider (providers/mod.rs REGISTRY)
//! declares its top-level key and type ([`ConfigSection`]); the loader lifts
//! those keys out of the merged TOML before the rest becomes a `Config`,
//! parses each into its provider's type and keeps it in [`Sections`]. A
//! caller gets its section with [`Config::section`], so a new provider's
//! section needs no field here.

use super::{Config, ConfigError};
use std::any::Any;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A provider's typed config section (providers/<name>/config.rs).
pub trait Section:
    serde::de::DeserializeOwned + std::fmt::Debug + Clone + Send + Sync + 'static
{
    /// Its top-level key: `incode` for `[incode]` and `GANGWAY_INCODE__*`.
    const KEY: &'static str;
}

/// A parsed section, whatever its type.
pub trait SectionValue: Any + std::fmt::Debug + Send + Sync {
    fn as_any(&self) -> &dyn Any;
}

impl<T: Any + std::fmt::Debug + Send + Sync> SectionValue for T {
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The provider sections present in the config, by key.
#[derive(Clone, Default)]
pub struct Sections(BTreeMap<&'static str, Arc<dyn SectionValue>>);

// Each section's own Debug (which hides its secrets).
impl std::fmt::Debug for Sections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.0.iter()).finish()
    }
}

/// Why a section's TOML is not its type: `path` is inside the section
/// (`webhook_client_secret`, or `.` for the section itself).
pub struct SectionError {
    pub path: String,
    pub message: String,
}

/// What the registry knows of a provider's config section.
pub struct ConfigSection {
    /// Its top-level key.
    pub key: &'static str,
    /// Turns the section's TOML into its type.
    pub parse: fn(toml::Value) -> Result<Arc<dyn SectionValue>, SectionError>,
    /// What the type cannot check; errors name the key, never the secret.
    pub check: fn(&Config) -> Result<(), ConfigError>,
}

impl ConfigSection {
    /// The section typed `T`, checked by `check`.
    pub const fn of<T: Section>(check: fn(&Config) -> Result<(), ConfigError>) -> ConfigSection {
        ConfigSection {
            key: T::KEY,
            parse: parse::<T>,
            check,
        }
    }
}

fn parse<T: Section>(value: toml::Value) -> Result<Arc<dyn SectionValue>, SectionError> {
    match serde_path_to_error::deserialize::<_, T>(value) {
        Ok(v) => Ok(Arc::new(v)),
        Err(e) => Err(SectionError {
            path: e.path().to_string(),
            message: e.into_inner().message().to_string(),
        }),
    }
}

/// The keys of the registered sections.
pub(crate) fn keys() -> impl Iterator<Item = &'static str> {
    crate::providers::REGISTRY.iter().map(|p| p.config.key)
}

impl Sections {
    pub(super) fn insert(&mut self, key: &'static str, value: Arc<dyn SectionValue>) {
        self.0.insert(key, value);
    }
}

impl Config {
    /// The provider section typed `T`, if the config has it.
    pub fn section<T: Section>(&self) -> Option<&T> {
        // `&**`: the value inside the `Arc`, not the `Arc` (which is `Any` too).
        let value: &dyn SectionValue = &**self.sections.0.get(T::KEY)?;
        value.as_any().downcast_ref()
    }

    /// Sets (or replaces) the provider section typed `T` (the simulators'
    /// setup points a connector at them this way).
    pub fn set_section<T: Section>(&mut self, value: T) {
        self.sections.0.insert(T::KEY, Arc::new(value));
    }
}
