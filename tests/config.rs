// SPDX-License-Identifier: Apache-2.0
//! Boot validation: each rule, violated on purpose, produces its exact line; all problems are
//! reported at once in a stable order; the binary's `validate` and `serve` refuse bad configs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use mcp_authz::config::{parse_str, validate};

const GOOD: &str = r#"
server:
  resourceUrl: https://mcp.example.com/mcp
incomingAuth:
  type: oidc
  oidc: { issuer: "https://mcp.example.com", audience: "https://mcp.example.com/mcp" }
authServer:
  issuer: https://mcp.example.com
  allowedAudiences: ["https://mcp.example.com/mcp"]
  upstreams:
    - name: github
      type: oauth2
      oauth2: { authorizationEndpoint: "https://github.com/login/oauth/authorize", tokenEndpoint: "https://github.com/login/oauth/access_token", clientId: gh, clientSecretEnv: GH_SECRET }
    - name: okta
      type: oidc
      oidc: { issuerUrl: "https://okta.example.com", clientId: ok }
outgoingAuth:
  default: { type: unauthenticated }
  backends:
    github: { type: upstream_inject, upstreamInject: { providerName: github } }
    api: { type: header_injection, headerInjection: { headerName: x-api-key, headerValueEnv: API_KEY } }
    jira: { type: token_exchange, tokenExchange: { tokenUrl: "https://sts.example.com/token", clientId: c, clientSecretEnv: JIRA_SECRET, audience: jira, subjectProviderName: okta } }
"#;

