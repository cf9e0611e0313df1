// SPDX-License-Identifier: Apache-2.0
//! Which tools an MCP request calls (DESIGN.md §10), for backends with tool rules.
//!
//! From protocol version 2026-07-28 on, the `Mcp-Method` and `Mcp-Name` headers mirror the body
//! and the MCP server must refuse a request whose headers and body disagree, so the headers are
//! enough. For an older or absent version nothing enforces that, so the JSON-RPC body Envoy sent
//! is read instead, and headers that disagree with it are refused.

use std::borrow::Cow;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::Deserialize;

use super::request::CheckInput;

/// The first protocol version whose servers validate the mirrored headers against the body.
pub const HEADER_VALIDATION_VERSION: &str = "2026-07-28";

/// Largest body read for tool rules; Envoy's `max_request_bytes` should be at most this.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Why the tools a request calls cannot be known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum McpError {
    /// No body, a partial body, one that is not a JSON-RPC message, or missing headers.
    #[error("cannot tell which tool the request calls: {0}")]
    Unverifiable(&'static str),
    /// On a version that does not validate them, headers that disagree with the body.
    #[error("Mcp-Method or Mcp-Name does not match the request body")]
    HeaderMismatch,
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow, default)]
    method: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    params: Option<Params<'a>>,
}

#[derive(Deserialize)]
struct Params<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    uri: Option<Cow<'a, str>>,
}

/// The names of the tools a request calls: none for anything but a `POST` of `tools/call`, one
/// per call of a batch.
///
/// # Errors
/// [`McpError`] when that cannot be told for sure.
pub fn tool_calls<'a>(input: &CheckInput<'a>) -> Result<Vec<Cow<'a, str>>, McpError> {
    if input.method != "POST" {
        return Ok(Vec::new());
    }
    let header = |name| {
        input
            .header(name)
            .map_err(|_| McpError::Unverifiable("a repeated MCP header"))
    };
    let method = header("mcp-method")?;
    let name = header("mcp-name")?.map(decode_name).transpose()?;
    if header("mcp-protocol-version")?.is_some_and(validates_headers) {
        return match method {
            None => Err(McpError::Unverifiable("no Mcp-Method header")),
            Some("tools/call") => match name {
                Some(name) => Ok(vec![name]),
                None => Err(McpError::Unverifiable("no Mcp-Name header")),
            },
            Some(_) => Ok(Vec::new()),
        };
    }
    if input.header("x-envoy-auth-partial-body") == Ok(Some("true")) {
        return Err(McpError::Unverifiable("the body was cut at Envoy's limit"));
    }
    if input.body.is_empty() {
        return Err(McpError::Unverifiable("no body (set with_request_body)"));
    }
    if input.body.len() > MAX_BODY_BYTES {
        return Err(McpError::Unverifiable("the body is too large"));
    }
    let messages = parse(input.body)?;
    if method.is_some() || name.is_some() {
        // Headers on an old version must say what the one message says.
        let [message] = messages.as_slice() else {
            return Err(McpError::HeaderMismatch);
        };
        let body_name = message
            .params
            .as_ref()
            .and_then(|p| match message.method.as_deref() {
                Some("resources/read") => p.uri.as_deref(),
                _ => p.name.as_deref(),
            });
        if method.is_some_and(|m| Some(m) != message.method.as_deref())
            || name.as_deref().is_some_and(|n| Some(n) != body_name)
        {
            return Err(McpError::HeaderMismatch);
        }
    }
    messages
        .into_iter()
        .filter(|m| m.method.as_deref() == Some("tools/call"))
        .map(|m| {
            m.params
                .and_then(|p| p.name)
                .ok_or(McpError::Unverifiable("a tools/call without a tool name"))
        })
        .collect()
}

/// One JSON-RPC message or a batch of them. Duplicate `method`, `params`, `name` or `uri` keys
/// are refused, not resolved.
fn parse(body: &[u8]) -> Result<Vec<Message<'_>>, McpError> {
    let bad = |_| McpError::Unverifiable("the body is not a JSON-RPC message");
    let start = body.iter().find(|b| !b.is_ascii_whitespace());
    let messages = match start {
        Some(b'[') => serde_json::from_slice::<Vec<Message<'_>>>(body).map_err(bad)?,
        Some(b'{') => vec![serde_json::from_slice::<Message<'_>>(body).map_err(bad)?],
        _ => return Err(McpError::Unverifiable("the body is not a JSON-RPC message")),
    };
    if messages.is_empty() {
        return Err(McpError::Unverifiable("an empty batch"));
    }
    Ok(messages)
}

/// Whether `version` (`YYYY-MM-DD`) is one whose servers validate the mirrored headers. A value
/// of another shape is treated as old: then the body decides.
pub(super) fn validates_headers(version: &str) -> bool {
    let b = version.as_bytes();
    let shape = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            _ => c.is_ascii_digit(),
        });
    shape && version >= HEADER_VALIDATION_VERSION
}

