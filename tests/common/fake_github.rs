// SPDX-License-Identifier: Apache-2.0
//! A GitHub-like OAuth provider for provider quirks (fakes are for quirks; the standard paths
//! run against the real oidc-provider): no ID token, a login form that names the user, a token
//! endpoint that answers form-encoded unless asked for JSON and reports a bad code as HTTP 200
//! with `error`, and a `/user` endpoint whose `id` is a number.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

/// How the token endpoint misbehaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quirk {
    /// GitHub's own behaviour: form-encoded unless `Accept: application/json`.
    None,
    /// Form-encoded whatever the `Accept` header says.
    AlwaysForm,
    /// Every code is "bad": HTTP 200 with `error=bad_verification_code`.
    BadCode,
    /// HTTP 200 without `access_token`.
    NoAccessToken,
    /// HTTP 200 whose `access_token` has a space and a comma in it.
    BadAccessToken,
}

/// How `/user` answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserEndpoint {
    /// `{"id": <number>, "login": ...}` for a token it issued, 401 otherwise.
    Normal,
    /// 503.
    Down,
    /// 200 without `id`.
    NoId,
}

/// Users by login: their numeric id.
const USERS: [(&str, u64); 2] = [("alice", 1_000_101), ("bob", 1_000_202)];

#[derive(Default)]
struct Inner {
    quirk: Option<Quirk>,
    user_endpoint: Option<UserEndpoint>,
    next: u64,
    /// Pending authorizations by id: (redirect_uri, state, code_challenge).
    pending: HashMap<String, (String, String, String)>,
    /// Codes: (login, code_challenge, redirect_uri).
    codes: HashMap<String, (String, String, String)>,
    /// Access tokens issued: their login.
    tokens: HashMap<String, String>,
    /// Token requests: their `Accept` header and whether they carried a code verifier.
    token_requests: Vec<String>,
    /// The authorize requests' query strings.
    authorize_queries: Vec<String>,
}

/// A running fake; its server stops with the test's runtime.
#[derive(Clone)]
pub struct FakeGitHub {
    pub base: String,
    inner: Arc<Mutex<Inner>>,
}

impl FakeGitHub {
    pub async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new()
            .route("/login/oauth/authorize", get(authorize))
            .route("/session", post(session))
            .route("/login/oauth/access_token", post(access_token))
            .route("/user", get(user))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { base, inner }
    }

    pub fn set_quirk(&self, quirk: Quirk) {
        self.inner.lock().unwrap().quirk = Some(quirk);
    }

    pub fn set_user_endpoint(&self, answer: UserEndpoint) {
        self.inner.lock().unwrap().user_endpoint = Some(answer);
    }

    /// The numeric id of `login`.
    pub fn id_of(login: &str) -> u64 {
        USERS.iter().find(|(l, _)| *l == login).unwrap().1
    }

    /// Whose access token `token` is.
    pub fn owner(&self, token: &str) -> Option<String> {
        self.inner.lock().unwrap().tokens.get(token).cloned()
    }

    /// Every access token issued.
    pub fn issued_tokens(&self) -> Vec<String> {
        self.inner.lock().unwrap().tokens.keys().cloned().collect()
    }

    /// The `Accept` header of every token request, in order.
    pub fn token_requests(&self) -> Vec<String> {
        self.inner.lock().unwrap().token_requests.clone()
    }

    /// Every authorize request's query string, in order.
    pub fn authorize_queries(&self) -> Vec<String> {
        self.inner.lock().unwrap().authorize_queries.clone()
    }

    /// The `oauth2` upstream entry for this fake, named `github`, with `userInfo` when
    /// `user_info`.
    pub fn upstream_yaml(&self, user_info: bool) -> String {
        let info = if user_info {
            format!(
                ", userInfo: {{ url: \"{}/user\", subjectField: id }}",
                self.base
            )
        } else {
            String::new()
        };
        format!(
            "    - {{ name: github, type: oauth2, oauth2: {{ authorizationEndpoint: \"{b}/login/oauth/authorize\", tokenEndpoint: \"{b}/login/oauth/access_token\", clientId: gh-client, clientSecret: gh-secret, tokenEndpointAuthMethod: client_secret_post, scopes: [read:user]{info} }} }}\n",
            b = self.base
        )
    }
}

type Shared = State<Arc<Mutex<Inner>>>;