fn env() -> HashMap<String, String> {
    [
        ("GH_SECRET", "s1"),
        ("API_KEY", "k1"),
        ("JIRA_SECRET", "s2"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// Every line `validate` reports for `yaml`.
fn lines(yaml: &str) -> Vec<String> {
    let config = parse_str(yaml).unwrap_or_else(|e| panic!("{e}"));
    validate(&config, &env())
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// `GOOD` with one text replacement applied; panics if the text is not there.
fn with(from: &str, to: &str) -> String {
    assert!(GOOD.contains(from), "fixture lacks {from:?}");
    GOOD.replacen(from, to, 1)
}

fn assert_only(yaml: &str, expected: &[&str]) {
    assert_eq!(lines(yaml), expected, "for config:\n{yaml}");
}

#[test]
fn the_good_config_has_no_violation() {
    assert_only(GOOD, &[]);
}

#[test]
fn v01_upstream_inject_without_auth_server() {
    let yaml = r#"
server: { resourceUrl: "https://mcp.example.com/mcp" }
incomingAuth: { oidc: { issuer: "https://idp.example.com", audience: "https://mcp.example.com/mcp", jwksUrl: "https://idp.example.com/jwks" } }
outgoingAuth:
  default: { type: upstream_inject, upstreamInject: { providerName: github } }
"#;
    assert_only(yaml, &["V-01 outgoingAuth.default: upstream_inject requires an embedded auth server (authServer must be configured)"]);
}

#[test]
fn v02_provider_not_among_upstreams_lists_the_known_names() {
    assert_only(
        &with("providerName: github", "providerName: gitlab"),
        &["V-02 outgoingAuth.backends.github.upstreamInject.providerName: providerName \"gitlab\" not found in authServer.upstreams (known: github, okta)"],
    );
    assert_only(
        &with("subjectProviderName: okta", "subjectProviderName: azure"),
        &["V-02 outgoingAuth.backends.jira.tokenExchange.subjectProviderName: subjectProviderName \"azure\" not found in authServer.upstreams (known: github, okta)"],
    );
}

#[test]
fn v03_subject_provider_without_auth_server_and_own_jwt_warning() {
    let yaml = r#"
server: { resourceUrl: "https://mcp.example.com/mcp" }
incomingAuth: { oidc: { issuer: "https://idp.example.com", audience: "https://mcp.example.com/mcp", jwksFile: jwks.json } }
outgoingAuth:
  backends:
    jira: { type: token_exchange, tokenExchange: { tokenUrl: "https://sts.example.com/token", subjectProviderName: okta } }
"#;
    assert_only(yaml, &["V-03 outgoingAuth.backends.jira.tokenExchange.subjectProviderName: subjectProviderName requires an embedded auth server (authServer must be configured)"]);
    assert_only(
        &with(", subjectProviderName: okta", ""),
        &["warning: V-03 outgoingAuth.backends.jira.tokenExchange: token_exchange without subjectProviderName sends our own JWT to a third-party token endpoint"],
    );
}

#[test]
fn v04_issuer_mismatch() {
    assert_only(
        &with(r#"oidc: { issuer: "https://mcp.example.com""#, r#"oidc: { issuer: "https://mcp.example.com/""#),
        &["V-04 incomingAuth.oidc.issuer: auth server issuer \"https://mcp.example.com\" != incomingAuth.oidc.issuer \"https://mcp.example.com/\""],
    );
}

#[test]
fn v05_auth_server_itself() {
    let yaml = with(
        "  issuer: https://mcp.example.com\n",
        "  issuer: http://mcp.example.com\n",
    );
    assert!(lines(&yaml).contains(&"V-05 authServer.issuer: auth server issuer \"http://mcp.example.com\" must use https (http only for loopback)".to_owned()));
    let yaml = with("    - name: okta", "    - name: Okta_1");
    assert!(lines(&yaml).contains(&"V-05 authServer.upstreams[1].name: name \"Okta_1\" must match ^[a-z0-9]([a-z0-9-]*[a-z0-9])?$ (lowercase alphanumeric and hyphens)".to_owned()), "{:?}", lines(&yaml));
    let yaml = with("    - name: okta", "    - name: github");
    assert!(lines(&yaml).contains(
        &"V-05 authServer.upstreams[1].name: duplicate upstream name \"github\"".to_owned()
    ));
    let yaml = with("  upstreams:\n", "  storage: { type: redis, redis: { url: \"redis://127.0.0.1:6379\", timeoutMs: 0 } }\n  upstreams:\n");
    assert_only(
        &yaml,
        &["V-05 authServer.storage.redis.timeoutMs: timeoutMs must be greater than 0"],
    );
    let yaml = r#"
server: { resourceUrl: "https://mcp.example.com/mcp" }
incomingAuth: { oidc: { issuer: "", audience: "https://mcp.example.com/mcp" } }
authServer: { allowedAudiences: ["https://mcp.example.com/mcp"] }
outgoingAuth: {}
"#;
    let got = lines(yaml);
    assert!(
        got.contains(&"V-05 authServer.issuer: auth server issuer is required".to_owned()),
        "{got:?}"
    );
    assert!(
        got.contains(
            &"V-05 authServer.upstreams: auth server requires at least one upstream".to_owned()
        ),
        "{got:?}"
    );
}

#[test]
fn v06_empty_provider_name() {
    assert_only(
        &with("providerName: github", "providerName: \"\""),
        &["V-06 outgoingAuth.backends.github.upstreamInject.providerName: upstream_inject requires a non-empty providerName"],
    );
}

#[test]
fn v07_audience_not_allowed() {
    assert_only(
        &with(r#"allowedAudiences: ["https://mcp.example.com/mcp"]"#, r#"allowedAudiences: ["https://other.example.com/mcp"]"#),
        &["V-07 incomingAuth.oidc.audience: incomingAuth.oidc.audience \"https://mcp.example.com/mcp\" not in authServer.allowedAudiences [\"https://other.example.com/mcp\"]"],
    );
}

#[test]
fn v08_strategy_fields() {
    let cases = [
        (("headerName: x-api-key", "headerName: \"bad header\""), "V-08 outgoingAuth.backends.api.headerInjection.headerName: headerName \"bad header\" is not a valid HTTP header name"),
        (("headerName: x-api-key", "headerName: Host"), "V-08 outgoingAuth.backends.api.headerInjection.headerName: headerName \"Host\" cannot be set by ext_authz"),
        (("headerValueEnv: API_KEY", "headerValue: \"a\\r\\nx-evil: 1\""), "V-08 outgoingAuth.backends.api.headerInjection.headerValue: header value must be non-empty printable text without CR, LF or NUL"),
        (("headerValueEnv: API_KEY", "headerValueEnv: API_KEY, headerValue: v"), "V-08 outgoingAuth.backends.api.headerInjection: exactly one of headerValue, headerValueEnv and headerValueFile must be set"),
        (("headerValueEnv: API_KEY", "headerValueEnv: UNSET_VAR"), "V-08 outgoingAuth.backends.api.headerInjection.headerValueEnv: environment variable UNSET_VAR is not set or empty"),
        (("tokenUrl: \"https://sts.example.com/token\"", "tokenUrl: \"http://sts.example.com/token\""), "V-08 outgoingAuth.backends.jira.tokenExchange.tokenUrl: tokenUrl \"http://sts.example.com/token\" must use https (http only for loopback)"),
        (("clientId: c, clientSecretEnv", "clientSecretEnv"), "V-08 outgoingAuth.backends.jira.tokenExchange.clientSecretEnv: clientSecretEnv cannot be provided without clientId"),
        (("audience: jira,", "audience: jira, timeoutMs: 0,"), "V-08 outgoingAuth.backends.jira.tokenExchange.timeoutMs: timeoutMs must be between 1 and 60000"),
        (("audience: jira,", "audience: jira, subjectTokenType: saml,"), "V-08 outgoingAuth.backends.jira.tokenExchange.subjectTokenType: invalid subjectTokenType \"saml\": must be one of: access_token, id_token, jwt (or their urn:ietf:params:oauth:token-type URNs)"),
        (("{ type: upstream_inject, upstreamInject: { providerName: github } }", "{ type: upstream_inject }"), "V-08 outgoingAuth.backends.github: type upstream_inject requires the upstreamInject section"),
        (("{ type: unauthenticated }", "{ type: magic }"), "V-08 outgoingAuth.default.type: type \"magic\" must be one of: unauthenticated, header_injection, upstream_inject, token_exchange"),
        (("{ type: unauthenticated }", "{ type: unauthenticated, upstreamInject: { providerName: github } }"), "V-08 outgoingAuth.default.upstreamInject: upstreamInject is set but type is unauthenticated"),
    ];
    for ((from, to), expected) in cases {
        assert_only(&with(from, to), &[expected]);
    }
    // The secret value itself never appears in a message.
    let leaked = lines(&with(
        "headerValueEnv: API_KEY",
        "headerValue: \"sk-live-123\\n\"",
    ));
    assert!(
        leaked.iter().all(|l| !l.contains("sk-live-123")),
        "{leaked:?}"
    );
}

#[test]
fn v09_auth_server_requires_oidc_incoming() {
    let yaml = with("  type: oidc\n  oidc:", "  type: anonymous\n  oidc:");
    let got = lines(&yaml);
    assert!(
        got.contains(
            &"V-09 incomingAuth.type: embedded auth server requires OIDC incoming auth".to_owned()
        ),
        "{got:?}"
    );
    assert!(got.contains(&"V-10 outgoingAuth.backends.github: upstream_inject needs a caller identity, but incomingAuth.type is anonymous".to_owned()), "{got:?}");
}

#[test]
fn v14_token_exchange_cache_settings() {
    let yaml = with(
        "  default: { type: unauthenticated }",
        "  default: { type: unauthenticated }\n  tokenExchangeCache: { maxEntries: 0, refreshAheadPercent: 100, defaultLifetimeSeconds: 0 }",
    );
    assert_only(
        &yaml,
        &[
            "V-14 outgoingAuth.tokenExchangeCache.maxEntries: maxEntries must be at least 1",
            "V-14 outgoingAuth.tokenExchangeCache.refreshAheadPercent: refreshAheadPercent must be 0 (never) to 99",
            "V-14 outgoingAuth.tokenExchangeCache.defaultLifetimeSeconds: defaultLifetimeSeconds must be at least 1",
        ],
    );
    let fine = with(
        "  default: { type: unauthenticated }",
        "  default: { type: unauthenticated }\n  tokenExchangeCache: { maxEntries: 1, skewSeconds: 0, negativeTtlSeconds: 0, refreshAheadPercent: 0 }",
    );
    assert_only(&fine, &[]);
}

#[test]
fn v05_auth_server_lifetimes_must_be_positive() {
    let yaml = with(
        "  allowedAudiences: [\"https://mcp.example.com/mcp\"]",
        "  allowedAudiences: [\"https://mcp.example.com/mcp\"]\n  accessTokenLifetimeSeconds: 0\n  loginTimeoutSeconds: 0",
    );
    assert_only(
        &yaml,
        &[
            "V-05 authServer.accessTokenLifetimeSeconds: accessTokenLifetimeSeconds must be at least 1",
            "V-05 authServer.loginTimeoutSeconds: loginTimeoutSeconds must be at least 1",
        ],
    );
}

#[test]
fn v13_empty_allowed_audiences() {
    let got = lines(&with(
        r#"allowedAudiences: ["https://mcp.example.com/mcp"]"#,
        "allowedAudiences: []",
    ));
    assert!(got.contains(&"V-13 authServer.allowedAudiences: auth server requires at least one allowed audience (MCP clients must send RFC 8707 resource parameter)".to_owned()), "{got:?}");
}

#[test]
fn all_problems_are_reported_at_once_in_a_stable_order() {
    let yaml = with("providerName: github", "providerName: \"\"")
        .replacen("headerValueEnv: API_KEY", "headerValueEnv: NOPE", 1)
        .replacen(
            r#"allowedAudiences: ["https://mcp.example.com/mcp"]"#,
            "allowedAudiences: []",
            1,
        );
    let first = lines(&yaml);
    assert_eq!(
        first,
        vec![
            "V-13 authServer.allowedAudiences: auth server requires at least one allowed audience (MCP clients must send RFC 8707 resource parameter)",
            "V-08 outgoingAuth.backends.api.headerInjection.headerValueEnv: environment variable NOPE is not set or empty",
            "V-06 outgoingAuth.backends.github.upstreamInject.providerName: upstream_inject requires a non-empty providerName",
            "V-07 incomingAuth.oidc.audience: incomingAuth.oidc.audience \"https://mcp.example.com/mcp\" not in authServer.allowedAudiences []",
        ]
    );
    assert_eq!(first, lines(&yaml));
}

#[test]
fn mode_a_needs_exactly_one_key_source() {
    let yaml = r#"
server: { resourceUrl: "https://mcp.example.com/mcp" }
incomingAuth: { oidc: { issuer: "https://idp.example.com", audience: "https://mcp.example.com/mcp" } }
outgoingAuth: {}
"#;
    assert_only(yaml, &["V-12 incomingAuth.oidc: one of jwksUrl or jwksFile is required when there is no authServer"]);
}

#[test]
fn a_leeway_that_would_switch_expiry_off_is_refused() {
    let oidc =
        r#"oidc: { issuer: "https://mcp.example.com", audience: "https://mcp.example.com/mcp" }"#;
    let leeway = |secs: u64| {
        with(
            oidc,
            &oidc.replace(" }", &format!(", leewaySeconds: {secs} }}")),
        )
    };
    assert_only(&leeway(300), &[]);
    assert_only(
        &leeway(10 * 365 * 24 * 3600),
        &["V-12 incomingAuth.oidc.leewaySeconds: leewaySeconds must be at most 300"],
    );
}

#[test]
fn v15_outbound_urls_on_metadata_addresses_need_an_explicit_allow() {
    let bad = with(
        "https://sts.example.com/token",
        "https://169.254.169.254/latest/api/token",
    )
    .replace(
        "https://okta.example.com",
        "https://metadata.google.internal",
    )
    .replace(
        "https://github.com/login/oauth/access_token",
        "https://[::ffff:169.254.169.254]/token",
    );
    assert_only(
        &bad,
        &[
            "V-15 authServer.upstreams[0].oauth2.tokenEndpoint: \"https://[::ffff:169.254.169.254]/token\" is a link-local or cloud metadata address; set server.allowLinkLocalTargets to call it",
            "V-15 authServer.upstreams[1].oidc.issuerUrl: \"https://metadata.google.internal\" is a link-local or cloud metadata address; set server.allowLinkLocalTargets to call it",
            "V-15 outgoingAuth.backends.jira.tokenExchange.tokenUrl: \"https://169.254.169.254/latest/api/token\" is a link-local or cloud metadata address; set server.allowLinkLocalTargets to call it",
        ],
    );
    let allowed = bad.replace(
        "  resourceUrl: https://mcp.example.com/mcp",
        "  resourceUrl: https://mcp.example.com/mcp\n  allowLinkLocalTargets: true",
    );
    assert_only(&allowed, &[]);
}

#[test]
fn v16_scopes() {
    let explicit = |list: &str, required: &str| {
        with(
            "  allowedAudiences: [\"https://mcp.example.com/mcp\"]",
            &format!(
                "  allowedAudiences: [\"https://mcp.example.com/mcp\"]\n  scopesSupported: {list}"
            ),
        )
        .replacen(
            "upstreamInject: { providerName: github } }",
            &format!("upstreamInject: {{ providerName: github }}, requiredScopes: {required} }}"),
            1,
        )
    };
    assert_only(&explicit("[tools, \"tools:admin\"]", "[tools]"), &[]);
    assert_only(
        &explicit("[tools, \"a b\", tools]", "[tools, \"tools:admin\", tools, \"x\\\"y\"]"),
        &[
            "V-16 authServer.scopesSupported[1]: \"a b\" is not an RFC 6749 scope token (visible ASCII except \" and \\, no spaces)",
            "V-16 authServer.scopesSupported[2]: scope \"tools\" is listed twice",
            "V-16 outgoingAuth.backends.github.requiredScopes[2]: scope \"tools\" is listed twice",
            "V-16 outgoingAuth.backends.github.requiredScopes[3]: \"x\\\"y\" is not an RFC 6749 scope token (visible ASCII except \" and \\, no spaces)",
            "V-16 outgoingAuth.backends.github.requiredScopes[1]: scope \"tools:admin\" is not in authServer.scopesSupported",
            "V-16 outgoingAuth.backends.github.requiredScopes[3]: scope \"x\\\"y\" is not in authServer.scopesSupported",
        ],
    );
    // Without authServer or an explicit list, any well-formed scope may be required; an
    // anonymous caller can hold none.
    let anonymous = r#"
server: { resourceUrl: "https://mcp.example.com/mcp" }
incomingAuth: { type: anonymous }
outgoingAuth:
  backends:
    open: { type: unauthenticated, requiredScopes: [read] }
"#;
    assert_only(
        anonymous,
        &["V-16 outgoingAuth.backends.open.requiredScopes: requiredScopes needs incomingAuth type oidc: an anonymous caller holds no scope"],
    );
}

#[test]
fn v16_scope_grants() {
    let grants = |list: &str, grants: &str| {
        with(
            "  allowedAudiences: [\"https://mcp.example.com/mcp\"]",
            &format!("  allowedAudiences: [\"https://mcp.example.com/mcp\"]\n  scopesSupported: {list}\n  scopeGrants: {grants}"),
        )
    };
    // The first upstream of GOOD is oauth2 (github): it names nobody.
    let okta_first = |yaml: String| {
        let github = yaml.find("    - name: github").unwrap();
        let okta = yaml.find("    - name: okta").unwrap();
        let end = yaml.find("outgoingAuth:").unwrap();
        format!(
            "{}{}{}{}",
            &yaml[..github],
            &yaml[okta..end],
            &yaml[github..okta],
            &yaml[end..]
        )
    };
    assert_only(
        &okta_first(grants(
            "[a, b]",
            r#"{ a: { subjects: [alice] }, b: { claim: { name: groups, values: [admins] } } }"#,
        )),
        &[],
    );
    assert_only(
        &okta_first(grants(
            "[a, b]",
            r#"{ a: { subjects: [] }, b: { subjects: [x], claim: { name: g, values: [v] } }, c: { subjects: [x] }, d: { claim: { name: g, values: [] } } }"#,
        )),
        &[
            "V-16 authServer.scopeGrants.a.subjects: subjects must not be empty",
            "V-16 authServer.scopeGrants.b: give exactly one of subjects and claim",
            "V-16 authServer.scopeGrants.c: scope \"c\" is not supported, so nobody is granted it",
            "V-16 authServer.scopeGrants.d: scope \"d\" is not supported, so nobody is granted it",
            "V-16 authServer.scopeGrants.d.claim: a claim rule needs a name and at least one value",
        ],
    );
    assert_only(
        &grants("[a]", "{ a: { subjects: [alice] } }"),
        &["V-16 authServer.scopeGrants: scopeGrants needs the first required upstream to say who the user is (oidc, or oauth2 with userInfo)"],
    );
    // An optional oauth2 upstream first is fine: the first required one (okta) names the user.
    let github_optional = |yaml: String| {
        yaml.replace(
            "    - name: github\n      type: oauth2",
            "    - name: github\n      required: false\n      type: oauth2",
        )
    };
    assert_only(
        &github_optional(grants("[a]", "{ a: { subjects: [alice] } }")),
        &[],
    );
}

#[test]
fn v18_a_first_login_needs_a_required_upstream() {
    let yaml = with(
        "    - name: github\n",
        "    - name: github\n      required: false\n",
    );
    assert_only(&yaml, &[]);
    let yaml = yaml.replace(
        "    - name: okta\n",
        "    - name: okta\n      required: false\n",
    );
    assert_only(
        &yaml,
        &["V-18 authServer.upstreams: at least one upstream must be required: a first login walks the required upstreams, and the first of them says who the user is"],
    );
}

#[test]
fn v19_extra_authorization_params_cannot_replace_ours() {
    let with_params = |params: &str| {
        with(
            "    - name: okta\n",
            &format!("    - name: okta\n      additionalAuthorizationParams: {params}\n"),
        )
    };
    assert_only(
        &with_params(
            r#"{ access_type: offline, prompt: consent, audience: "https://api.example.com" }"#,
        ),
        &[],
    );
    assert_only(
        &with_params("{ Scope: admin, redirect_uri: x, nonce: n }"),
        &[
            "V-19 authServer.upstreams[1].additionalAuthorizationParams.Scope: \"Scope\" is a parameter mcp-authz sets itself",
            "V-19 authServer.upstreams[1].additionalAuthorizationParams.nonce: \"nonce\" is a parameter mcp-authz sets itself",
            "V-19 authServer.upstreams[1].additionalAuthorizationParams.redirect_uri: \"redirect_uri\" is a parameter mcp-authz sets itself",
        ],
    );
    // A parameter given twice is refused where it is repeated, not silently replaced.
    let twice = with_params("{ prompt: consent, prompt: login }");
    let error = parse_str(&twice).unwrap_err().to_string();
    assert!(
        error.contains("additionalAuthorizationParams: duplicate key \"prompt\""),
        "{error}"
    );
}

#[test]
fn v20_a_chain_that_cannot_name_the_user_is_a_warning_and_user_info_is_checked() {
    // GOOD's okta (oidc) names the user; with okta optional only github is left, and it cannot.
    let optional_okta = with(
        "    - name: okta\n",
        "    - name: okta\n      required: false\n",
    );
    assert_only(
        &optional_okta,
        &["warning: V-20 authServer.upstreams: no required upstream says who the user is (oidc, or oauth2 with userInfo): every first login gets a new random sub, so audit lines, sessions and scopeGrants cannot follow a user across logins"],
    );
    let user_info = |info: &str| {
        optional_okta.replace(
            "clientSecretEnv: GH_SECRET }",
            &format!("clientSecretEnv: GH_SECRET, userInfo: {info} }}"),
        )
    };
    assert_only(
        &user_info(r#"{ url: "https://api.github.com/user", subjectField: id }"#),
        &[],
    );
    assert_only(
        &user_info(r#"{ url: "https://api.example.com/me", subjectField: data.user.id }"#),
        &[],
    );
    assert_only(
        &user_info(r#"{ url: "http://api.github.com/user", subjectField: "id." }"#),
        &[
            "V-05 authServer.upstreams[0].oauth2.userInfo.url: oauth2.userInfo.url \"http://api.github.com/user\" must use https (http only for loopback)",
            "V-05 authServer.upstreams[0].oauth2.userInfo.subjectField: subjectField \"id.\" must be a dotted path of member names (e.g. id or data.user.id)",
        ],
    );
    assert_only(
        &user_info(r#"{ url: "https://169.254.169.254/user", subjectField: id }"#),
        &["V-15 authServer.upstreams[0].oauth2.userInfo.url: \"https://169.254.169.254/user\" is a link-local or cloud metadata address; set server.allowLinkLocalTargets to call it"],
    );
    assert_only(
        &with("clientId: ok }", "clientId: ok, subjectClaim: \"\" }"),
        &["V-05 authServer.upstreams[1].oidc.subjectClaim: subjectClaim must not be empty"],
    );
    assert_only(
        &with("clientId: ok }", "clientId: ok, subjectClaim: oid }"),
        &[],
    );
}

#[test]
fn secrets_come_from_exactly_one_of_inline_env_and_a_file_read_with_one_newline_trimmed() {
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, content: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        path.display().to_string()
    };
    let crlf = file("crlf", b"gh-secret\r\n");
    let two = file("two", b"k1\n\n");
    let empty = file("empty", b"\n");
    let binary = file("binary", &[0xff, 0xfe]);
    let missing = dir.path().join("missing").display().to_string();
    let by_file = |field: &str, path: &str| {
        let (from, to) = match field {
            "clientSecret" => (
                "clientSecretEnv: GH_SECRET",
                format!("clientSecretFile: \"{path}\""),
            ),
            _ => (
                "headerValueEnv: API_KEY",
                format!("headerValueFile: \"{path}\""),
            ),
        };
        with(from, &to)
    };
    assert_only(&by_file("clientSecret", &crlf), &[]);
    // One newline is trimmed, not every one: "k1\n" is not a valid header value.
    assert_only(
        &by_file("headerValue", &two),
        &["V-08 outgoingAuth.backends.api.headerInjection.headerValue: header value must be non-empty printable text without CR, LF or NUL"],
    );
    assert_only(
        &by_file("clientSecret", &empty),
        &[
            format!("V-05 authServer.upstreams[0].oauth2.clientSecretFile: {empty:?} is empty")
                .as_str(),
        ],
    );
    assert_only(
        &by_file("headerValue", &binary),
        &[format!("V-08 outgoingAuth.backends.api.headerInjection.headerValueFile: {binary:?} is not UTF-8 text").as_str()],
    );
    assert_only(
        &by_file("clientSecret", &missing),
        &[format!("V-05 authServer.upstreams[0].oauth2.clientSecretFile: cannot read {missing:?}: No such file or directory (os error 2)").as_str()],
    );
    assert_only(
        &with("clientSecretEnv: GH_SECRET", &format!("clientSecretEnv: GH_SECRET, clientSecretFile: \"{crlf}\"")),
        &["V-05 authServer.upstreams[0].oauth2: exactly one of clientSecret, clientSecretEnv and clientSecretFile must be set"],
    );
    // The value is what the file holds, without the newline.
    let config = parse_str(&by_file("clientSecret", &crlf)).unwrap();
    let (spec, _) = mcp_authz::config::check(&config, &env()).unwrap();
    assert_eq!(
        spec.upstreams[0]
            .client_secret
            .as_ref()
            .unwrap()
            .expose_secret(),
        "gh-secret"
    );
    // Previous signing keys rotate a key file; an ephemeral key has nothing to rotate.
    assert_only(
        &with("  upstreams:\n", "  previousSigningKeyFiles: [/keys/old.pem]\n  upstreams:\n"),
        &["V-05 authServer.previousSigningKeyFiles: previousSigningKeyFiles needs signingKeyFile: an ephemeral key cannot be rotated"],
    );
}

#[test]
fn redis_acl_users_passwords_and_tls_files() {
    let redis = |fields: &str| {
        with(
            "  upstreams:\n",
            &format!("  storage: {{ type: redis, redis: {{ {fields} }} }}\n  upstreams:\n"),
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let password = dir.path().join("password");
    std::fs::write(&password, "pw\n").unwrap();
    let password = password.display();
    assert_only(
        &redis(&format!(
            "url: \"rediss://redis.internal:6380\", username: mcp, passwordFile: \"{password}\", tls: {{ caFile: /etc/ca.pem, certFile: /etc/c.pem, keyFile: /etc/c.key }}"
        )),
        &[],
    );
    assert_only(
        &redis("url: \"redis://r:6379\", username: mcp"),
        &["V-05 authServer.storage.redis.username: an ACL username needs passwordEnv or passwordFile"],
    );
    assert_only(
        &redis(&format!(
            "url: \"redis://u:p@r:6379\", passwordFile: \"{password}\", tls: {{ certFile: /etc/c.pem }}"
        )),
        &[
            "V-05 authServer.storage.redis.url: the url carries credentials: give them there or in username/passwordEnv/passwordFile, not both",
            "V-05 authServer.storage.redis.tls: certFile and keyFile go together",
        ],
    );
    assert_only(
        &redis(&format!(
            "url: \"redis://r:6379\", passwordEnv: API_KEY, passwordFile: \"{password}\""
        )),
        &["V-05 authServer.storage.redis: at most one of passwordEnv and passwordFile may be set"],
    );
}

#[test]
fn v17_tool_rules() {
    let rules = |tools: &str| {
        with(
            "upstreamInject: { providerName: github } }",
            &format!("upstreamInject: {{ providerName: github }}, tools: {tools} }}"),
        )
    };
    assert_only(
        &rules(
            r#"[{ name: "admin_*", requiredScopes: ["tools:admin"] }, { name: "*", requiredScopes: [tools] }]"#,
        ),
        &[],
    );
    assert_only(
        &rules(
            r#"[{ name: "", requiredScopes: [a] }, { name: "admin_?", requiredScopes: [a] }, { name: "a**", requiredScopes: [a] }, { name: "a b", requiredScopes: [a] }, { name: ok, requiredScopes: [] }, { name: ok2, requiredScopes: ["x y"] }]"#,
        ),
        &[
            "V-17 outgoingAuth.backends.github.tools[0].name: a tool rule needs a name (a tool name, or a pattern with *)",
            "V-17 outgoingAuth.backends.github.tools[1].name: \"admin_?\" holds '?': only * is a wildcard",
            "V-17 outgoingAuth.backends.github.tools[2].name: \"a**\" holds **: one * already matches any run",
            "V-17 outgoingAuth.backends.github.tools[3].name: \"a b\" holds a space or control character",
            "V-17 outgoingAuth.backends.github.tools[4].requiredScopes: a tool rule must require at least one scope",
            "V-16 outgoingAuth.backends.github.tools[5].requiredScopes[0]: \"x y\" is not an RFC 6749 scope token (visible ASCII except \" and \\, no spaces)",
        ],
    );
    let unknown = rules(r#"[{ name: a, requiredScopes: [a], scope: b }]"#);
    let err = parse_str(&unknown).unwrap_err().to_string();
    assert!(err.contains("unknown field `scope`"), "{err}");
}

#[test]
fn require_typ_is_for_external_issuers() {
    let oidc =
        r#"oidc: { issuer: "https://mcp.example.com", audience: "https://mcp.example.com/mcp" }"#;
    assert_only(
        &with(oidc, &oidc.replace(" }", ", requireTyp: at+jwt }")),
        &["V-12 incomingAuth.oidc.requireTyp: requireTyp is for external issuers: with authServer, tokens are always at+jwt"],
    );
}

#[test]
fn a_backend_defined_twice_is_refused_as_it_is_read() {
    let twice = with(
        "    api: {",
        "    github: { type: unauthenticated }\n    api: {",
    );
    let msg = parse_str(&twice).unwrap_err().to_string();
    assert!(
        msg.contains("duplicate key \"github\"") && msg.contains("line 21 column 5"),
        "{msg}"
    );
}

#[test]
fn unknown_fields_are_rejected_with_line_and_column() {
    let err = parse_str(&with(
        "  allowedAudiences:",
        "  allowedAudience: x\n  allowedAudiences:",
    ))
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("unknown field `allowedAudience`") && msg.contains("line 9 column 3"),
        "{msg}"
    );
}

fn binary() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_mcp-authz"))
}

#[test]
fn validate_command_exits_non_zero_and_serve_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(&path, with("providerName: github", "providerName: gitlab")).unwrap();
    for args in [["validate", "--config"], ["serve", "--config"]] {
        let out = binary()
            .args(args)
            .arg(&path)
            .env("GH_SECRET", "x")
            .env("API_KEY", "y")
            .env("JIRA_SECRET", "z")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} must fail");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("V-02 outgoingAuth.backends.github.upstreamInject.providerName"),
            "{stderr}"
        );
    }
    let ok = binary()
        .args(["validate", "--config", "config/dev.yaml"])
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
}

#[test]
fn inline_secrets_never_print_in_debug_output() {
    let config = parse_str(&with(
        "headerValueEnv: API_KEY",
        "headerValue: sk-inline-secret",
    ))
    .unwrap();
    let debug = format!("{config:?}");
    assert!(debug.contains("InlineSecret([redacted])"), "{debug}");
    assert!(!debug.contains("sk-inline-secret"));
}
