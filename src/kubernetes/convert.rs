// SPDX-License-Identifier: Apache-2.0
//! Resources → the runtime configuration file.
//!
//! One [`Registry`] holds a [`Converter`] per `spec.type`. Secret references become environment
//! variables (`MCP_AUTHZ_SECRET_<SECRET>_<KEY>`, listed in [`Converted::env`] for the
//! Deployment) or, for the signing key, a file in a mounted Secret volume. The result then goes
//! through every §5 rule, exactly like a hand-written file.

use std::collections::HashMap;

use serde_json::Value;

use super::crd::{MCPAuthzServer, MCPExternalAuthConfig};
use crate::config::{self, Violation};

mod authz_server;
mod external_auth;
mod secrets;

pub use external_auth::{
    check_sub_objects, Converter, HeaderInjectionConverter, Registry, TokenExchangeConverter,
    UnauthenticatedConverter, UpstreamInjectConverter,
};
pub use secrets::{EnvFromSecret, Secrets, SecretsAs, SECRETS_DIR};

/// Where the signing-key Secret is mounted in the Deployment.
pub const SIGNING_KEY_DIR: &str = "/var/run/secrets/mcp-authz/signing-key";

/// Why resources could not be converted.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// A YAML document could not be read.
    #[error("document {index}: {message}")]
    Document {
        /// 1-based document number.
        index: usize,
        /// What is wrong.
        message: String,
    },
    /// The input as a whole is unusable.
    #[error("{0}")]
    Input(&'static str),
    /// A resource is inconsistent (missing or mismatched sub-object, dangling reference).
    #[error("{resource}: {message}")]
    Resource {
        /// `Kind/name`.
        resource: String,
        /// What is wrong.
        message: String,
    },
    /// The converted configuration breaks §5 rules.
    #[error("the converted configuration is invalid:\n{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Violation>),
}

/// The conversion's output.
#[derive(Debug)]
pub struct Converted {
    /// The runtime configuration (a YAML document).
    pub config_yaml: String,
    /// Variables the Deployment must set from Secrets, sorted (`--secrets-as env`).
    pub env: Vec<EnvFromSecret>,
    /// Secrets the Deployment must mount at `SECRETS_DIR/<name>`, sorted (`--secrets-as
    /// files`).
    pub mounts: Vec<String>,
    /// The Secret to mount at [`SIGNING_KEY_DIR`], if any.
    pub signing_key_secret: Option<String>,
    /// Warnings from validation.
    pub warnings: Vec<Violation>,
}

/// Reads a multi-document YAML of one `MCPAuthzServer` and its `MCPExternalAuthConfig`s and
/// builds the runtime configuration with secrets as environment variables, then validates it
/// (secrets count as set).
///
/// # Errors
/// [`ConvertError`] with the document, resource or rule at fault.
pub fn convert_resources(text: &str, registry: &Registry) -> Result<Converted, ConvertError> {
    convert_resources_as(text, registry, SecretsAs::Env)
}

