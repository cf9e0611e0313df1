// SPDX-License-Identifier: Apache-2.0
//! Decision audit events: one JSON line per Check (denials always, allows sampled). A Check only
//! fills a fixed-size event (two reference-count increments, no allocation, no formatting) and
//! hands it to a bounded lock-free queue; a writer thread wakes every [`FLUSH_INTERVAL`], formats
//! what is queued into one reused buffer and writes it in one call. A Check never waits on I/O
//! and never wakes a thread. Events carry names, reason codes and timings, never a token, secret
//! or `tsid`. When the queue is full, events are dropped and counted.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TryRecvError};
use prometheus_client::metrics::counter::Counter;
use serde::{Serialize, Serializer};

use crate::config::AuditConfig;

/// Events waiting for the writer before new ones are dropped: at 100k Checks/s, 160 ms of them.
const QUEUE: usize = 16 * 1024;
/// How long an event waits at most before it is written.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(20);

/// One Check's decision.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEvent {
    /// Unix time in milliseconds.
    pub ts_ms: u64,
    /// `allow` or `deny`.
    pub decision: &'static str,
    /// Backend name (`<unknown>` when the route named none we know).
    #[serde(serialize_with = "backend_name")]
    pub backend: Option<Arc<str>>,
    /// Strategy type, or `none`.
    pub strategy: &'static str,
    /// The caller's `sub`, when identified.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "subject")]
    pub subject: Option<Arc<str>>,
    /// The denial's reason code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    /// gRPC status sent to Envoy.
    pub grpc_status: i32,
    /// Whether the caller's JWT came from the verified-token cache.
    pub identity_cache_hit: bool,
    /// Time spent on the Check, in microseconds.
    pub latency_us: u64,
}

/// One authorization-server event (DESIGN.md §11): the end of a login walk, or a connect page
/// that could not run. Written whole (never sampled); its lines have an `event` field, a Check's
/// do not.
#[derive(Debug, Clone, Serialize)]
pub struct LoginEvent {
    /// Unix time in milliseconds.
    pub ts_ms: u64,
    /// Always `login`.
    pub event: &'static str,
    /// `first`, `incremental` or `connect`.
    pub flow: &'static str,
    /// `completed`, `refused`, `expired` or `unavailable`.
    pub result: &'static str,
    /// The upstreams whose legs the user completed, in order.
    pub providers: Vec<String>,
    /// Our `sub`, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Whether a login session (a browser cookie) was created.
    pub session_created: bool,
}

/// What the writer writes.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
enum Record {
    Check(AuditEvent),
    Login(LoginEvent),
}

/// A handle that queues authorization-server events into the audit stream.
#[derive(Debug, Clone)]
pub struct AuditHandle {
    tx: Sender<Record>,
    dropped: Counter,
}

impl AuditHandle {
    /// Queues one event; drops it (and counts) when the writer is behind.
    pub fn record_login(&self, event: LoginEvent) {
        if self.tx.try_send(Record::Login(event)).is_err() {
            self.dropped.inc();
        }
    }
}

fn subject<S: Serializer>(subject: &Option<Arc<str>>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(subject.as_deref().unwrap_or_default())
}

fn backend_name<S: Serializer>(name: &Option<Arc<str>>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(name.as_deref().unwrap_or("<unknown>"))
}

/// Where audit events go.
#[derive(Debug)]
pub struct Audit {
    tx: Sender<Record>,
    allow_rate: f64,
    allows: AtomicU64,
    dropped: Counter,
    closing: Arc<AtomicBool>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl Audit {
    /// Starts the writer for `config`; `None` when auditing is disabled.
    ///
    /// # Errors
    /// When the audit file cannot be opened or the writer thread cannot start.
    pub fn start(config: &AuditConfig, dropped: Counter) -> std::io::Result<Option<Self>> {
        if !config.enabled {
            return Ok(None);
        }
        let sink: Box<dyn Write + Send> = match &config.file {
            Some(path) => Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?,
            ),
            None => Box::new(std::io::stdout()),
        };
        Self::start_with(sink, config.allow_sample_rate, dropped).map(Some)
    }

    /// Starts the writer for `sink`.
    fn start_with(
        sink: Box<dyn Write + Send>,
        allow_rate: f64,
        dropped: Counter,
    ) -> std::io::Result<Self> {
        let (tx, rx) = crossbeam_channel::bounded(QUEUE);
        let closing = Arc::new(AtomicBool::new(false));
        let writer = Writer {
            rx,
            sink,
            dropped: dropped.clone(),
            closing: closing.clone(),
            buffer: Vec::with_capacity(256 * 1024),
        };
        let handle = std::thread::Builder::new()
            .name("audit-writer".to_owned())
            .spawn(move || writer.run())?;
        Ok(Self {
            tx,
            allow_rate: allow_rate.clamp(0.0, 1.0),
            allows: AtomicU64::new(0),
            dropped,
            closing,
            writer: Mutex::new(Some(handle)),
        })
    }

