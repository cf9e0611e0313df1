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
    allow_rate: f64,
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
        tokio::spawn(write_events(rx, sink, dropped.clone()));
        Ok(Some(Self {
            tx,
            allow_rate: config.allow_sample_rate.clamp(0.0, 1.0),
            allows: AtomicU64::new(0),
            dropped,
        }))
    }

    /// Whether an allowed Check should be written: exactly `allowSampleRate` of them, spread
    /// evenly (the n-th allow is written when ⌊n·rate⌋ grows). Denials are always written.
    pub fn sample_allow(&self) -> bool {
        let n = self.allows.fetch_add(1, Ordering::Relaxed) as f64;
        ((n + 1.0) * self.allow_rate).floor() > (n * self.allow_rate).floor()
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
    dropped: Counter,
) {
    let mut buffer = Vec::with_capacity(64 * 1024);
    while let Some(line) = rx.recv().await {
        buffer.extend_from_slice(line.as_bytes());
        let mut events = 1;
        // Batch whatever else is already queued into one write.
        while buffer.len() < 256 * 1024 {
            match rx.try_recv() {
                Ok(line) => {
                    buffer.extend_from_slice(line.as_bytes());
                    events += 1;
                }
                Err(_) => break,
            }
        }
        if sink.write_all(&buffer).await.is_err() || sink.flush().await.is_err() {
            // A broken sink must not stop Checks: the batch is counted as dropped.
            dropped.inc_by(events);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn allows_are_sampled_at_exactly_the_configured_rate() {
        for (rate, expected) in [(1.0, 1000), (0.8, 800), (0.25, 250), (0.001, 1), (0.0, 0)] {
            let config = AuditConfig {
                enabled: true,
                file: Some("/dev/null".to_owned()),
                allow_sample_rate: rate,
            };
            let audit = Audit::start(&config, Counter::default())
                .await
                .unwrap()
                .unwrap();
            let written = (0..1000).filter(|_| audit.sample_allow()).count();
            assert_eq!(written, expected, "rate {rate}");
        }
    }
}
