// SPDX-License-Identifier: Apache-2.0
//! Rules for `authServer.storage.redis` (DESIGN.md §12): the URL, the timeout, an ACL user with
//! its password from the environment or a file, and TLS files that come in pairs.

use super::secrets::{secret_source, SecretFields};
use super::Violations;
use crate::config::spec::{RedisSpec, RedisTlsSpec};
use crate::config::{Environment, RedisConfig, StorageType};

const PATH: &str = "authServer.storage.redis";

/// Checks the Redis settings; their typed form when they break no rule (`None` also when the
/// store is not Redis).
pub(super) fn redis(
    kind: StorageType,
    redis: &RedisConfig,
    env: &dyn Environment,
    v: &mut Violations,
) -> Option<RedisSpec> {
    let mark = v.mark();
    let tls_url = redis.url.starts_with("rediss://");
    if !(redis.url.starts_with("redis://") || tls_url) {
        v.error(
            "V-05",
            format!("{PATH}.url"),
            "url must start with redis:// or rediss://",
        );
    }
    if redis.timeout_ms == Some(0) {
        v.error(
            "V-05",
            format!("{PATH}.timeoutMs"),
            "timeoutMs must be greater than 0",
        );
    }
    let password = secret_source(
        "V-05",
        PATH,
        SecretFields {
            name: "password",
            inline: None,
            env: &redis.password_env,
            file: &redis.password_file,
        },
        false,
        env,
        v,
    );
    if redis.username.as_deref().is_some_and(str::is_empty) {
        v.error(
            "V-05",
            format!("{PATH}.username"),
            "username must not be empty",
        );
    } else if redis.username.is_some()
        && redis.password_env.is_none()
        && redis.password_file.is_none()
    {
        v.error(
            "V-05",
            format!("{PATH}.username"),
            "an ACL username needs passwordEnv or passwordFile",
        );
    }
    let in_url = url::Url::parse(&redis.url)
        .ok()
        .is_some_and(|u| u.password().is_some() || !u.username().is_empty());
    if in_url && (redis.username.is_some() || password.is_some()) {
        v.error(
            "V-05",
            format!("{PATH}.url"),
            "the url carries credentials: give them there or in username/passwordEnv/passwordFile, not both",
        );
    }
    let tls = match &redis.tls {
        Some(t) => {
            let client = match (&t.cert_file, &t.key_file) {
                (Some(cert), Some(key)) => Some((cert.clone(), key.clone())),
                (None, None) => None,
                _ => {
                    v.error(
                        "V-05",
                        format!("{PATH}.tls"),
                        "certFile and keyFile go together",
                    );
                    None
                }
            };
            Some(RedisTlsSpec {
                ca_file: t.ca_file.clone(),
                client,
            })
        }
        None if tls_url => Some(RedisTlsSpec::default()),
        None => None,
    };
    (kind == StorageType::Redis && v.clean_since(mark)).then(|| RedisSpec {
        url: redis.url.clone(),
        username: redis.username.clone(),
        password,
        tls,
    })
}
