//! Loading a TOML config file with `MODORI_…` environment overrides.
//!
//! The file is validated on its own first (toml + serde_path_to_error), so a mistake in it is
//! reported with the file and the key path. Then the `config` crate layers environment
//! variables over it: `PREFIX` + key path joined by `__`, e.g. `MODORI_AGENT_SYNC__BATCH_OPS_MAX`.
//! An error that only appears with the overrides names the variables that were set.

use std::path::{Path, PathBuf};

use modori_shared::domain::Capability;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("config {path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config {path}: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("config {path}: key `{key}`: {message}")]
    Key {
        path: PathBuf,
        key: String,
        message: String,
    },
    #[error("config {path} with environment overrides {vars:?}: key `{key}`: {message}")]
    Env {
        path: PathBuf,
        vars: Vec<String>,
        key: String,
        message: String,
    },
    #[error("config {path}: key `{key}`: {message}")]
    Invalid {
        path: PathBuf,
        key: String,
        message: String,
    },
}

/// Parses `text` (the contents of `path`) alone, naming the key path of any error.
pub fn parse_toml<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, ConfigError> {
    let de = toml::Deserializer::new(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let key = e.path().to_string();
        let message = e.inner().message().to_owned();
        if key == "." || key.is_empty() {
            ConfigError::Syntax {
                path: path.to_owned(),
                message: e.inner().to_string(),
            }
        } else {
            ConfigError::Key {
                path: path.to_owned(),
                key,
                message,
            }
        }
    })
}

/// Loads `path`, then applies environment variables that start with `env_prefix`.
pub fn load<T: DeserializeOwned>(path: &Path, env_prefix: &str) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    let from_file: T = parse_toml(path, &text)?;
    // `<PREFIX>CONFIG` names the file itself (a CLI flag's variable), not a key in it.
    let config_path_var = format!("{env_prefix}CONFIG");
    let overrides: std::collections::HashMap<String, String> = std::env::vars()
        .filter(|(k, _)| k.starts_with(env_prefix) && *k != config_path_var)
        .collect();
    let mut vars: Vec<String> = overrides.keys().cloned().collect();
    vars.sort();
    if vars.is_empty() {
        return Ok(from_file);
    }
    let layered = config::Config::builder()
        .add_source(config::File::from_str(&text, config::FileFormat::Toml))
        .add_source(
            config::Environment::with_prefix(env_prefix.trim_end_matches('_'))
                .prefix_separator("_")
                .separator("__")
                .try_parsing(true)
                .source(Some(overrides.into_iter().collect())),
        )
        .build()
        .map_err(|e| ConfigError::Env {
            path: path.to_owned(),
            vars: vars.clone(),
            key: String::new(),
            message: e.to_string(),
        })?;
    serde_path_to_error::deserialize(layered).map_err(|e| ConfigError::Env {
        path: path.to_owned(),
        vars,
        key: e.path().to_string(),
        message: e.inner().to_string(),
    })
}

/// Personal data (Japan's APPI), at a site and at the coordinator: the one section both
/// services' files share.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrivacySection {
    /// Days personal data is kept: then a site erases customer names and parcel references,
    /// and the coordinator pseudonymises customer references, names and addresses (telling
    /// the sites). Default 90.
    pub retention_days: u32,
}

impl Default for PrivacySection {
    fn default() -> Self {
        Self { retention_days: 90 }
    }
}

/// A site capability as the sites file and a site's config spell it.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CapabilityName {
    Testing,
    Refurbish,
    Recycle,
    Resale,
    ReturnToVendor,
}

impl From<Capability> for CapabilityName {
    fn from(c: Capability) -> Self {
        match c {
            Capability::Testing => CapabilityName::Testing,
            Capability::Refurbish => CapabilityName::Refurbish,
            Capability::Recycle => CapabilityName::Recycle,
            Capability::Resale => CapabilityName::Resale,
            Capability::ReturnToVendor => CapabilityName::ReturnToVendor,
        }
    }
}

impl From<CapabilityName> for Capability {
    fn from(c: CapabilityName) -> Self {
        match c {
            CapabilityName::Testing => Capability::Testing,
            CapabilityName::Refurbish => Capability::Refurbish,
            CapabilityName::Recycle => Capability::Recycle,
            CapabilityName::Resale => Capability::Resale,
            CapabilityName::ReturnToVendor => Capability::ReturnToVendor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)] // Only deserialized.
    struct Outer {
        inner: Inner,
    }
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)] // Only deserialized.
    struct Inner {
        batch_ops_max: u32,
    }

    #[test]
    fn misspelt_key_is_named_with_its_path() {
        let err = parse_toml::<Outer>(Path::new("x.toml"), "[inner]\nbatch_op_max = 3\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("x.toml"), "{err}");
        assert!(err.contains("batch_op_max"), "{err}");
        assert!(err.contains("inner"), "{err}");
    }

    #[test]
    fn wrong_type_is_named_with_its_path() {
        let err = parse_toml::<Outer>(Path::new("x.toml"), "[inner]\nbatch_ops_max = \"many\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("inner.batch_ops_max"), "{err}");
    }
}
