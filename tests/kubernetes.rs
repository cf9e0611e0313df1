// SPDX-License-Identifier: Apache-2.0
//! Kubernetes: the generated CRDs are current and valid, example resources pass the schema and
//! bad ones fail with precise messages, the CEL rules are mirrored in Rust, the example resources
//! convert into a configuration that validates and serves Checks, and every Envoy config under
//! `deploy/` passes `envoy --mode validate`.
#![cfg(feature = "kubernetes")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{check, denied, ok, store_token, TestKey, TestServer};
use mcp_authz::kubernetes::convert::{SECRETS_DIR, SIGNING_KEY_DIR};
use mcp_authz::kubernetes::{
    convert_resources_as, crd_yaml, MCPExternalAuthConfig, Registry, SecretsAs,
};
use serde_json::Value;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every file of `dir` with extension `ext`, sorted.
fn files(dir: &str, ext: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(repo(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    out.sort();
    out
}

fn expectation(file: &Path) -> String {
    std::fs::read_to_string(file.with_extension("expect"))
        .unwrap_or_else(|_| panic!("{} has no .expect file", file.display()))
        .trim()
        .to_owned()
}

fn yaml_documents(text: &str) -> Vec<Value> {
    yaml_serde::Deserializer::from_str(text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .filter(|v: &Value| !v.is_null())
        .collect()
}

#[test]
fn the_crds_in_deploy_are_generated_and_current() {
    assert_eq!(
        read("deploy/crds/mcp-authz.yaml"),
        crd_yaml().unwrap(),
        "deploy/crds/mcp-authz.yaml is stale: run `cargo run --features kubernetes -- crd > deploy/crds/mcp-authz.yaml`"
    );
}

/// Runs tests/k8s/check_schemas.py (installed by scripts/test.sh) on `args`; one JSON per file.
fn schema_check(args: &[&str]) -> Vec<Value> {
    let python = std::env::var("VENV_PYTHON").expect("VENV_PYTHON: run scripts/test.sh");
    let output = Command::new(python)
        .arg(repo("tests/k8s/check_schemas.py"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn the_crd_object_passes_kubernetes_validate_strict() {
    let crd = repo("deploy/crds/mcp-authz.yaml");
    let results = schema_check(&["--crd-only", "--crd", crd.to_str().unwrap()]);
    for r in &results {
        assert_eq!(r["valid"], true, "{r}");
    }
    assert!(!results.is_empty());
}

#[test]
fn good_resources_pass_the_schema_and_bad_ones_fail_precisely() {
    let crd = repo("deploy/crds/mcp-authz.yaml");
    let good = files("tests/k8s/good", "yaml");
    let bad = files("tests/k8s/bad", "yaml");
    assert!(good.len() >= 5 && bad.len() >= 8, "fixtures present");
    let mut args = vec!["--crd".to_owned(), crd.display().to_string()];
    args.push(
        repo("deploy/kubernetes/examples/resources.yaml")
            .display()
            .to_string(),
    );
    args.extend(good.iter().chain(&bad).map(|p| p.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let results = schema_check(&args);
    for r in &results {
        let file = PathBuf::from(r["file"].as_str().unwrap());
        let errors: Vec<&str> = r["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e.as_str().unwrap())
            .collect();
        if bad.contains(&file) {
            assert_eq!(r["valid"], false, "{} must fail", file.display());
            let expected = expectation(&file);
            assert!(
                errors.iter().any(|e| e.contains(&expected)),
                "{}: expected {expected:?} in {errors:?}",
                file.display()
            );
        } else {
            assert_eq!(r["valid"], true, "{}: {errors:?}", file.display());
        }
    }
    let checked: BTreeSet<String> = results
        .iter()
        .map(|r| r["file"].as_str().unwrap().to_owned())
        .collect();
    for file in good.iter().chain(&bad) {
        assert!(
            checked.contains(&file.display().to_string()),
            "{} checked",
            file.display()
        );
    }
}

#[test]
fn the_cel_rules_are_enforced_by_the_converters() {
    let cel = files("tests/k8s/cel", "yaml");
    assert!(cel.len() >= 3);
    let registry = Registry::standard();
    for file in cel {
        let resource: MCPExternalAuthConfig =
            yaml_serde::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let mut secrets = Default::default();
        let err = registry
            .convert(&resource, &mut secrets)
            .expect_err("a CEL violation is refused");
        let expected = expectation(&file);
        assert!(
            err.to_string().contains(&expected),
            "{}: {err} lacks {expected:?}",
            file.display()
        );
    }
}

/// The example resources, converted as the shipped manifests use them: secrets as files.
fn example() -> mcp_authz::kubernetes::Converted {
    convert_resources_as(
        &read("deploy/kubernetes/examples/resources.yaml"),
        &Registry::standard(),
        SecretsAs::Files,
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn the_configmap_and_deployment_match_what_convert_prints() {
    let converted = example();
    let configmap = yaml_documents(&read("deploy/kubernetes/configmap.yaml"));
    let data = configmap[0]["data"]["config.yaml"].as_str().unwrap();
    let shipped: Value = yaml_serde::from_str(data).unwrap();
    let generated: Value = yaml_serde::from_str(&converted.config_yaml).unwrap();
    assert_eq!(
        shipped, generated,
        "deploy/kubernetes/configmap.yaml is stale: regenerate it with `mcp-authz convert -f deploy/kubernetes/examples/resources.yaml`"
    );

    // Every Secret the config reads a file of is mounted where it looks, and no other; no
    // secret travels in the environment.
    let deployment = yaml_documents(&read("deploy/kubernetes/deployment.yaml"));
    let pod = &deployment[0]["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert!(container.get("env").is_none(), "{}", container["env"]);
    assert!(converted.env.is_empty());
    let volume_secret = |volume: &str| -> String {
        pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == volume)
            .and_then(|v| v["secret"]["secretName"].as_str())
            .unwrap_or_else(|| panic!("volume {volume} is not a Secret"))
            .to_owned()
    };
    let mounted: BTreeSet<(String, String)> = container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["name"] != "config")
        .map(|m| {
            let secret = volume_secret(m["name"].as_str().unwrap());
            (secret, m["mountPath"].as_str().unwrap().to_owned())
        })
        .collect();
    let mut needed: BTreeSet<(String, String)> = converted
        .mounts
        .iter()
        .map(|secret| (secret.clone(), format!("{SECRETS_DIR}/{secret}")))
        .collect();
    if let Some(secret) = &converted.signing_key_secret {
        needed.insert((secret.clone(), SIGNING_KEY_DIR.to_owned()));
    }
    assert_eq!(mounted, needed);
    for line in converted.config_yaml.lines() {
        if let Some(path) = line.trim().split_once("File: ").map(|(_, p)| p) {
            assert!(
                needed
                    .iter()
                    .any(|(_, dir)| path.starts_with(&format!("{dir}/"))),
                "{path} is in no mounted volume"
            );
        }
    }
}

#[tokio::test]
async fn example_resources_convert_validate_and_serve_checks() {
    let converted = example();
    let key = TestKey::new();
    // Run the converted file here: loopback ports, a local key, the test Redis or memory.
    let mut yaml = converted
        .config_yaml
        .replace("0.0.0.0:9191", "127.0.0.1:0")
        .replace("0.0.0.0:9090", "127.0.0.1:0");
    if let Some(dir) = yaml
        .lines()
        .find_map(|l| l.trim().strip_prefix("signingKeyFile: "))
        .map(str::to_owned)
    {
        yaml = yaml.replace(&dir, &key.path);
    }
    let mut config: Value = yaml_serde::from_str(&yaml).unwrap();
    config["authServer"]["storage"] = serde_json::json!({ "type": "memory" });
    config["server"]["audit"] = serde_json::json!({ "enabled": false });
    let yaml = yaml_serde::to_string(&config).unwrap();
    // Each mounted Secret key as a file in a temp dir, its value with a trailing newline as
    // `kubectl create secret --from-file` often leaves it.
    let secrets = tempfile::tempdir().unwrap();
    let mut values: HashMap<String, String> = HashMap::new();
    let yaml = yaml
        .lines()
        .map(|line| match line.split_once("File: ") {
            Some((field, path)) if path.starts_with(SECRETS_DIR) => {
                let relative = path.trim_start_matches(SECRETS_DIR).trim_start_matches('/');
                let local = secrets.path().join(relative.replace('/', "--"));
                let value = format!("value-of-{relative}");
                std::fs::write(&local, format!("{value}\n")).unwrap();
                values.insert(path.to_owned(), value);
                format!("{field}File: {}", local.display())
            }
            _ => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    let server = TestServer::start_with_http(
        &yaml,
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
    )
    .await;
    let issuer = config["incomingAuth"]["oidc"]["issuer"]
        .as_str()
        .unwrap()
        .to_owned();
    let audience = config["incomingAuth"]["oidc"]["audience"]
        .as_str()
        .unwrap()
        .to_owned();
    let jwt = key.token(
        "kim",
        Some("tsid-kim"),
        serde_json::json!({ "iss": issuer, "aud": audience }),
    );
    let auth = format!("Bearer {jwt}");
    let backends = config["outgoingAuth"]["backends"]
        .as_object()
        .unwrap()
        .clone();
    for (name, strategy) in &backends {
        let response = check(&server, Some(&auth), Some(name)).await;
        match strategy["type"].as_str().unwrap() {
            "unauthenticated" => {
                ok(&response);
            }
            "header_injection" => {
                let ok = ok(&response);
                let header = ok.headers[0].header.as_ref().unwrap();
                let file = strategy["headerInjection"]["headerValueFile"]
                    .as_str()
                    .unwrap();
                assert_eq!(header.value, values[file], "{name}: newline trimmed");
            }
            "upstream_inject" => {
                // No login yet: log in again. With the upstream token: injected.
                denied(&response, 16, 401);
                let provider = strategy["upstreamInject"]["providerName"].as_str().unwrap();
                store_token(&server, "tsid-kim", provider, "gho_from_login", None).await;
                ok(&check(&server, Some(&auth), Some(name)).await);
            }
            "token_exchange" => {
                // subjectProviderName without a stored token for it: log in again, never OK.
                assert_ne!(response.status.as_ref().unwrap().code, 0, "{name}");
            }
            other => panic!("unexpected strategy {other}"),
        }
    }
    server.stop().await;
}

#[test]
fn every_envoy_config_in_deploy_passes_envoy_validate() {
    let envoy = std::env::var("ENVOY_BIN").expect("ENVOY_BIN: run scripts/test.sh");
    let mut configs = vec![repo("deploy/envoy/envoy.yaml")];
    configs.extend(
        files("deploy/kubernetes/envoy", "yaml")
            .into_iter()
            .filter(|p| {
                std::fs::read_to_string(p)
                    .unwrap()
                    .contains("static_resources")
            }),
    );
    assert!(configs.len() >= 2, "{configs:?}");
    for config in configs {
        let output = Command::new(&envoy)
            .args(["--mode", "validate", "-c"])
            .arg(&config)
            .args(["--log-level", "error"])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}: {}",
            config.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[test]
fn secrets_as_files_name_mounted_paths_and_the_new_upstream_fields_carry_over() {
    let resources = |secret: &str| {
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
    signingKeySecretRef: {{ name: keys, key: current.pem }}
    previousSigningKeySecretRefs: [{{ name: keys, key: old.pem }}]
    upstreams:
      - name: github
        type: oauth2
        additionalAuthorizationParams: {{ allow_signup: "false" }}
        oauth2: {{ authorizationEndpoint: https://github.com/login/oauth/authorize, tokenEndpoint: https://github.com/login/oauth/access_token, clientId: c, clientSecretRef: {{ name: {secret}, key: client-secret }}, userInfo: {{ url: https://api.github.com/user, subjectField: id }} }}
      - name: entra
        type: oidc
        oidc: {{ issuerUrl: https://login.microsoftonline.com/t/v2.0, clientId: e, subjectClaim: oid }}
    storage:
      type: redis
      redis: {{ url: "rediss://redis:6380", username: mcp, passwordSecretRef: {{ name: redis-acl, key: password }}, tls: {{ caSecretRef: {{ name: redis-tls, key: ca.pem }} }} }}
"#
        )
    };
    let converted = convert_resources_as(
        &resources("github-oauth"),
        &Registry::standard(),
        SecretsAs::Files,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(converted.env.is_empty());
    assert_eq!(
        converted.mounts,
        ["github-oauth", "keys", "redis-acl", "redis-tls"]
    );
    let config: Value = yaml_serde::from_str(&converted.config_yaml).unwrap();
    assert_eq!(
        config["authServer"]["storage"]["redis"],
        serde_json::json!({
            "url": "rediss://redis:6380",
            "username": "mcp",
            "passwordFile": format!("{SECRETS_DIR}/redis-acl/password"),
            "tls": { "caFile": format!("{SECRETS_DIR}/redis-tls/ca.pem") },
        })
    );
    let config: Value = yaml_serde::from_str(&converted.config_yaml).unwrap();
    let auth = &config["authServer"];
    assert_eq!(
        auth["upstreams"][0]["oauth2"]["clientSecretFile"],
        format!("{SECRETS_DIR}/github-oauth/client-secret")
    );
    assert_eq!(
        auth["upstreams"][0]["oauth2"]["userInfo"],
        serde_json::json!({ "url": "https://api.github.com/user", "subjectField": "id" })
    );
    assert_eq!(
        auth["upstreams"][0]["additionalAuthorizationParams"]["allow_signup"],
        "false"
    );
    assert_eq!(auth["upstreams"][1]["oidc"]["subjectClaim"], "oid");
    assert_eq!(
        auth["previousSigningKeyFiles"],
        serde_json::json!([format!("{SECRETS_DIR}/keys/old.pem")])
    );
    // As environment variables, the same secret is a variable; the keys stay files.
    let as_env = convert_resources_as(
        &resources("github-oauth"),
        &Registry::standard(),
        SecretsAs::Env,
    )
    .unwrap();
    assert_eq!(
        as_env.env.len(),
        2,
        "the client secret and the Redis password"
    );
    assert_eq!(as_env.mounts, ["keys", "redis-tls"]);
    // A Secret that would shadow the signing key's mount is refused.
    let err = convert_resources_as(
        &resources("signing-key"),
        &Registry::standard(),
        SecretsAs::Files,
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("would be mounted where the signing key is"),
        "{err}"
    );
}
