// SPDX-License-Identifier: Apache-2.0
//! Hostile requests to the authorization server's endpoints: each is refused with a 4xx and an
//! OAuth error, never a 2xx or a 5xx, and nothing sent is echoed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{logs, mode_b_config, TestKey, TestServer};

/// (case, method, path and query, content type, body, status, OAuth error if JSON)
type Case<'a> = (
    &'a str,
    &'a str,
    String,
    &'a str,
    String,
    u16,
    Option<&'a str>,
);

#[tokio::test]
async fn malformed_and_ambiguous_requests_are_refused() {
    logs();
    let key = TestKey::new();
    let server = TestServer::start(&mode_b_config(&key.path, "{ type: memory }")).await;
    let base = format!("http://{}", server.http);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let form = "application/x-www-form-urlencoded";
    let json = "application/json";
    let cases: Vec<Case<'_>> = vec![
        ("grant_type twice", "POST", "/oauth/token".into(), form,
         "grant_type=authorization_code&grant_type=refresh_token&client_id=x".into(), 400, Some("invalid_request")),
        ("JSON instead of a form", "POST", "/oauth/token".into(), json,
         r#"{"grant_type":"authorization_code","client_id":"x"}"#.into(), 400, Some("invalid_request")),
        ("no client at all", "POST", "/oauth/token".into(), form,
         "grant_type=authorization_code&code=c".into(), 400, Some("invalid_request")),
        ("an unknown client", "POST", "/oauth/token".into(), form,
         "grant_type=authorization_code&client_id=nobody-secret-id&code=c".into(), 401, Some("invalid_client")),
        ("a grant we do not offer", "POST", "/oauth/token".into(), form,
         "grant_type=password&client_id=x&username=u&password=hunter2".into(), 401, Some("invalid_client")),
        ("registration, a key twice", "POST", "/oauth/register".into(), json,
         r#"{"redirect_uris":["https://a.example/cb"],"redirect_uris":["https://evil.example/cb"]}"#.into(), 400, None),
        ("registration, not JSON", "POST", "/oauth/register".into(), form,
         "redirect_uris=https://a.example/cb".into(), 400, None),
        ("registration, a redirect URI with userinfo", "POST", "/oauth/register".into(), json,
         r#"{"redirect_uris":["https://user:pw@a.example/cb"]}"#.into(), 400, Some("invalid_redirect_uri")),
        ("authorize, client_id twice", "GET", "/oauth/authorize?client_id=a&client_id=b&response_type=code".into(), form,
         String::new(), 400, None),
        ("authorize, an unknown client", "GET", "/oauth/authorize?client_id=nobody&response_type=code&redirect_uri=https://evil.example/cb".into(), form,
         String::new(), 400, None),
        ("callback, a state never issued", "GET", "/oauth/callback?code=c0de&state=forged-state".into(), form,
         String::new(), 400, None),
    ];
    for (case, method, path, content_type, body, status, error) in &cases {
        let request = match *method {
            "GET" => http.get(format!("{base}{path}")),
            _ => http.post(format!("{base}{path}")).body(body.clone()),
        };
        let response = request
            .header("content-type", *content_type)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), *status, "{case}");
        assert!(
            response.headers().get("location").is_none(),
            "{case}: redirected"
        );
        let text = response.text().await.unwrap();
        if let Some(error) = error {
            let answer: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(answer["error"], *error, "{case}: {text}");
        }
        for secret in [
            "hunter2",
            "nobody-secret-id",
            "c0de",
            "forged-state",
            "evil.example",
        ] {
            assert!(!text.contains(secret), "{case}: echoed {secret}: {text}");
        }
    }
    logs().assert_never_logged(&["hunter2", "c0de", "forged-state"]);
    server.stop().await;
}
