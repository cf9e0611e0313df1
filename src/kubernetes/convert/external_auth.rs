// SPDX-License-Identifier: Apache-2.0
//! `MCPExternalAuthConfig` → one runtime strategy: a [`Converter`] per `spec.type`, held in a
//! [`Registry`].

use serde_json::{json, Map, Value};

use super::{ConvertError, Secrets};
use crate::config;
use crate::kubernetes::crd::{AuthType, MCPExternalAuthConfig, MCPExternalAuthConfigSpec};

/// Turns one `spec.type` into a runtime strategy (a `outgoingAuth.backends.<name>` value).
pub trait Converter: Sync {
    /// The type it converts.
    fn kind(&self) -> AuthType;

    /// The runtime strategy for `spec`, whose sub-objects have been checked.
    fn convert(&self, spec: &MCPExternalAuthConfigSpec, secrets: &mut Secrets) -> Value;
}

/// `unauthenticated`.
#[derive(Debug)]
pub struct UnauthenticatedConverter;

impl Converter for UnauthenticatedConverter {
    fn kind(&self) -> AuthType {
        AuthType::Unauthenticated
    }

    fn convert(&self, _: &MCPExternalAuthConfigSpec, _: &mut Secrets) -> Value {
        json!({ "type": "unauthenticated" })
    }
}

/// `headerInjection` → `header_injection` with `headerValueEnv` (or `headerValueFile`).
#[derive(Debug)]
pub struct HeaderInjectionConverter;

impl Converter for HeaderInjectionConverter {
    fn kind(&self) -> AuthType {
        AuthType::HeaderInjection
    }

    fn convert(&self, spec: &MCPExternalAuthConfigSpec, secrets: &mut Secrets) -> Value {
        let Some(h) = &spec.header_injection else {
            return Value::Null;
        };
        let (field, value) = secrets.source("headerValue", &h.value_secret_ref);
        let mut body = json!({ "headerName": h.header_name });
        body[field] = value.into();
        json!({ "type": "header_injection", "headerInjection": body })
    }
}

/// `tokenExchange` → `token_exchange`; the short `subjectTokenType` becomes its URN.
#[derive(Debug)]
pub struct TokenExchangeConverter;

impl Converter for TokenExchangeConverter {
    fn kind(&self) -> AuthType {
        AuthType::TokenExchange
    }

    fn convert(&self, spec: &MCPExternalAuthConfigSpec, secrets: &mut Secrets) -> Value {
        let Some(t) = &spec.token_exchange else {
            return Value::Null;
        };
        let mut out = Map::new();
        out.insert("tokenUrl".into(), t.token_url.clone().into());
        let optional = [
            ("clientId", t.client_id.clone()),
            ("audience", t.audience.clone()),
            (
                "subjectTokenType",
                t.subject_token_type.as_deref().map(|k| {
                    config::validate::normalize_subject_token_type(k)
                        .unwrap_or(k)
                        .to_owned()
                }),
            ),
            ("subjectProviderName", t.subject_provider_name.clone()),
        ];
        for (name, value) in optional {
            if let Some(value) = value {
                out.insert(name.into(), value.into());
            }
        }
        if let Some(secret) = &t.client_secret_ref {
            let (field, value) = secrets.source("clientSecret", secret);
            out.insert(field, value.into());
        }
        if !t.scopes.is_empty() {
            out.insert("scopes".into(), t.scopes.clone().into());
        }
        if let Some(ms) = t.timeout_ms {
            out.insert("timeoutMs".into(), ms.into());
        }
        json!({ "type": "token_exchange", "tokenExchange": out })
    }
}

/// `upstreamInject` → `upstream_inject`.
#[derive(Debug)]
pub struct UpstreamInjectConverter;

impl Converter for UpstreamInjectConverter {
    fn kind(&self) -> AuthType {
        AuthType::UpstreamInject
    }

    fn convert(&self, spec: &MCPExternalAuthConfigSpec, _: &mut Secrets) -> Value {
        let Some(u) = &spec.upstream_inject else {
            return Value::Null;
        };
        json!({ "type": "upstream_inject", "upstreamInject": { "providerName": u.provider_name } })
    }
}

/// One converter per type.
pub struct Registry {
    converters: Vec<&'static dyn Converter>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kinds: Vec<_> = self.converters.iter().map(|c| c.kind()).collect();
        f.debug_struct("Registry").field("kinds", &kinds).finish()
    }
}

impl Default for Registry {
    fn default() -> Self {
        Self::standard()
    }
}

impl Registry {
    /// The four converters.
    pub fn standard() -> Self {
        Self {
            converters: vec![
                &UnauthenticatedConverter,
                &HeaderInjectionConverter,
                &TokenExchangeConverter,
                &UpstreamInjectConverter,
            ],
        }
    }

    /// The runtime strategy for one resource.
    ///
    /// # Errors
    /// [`ConvertError::Resource`] for a missing or mismatched sub-object, or a type without a
    /// converter.
    pub fn convert(
        &self,
        resource: &MCPExternalAuthConfig,
        secrets: &mut Secrets,
    ) -> Result<Value, ConvertError> {
        let name = format!(
            "MCPExternalAuthConfig/{}",
            resource.metadata.name.as_deref().unwrap_or("<unnamed>")
        );
        check_sub_objects(&resource.spec).map_err(|message| ConvertError::Resource {
            resource: name.clone(),
            message,
        })?;
        let converter = self
            .converters
            .iter()
            .find(|c| c.kind() == resource.spec.kind)
            .ok_or_else(|| ConvertError::Resource {
                resource: name,
                message: format!("no converter for type {}", resource.spec.kind.as_str()),
            })?;
        Ok(converter.convert(&resource.spec, secrets))
    }
}

/// The CEL rules of the CRD, in Rust: exactly the sub-object matching `type` is set.
///
/// # Errors
/// The rule's message.
pub fn check_sub_objects(spec: &MCPExternalAuthConfigSpec) -> Result<(), String> {
    let present = [
        (AuthType::HeaderInjection, spec.header_injection.is_some()),
        (AuthType::TokenExchange, spec.token_exchange.is_some()),
        (AuthType::UpstreamInject, spec.upstream_inject.is_some()),
    ];
    if spec.kind == AuthType::Unauthenticated {
        if present.iter().any(|(_, set)| *set) {
            return Err("no configuration must be set when type is 'unauthenticated'".to_owned());
        }
        return Ok(());
    }
    let rule = |kind: AuthType| {
        let t = kind.as_str();
        format!("{t} configuration must be set if and only if type is '{t}'")
    };
    // The type's own sub-object first, then any other one.
    if present.iter().any(|(kind, set)| *kind == spec.kind && !set) {
        return Err(rule(spec.kind));
    }
    match present
        .iter()
        .find(|(kind, set)| *kind != spec.kind && *set)
    {
        Some((extra, _)) => Err(rule(*extra)),
        None => Ok(()),
    }
}
