#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The benchmark suite in one run: no-op Check server vs mcp-authz, directly and through real
# Envoy, with a stated CPU placement (servers on CPU 0, load generators on CPU 1). Installs what
# it needs (the test environment, plus h2load from Debian's nghttp2-client), builds release
# binaries, then runs bench/run.py. Prints a Markdown table; BENCH_JSON=path also writes JSON.
#
#   bench/run.sh            # ~8 s per scenario (BENCH_SECONDS to change)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

eval "$(scripts/setup-test-env.sh)"
if ! command -v h2load >/dev/null 2>&1; then
    sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    echo "bench: installing nghttp2-client (h2load) via apt" >&2
    "${sudo[@]}" apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends nghttp2-client >&2
fi
if [ "$(nproc)" -lt 2 ]; then
    echo "bench: needs 2 CPUs for the placement (servers on 0, load on 1)" >&2
    exit 1
fi
cargo build --release --locked --bins >&2
python3 bench/run.py
