// SPDX-License-Identifier: Apache-2.0
//! Secret sources (DESIGN.md §12): a secret is given inline, by an environment variable
//! (`…Env`) or by a file (`…File`, how Kubernetes mounts a Secret), exactly one of them. The
//! file is read on every validation, so at boot and at every reload.

use super::Violations;
use crate::config::{Environment, InlineSecret};
use crate::secret::Token;

/// Largest secret file read.
const MAX_SECRET_FILE_BYTES: u64 = 64 * 1024;

/// The three ways of giving one secret; `name` is the inline field (`clientSecret`), the
/// others are `{name}Env` and `{name}File`.
pub(super) struct SecretFields<'a> {
    /// The inline field's name.
    pub name: &'static str,
    /// The inline value; `None` when the secret has no inline field.
    pub inline: Option<&'a Option<InlineSecret>>,
    /// The environment variable's name.
    pub env: &'a Option<String>,
    /// The file's path.
    pub file: &'a Option<String>,
}

/// Checks one secret and returns its value when exactly one source is given and readable.
/// `required`: whether a missing secret is an error.
pub(super) fn secret_source(
    rule: &'static str,
    path: &str,
    fields: SecretFields<'_>,
    required: bool,
    env: &dyn Environment,
    v: &mut Violations,
) -> Option<Token> {
    let name = fields.name;
    let inline = fields.inline.unwrap_or(&None);
    let given = [
        inline.is_some(),
        fields.env.is_some(),
        fields.file.is_some(),
    ];
    let count = given.iter().filter(|g| **g).count();
    if count > 1 || (count == 0 && required) {
        let message = match fields.inline {
            Some(_) => format!("exactly one of {name}, {name}Env and {name}File must be set"),
            None => format!("at most one of {name}Env and {name}File may be set"),
        };
        v.error(rule, path, message);
        return None;
    }
    if let Some(value) = inline {
        return Some(Token::new(value.expose_secret()));
    }
    if let Some(var) = fields.env {
        return match env.var(var).filter(|value| !value.is_empty()) {
            Some(value) => Some(Token::new(value)),
            None => {
                v.error(
                    rule,
                    format!("{path}.{name}Env"),
                    format!("environment variable {var} is not set or empty"),
                );
                None
            }
        };
    }
    let file = fields.file.as_ref()?;
    match read_secret_file(env, file) {
        Ok(value) => Some(Token::new(value)),
        Err(why) => {
            v.error(rule, format!("{path}.{name}File"), why);
            None
        }
    }
}

/// The file's content as UTF-8 text, with one trailing `\n` or `\r\n` trimmed.
fn read_secret_file(env: &dyn Environment, file: &str) -> Result<String, String> {
    if file.is_empty() {
        return Err("the file path is empty".to_owned());
    }
    let bytes = env
        .read_file(file, MAX_SECRET_FILE_BYTES + 1)
        .map_err(|e| format!("cannot read {file:?}: {e}"))?;
    if bytes.len() as u64 > MAX_SECRET_FILE_BYTES {
        return Err(format!(
            "{file:?} is larger than {MAX_SECRET_FILE_BYTES} bytes"
        ));
    }
    let mut text = String::from_utf8(bytes).map_err(|_| format!("{file:?} is not UTF-8 text"))?;
    if text.ends_with("\r\n") {
        text.truncate(text.len() - 2);
    } else if text.ends_with('\n') {
        text.truncate(text.len() - 1);
    }
    if text.is_empty() {
        return Err(format!("{file:?} is empty"));
    }
    Ok(text)
}
