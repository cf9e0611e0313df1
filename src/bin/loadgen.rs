// SPDX-License-Identifier: Apache-2.0
//! `loadgen`: a gRPC load generator for ext_authz `Check` (ghz cannot be installed here).
//!
//! N HTTP/2 connections with M requests in flight on each. Closed loop (each worker sends as soon
//! as its last answer came) or open loop (`--rate`: requests start at fixed intended times and
//! latency is measured from the intended time, so a slow server cannot hide its queue). Counts
//! every gRPC status and allow vs deny; prints requests/s and latency percentiles as JSON.
#![allow(clippy::print_stdout)]

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use hdrhistogram::Histogram;
use mcp_authz::wire::pb::auth::attribute_context::{HttpRequest, Request};
use mcp_authz::wire::pb::auth::authorization_client::AuthorizationClient;
use mcp_authz::wire::pb::auth::{AttributeContext, CheckRequest};
use tonic::transport::{Channel, Endpoint};

#[derive(Parser, Debug, Clone)]
#[command(name = "loadgen", about = "Load generator for Envoy ext_authz Check")]
struct Args {
    /// gRPC address of the Check server.
    #[arg(long, default_value = "http://127.0.0.1:9191")]
    target: String,
    /// HTTP/2 connections.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Requests in flight per connection.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Seconds to measure (after the warm-up).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Stop after this many requests instead (across all workers).
    #[arg(long)]
    requests: Option<u64>,
    /// Seconds of warm-up load before measuring.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Open loop: requests per second, started at fixed intended times.
    #[arg(long)]
    rate: Option<f64>,
    /// `context_extensions.backend`.
    #[arg(long, default_value = "github")]
    backend: String,
    /// The bearer token, or `@file` to read it.
    #[arg(long)]
    token: Option<String>,
    /// A file with one bearer token per line, each used for exactly one request (so each is
    /// verified in full): the run stops when they are used up.
    #[arg(long)]
    token_list: Option<String>,
    /// Bytes of extra request headers (besides authorization), to make Checks realistic.
    #[arg(long, default_value_t = 1024)]
    header_bytes: usize,
    /// grpc-timeout sent with each Check, in milliseconds.
    #[arg(long, default_value_t = 500)]
    timeout_ms: u64,
    /// Instead of load: write this many distinct ES256 JWTs (one per line) to `--mint-out`,
    /// signed with `--mint-key` (created when missing), and exit.
    #[arg(long)]
    mint_tokens: Option<usize>,
    /// PKCS#8 PEM P-256 key for `--mint-tokens` (the server's `signingKeyFile`).
    #[arg(long)]
    mint_key: Option<String>,
    /// Output file for `--mint-tokens`.
    #[arg(long)]
    mint_out: Option<String>,
    /// `iss` of minted tokens.
    #[arg(long, default_value = "http://127.0.0.1:9090")]
    issuer: String,
    /// `aud` of minted tokens.
    #[arg(long, default_value = "http://127.0.0.1:10000/mcp")]
    audience: String,
    /// Instead of load: write the CheckRequest as one gRPC message frame (for h2load or ghz
    /// `--binary`) to this file, and exit.
    #[arg(long)]
    emit_frame: Option<String>,
    /// Instead of load: send one Check to `--target` and write its CheckResponse (protobuf) to
    /// this file, for `noop-authz` to return the very same answer.
    #[arg(long)]
    emit_answer: Option<String>,
}

/// Writes `count` distinct tokens (different `sub` and `jti`) for the load's "fresh JWT" runs.
fn mint(args: &Args, count: usize) -> anyhow::Result<()> {
    use mcp_authz::authserver::SigningKey;
    let key_path = args.mint_key.as_deref().context("--mint-key is required")?;
    let out = args.mint_out.as_deref().context("--mint-out is required")?;
    let key = if std::path::Path::new(key_path).exists() {
        SigningKey::from_pem_file(std::path::Path::new(key_path))?
    } else {
        let key = SigningKey::generate();
        std::fs::write(key_path, key.to_pkcs8_pem()?)?;
        key
    };
    let encoding = key.encoding_key()?;
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.typ = Some("at+jwt".to_owned());
    header.kid = Some(key.kid().to_owned());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let mut text = String::with_capacity(count * 700);
    for i in 0..count {
        let claims = serde_json::json!({
            "iss": args.issuer, "aud": args.audience, "sub": format!("bench-user-{i}"),
            "iat": now, "exp": now + 3600, "jti": format!("bench-{now}-{i}"),
            "client_id": "bench-client", "tsid": format!("bench-tsid-{i:08}"),
            "scope": "openid mcp:tools",
        });
        text.push_str(&jsonwebtoken::encode(&header, &claims, &encoding)?);
        text.push('\n');
    }
    std::fs::write(out, text)?;
    Ok(())
}

