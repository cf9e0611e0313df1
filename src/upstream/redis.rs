// SPDX-License-Identifier: Apache-2.0
//! Redis upstream token store, storage schema v1: key `{keyPrefix}upstream:{tsid}:{provider}`,
//! value the JSON record, TTL = access-token expiry + refresh lifetime (none if it never expires).

use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::AsyncCommands;
use tokio::time::Instant;

use super::{StoreError, UpstreamToken, DEFAULT_REFRESH_LIFETIME};
use crate::secret::Tsid;
use crate::time::unix_now;

/// A Redis-backed store; the connection is made lazily and re-made after failures.
pub struct RedisStore {
    connection: ConnectionManager,
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

impl RedisStore {
    /// A store for `url`; no connection is attempted until the first command.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the URL cannot be used.
    pub fn new(url: &str, key_prefix: &str, timeout: Duration) -> Result<Self, StoreError> {
        // Small request/response pairs: without TCP_NODELAY, Nagle and delayed ACKs add ~40 ms
        // to some of them.
        let info = redis::IntoConnectionInfo::into_connection_info(url)
            .map_err(|_| StoreError::Unavailable("invalid redis url"))?
            .set_tcp_settings(redis::io::tcp::TcpSettings::default().set_nodelay(true));
        let client =
            redis::Client::open(info).map_err(|_| StoreError::Unavailable("invalid redis url"))?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        let connection = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|_| StoreError::Unavailable("cannot create redis connection"))?;
        Ok(Self {
            connection,
            key_prefix: key_prefix.to_owned(),
            timeout,
        })
    }

    fn key(&self, tsid: &Tsid, provider: &str) -> String {
        format!(
            "{}upstream:{}:{}",
            self.key_prefix,
            tsid.expose_secret(),
            provider
        )
    }

    /// One provider's record.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] on any Redis failure or when `deadline` passes;
    /// [`StoreError::Corrupt`] when the value is not a schema v1 record.
    pub async fn get(
        &self,
        tsid: &Tsid,
        provider: &Arc<str>,
        deadline: Instant,
    ) -> Result<Option<UpstreamToken>, StoreError> {
        let key = self.key(tsid, provider);
        let mut conn = self.connection.clone();
        // Whichever comes first: the per-command timeout or the Check's own deadline.
        let budget = deadline
            .saturating_duration_since(Instant::now())
            .min(self.timeout);
        let value: Option<Vec<u8>> = tokio::time::timeout(budget, conn.get(key))
            .await
            .map_err(|_| StoreError::Unavailable("redis timed out"))?
            .map_err(|_| StoreError::Unavailable("redis command failed"))?;
        value
            .map(|bytes| UpstreamToken::from_json(&bytes, provider))
            .transpose()
    }

    /// Writes one provider's record with the schema v1 TTL.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] on any Redis failure.
    pub async fn put(
        &self,
        tsid: &Tsid,
        provider: &str,
        token: &UpstreamToken,
    ) -> Result<(), StoreError> {
        let key = self.key(tsid, provider);
        let value = token.to_json();
        let mut conn = self.connection.clone();
        let write = async {
            match token.storage_ttl(unix_now(), DEFAULT_REFRESH_LIFETIME) {
                Some(ttl) => {
                    conn.set_ex::<_, _, ()>(key, value, ttl.as_secs().max(1))
                        .await
                }
                None => conn.set::<_, _, ()>(key, value).await,
            }
        };
        tokio::time::timeout(self.timeout * 5, write)
            .await
            .map_err(|_| StoreError::Unavailable("redis timed out"))?
            .map_err(|_| StoreError::Unavailable("redis command failed"))
    }

    /// Whether Redis answers PING within the timeout.
    pub async fn ping(&self) -> bool {
        let mut conn = self.connection.clone();
        let command = redis::cmd("PING");
        let ping = command.query_async::<String>(&mut conn);
        matches!(tokio::time::timeout(self.timeout, ping).await, Ok(Ok(_)))
    }

    /// Deletes one provider's record.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    pub async fn delete(&self, tsid: &Tsid, provider: &str) -> Result<(), StoreError> {
        let mut command = redis::cmd("DEL");
        command.arg(self.key(tsid, provider));
        self.run::<i64>(command).await.map(|_| ())
    }

    /// Runs one command within the store's timeout.
    async fn run<T: redis::FromRedisValue>(&self, command: redis::Cmd) -> Result<T, StoreError> {
        let mut conn = self.connection.clone();
        tokio::time::timeout(self.timeout * 5, command.query_async::<T>(&mut conn))
            .await
            .map_err(|_| StoreError::Unavailable("redis timed out"))?
            .map_err(|_| StoreError::Unavailable("redis command failed"))
    }

    fn entry_key(&self, key: &str) -> String {
        format!("{}{key}", self.key_prefix)
    }

    /// `SET key value PX ttl`.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    pub async fn put_entry(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let mut command = redis::cmd("SET");
        command
            .arg(self.entry_key(key))
            .arg(value)
            .arg("PX")
            .arg(ttl.as_millis().max(1) as u64);
        self.run::<()>(command).await
    }

    /// `SET key value NX PX ttl`: whether it was stored.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    pub async fn put_entry_if_absent(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let mut command = redis::cmd("SET");
        command
            .arg(self.entry_key(key))
            .arg(value)
            .arg("NX")
            .arg("PX")
            .arg(ttl.as_millis().max(1) as u64);
        Ok(self.run::<Option<String>>(command).await?.is_some())
    }

    /// `GET key`.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    pub async fn get_entry(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let mut command = redis::cmd("GET");
        command.arg(self.entry_key(key));
        self.run(command).await
    }

    /// `GETDEL key`: of concurrent takers, across replicas, only one gets the value.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    pub async fn take_entry(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let mut command = redis::cmd("GETDEL");
        command.arg(self.entry_key(key));
        self.run(command).await
    }

    /// Deletes `key` only if it still holds `value` (releasing a lock we own).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    pub async fn delete_entry_if(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        const SCRIPT: &str =
            "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";
        let mut command = redis::cmd("EVAL");
        command
            .arg(SCRIPT)
            .arg(1)
            .arg(self.entry_key(key))
            .arg(value);
        self.run::<i64>(command).await.map(|_| ())
    }
}
