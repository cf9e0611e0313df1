// SPDX-License-Identifier: Apache-2.0
//! Reading a configuration file: YAML with line/column errors, and the environment seen through a
//! trait so tests never touch the process environment.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

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
    fn wrong_type_names_the_field() {
        let err = parse_str("server:\n  resourceUrl: [1]\noutgoingAuth: {}\n").unwrap_err();
        assert!(err.to_string().contains("resourceUrl"), "{err}");
    }
}