/// What one worker saw.
struct Tally {
    latency: Histogram<u64>,
    statuses: BTreeMap<i32, u64>,
    allow: u64,
    deny: u64,
}

impl Tally {
    fn new() -> anyhow::Result<Self> {
        Ok(Self {
            latency: Histogram::new_with_bounds(1, 60_000_000, 3)?,
            statuses: BTreeMap::new(),
            allow: 0,
            deny: 0,
        })
    }

    fn merge(&mut self, other: &Tally) -> anyhow::Result<()> {
        self.latency.add(&other.latency)?;
        for (code, n) in &other.statuses {
            *self.statuses.entry(*code).or_default() += n;
        }
        self.allow += other.allow;
        self.deny += other.deny;
        Ok(())
    }
}

fn request(args: &Args, authorization: Option<&str>) -> CheckRequest {
    let mut headers: HashMap<String, String> = [
        (":authority", "mcp.example.com"),
        (":method", "POST"),
        (":path", "/mcp"),
        (":scheme", "https"),
        ("content-type", "application/json"),
        ("accept", "application/json, text/event-stream"),
        ("user-agent", "mcp-client/1.0 (loadgen)"),
        ("mcp-protocol-version", "2025-06-18"),
        ("x-request-id", "5f0c3a9e-8d1b-4c2a-9e7f-1a2b3c4d5e6f"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let used: usize = headers.iter().map(|(k, v)| k.len() + v.len()).sum();
    if args.header_bytes > used {
        headers.insert(
            "x-forwarded-for".to_owned(),
            "203.0.113.7, 198.51.100.23".to_owned(),
        );
        headers.insert(
            "mcp-session-id".to_owned(),
            "x".repeat(args.header_bytes.saturating_sub(used + 60)),
        );
    }
    if let Some(a) = authorization {
        headers.insert("authorization".to_owned(), a.to_owned());
    }
    CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(Request {
                http: Some(HttpRequest {
                    id: "1".to_owned(),
                    method: "POST".to_owned(),
                    path: "/mcp".to_owned(),
                    host: "mcp.example.com".to_owned(),
                    scheme: "https".to_owned(),
                    headers,
                    ..Default::default()
                }),
            }),
            context_extensions: HashMap::from([("backend".to_owned(), args.backend.clone())]),
        }),
    }
}

fn read_token(value: &str) -> anyhow::Result<String> {
    match value.strip_prefix('@') {
        Some(path) => Ok(std::fs::read_to_string(path)
            .with_context(|| format!("reading {path}"))?
            .trim()
            .to_owned()),
        None => Ok(value.to_owned()),
    }
}

/// Where each request's token comes from.
enum Tokens {
    Fixed(Box<CheckRequest>),
    List(Vec<CheckRequest>, AtomicU64),
}

impl Tokens {
    /// The request to send next; `None` when a token list is used up.
    fn next(&self) -> Option<CheckRequest> {
        match self {
            Self::Fixed(request) => Some((**request).clone()),
            Self::List(list, at) => list
                .get(at.fetch_add(1, Ordering::Relaxed) as usize)
                .cloned(),
        }
    }
}

struct Shared {
    tokens: Tokens,
    stop: AtomicBool,
    measuring: AtomicBool,
    sent: AtomicU64,
    limit: Option<u64>,
    start: Instant,
    rate: Option<f64>,
    timeout: Duration,
}

async fn worker(
    client: AuthorizationClient<Channel>,
    shared: Arc<Shared>,
) -> anyhow::Result<Tally> {
    let mut client = client;
    let mut tally = Tally::new()?;
    loop {
        if shared.stop.load(Ordering::Relaxed) {
            break;
        }
        let measuring = shared.measuring.load(Ordering::Relaxed);
        let index = if measuring {
            let n = shared.sent.fetch_add(1, Ordering::Relaxed);
            if shared.limit.is_some_and(|limit| n >= limit) {
                shared.stop.store(true, Ordering::Relaxed);
                break;
            }
            Some(n)
        } else {
            None
        };
        // Open loop: the intended start time of request `n` is n / rate after the start.
        let intended = match (shared.rate, index) {
            (Some(rate), Some(n)) => {
                let at = shared.start + Duration::from_secs_f64(n as f64 / rate);
                tokio::time::sleep_until(at.into()).await;
                at
            }
            _ => Instant::now(),
        };
        let Some(body) = shared.tokens.next() else {
            shared.stop.store(true, Ordering::Relaxed);
            break;
        };
        let mut request = tonic::Request::new(body);
        request.set_timeout(shared.timeout);
        let result = client.check(request).await;
        if index.is_none() {
            continue;
        }
        let micros = intended.elapsed().as_micros().max(1) as u64;
        tally.latency.saturating_record(micros);
        match result {
            Ok(response) => {
                let code = response.into_inner().status.map_or(0, |s| s.code);
                *tally.statuses.entry(code).or_default() += 1;
                if code == 0 {
                    tally.allow += 1;
                } else {
                    tally.deny += 1;
                }
            }
            Err(status) => {
                // Transport and gRPC errors, counted by code, negative so they stand apart.
                *tally.statuses.entry(-(status.code() as i32)).or_default() += 1;
            }
        }
    }
    Ok(tally)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(count) = args.mint_tokens {
        return mint(&args, count);
    }
    if let Some(path) = &args.emit_frame {
        use prost::Message;
        let token = args.token.as_deref().map(read_token).transpose()?;
        let body = request(&args, token.map(|t| format!("Bearer {t}")).as_deref()).encode_to_vec();
        // gRPC length-prefixed message: uncompressed flag, 4-byte big-endian length, message.
        let mut frame = vec![0u8];
        frame.extend_from_slice(&u32::try_from(body.len())?.to_be_bytes());
        frame.extend_from_slice(&body);
        std::fs::write(path, frame)?;
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(args))
}

