// SPDX-License-Identifier: Apache-2.0
//! Server-assisted client-side caching: a dedicated RESP3 connection with
//! `CLIENT TRACKING ON BCAST PREFIX <prefix>`, so Redis pushes the name of every key under the
//! prefix that anyone changes, deletes or expires. The connection is watched (a PING every
//! second); when it drops or stops answering, the listener is told to flush and stop trusting
//! its cache until tracking is established again, because invalidations may have been missed.

use std::sync::Weak;
use std::time::Duration;

use redis::{PushKind, Value};
use tokio::sync::mpsc;

/// Told what changed in Redis. Key names come without the store's key prefix.
pub trait Invalidate: Send + Sync + 'static {
    /// `key` changed or is gone.
    fn key(&self, key: &[u8]);
    /// Changes may have been missed: forget everything and stop caching.
    fn all(&self);
    /// Tracking is established: every change from now on is reported.
    fn tracking(&self);
}

/// How often the tracking connection proves it is alive.
const PING_EVERY: Duration = Duration::from_secs(1);

/// Keeps a tracking connection for `prefix` (with the key prefix) up while `listener` lives.
/// `client` speaks RESP3 (pushes need it).
pub(super) fn spawn(
    client: redis::Client,
    key_prefix: String,
    prefix: String,
    timeout: Duration,
    listener: Weak<dyn Invalidate>,
) {
    tokio::spawn(async move {
        let mut pause = Duration::from_millis(100);
        loop {
            if listener.strong_count() == 0 {
                return;
            }
            if track(&client, &key_prefix, &prefix, timeout, &listener).await {
                pause = Duration::from_millis(100);
            }
            let Some(alive) = listener.upgrade() else {
                return;
            };
            alive.all();
            drop(alive);
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(2));
        }
    });
}

/// One tracking connection, until it fails or the listener is gone; whether tracking was
/// established.
async fn track(
    client: &redis::Client,
    key_prefix: &str,
    prefix: &str,
    timeout: Duration,
    listener: &Weak<dyn Invalidate>,
) -> bool {
    let (tx, mut pushes) = mpsc::unbounded_channel();
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout))
        .set_push_sender(tx);
    let Ok(Ok(mut conn)) = tokio::time::timeout(
        timeout * 5,
        client.get_multiplexed_async_connection_with_config(&config),
    )
    .await
    else {
        return false;
    };
    let mut on = redis::cmd("CLIENT");
    on.arg("TRACKING")
        .arg("ON")
        .arg("BCAST")
        .arg("PREFIX")
        .arg(format!("{key_prefix}{prefix}"));
    if !matches!(
        tokio::time::timeout(timeout * 5, on.query_async::<()>(&mut conn)).await,
        Ok(Ok(()))
    ) {
        return false;
    }
    match listener.upgrade() {
        Some(alive) => alive.tracking(),
        None => return true,
    }
    tracing::info!("redis near cache: tracking changes");
    let ended = follow(&mut conn, &mut pushes, key_prefix, timeout, listener).await;
    if ended == Ended::Lost {
        tracing::warn!(
            "redis near cache: tracking connection lost; reads go to Redis until it is back"
        );
    }
    true
}

/// Why [`follow`] stopped.
#[derive(PartialEq, Eq)]
enum Ended {
    /// The listener is gone.
    Unused,
    /// The connection dropped or stopped answering.
    Lost,
}

/// Applies the pushes of an established tracking connection until it fails.
async fn follow(
    conn: &mut redis::aio::MultiplexedConnection,
    pushes: &mut mpsc::UnboundedReceiver<redis::PushInfo>,
    key_prefix: &str,
    timeout: Duration,
    listener: &Weak<dyn Invalidate>,
) -> Ended {
    let mut ping = tokio::time::interval(PING_EVERY);
    loop {
        tokio::select! {
            push = pushes.recv() => {
                let Some(push) = push else { return Ended::Lost };
                let Some(alive) = listener.upgrade() else { return Ended::Unused };
                match push.kind {
                    PushKind::Invalidate => invalidate(&*alive, &push.data, key_prefix),
                    PushKind::Disconnection => return Ended::Lost,
                    _ => {}
                }
            }
            _ = ping.tick() => {
                if listener.strong_count() == 0 {
                    return Ended::Unused;
                }
                let answered = tokio::time::timeout(
                    timeout * 5,
                    redis::cmd("PING").query_async::<String>(conn),
                )
                .await;
                if !matches!(answered, Ok(Ok(_))) {
                    return Ended::Lost;
                }
            }
        }
    }
}

/// `invalidate` carries an array of key names, or null when the whole database was flushed.
fn invalidate(listener: &dyn Invalidate, data: &[Value], key_prefix: &str) {
    let keys = match data.first() {
        Some(Value::Array(keys)) => keys,
        _ => return listener.all(),
    };
    for key in keys {
        match key {
            Value::BulkString(name) => {
                listener.key(name.strip_prefix(key_prefix.as_bytes()).unwrap_or(name));
            }
            _ => return listener.all(),
        }
    }
}
