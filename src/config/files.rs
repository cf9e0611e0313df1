// SPDX-License-Identifier: Apache-2.0
//! The files a configuration names besides itself, which the reload watcher hashes too.

use super::Config;

impl Config {
    /// Every file the configuration names besides itself (secrets, keys, CA and JWKS files): a
    /// change to any of them is a reason to reload.
    pub fn referenced_files(&self) -> Vec<&str> {
        let mut files: Vec<&str> = Vec::new();
        files.extend(self.outbound.ca_file.as_deref());
        if let Some(oidc) = &self.incoming_auth.oidc {
            files.extend(oidc.jwks_file.as_deref());
        }
        if let Some(server) = &self.auth_server {
            files.extend(server.signing_key_file.as_deref());
            files.extend(server.previous_signing_key_files.iter().map(String::as_str));
            if let Some(redis) = &server.storage.redis {
                files.extend(redis.password_file.as_deref());
                if let Some(tls) = &redis.tls {
                    files.extend(tls.ca_file.as_deref());
                    files.extend(tls.cert_file.as_deref());
                    files.extend(tls.key_file.as_deref());
                }
            }
            for upstream in &server.upstreams {
                if let Some(o) = &upstream.oauth2 {
                    files.extend(o.client_secret_file.as_deref());
                }
                if let Some(o) = &upstream.oidc {
                    files.extend(o.client_secret_file.as_deref());
                }
            }
        }
        let strategies = self
            .outgoing_auth
            .default
            .iter()
            .chain(self.outgoing_auth.backends.values());
        for strategy in strategies {
            if let Some(h) = &strategy.header_injection {
                files.extend(h.header_value_file.as_deref());
            }
            if let Some(t) = &strategy.token_exchange {
                files.extend(t.client_secret_file.as_deref());
            }
        }
        files.sort_unstable();
        files.dedup();
        files
    }
}