/// [`convert_resources`] with secrets as `mode` says: environment variables, or files of
/// mounted Secret volumes (read again at every reload).
///
/// # Errors
/// [`ConvertError`] with the document, resource or rule at fault.
pub fn convert_resources_as(
    text: &str,
    registry: &Registry,
    mode: SecretsAs,
) -> Result<Converted, ConvertError> {
    let mut servers = Vec::new();
    let mut configs: HashMap<(String, String), MCPExternalAuthConfig> = HashMap::new();
    for (i, document) in yaml_serde::Deserializer::from_str(text).enumerate() {
        let index = i + 1;
        let doc_error = |message: String| ConvertError::Document { index, message };
        // Through YAML's own value first: it refuses a key given twice in any mapping, which a
        // JSON value would let the later one win.
        let yaml: yaml_serde::Value =
            serde::Deserialize::deserialize(document).map_err(|e| doc_error(e.to_string()))?;
        let value: Value = serde_json::to_value(&yaml).map_err(|e| doc_error(e.to_string()))?;
        if value.is_null() {
            continue;
        }
        // `kubectl get -o yaml` prints several objects as one `kind: List`.
        let items = match value.get("kind").and_then(Value::as_str) {
            Some("List") => value
                .get("items")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
            _ => vec![value],
        };
        for item in items {
            match item.get("kind").and_then(Value::as_str) {
                Some("MCPAuthzServer") => servers.push(
                    serde_json::from_value::<MCPAuthzServer>(item)
                        .map_err(|e| doc_error(format!("MCPAuthzServer: {e}")))?,
                ),
                Some("MCPExternalAuthConfig") => {
                    let resource: MCPExternalAuthConfig = serde_json::from_value(item)
                        .map_err(|e| doc_error(format!("MCPExternalAuthConfig: {e}")))?;
                    let key = (
                        resource.metadata.namespace.clone().unwrap_or_default(),
                        resource.metadata.name.clone().unwrap_or_default(),
                    );
                    configs.insert(key, resource);
                }
                // Secrets, Deployments and the like may share the file.
                Some(_) => {}
                None => return Err(doc_error("not a Kubernetes resource (no kind)".to_owned())),
            }
        }
    }
    let server = match servers.as_slice() {
        [server] => server,
        [] => return Err(ConvertError::Input("no MCPAuthzServer in the input")),
        _ => {
            return Err(ConvertError::Input(
                "more than one MCPAuthzServer in the input",
            ))
        }
    };
    let mut secrets = Secrets::new(mode);
    let (config, signing_key_secret) =
        authz_server::runtime_config(server, &configs, registry, &mut secrets)?;
    let resource_error = |message: String| ConvertError::Resource {
        resource: authz_server::resource_name(server),
        message,
    };
    let config_yaml = yaml_serde::to_string(&config).map_err(|e| resource_error(e.to_string()))?;
    // Secrets arrive at runtime; for validation they count as set.
    let parsed = config::parse_str(&config_yaml).map_err(|e| resource_error(e.to_string()))?;
    let violations = config::validate(&parsed, &secrets.placeholders());
    if violations.iter().any(Violation::is_error) {
        return Err(ConvertError::Invalid(violations));
    }
    let (env, mounts) = secrets.finish().map_err(resource_error)?;
    Ok(Converted {
        config_yaml,
        env,
        mounts,
        signing_key_secret,
        warnings: violations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn resources(extra: &str) -> String {
        format!(
            r#"
apiVersion: mcp-authz.dev/v1alpha1
kind: MCPAuthzServer
metadata: {{ name: s, namespace: mcp }}
spec:
  resourceUrl: https://mcp.example.com/mcp
  authServer:
    issuer: https://mcp.example.com
    allowedAudiences: [https://mcp.example.com/mcp]
    upstreams:
      - name: okta
        type: oidc
        oidc: {{ issuerUrl: https://okta.example.com, clientId: c, clientSecretRef: {{ name: okta-oauth, key: client.secret }} }}
  backends:
    - {{ name: jira, externalAuthConfigRef: {{ name: jira }} }}
---
apiVersion: mcp-authz.dev/v1alpha1
kind: MCPExternalAuthConfig
metadata: {{ name: jira, namespace: mcp }}
spec:
{extra}
"#
        )
    }

    #[test]
    fn secrets_become_environment_variables_listed_for_the_deployment() {
        let text = resources(
            "  type: tokenExchange\n  tokenExchange: { tokenUrl: https://sts.example.com/token, clientId: c, clientSecretRef: { name: sts-client, key: secret }, subjectTokenType: jwt, subjectProviderName: okta }",
        );
        let converted = convert_resources(&text, &Registry::standard()).unwrap();
        let envs: Vec<_> = converted.env.iter().map(|e| e.env.as_str()).collect();
        assert_eq!(
            envs,
            vec![
                "MCP_AUTHZ_SECRET_OKTA_OAUTH_CLIENT_SECRET",
                "MCP_AUTHZ_SECRET_STS_CLIENT_SECRET"
            ]
        );
        let config: Value = yaml_serde::from_str(&converted.config_yaml).unwrap();
        let te = &config["outgoingAuth"]["backends"]["jira"]["tokenExchange"];
        assert_eq!(te["clientSecretEnv"], "MCP_AUTHZ_SECRET_STS_CLIENT_SECRET");
        assert_eq!(
            te["subjectTokenType"],
            "urn:ietf:params:oauth:token-type:jwt"
        );
        assert_eq!(
            config["incomingAuth"]["oidc"]["issuer"],
            "https://mcp.example.com"
        );
        assert!(
            !converted.config_yaml.contains("secret:"),
            "no secret value, only names"
        );
    }

    #[test]
    fn a_mismatched_or_missing_sub_object_is_named() {
        let cases = [
            (
                "  type: upstreamInject\n  headerInjection: { headerName: x, valueSecretRef: { name: a, key: b } }",
                "upstreamInject configuration must be set if and only if type is 'upstreamInject'",
            ),
            (
                "  type: unauthenticated\n  upstreamInject: { providerName: okta }",
                "no configuration must be set when type is 'unauthenticated'",
            ),
            (
                "  type: tokenExchange",
                "tokenExchange configuration must be set if and only if type is 'tokenExchange'",
            ),
        ];
        for (spec, expected) in cases {
            let err = convert_resources(&resources(spec), &Registry::standard()).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("MCPExternalAuthConfig/jira: {expected}")
            );
        }
    }

    #[test]
    fn the_section_5_rules_run_after_conversion() {
        // V-02: the provider is not an upstream of the server.
        let err = convert_resources(
            &resources("  type: upstreamInject\n  upstreamInject: { providerName: github }"),
            &Registry::standard(),
        )
        .unwrap_err();
        let ConvertError::Invalid(violations) = err else {
            panic!("{err}")
        };
        assert_eq!(
            violations[0].to_string(),
            "V-02 outgoingAuth.backends.jira.upstreamInject.providerName: providerName \"github\" not found in authServer.upstreams (known: okta)"
        );
    }

    #[test]
    fn secret_references_that_would_share_a_variable_are_refused() {
        let text = resources(
            "  type: tokenExchange\n  tokenExchange: { tokenUrl: https://sts.example.com/token, clientId: c, clientSecretRef: { name: okta, key: oauth-client.secret } }",
        );
        let err = convert_resources(&text, &Registry::standard()).unwrap_err();
        assert!(
            err.to_string()
                .contains("both map to MCP_AUTHZ_SECRET_OKTA_OAUTH_CLIENT_SECRET"),
            "{err}"
        );
    }

    #[test]
    fn dangling_references_and_server_count_are_errors() {
        let text = resources("  type: unauthenticated").replace("name: jira }", "name: nope }");
        let err = convert_resources(&text, &Registry::standard()).unwrap_err();
        assert!(
            err.to_string()
                .contains("\"nope\", which is not in the input"),
            "{err}"
        );
        let err = convert_resources("kind: Secret\n", &Registry::standard()).unwrap_err();
        assert_eq!(err.to_string(), "no MCPAuthzServer in the input");
        let twice = resources("  type: unauthenticated").replace(
            "  backends:\n",
            "  backends:\n    - { name: jira, externalAuthConfigRef: { name: jira } }\n",
        );
        let err = convert_resources(&twice, &Registry::standard()).unwrap_err();
        assert!(
            err.to_string().contains("backend \"jira\" is listed twice"),
            "{err}"
        );
    }

    #[test]
    fn a_key_given_twice_in_a_resource_is_refused() {
        let text = resources("  type: tokenExchange\n  type: unauthenticated");
        let err = convert_resources(&text, &Registry::standard()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("document 2: "), "{msg}");
        assert!(msg.contains("duplicate entry with key \"type\""), "{msg}");
        assert!(msg.contains("line"), "{msg}");
    }

    #[test]
    fn a_kubectl_list_is_read_item_by_item() {
        let docs: Vec<Value> =
            yaml_serde::Deserializer::from_str(&resources("  type: unauthenticated"))
                .map(|d| serde::Deserialize::deserialize(d).unwrap())
                .collect();
        let list =
            yaml_serde::to_string(&json!({ "apiVersion": "v1", "kind": "List", "items": docs }))
                .unwrap();
        assert!(convert_resources(&list, &Registry::standard()).is_ok());
    }
}