    /// Whether an allowed Check should be written: exactly `allowSampleRate` of them, spread
    /// evenly (the n-th allow is written when ⌊n·rate⌋ grows). Denials are always written.
    pub fn sample_allow(&self) -> bool {
        let n = self.allows.fetch_add(1, Ordering::Relaxed) as f64;
        ((n + 1.0) * self.allow_rate).floor() > (n * self.allow_rate).floor()
    }

    /// Queues one event; drops it (and counts) when the writer is behind.
    pub fn record(&self, event: AuditEvent) {
        if self.tx.try_send(Record::Check(event)).is_err() {
            self.dropped.inc();
        }
    }

    /// A handle for the authorization server's events.
    pub fn handle(&self) -> AuditHandle {
        AuditHandle {
            tx: self.tx.clone(),
            dropped: self.dropped.clone(),
        }
    }

    /// Writes what is queued and stops the writer (at shutdown, so no event is lost).
    pub fn close(&self) {
        self.closing.store(true, Ordering::SeqCst);
        let handle = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(handle) = handle {
            handle.thread().unpark();
            let _ = handle.join();
        }
    }
}

impl Drop for Audit {
    fn drop(&mut self) {
        self.close();
    }
}

/// The writer thread's side of the queue.
struct Writer {
    rx: Receiver<Record>,
    sink: Box<dyn Write + Send>,
    dropped: Counter,
    closing: Arc<AtomicBool>,
    buffer: Vec<u8>,
}

impl Writer {
    fn run(mut self) {
        loop {
            std::thread::park_timeout(FLUSH_INTERVAL);
            let closing = self.closing.load(Ordering::SeqCst);
            let open = self.drain();
            if closing || !open {
                return;
            }
        }
    }

    /// Writes every queued event, in batches of at most 256 KiB; whether the queue is still open.
    fn drain(&mut self) -> bool {
        loop {
            let mut events = 0;
            let mut open = true;
            while self.buffer.len() < 256 * 1024 {
                match self.rx.try_recv() {
                    Ok(event) => {
                        // Strings, integers and booleans always serialise.
                        if serde_json::to_writer(&mut self.buffer, &event).is_ok() {
                            self.buffer.push(b'\n');
                            events += 1;
                        }
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        open = false;
                        break;
                    }
                }
            }
            if events == 0 {
                return open;
            }
            if self.sink.write_all(&self.buffer).is_err() || self.sink.flush().is_err() {
                // A broken sink must not stop Checks: the batch is counted as dropped.
                self.dropped.inc_by(events);
            }
            self.buffer.clear();
            if !open {
                return false;
            }
        }
    }
}

/// Milliseconds since the unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(file: &std::path::Path, rate: f64) -> AuditConfig {
        AuditConfig {
            enabled: true,
            file: Some(file.to_string_lossy().into_owned()),
            allow_sample_rate: rate,
        }
    }

    fn event(subject: &str) -> AuditEvent {
        AuditEvent {
            ts_ms: 1,
            decision: "deny",
            backend: None,
            strategy: "none",
            subject: Some(Arc::from(subject)),
            reason: Some("missing_token"),
            grpc_status: 16,
            identity_cache_hit: false,
            latency_us: 7,
        }
    }

    #[test]
    fn allows_are_sampled_at_exactly_the_configured_rate() {
        for (rate, expected) in [(1.0, 1000), (0.8, 800), (0.25, 250), (0.001, 1), (0.0, 0)] {
            let audit = Audit::start(&config("/dev/null".as_ref(), rate), Counter::default())
                .unwrap()
                .unwrap();
            let written = (0..1000).filter(|_| audit.sample_allow()).count();
            assert_eq!(written, expected, "rate {rate}");
        }
    }

    #[test]
    fn close_writes_every_queued_event_as_one_json_line_each() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let dropped = Counter::default();
        let audit = Audit::start(&config(&path, 1.0), dropped.clone())
            .unwrap()
            .unwrap();
        for i in 0..5000 {
            audit.record(event(&format!("user \"{i}\"\n")));
        }
        audit.close();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(lines.len() as u64 + dropped.get(), 5000);
        assert_eq!(dropped.get(), 0, "5000 events fit the queue");
        assert_eq!(lines[0]["backend"], "<unknown>");
        assert_eq!(lines[4999]["subject"], "user \"4999\"\n");
        assert_eq!(lines[0]["latency_us"], 7);
    }

    /// A sink whose writes wait until the test lets them go.
    struct Stuck(std::sync::mpsc::Receiver<()>);

    impl Write for Stuck {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let _ = self.0.recv();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stuck_sink_drops_and_counts_instead_of_blocking_checks() {
        let (release, stuck) = std::sync::mpsc::channel();
        let dropped = Counter::default();
        let audit = Audit::start_with(Box::new(Stuck(stuck)), 1.0, dropped.clone()).unwrap();
        // The writer holds at most one 256 KiB batch (fewer than QUEUE events) while its write
        // waits, so of three queues' worth at least one queue's worth is dropped.
        for _ in 0..3 * QUEUE {
            audit.record(event("u"));
        }
        assert!(dropped.get() >= QUEUE as u64, "dropped {}", dropped.get());
        drop(release);
        audit.close();
    }
}
