// SPDX-License-Identifier: Apache-2.0
//! The Redis store: every key gets the configured prefix; the connection (with an ACL user and
//! TLS when configured) is made lazily and re-made after failures.

use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::{ProtocolVersion, TlsCertificates};
use tokio::time::Instant;

use super::StoreError;
use crate::secret::Token;

/// A Redis-backed store.
pub struct RedisStore {
    connection: ConnectionManager,
    /// The client the tracking connection uses (RESP3, same address, credentials and TLS).
    tracking_client: Box<redis::Client>,
    key_prefix: String,
    timeout: Duration,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("key_prefix", &self.key_prefix)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Where and how to connect: the URL, an ACL user and password, TLS material (PEM bytes).
pub struct RedisTarget<'a> {
    /// `redis://` or `rediss://` URL.
    pub url: &'a str,
    /// ACL user.
    pub username: Option<&'a str>,
    /// Its password (or the `default` user's).
    pub password: Option<&'a Token>,
    /// TLS for every connection, with these certificates (empty = system roots, no client
    /// certificate).
    pub tls: Option<TlsCertificates>,
}

impl std::fmt::Debug for RedisTarget<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTarget").finish_non_exhaustive()
    }
}

/// A client for `info`, over TLS when `tls` is given.
fn client(
    info: redis::ConnectionInfo,
    tls: Option<&TlsCertificates>,
) -> Result<redis::Client, StoreError> {
    let client = match tls {
        Some(certificates) => {
            let info = match info.addr().clone() {
                redis::ConnectionAddr::Tcp(host, port) => {
                    info.set_addr(redis::ConnectionAddr::TcpTls {
                        host,
                        port,
                        insecure: false,
                        tls_params: None,
                    })
                }
                _ => info,
            };
            redis::Client::build_with_tls(info, certificates.clone())
        }
        None => redis::Client::open(info),
    };
    client.map_err(|_| StoreError("invalid redis url or TLS settings"))
}

impl RedisStore {
    /// A store for `target`; no connection is attempted until the first command.
    ///
    /// # Errors
    /// [`StoreError`] when the URL or the TLS material cannot be used.
    pub fn new(
        target: &RedisTarget<'_>,
        key_prefix: &str,
        timeout: Duration,
    ) -> Result<Self, StoreError> {
        // Small request/response pairs: without TCP_NODELAY, Nagle and delayed ACKs add ~40 ms
        // to some of them.
        let info = redis::IntoConnectionInfo::into_connection_info(target.url)
            .map_err(|_| StoreError("invalid redis url"))?
            .set_tcp_settings(redis::io::tcp::TcpSettings::default().set_nodelay(true));
        let mut settings = info.redis_settings().clone();
        if let Some(username) = target.username {
            settings = settings.set_username(username);
        }
        if let Some(password) = target.password {
            settings = settings.set_password(password.expose_secret());
        }
        let info = info.set_redis_settings(settings.clone());
        let tracking_info = info
            .clone()
            .set_redis_settings(settings.set_protocol(ProtocolVersion::RESP3));
        let tracking_client = client(tracking_info, target.tls.as_ref())?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        let connection =
            ConnectionManager::new_lazy_with_config(client(info, target.tls.as_ref())?, config)
                .map_err(|_| StoreError("cannot create redis connection"))?;
        Ok(Self {
            connection,
            tracking_client: Box::new(tracking_client),
            key_prefix: key_prefix.to_owned(),
            timeout,
        })
    }

    /// Reports to `listener` every change to keys starting with `prefix` (after the key prefix),
    /// for as long as `listener` lives.
    pub(super) fn track(&self, prefix: &str, listener: std::sync::Weak<dyn super::Invalidate>) {
        super::tracking::spawn(
            (*self.tracking_client).clone(),
            self.key_prefix.clone(),
            prefix.to_owned(),
            self.timeout,
            listener,
        );
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.key_prefix)
    }

    /// Runs one command, giving up after `budget`.
    async fn run_within<T: redis::FromRedisValue>(
        &self,
        command: redis::Cmd,
        budget: Duration,
    ) -> Result<T, StoreError> {
        let mut conn = self.connection.clone();
        tokio::time::timeout(budget, command.query_async::<T>(&mut conn))
            .await
            .map_err(|_| StoreError("redis timed out"))?
            .map_err(|_| StoreError("redis command failed"))
    }

    /// Runs one command within the store's overall budget (five times the per-command timeout,
    /// room for one reconnect).
    async fn run<T: redis::FromRedisValue>(&self, command: redis::Cmd) -> Result<T, StoreError> {
        self.run_within(command, self.timeout * 5).await
    }

    /// `SET key value [PX ttl]`.
    pub(super) async fn put(
        &self,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<(), StoreError> {
        let mut command = redis::cmd("SET");
        command.arg(self.key(key)).arg(value);
        if let Some(ttl) = ttl {
            command.arg("PX").arg(ttl.as_millis().max(1) as u64);
        }
        self.run::<()>(command).await
    }

    /// `SET key value NX PX ttl`: whether it was stored.
    pub(super) async fn put_if_absent(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let mut command = redis::cmd("SET");
        command
            .arg(self.key(key))
            .arg(value)
            .arg("NX")
            .arg("PX")
            .arg(ttl.as_millis().max(1) as u64);
        Ok(self.run::<Option<String>>(command).await?.is_some())
    }

    /// `GET key`, within the per-command timeout or `deadline`, whichever comes first.
    pub(super) async fn get(
        &self,
        key: &str,
        deadline: Option<Instant>,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let mut command = redis::cmd("GET");
        command.arg(self.key(key));
        match deadline {
            Some(deadline) => {
                let budget = deadline
                    .saturating_duration_since(Instant::now())
                    .min(self.timeout);
                self.run_within(command, budget).await
            }
            None => self.run(command).await,
        }
    }

    /// `GETDEL key`.
    pub(super) async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let mut command = redis::cmd("GETDEL");
        command.arg(self.key(key));
        self.run(command).await
    }

    /// `DEL key`.
    pub(super) async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let mut command = redis::cmd("DEL");
        command.arg(self.key(key));
        self.run::<i64>(command).await.map(|_| ())
    }

    /// Deletes `key` only if it still holds `value`, atomically.
    pub(super) async fn delete_if(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        const SCRIPT: &str =
            "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";
        let mut command = redis::cmd("EVAL");
        command.arg(SCRIPT).arg(1).arg(self.key(key)).arg(value);
        self.run::<i64>(command).await.map(|_| ())
    }

    /// Whether Redis answers PING within the timeout.
    pub(super) async fn ping(&self) -> bool {
        let command = redis::cmd("PING");
        self.run_within::<String>(command, self.timeout)
            .await
            .is_ok()
    }
}
