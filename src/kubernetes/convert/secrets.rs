// SPDX-License-Identifier: Apache-2.0
//! Secret references of the resources, as the runtime configuration names them: environment
//! variables the Deployment fills from Secrets (`MCP_AUTHZ_SECRET_<SECRET>_<KEY>`), or files of
//! Secret volumes mounted at [`SECRETS_DIR`]`/<secret>/<key>` (which the server reads again at
//! every reload, so a rotated Secret takes effect without a restart).

use std::collections::HashMap;

use crate::config::Environment;
use crate::kubernetes::crd::SecretKeyRef;

/// Where `--secrets-as files` expects each Secret volume, one directory per Secret.
pub const SECRETS_DIR: &str = "/var/run/secrets/mcp-authz";

/// How secret references reach the server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SecretsAs {
    /// `…Env` fields, filled by the Deployment's `env` from Secrets.
    #[default]
    Env,
    /// `…File` fields, files of mounted Secret volumes.
    Files,
}

/// An environment variable the Deployment fills from a Secret.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct EnvFromSecret {
    /// Variable name.
    pub env: String,
    /// Secret name.
    pub secret: String,
    /// Key in the Secret.
    pub key: String,
}

/// Secret references met during conversion.
#[derive(Debug, Default)]
pub struct Secrets {
    mode: SecretsAs,
    refs: Vec<EnvFromSecret>,
    /// Every (secret, key) given as a file whatever the mode, by [`Secrets::file`].
    paths: Vec<(String, String)>,
}

/// Where `key` of Secret `secret` is mounted.
fn path_of(secret: &str, key: &str) -> String {
    format!("{SECRETS_DIR}/{secret}/{key}")
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// Whether `s` is a Kubernetes Secret name or key (`[-._a-zA-Z0-9]+`, not `.` or `..`), and so
/// one safe path component.
fn path_component(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
}

impl Secrets {
    /// No references yet; they will be given as `mode` says.
    pub fn new(mode: SecretsAs) -> Self {
        Self {
            mode,
            ..Self::default()
        }
    }

    /// The config field and value standing for `secret_ref` in place of the inline field
    /// `field`: (`{field}Env`, variable) or (`{field}File`, path).
    pub fn source(&mut self, field: &str, secret_ref: &SecretKeyRef) -> (String, String) {
        let env = format!(
            "MCP_AUTHZ_SECRET_{}_{}",
            sanitize(&secret_ref.name),
            sanitize(&secret_ref.key)
        );
        let entry = EnvFromSecret {
            env: env.clone(),
            secret: secret_ref.name.clone(),
            key: secret_ref.key.clone(),
        };
        if !self.refs.contains(&entry) {
            self.refs.push(entry);
        }
        match self.mode {
            SecretsAs::Env => (format!("{field}Env"), env),
            SecretsAs::Files => (
                format!("{field}File"),
                path_of(&secret_ref.name, &secret_ref.key),
            ),
        }
    }

    /// The path of `secret_ref` in its mounted volume (for what is always a file, like a key);
    /// its Secret is listed for mounting.
    pub fn file(&mut self, secret_ref: &SecretKeyRef) -> String {
        self.paths
            .push((secret_ref.name.clone(), secret_ref.key.clone()));
        path_of(&secret_ref.name, &secret_ref.key)
    }

    /// An environment in which every reference resolves (the values arrive at runtime).
    pub(super) fn placeholders(&self) -> Placeholders {
        let mut vars = HashMap::new();
        let mut files = Vec::new();
        for r in &self.refs {
            vars.insert(r.env.clone(), "from-secret".to_owned());
            files.push(path_of(&r.secret, &r.key));
        }
        Placeholders { vars, files }
    }

    /// The variables to set (env mode) or the Secrets to mount (files mode), sorted.
    ///
    /// # Errors
    /// Two references that map to the same variable, or a name or key that is not one path
    /// component.
    pub(super) fn finish(self) -> Result<(Vec<EnvFromSecret>, Vec<String>), String> {
        let mut env = self.refs;
        env.sort();
        let as_files = self.mode == SecretsAs::Files;
        let files = env
            .iter()
            .filter(|_| as_files)
            .map(|r| (&r.secret, &r.key))
            .chain(self.paths.iter().map(|(secret, key)| (secret, key)));
        if let Some((secret, key)) = files
            .clone()
            .find(|(s, k)| !path_component(s) || !path_component(k))
        {
            return Err(format!(
                "secret {secret:?} key {key:?} is not a Kubernetes Secret name and key"
            ));
        }
        let mut mounts: Vec<String> = files.map(|(secret, _)| secret.clone()).collect();
        mounts.sort();
        mounts.dedup();
        if mounts.iter().any(|m| m == "signing-key") {
            return Err(
                "a Secret named signing-key would be mounted where the signing key is: rename it"
                    .to_owned(),
            );
        }
        if as_files {
            return Ok((Vec::new(), mounts));
        }
        if let Some(pair) = env.windows(2).find(|w| w[0].env == w[1].env) {
            return Err(format!(
                "secret {:?} key {:?} and secret {:?} key {:?} both map to {}: rename one",
                pair[0].secret, pair[0].key, pair[1].secret, pair[1].key, pair[0].env
            ));
        }
        Ok((env, mounts))
    }
}

/// The validation environment of a conversion: every referenced variable and file exists.
pub(super) struct Placeholders {
    vars: HashMap<String, String>,
    files: Vec<String>,
}

impl Environment for Placeholders {
    fn var(&self, name: &str) -> Option<String> {
        self.vars.get(name).cloned()
    }

    fn snapshot(&self) -> HashMap<String, String> {
        self.vars.clone()
    }

    fn read_file(&self, path: &str, _limit: u64) -> std::io::Result<Vec<u8>> {
        if self.files.iter().any(|f| f == path) {
            Ok(b"from-secret".to_vec())
        } else {
            Err(std::io::Error::from(std::io::ErrorKind::NotFound))
        }
    }
}
