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

/// Where `…Env` and `…File` references are resolved.
pub trait Environment: Send + Sync {
    /// The variable's value, if set.
    fn var(&self, name: &str) -> Option<String>;

    /// Every variable, so that validation can run on another thread.
    fn snapshot(&self) -> HashMap<String, String>;

    /// The first `limit` bytes of a file (more means the file is over the limit).
    ///
    /// # Errors
    /// The file cannot be opened or read.
    fn read_file(&self, path: &str, limit: u64) -> std::io::Result<Vec<u8>> {
        use std::io::Read;
        let mut bytes = Vec::new();
        std::fs::File::open(path)?
            .take(limit)
            .read_to_end(&mut bytes)?;
        Ok(bytes)
    }
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Environment for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }

    fn snapshot(&self) -> HashMap<String, String> {
        // A variable that is not UTF-8 cannot be a value we use, as `var` agrees.
        std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect()
    }
}

impl Environment for HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }

    fn snapshot(&self) -> HashMap<String, String> {
        self.clone()
    }
}

/// Largest configuration file read (16 MiB: hundreds of thousands of backends).
pub const MAX_CONFIG_BYTES: usize = 16 * 1024 * 1024;
/// Deepest nesting of `[`/`{` accepted; the schema itself needs six.
pub const MAX_FLOW_DEPTH: usize = 64;

/// Parses YAML text into a [`Config`]; unknown fields and type errors carry line and column.
/// The size and the nesting depth are bounded first, so parsing stays linear in the input.
///
/// # Errors
/// [`ConfigError::Parse`] with the parser's message.
pub fn parse_str(text: &str) -> Result<Config, ConfigError> {
    if text.len() > MAX_CONFIG_BYTES {
        return Err(ConfigError::Parse(format!(
            "the file is {} bytes; at most {MAX_CONFIG_BYTES} are read",
            text.len()
        )));
    }
    if let Some(line) = too_deep(text) {
        return Err(ConfigError::Parse(format!(
            "nesting deeper than {MAX_FLOW_DEPTH} levels at line {line}"
        )));
    }
    yaml_serde::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))
}

/// The line where `[`/`{` nesting first exceeds [`MAX_FLOW_DEPTH`], outside quotes and comments.
/// Block nesting is bounded by the file size (each level indents further); the parser's own
/// recursion limit then applies.
fn too_deep(text: &str) -> Option<usize> {
    let (mut depth, mut line) = (0usize, 1usize);
    let mut quote: Option<u8> = None;
    let mut comment = false;
    let mut escaped = false;
    let mut previous = b'\n';
    for &b in text.as_bytes() {
        let starts_token = previous.is_ascii_whitespace() || b"[{,:".contains(&previous);
        match (quote, b) {
            // A quoted scalar may span lines; it still ends at its quote.
            (_, b'\n') => {
                line += 1;
                comment = false;
            }
            _ if comment => {}
            (Some(b'"'), _) if escaped => escaped = false,
            (Some(b'"'), b'\\') => escaped = true,
            (Some(q), _) if b == q => quote = None,
            (Some(_), _) => {}
            // Only at the start of a token: `it's` in a plain scalar opens nothing.
            (None, b'\'' | b'"') if starts_token => quote = Some(b),
            (None, b'#') if previous.is_ascii_whitespace() => comment = true,
            (None, b'[' | b'{') => {
                depth += 1;
                if depth > MAX_FLOW_DEPTH {
                    return Some(line);
                }
            }
            (None, b']' | b'}') => depth = depth.saturating_sub(1),
            _ => {}
        }
        previous = b;
    }
    None
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
    fn a_file_nested_too_deep_or_too_large_is_refused_before_parsing() {
        let deep = format!(
            "server: {{ resourceUrl: https://x/mcp }}\noutgoingAuth: {}{}\n",
            "[".repeat(50_000),
            "]".repeat(50_000)
        );
        let msg = parse_str(&deep).unwrap_err().to_string();
        assert!(
            msg.contains("nesting deeper than 64 levels at line 2"),
            "{msg}"
        );
        // Brackets inside quotes and comments do not count.
        let quoted = format!(
            "server: {{ resourceUrl: \"https://x/mcp{}\" }} # {}\noutgoingAuth: {{}}\n",
            "[".repeat(100),
            "{".repeat(100)
        );
        assert!(parse_str(&quoted).is_ok(), "{:?}", parse_str(&quoted).err());
        let large = format!("# {}\n", "x".repeat(MAX_CONFIG_BYTES));
        let msg = parse_str(&large).unwrap_err().to_string();
        assert!(msg.contains("at most 16777216 are read"), "{msg}");
    }

    #[test]
    fn wrong_type_names_the_field() {
        let err = parse_str("server:\n  resourceUrl: [1]\noutgoingAuth: {}\n").unwrap_err();
        assert!(err.to_string().contains("resourceUrl"), "{err}");
    }
}
