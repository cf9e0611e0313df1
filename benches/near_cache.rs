// SPDX-License-Identifier: Apache-2.0
//! The near cache's invalidation bound against a real Redis (`REDIS_URL`): replica B writes a
//! record that replica A holds in its near cache; the time from B's write being acknowledged to
//! A's cache no longer holding the old record, over many rounds. Also the cost of a hit.
//! Without `REDIS_URL` it says so and does nothing (`bench/run.sh` sets it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use mcp_authz::secret::{Token, Tsid};
use mcp_authz::store::{RedisStore, RedisTarget, Store};
use mcp_authz::upstream::{UpstreamStore, UpstreamToken};

const ROUNDS: usize = 2000;

fn token(value: &str) -> UpstreamToken {
    UpstreamToken {
        access_token: Token::new(value),
        refresh_token: None,
        id_token: None,
        expires_at: None,
        subject: None,
        client_id: None,
    }
}

fn replica(url: &str) -> UpstreamStore {
    let target = RedisTarget {
        url,
        username: None,
        password: None,
        tls: None,
    };
    let kv = RedisStore::new(&target, "bench-near:", Duration::from_millis(500)).unwrap();
    UpstreamStore::with_near_cache(Store::Redis(kv), 1000)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let Ok(url) = std::env::var("REDIS_URL") else {
        println!("near_cache: skipped: REDIS_URL is not set");
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (a, b) = (replica(&url), replica(&url));
        let tsid = Tsid::new("bench-tsid");
        let provider: Arc<str> = Arc::from("github");
        let deadline = || tokio::time::Instant::now() + Duration::from_secs(1);
        b.put(&tsid, &provider, &token("gho_0")).await.unwrap();
        // Until A's tracking connection is up and the record is cached.
        while a.near_cache_len() != Some(1) {
            a.get(&tsid, &provider, deadline()).await.unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }

        let started = Instant::now();
        for _ in 0..100_000 {
            a.get(&tsid, &provider, deadline()).await.unwrap();
        }
        let hit = started.elapsed() / 100_000;

        let mut bounds = Vec::with_capacity(ROUNDS);
        for round in 1..=ROUNDS {
            b.put(&tsid, &provider, &token(&format!("gho_{round}")))
                .await
                .unwrap();
            let acknowledged = Instant::now();
            while a.near_cache_len() != Some(0) {
                tokio::task::yield_now().await;
            }
            bounds.push(acknowledged.elapsed());
            let fresh = a.get(&tsid, &provider, deadline()).await.unwrap().unwrap();
            assert_eq!(fresh.access_token.expose_secret(), format!("gho_{round}"));
            while a.near_cache_len() != Some(1) {
                a.get(&tsid, &provider, deadline()).await.unwrap();
            }
        }
        bounds.sort();
        println!(
            "near_cache: hit {:.2} µs; invalidation after another replica's acknowledged write \
             over {ROUNDS} rounds: p50 {:?}, p99 {:?}, max {:?}",
            hit.as_secs_f64() * 1e6,
            percentile(&bounds, 0.5),
            percentile(&bounds, 0.99),
            bounds[ROUNDS - 1],
        );
        b.delete(&tsid, &provider).await.unwrap();
    });
}
