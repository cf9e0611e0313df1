// SPDX-License-Identifier: Apache-2.0
//! Decision audit events: one JSON line per Check (denials always, allows sampled), written by
//! a background task so a Check never waits on I/O. Events carry names, reason codes and timings,
//! never a token, secret or `tsid`. When the writer falls behind, events are dropped and counted.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use serde::Serialize;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use crate::config::AuditConfig;

/// Events waiting for the writer before new ones are dropped.
const QUEUE: usize = 16 * 1024;

/// One Check's decision.
#[derive(Debug, Serialize)]
pub struct AuditEvent<'a> {
    /// Unix time in milliseconds.
    pub ts_ms: u128,
    /// `allow` or `deny`.
    pub decision: &'static str,
    /// Backend name (`<unknown>` when the route named none we know).
    pub backend: &'a str,
    /// Strategy type, or `none`.
    pub strategy: &'static str,
    /// The caller's `sub`, when identified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<&'a str>,
    /// The denial's reason code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    /// gRPC status sent to Envoy.
    pub grpc_status: i32,
    /// Whether the caller's JWT came from the verified-token cache.
    pub identity_cache_hit: bool,
    /// Time spent on the Check, in microseconds.
    pub latency_us: u128,
}

/// Where audit events go.
#[derive(Debug)]
pub struct Audit {
    tx: mpsc::Sender<String>,
    allow_every: u64,
    allows: AtomicU64,
    dropped: Counter,
}

impl Audit {
    /// Starts the writer for `config`; `None` when auditing is disabled.
    ///
    /// # Errors
    /// When the audit file cannot be opened.
    pub async fn start(config: &AuditConfig, dropped: Counter) -> std::io::Result<Option<Self>> {
        if !config.enabled {
            return Ok(None);
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        let sink: Box<dyn tokio::io::AsyncWrite + Unpin + Send> = match &config.file {
            Some(path) => Box::new(
                tokio::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .await?,
            ),
            None => Box::new(tokio::io::stdout()),
        };
        tokio::spawn(write_events(rx, sink));
        let allow_every = if config.allow_sample_rate <= 0.0 {
            0
        } else {
            (1.0 / config.allow_sample_rate).round().max(1.0) as u64
        };
        Ok(Some(Self {
            tx,
            allow_every,
            allows: AtomicU64::new(0),
            dropped,
        }))
    }

    /// Whether an allowed Check should be written (every Nth; denials always are).
    pub fn sample_allow(&self) -> bool {
        self.allow_every != 0
            && self
                .allows
                .fetch_add(1, Ordering::Relaxed)
                .is_multiple_of(self.allow_every)
    }

    /// Queues one event; drops it (and counts) when the writer is behind.
    pub fn record(&self, event: &AuditEvent<'_>) {
        let Ok(mut line) = serde_json::to_string(event) else {
            return;
        };
        line.push('\n');
        if self.tx.try_send(line).is_err() {
            self.dropped.inc();
        }
    }
}

async fn write_events(
    mut rx: mpsc::Receiver<String>,
    mut sink: Box<dyn tokio::io::AsyncWrite + Unpin + Send>,
) {
    let mut buffer = Vec::with_capacity(64 * 1024);
    while let Some(line) = rx.recv().await {
        buffer.extend_from_slice(line.as_bytes());
        // Batch whatever else is already queued into one write.
        while buffer.len() < 256 * 1024 {
            match rx.try_recv() {
                Ok(line) => buffer.extend_from_slice(line.as_bytes()),
                Err(_) => break,
            }
        }
        if sink.write_all(&buffer).await.is_err() || sink.flush().await.is_err() {
            // A broken sink must not stop Checks; retry later with fresh events.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        buffer.clear();
    }
}

/// Milliseconds since the unix epoch.
pub fn now_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}
