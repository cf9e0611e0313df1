// SPDX-License-Identifier: Apache-2.0
//! Whether a request can be answered with a URL-mode elicitation (DESIGN.md §11): a JSON-RPC
//! request of protocol 2026-07-28 or later, whose body Envoy sent, for a method that may return
//! an `InputRequiredResult` (`tools/call`, `prompts/get`, `resources/read`), from a client whose
//! capabilities in `_meta` declare URL-mode elicitation. Anything else gets the 401.

use serde::Deserialize;
use serde_json::Value;

use super::mcp::{validates_headers, MAX_BODY_BYTES};
use super::request::CheckInput;

/// Longest JSON-RPC id we echo.
const MAX_ID_CHARS: usize = 256;

/// The key of our elicitation in `inputRequests`, and of its answer in `inputResponses`.
pub const INPUT_KEY: &str = "connect";

/// Methods whose result may be an `InputRequiredResult`.
const INTERACTIVE: [&str; 3] = ["tools/call", "prompts/get", "resources/read"];

#[derive(Deserialize)]
struct Request {
    jsonrpc: String,
    id: Value,
    method: String,
    #[serde(default)]
    params: Option<Params>,
}

#[derive(Deserialize)]
struct Params {
    #[serde(rename = "_meta", default)]
    meta: Option<Meta>,
    /// The answers of a retried request (SEP-2322): ours is under [`INPUT_KEY`].
    #[serde(rename = "inputResponses", default)]
    input_responses: Option<serde_json::Map<String, Value>>,
}

/// `_meta`: where a 2026-07-28 request carries the client's capabilities.
#[derive(Deserialize)]
struct Meta {
    #[serde(rename = "io.modelcontextprotocol/clientCapabilities", default)]
    capabilities: Option<Capabilities>,
}

#[derive(Deserialize)]
struct Capabilities {
    #[serde(default)]
    elicitation: Option<Elicitation>,
}

#[derive(Deserialize)]
struct Elicitation {
    #[serde(default)]
    url: Option<Value>,
}

/// The JSON text of the request's id when the request can take a URL-mode elicitation;
/// `None` otherwise, and when it is the retry of a user who declined ours.
pub fn elicitable(input: &CheckInput<'_>) -> Option<String> {
    if input.method != "POST"
        || !input
            .header("mcp-protocol-version")
            .ok()
            .flatten()
            .is_some_and(validates_headers)
        || input.header("x-envoy-auth-partial-body") == Ok(Some("true"))
        || input.body.is_empty()
        || input.body.len() > MAX_BODY_BYTES
    {
        return None;
    }
    let request: Request = serde_json::from_slice(input.body).ok()?;
    let id_ok = match &request.id {
        Value::String(s) => s.chars().count() <= MAX_ID_CHARS,
        Value::Number(n) => n.is_i64() || n.is_u64(),
        _ => false,
    };
    let params = request.params;
    // A user who declined or dismissed the connect page is not asked again: the 401 follows.
    let declined = params
        .as_ref()
        .and_then(|p| p.input_responses.as_ref())
        .and_then(|r| r.get(INPUT_KEY))
        .is_some_and(|answer| answer.get("action").and_then(Value::as_str) != Some("accept"));
    let declares_url = params
        .and_then(|p| p.meta)
        .and_then(|m| m.capabilities)
        .and_then(|c| c.elicitation)
        .and_then(|e| e.url)
        .is_some_and(|u| u.is_object());
    (request.jsonrpc == "2.0"
        && !declined
        && id_ok
        && INTERACTIVE.contains(&request.method.as_str())
        && declares_url)
        .then(|| request.id.to_string())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const CAPABILITIES_KEY: &str = "io.modelcontextprotocol/clientCapabilities";

    fn id_of(version: Option<&str>, body: &str) -> Option<String> {
        let headers: HashMap<String, String> = version
            .map(|v| ("mcp-protocol-version".to_owned(), v.to_owned()))
            .into_iter()
            .collect();
        let input = CheckInput {
            headers: Some(&headers),
            method: "POST",
            body: body.as_bytes(),
            ..CheckInput::default()
        };
        elicitable(&input)
    }

    fn call(id: &str, capabilities: &str) -> String {
        format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"whoami","_meta":{{"{CAPABILITIES_KEY}":{capabilities}}}}}}}"#
        )
    }

    #[test]
    fn a_new_call_from_a_client_that_shows_urls_is_elicitable() {
        let url = r#"{"elicitation":{"url":{}}}"#;
        assert_eq!(
            id_of(Some("2026-07-28"), &call("7", url)).as_deref(),
            Some("7")
        );
        assert_eq!(
            id_of(Some("2026-07-28"), &call(r#""a-1""#, url)).as_deref(),
            Some(r#""a-1""#)
        );
        // A retry after the user accepted (and still no token) is asked again.
        let accepted = call("8", url).replace(
            "\"_meta\"",
            "\"inputResponses\":{\"connect\":{\"action\":\"accept\"}},\"_meta\"",
        );
        assert_eq!(id_of(Some("2026-07-28"), &accepted).as_deref(), Some("8"));
    }

    #[test]
    fn anything_else_gets_the_401() {
        let url = r#"{"elicitation":{"url":{}}}"#;
        for (version, body) in [
            (None, call("7", url)),
            (Some("2025-11-25"), call("7", url)),
            (
                Some("2026-07-28"),
                call("7", r#"{"elicitation":{"form":{}}}"#),
            ),
            (
                Some("2026-07-28"),
                call("7", r#"{"elicitation":{"url":true}}"#),
            ),
            (Some("2026-07-28"), call("7", "{}")),
            (Some("2026-07-28"), call("null", url)),
            (Some("2026-07-28"), call("1.5", url)),
            (
                Some("2026-07-28"),
                call(&format!("\"{}\"", "x".repeat(257)), url),
            ),
            (
                Some("2026-07-28"),
                call("7", url).replace("tools/call", "tools/list"),
            ),
            (Some("2026-07-28"), format!("[{}]", call("7", url))),
            (
                Some("2026-07-28"),
                call("7", url).replace("\"id\":7", "\"id\":7,\"id\":8"),
            ),
            (Some("2026-07-28"), String::new()),
            (
                Some("2026-07-28"),
                call("7", url).replace(
                    "\"_meta\"",
                    "\"inputResponses\":{\"connect\":{\"action\":\"decline\"}},\"_meta\"",
                ),
            ),
        ] {
            assert_eq!(id_of(version, &body), None, "{version:?} {body}");
        }
    }
}