/// An `Mcp-Name` value: as sent, or decoded from the `=?base64?…?=` sentinel (standard
/// alphabet, padded, UTF-8 inside).
fn decode_name(value: &str) -> Result<Cow<'_, str>, McpError> {
    let Some(encoded) = value
        .strip_prefix("=?base64?")
        .and_then(|v| v.strip_suffix("?="))
    else {
        return Ok(Cow::Borrowed(value));
    };
    let bad = McpError::Unverifiable("an Mcp-Name that is not valid base64 UTF-8");
    let bytes = STANDARD.decode(encoded).map_err(|_| bad)?;
    String::from_utf8(bytes).map(Cow::Owned).map_err(|_| bad)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn calls(headers: &[(&str, &str)], body: &str) -> Result<Vec<String>, McpError> {
        let headers: HashMap<String, String> = headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let input = CheckInput {
            headers: Some(&headers),
            method: "POST",
            body: body.as_bytes(),
            ..CheckInput::default()
        };
        tool_calls(&input).map(|v| v.into_iter().map(Cow::into_owned).collect())
    }

    const NEW: (&str, &str) = ("mcp-protocol-version", "2026-07-28");

    #[test]
    fn a_new_version_is_read_from_the_headers_alone() {
        let call = [
            NEW,
            ("mcp-method", "tools/call"),
            ("mcp-name", "admin_reset"),
        ];
        assert_eq!(calls(&call, "").unwrap(), ["admin_reset"]);
        let list = [NEW, ("mcp-method", "tools/list")];
        assert!(calls(&list, "").unwrap().is_empty());
        assert_eq!(
            calls(&[NEW], ""),
            Err(McpError::Unverifiable("no Mcp-Method header"))
        );
        assert_eq!(
            calls(&[NEW, ("mcp-method", "tools/call")], ""),
            Err(McpError::Unverifiable("no Mcp-Name header"))
        );
        // "Hello, 世界" in the sentinel form of the spec's example.
        let encoded = [
            NEW,
            ("mcp-method", "tools/call"),
            ("mcp-name", "=?base64?SGVsbG8sIOS4lueVjA==?="),
        ];
        assert_eq!(calls(&encoded, "").unwrap(), ["Hello, 世界"]);
        let broken = [
            NEW,
            ("mcp-method", "tools/call"),
            ("mcp-name", "=?base64?not base64?="),
        ];
        assert!(calls(&broken, "").is_err());
    }

    #[test]
    fn an_old_or_absent_version_is_read_from_the_body() {
        let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}"#;
        for version in [None, Some("2025-06-18"), Some("garbage"), Some("2026-7-28")] {
            let headers: Vec<_> = version
                .map(|v| ("mcp-protocol-version", v))
                .into_iter()
                .collect();
            assert_eq!(calls(&headers, body).unwrap(), ["echo"], "{version:?}");
            assert_eq!(
                calls(&headers, ""),
                Err(McpError::Unverifiable("no body (set with_request_body)"))
            );
        }
        let batch = r#"[{"method":"tools/list","id":1},{"method":"tools/call","id":2,"params":{"name":"a"}},{"method":"tools/call","id":3,"params":{"name":"b"}}]"#;
        assert_eq!(calls(&[], batch).unwrap(), ["a", "b"]);
        // A client's response to a server request carries no method: not a call.
        assert!(calls(&[], r#"{"jsonrpc":"2.0","id":7,"result":{}}"#)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn ambiguous_or_broken_bodies_are_refused() {
        for body in [
            r#"{"method":"tools/call","params":{"name":"a","name":"b"}}"#,
            r#"{"method":"tools/list","method":"tools/call","params":{"name":"a"}}"#,
            r#"{"method":"tools/call","params":{"name":7}}"#,
            r#"{"method":"tools/call"}"#,
            "[]",
            "not json",
            r#""tools/call""#,
        ] {
            assert!(
                matches!(calls(&[], body), Err(McpError::Unverifiable(_))),
                "{body}"
            );
        }
        let partial = [("x-envoy-auth-partial-body", "true")];
        assert!(calls(&partial, r#"{"method":"tools/call","params":{"name":"a"}}"#).is_err());
    }

    #[test]
    fn headers_that_disagree_with_an_old_body_are_refused() {
        let body = r#"{"method":"tools/call","params":{"name":"admin_reset"}}"#;
        let lying = [("mcp-method", "tools/call"), ("mcp-name", "echo")];
        assert_eq!(calls(&lying, body), Err(McpError::HeaderMismatch));
        let other_method = [("mcp-method", "tools/list")];
        assert_eq!(calls(&other_method, body), Err(McpError::HeaderMismatch));
        let honest = [("mcp-method", "tools/call"), ("mcp-name", "admin_reset")];
        assert_eq!(calls(&honest, body).unwrap(), ["admin_reset"]);
        let batch = r#"[{"method":"tools/call","params":{"name":"a"}},{"method":"tools/call","params":{"name":"b"}}]"#;
        assert_eq!(
            calls(&[("mcp-method", "tools/call")], batch),
            Err(McpError::HeaderMismatch)
        );
    }

    #[test]
    fn only_a_post_calls_tools() {
        let input = CheckInput {
            method: "GET",
            ..CheckInput::default()
        };
        assert!(tool_calls(&input).unwrap().is_empty());
    }
}