/// Writes the answer `--target` gives to one Check with `--token` and `--backend`.
async fn emit_answer(args: &Args, path: &str) -> anyhow::Result<()> {
    use prost::Message;
    let token = args.token.as_deref().map(read_token).transpose()?;
    let request = request(args, token.map(|t| format!("Bearer {t}")).as_deref());
    let channel = Endpoint::from_shared(args.target.clone())?
        .connect()
        .await?;
    let answer = AuthorizationClient::new(channel).check(request).await?;
    std::fs::write(path, answer.into_inner().encode_to_vec())?;
    Ok(())
}

async fn run(args: Args) -> anyhow::Result<()> {
    if let Some(path) = &args.emit_answer {
        return emit_answer(&args, path).await;
    }
    let tokens = match (&args.token, &args.token_list) {
        (_, Some(path)) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
            let list: Vec<CheckRequest> = text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|t| request(&args, Some(&format!("Bearer {}", t.trim()))))
                .collect();
            Tokens::List(list, AtomicU64::new(0))
        }
        (Some(token), None) => {
            let token = read_token(token)?;
            Tokens::Fixed(Box::new(request(&args, Some(&format!("Bearer {token}")))))
        }
        (None, None) => Tokens::Fixed(Box::new(request(&args, None))),
    };
    let mut channels = Vec::new();
    for _ in 0..args.connections.max(1) {
        let channel = Endpoint::from_shared(args.target.clone())?
            .tcp_nodelay(true)
            .connect()
            .await
            .with_context(|| format!("connecting to {}", args.target))?;
        channels.push(channel);
    }
    let warmup = Duration::from_secs_f64(args.warmup);
    let shared = Arc::new(Shared {
        tokens,
        stop: AtomicBool::new(false),
        measuring: AtomicBool::new(warmup.is_zero()),
        sent: AtomicU64::new(0),
        limit: args.requests,
        start: Instant::now() + warmup,
        rate: args.rate,
        timeout: Duration::from_millis(args.timeout_ms),
    });
    let mut workers = Vec::new();
    for channel in &channels {
        for _ in 0..args.concurrency.max(1) {
            workers.push(tokio::spawn(worker(
                AuthorizationClient::new(channel.clone()),
                shared.clone(),
            )));
        }
    }
    tokio::time::sleep(warmup).await;
    shared.measuring.store(true, Ordering::Relaxed);
    let measure_start = Instant::now();
    let deadline = measure_start + Duration::from_secs_f64(args.duration);
    while Instant::now() < deadline && !shared.stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    shared.stop.store(true, Ordering::Relaxed);
    let elapsed = measure_start.elapsed().as_secs_f64();
    let mut total = Tally::new()?;
    for w in workers {
        total.merge(&w.await??)?;
    }
    let requests = total.latency.len();
    let percentile = |q: f64| total.latency.value_at_quantile(q);
    let report = serde_json::json!({
        "target": args.target,
        "backend": args.backend,
        "mode": if args.rate.is_some() { "open" } else { "closed" },
        "connections": args.connections,
        "concurrency": args.concurrency,
        "requests": requests,
        "seconds": elapsed,
        "rps": requests as f64 / elapsed,
        "latency_us": {
            "p50": percentile(0.50),
            "p90": percentile(0.90),
            "p99": percentile(0.99),
            "p999": percentile(0.999),
            "max": total.latency.max(),
            "mean": total.latency.mean(),
        },
        "grpc_status": total.statuses.iter().map(|(k, v)| (k.to_string(), v)).collect::<BTreeMap<_, _>>(),
        "allow": total.allow,
        "deny": total.deny,
    });
    println!("{report}");
    Ok(())
}
