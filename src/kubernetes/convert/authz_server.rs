// SPDX-License-Identifier: Apache-2.0
//! `MCPAuthzServer` → the runtime configuration, with each referenced `MCPExternalAuthConfig`
//! converted through the [`Registry`].

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use super::{ConvertError, Registry, Secrets, SIGNING_KEY_DIR};
use crate::kubernetes::crd::{MCPAuthzServer, MCPExternalAuthConfig, UpstreamKind, UpstreamSpec};

/// `MCPAuthzServer/<name>`, as errors name it.
pub(super) fn resource_name(server: &MCPAuthzServer) -> String {
    format!(
        "MCPAuthzServer/{}",
        server.metadata.name.as_deref().unwrap_or("<unnamed>")
    )
}

/// The runtime configuration for `server` and the Secret holding its signing key, if any.
/// `configs` are the input's `MCPExternalAuthConfig`s by (namespace, name).
pub(super) fn runtime_config(
    server: &MCPAuthzServer,
    configs: &HashMap<(String, String), MCPExternalAuthConfig>,
    registry: &Registry,
    secrets: &mut Secrets,
) -> Result<(Value, Option<String>), ConvertError> {
    let server_name = resource_name(server);
    let namespace = server.metadata.namespace.clone().unwrap_or_default();
    let resource_error = |message: String| ConvertError::Resource {
        resource: server_name.clone(),
        message,
    };
    let spec = &server.spec;

    let lookup = |name: &str| {
        configs
            .get(&(namespace.clone(), name.to_owned()))
            .ok_or_else(|| {
                resource_error(format!(
                    "references MCPExternalAuthConfig {name:?}, which is not in the input (namespace {namespace:?})"
                ))
            })
    };
    let mut backends = Map::new();
    for backend in &spec.backends {
        if backends.contains_key(&backend.name) {
            return Err(resource_error(format!(
                "backend {:?} is listed twice",
                backend.name
            )));
        }
        let resource = lookup(&backend.external_auth_config_ref.name)?;
        backends.insert(backend.name.clone(), registry.convert(resource, secrets)?);
    }
    let mut outgoing = json!({ "backends": backends });
    if let Some(default) = &spec.default_external_auth_config_ref {
        outgoing["default"] = registry.convert(lookup(&default.name)?, secrets)?;
    }

    let mut config = json!({
        // In a pod: reachable from Envoy's pods, and a delay so endpoints are removed before
        // the listeners close (docs/operations.md, graceful shutdown).
        "server": {
            "grpcAddr": "0.0.0.0:9191",
            "httpAddr": "0.0.0.0:9090",
            "resourceUrl": spec.resource_url,
            "shutdownDelaySeconds": 5,
        },
        "outgoingAuth": outgoing,
    });
    let mut signing_key_secret = None;
    if let Some(a) = &spec.auth_server {
        let mut upstreams = Vec::new();
        for u in &a.upstreams {
            upstreams.push(
                upstream(u, secrets)
                    .map_err(|m| resource_error(format!("upstream {:?}: {m}", u.name)))?,
            );
        }
        let mut auth = json!({
            "issuer": a.issuer,
            "allowedAudiences": a.allowed_audiences,
            "upstreams": upstreams,
        });
        if let Some(key) = &a.signing_key_secret_ref {
            auth["signingKeyFile"] = format!("{SIGNING_KEY_DIR}/{}", key.key).into();
            signing_key_secret = Some(key.name.clone());
        }
        if !a.previous_signing_key_secret_refs.is_empty() {
            // Key files whatever `--secrets-as` says: a key is a file.
            let files: Vec<String> = a
                .previous_signing_key_secret_refs
                .iter()
                .map(|r| secrets.file(r))
                .collect();
            auth["previousSigningKeyFiles"] = files.into();
        }
        if let Some(storage) = &a.storage {
            auth["storage"] = serde_json::to_value(storage)
                .map_err(|e| resource_error(format!("storage: {e}")))?;
            if let (Some(redis), Some(out)) = (
                &storage.redis,
                auth["storage"]
                    .get_mut("redis")
                    .and_then(Value::as_object_mut),
            ) {
                out.remove("passwordSecretRef");
                out.remove("tls");
                if let Some(secret) = &redis.password_secret_ref {
                    let (field, value) = secrets.source("password", secret);
                    out.insert(field, value.into());
                }
                if let Some(tls) = &redis.tls {
                    // Certificates are files whatever `--secrets-as` says.
                    let mut files = Map::new();
                    for (field, secret) in [
                        ("caFile", &tls.ca_secret_ref),
                        ("certFile", &tls.cert_secret_ref),
                        ("keyFile", &tls.key_secret_ref),
                    ] {
                        if let Some(secret) = secret {
                            files.insert(field.into(), secrets.file(secret).into());
                        }
                    }
                    out.insert("tls".into(), files.into());
                }
            }
        }
        config["authServer"] = auth;
    }
    let incoming = match (&spec.incoming_auth, &spec.auth_server) {
        (Some(i), _) => {
            let mut oidc = json!({ "issuer": i.issuer, "audience": i.audience });
            if let Some(url) = &i.jwks_url {
                oidc["jwksUrl"] = url.as_str().into();
            }
            oidc
        }
        (None, Some(a)) => json!({ "issuer": a.issuer, "audience": spec.resource_url }),
        (None, None) => {
            return Err(resource_error(
                "incomingAuth is required without authServer".to_owned(),
            ))
        }
    };
    config["incomingAuth"] = json!({ "type": "oidc", "oidc": incoming });
    Ok((config, signing_key_secret))
}

