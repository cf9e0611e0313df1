// SPDX-License-Identifier: Apache-2.0
//! Reading a configuration file: YAML with line/column errors, and the environment seen through a
//! trait so tests never touch the process environment.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use serde::de::{self, DeserializeSeed, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::{Config, Violation};

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The YAML is malformed or does not fit the schema (unknown field, wrong type…).
    #[error("invalid config: {0}")]
    Parse(String),
    /// The file parsed but breaks validation rules; every violation is listed.
    #[error("config has {} error(s)", .0.iter().filter(|v| v.is_error()).count())]
    Invalid(Vec<Violation>),
    /// A file the config refers to (key, JWKS) could not be used.
    #[error("{path}: {message}")]
    Resource {
        /// Config path of the reference, e.g. `authServer.signingKeyFile`.
        path: String,
        /// What is wrong, without any secret.
        message: String,
    },
}

/// Where `*Env` references are resolved.
pub trait Environment: Send + Sync {
    /// The variable's value, if set.
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Environment for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl Environment for HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

/// Parses YAML text into a [`Config`]; unknown fields and type errors carry line and column.
///
/// # Errors
/// [`ConfigError::Parse`] with the parser's message.
pub fn parse_str(text: &str) -> Result<Config, ConfigError> {
    yaml_serde::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))
}

/// `deserialize_with` for a map whose keys must be unique: a duplicate is refused at its own line
/// and column instead of silently replacing the first entry. (Struct fields are refused twice by
/// serde itself.)
pub(super) fn unique_keys<'de, D, V>(d: D) -> Result<BTreeMap<String, V>, D::Error>
where
    D: Deserializer<'de>,
    V: Deserialize<'de>,
{
    struct Entries<V>(PhantomData<V>);

    impl<'de, V: Deserialize<'de>> Visitor<'de> for Entries<V> {
        type Value = BTreeMap<String, V>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a map")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut entries = BTreeMap::new();
            while let Some(key) = map.next_key_seed(NewKey(&entries))? {
                let value = map.next_value()?;
                entries.insert(key, value);
            }
            Ok(entries)
        }
    }

    d.deserialize_map(Entries(PhantomData))
}

/// A map key that must not be in the map yet; checked while the parser still knows where the key
/// is, so the error carries its position.
struct NewKey<'a, V>(&'a BTreeMap<String, V>);

impl<'de, V> DeserializeSeed<'de> for NewKey<'_, V> {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_str(self)
    }
}

impl<V> Visitor<'_> for NewKey<'_, V> {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<String, E> {
        if self.0.contains_key(key) {
            return Err(E::custom(format_args!(
                "duplicate key {key:?} (each key may appear once)"
            )));
        }
        Ok(key.to_owned())
    }
}

/// Reads and parses a file. Relative paths inside the config stay relative to the working
/// directory, as operators expect from a command line.
///
/// # Errors
/// [`ConfigError::Read`] or [`ConfigError::Parse`].
pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_str(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_field_is_rejected_with_line_and_column() {
        let err =
            parse_str("server:\n  resourceUrl: https://x/mcp\n  grpcAdr: 1\noutgoingAuth: {}\n")
                .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("unknown field `grpcAdr`"), "{msg}");
        assert!(msg.contains("line 3 column 3"), "{msg}");
    }

    #[test]
    fn a_backend_defined_twice_is_refused_at_the_second_definition() {
        let text = "server: { resourceUrl: https://x/mcp }\noutgoingAuth:\n  backends:\n    github: { type: upstream_inject, upstreamInject: { providerName: github } }\n    public: { type: unauthenticated }\n    github: { type: unauthenticated }\n";
        let msg = parse_str(text).unwrap_err().to_string();
        assert!(msg.contains("duplicate key \"github\""), "{msg}");
        assert!(msg.contains("line 6 column 5"), "{msg}");
    }

    #[test]
    fn a_field_given_twice_is_refused() {
        let text = "server: { resourceUrl: https://x/mcp }\noutgoingAuth:\n  backends:\n    github: { type: upstream_inject, type: unauthenticated }\n";
        let msg = parse_str(text).unwrap_err().to_string();
        assert!(msg.contains("duplicate field `type`"), "{msg}");
        assert!(msg.contains("line 4"), "{msg}");
    }

    #[test]
    fn wrong_type_names_the_field() {
        let err = parse_str("server:\n  resourceUrl: [1]\noutgoingAuth: {}\n").unwrap_err();
        assert!(err.to_string().contains("resourceUrl"), "{err}");
    }
}