async fn authorize(
    State(inner): Shared,
    Query(q): Query<HashMap<String, String>>,
    raw: axum::extract::RawQuery,
) -> Response {
    let mut inner = inner.lock().unwrap();
    inner.authorize_queries.push(raw.0.unwrap_or_default());
    let (Some(redirect), Some(state), Some(challenge)) = (
        q.get("redirect_uri"),
        q.get("state"),
        q.get("code_challenge"),
    ) else {
        return (StatusCode::BAD_REQUEST, "missing parameters").into_response();
    };
    inner.next += 1;
    let id = format!("p{}", inner.next);
    inner.pending.insert(
        id.clone(),
        (redirect.clone(), state.clone(), challenge.clone()),
    );
    Html(format!(
        "<form method=\"post\" action=\"/session?pending={id}\"><input name=\"login\"><input name=\"password\"></form>"
    ))
    .into_response()
}

async fn session(
    State(inner): Shared,
    Query(q): Query<HashMap<String, String>>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let mut inner = inner.lock().unwrap();
    let Some((redirect, state, challenge)) = q.get("pending").and_then(|p| inner.pending.remove(p))
    else {
        return (StatusCode::BAD_REQUEST, "unknown authorization").into_response();
    };
    let login = form.get("login").cloned().unwrap_or_default();
    inner.next += 1;
    let code = format!("code{}", inner.next);
    inner
        .codes
        .insert(code.clone(), (login, challenge, redirect.clone()));
    let mut url = url::Url::parse(&redirect).unwrap();
    url.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &state);
    Redirect::to(url.as_str()).into_response()
}

fn answer(json: bool, pairs: &[(&str, &str)]) -> Response {
    if json {
        let object: serde_json::Map<String, serde_json::Value> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), serde_json::Value::String((*v).to_owned())))
            .collect();
        axum::Json(object).into_response()
    } else {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs.iter().copied())
            .finish();
        (
            [(
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8",
            )],
            body,
        )
            .into_response()
    }
}

async fn access_token(
    State(inner): Shared,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let mut inner = inner.lock().unwrap();
    let accept = headers
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    inner.token_requests.push(accept.clone());
    let quirk = inner.quirk.unwrap_or(Quirk::None);
    let json = accept.contains("application/json") && quirk != Quirk::AlwaysForm;
    let bad = [
        ("error", "bad_verification_code"),
        (
            "error_description",
            "The code passed is incorrect or expired.",
        ),
    ];
    // As GitHub documents it: the client's id and secret in the form.
    if form.get("client_id").map(String::as_str) != Some("gh-client")
        || form.get("client_secret").map(String::as_str) != Some("gh-secret")
    {
        return answer(json, &[("error", "incorrect_client_credentials")]);
    }
    let code = form.get("code").and_then(|c| inner.codes.remove(c));
    let Some((login, challenge, redirect)) = code.filter(|_| quirk != Quirk::BadCode) else {
        return answer(json, &bad);
    };
    let verifier = form.get("code_verifier").cloned().unwrap_or_default();
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    if computed != challenge || form.get("redirect_uri") != Some(&redirect) {
        return answer(json, &bad);
    }
    inner.next += 1;
    let token = format!("gho_{}x{}", login, inner.next);
    inner.tokens.insert(token.clone(), login);
    match quirk {
        Quirk::NoAccessToken => answer(json, &[("token_type", "bearer"), ("scope", "read:user")]),
        Quirk::BadAccessToken => answer(
            json,
            &[("access_token", "gho_a b,c"), ("token_type", "bearer")],
        ),
        _ => answer(
            json,
            &[
                ("access_token", &token),
                ("token_type", "bearer"),
                ("scope", "read:user"),
            ],
        ),
    }
}

async fn user(State(inner): Shared, headers: HeaderMap) -> Response {
    let inner = inner.lock().unwrap();
    match inner.user_endpoint.unwrap_or(UserEndpoint::Normal) {
        UserEndpoint::Down => return StatusCode::SERVICE_UNAVAILABLE.into_response(),
        UserEndpoint::NoId => {
            return axum::Json(serde_json::json!({ "login": "someone" })).into_response()
        }
        UserEndpoint::Normal => {}
    }
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match token.and_then(|t| inner.tokens.get(t)) {
        Some(login) => axum::Json(serde_json::json!({
            "id": FakeGitHub::id_of(login),
            "login": login,
            "name": login,
        }))
        .into_response(),
        None => StatusCode::UNAUTHORIZED.into_response(),
    }
}