fn upstream(u: &UpstreamSpec, secrets: &mut Secrets) -> Result<Value, String> {
    let (section, body) = match (u.kind, &u.oauth2, &u.oidc) {
        (UpstreamKind::Oauth2, Some(o), None) => {
            let mut body = json!({
                "authorizationEndpoint": o.authorization_endpoint,
                "tokenEndpoint": o.token_endpoint,
                "clientId": o.client_id,
                "scopes": o.scopes,
            });
            if let Some(secret) = &o.client_secret_ref {
                let (field, value) = secrets.source("clientSecret", secret);
                body[field] = value.into();
            }
            if let Some(method) = o.token_endpoint_auth_method {
                body["tokenEndpointAuthMethod"] = json!(method);
            }
            if let Some(info) = &o.user_info {
                body["userInfo"] = json!({ "url": info.url, "subjectField": info.subject_field });
            }
            ("oauth2", body)
        }
        (UpstreamKind::Oidc, None, Some(o)) => {
            let mut body = json!({
                "issuerUrl": o.issuer_url,
                "clientId": o.client_id,
                "scopes": o.scopes,
            });
            if let Some(secret) = &o.client_secret_ref {
                let (field, value) = secrets.source("clientSecret", secret);
                body[field] = value.into();
            }
            if let Some(method) = o.token_endpoint_auth_method {
                body["tokenEndpointAuthMethod"] = json!(method);
            }
            if let Some(claim) = &o.subject_claim {
                body["subjectClaim"] = claim.as_str().into();
            }
            ("oidc", body)
        }
        (UpstreamKind::Oauth2, _, _) => {
            return Err("oauth2 configuration must be set if and only if type is 'oauth2'".into())
        }
        (UpstreamKind::Oidc, _, _) => {
            return Err("oidc configuration must be set if and only if type is 'oidc'".into())
        }
    };
    let kind = match u.kind {
        UpstreamKind::Oauth2 => "oauth2",
        UpstreamKind::Oidc => "oidc",
    };
    let mut out = json!({ "name": u.name, "type": kind, section: body });
    if let Some(required) = u.required {
        out["required"] = required.into();
    }
    if !u.additional_authorization_params.is_empty() {
        out["additionalAuthorizationParams"] = json!(u.additional_authorization_params);
    }
    Ok(out)
}
