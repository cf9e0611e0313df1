#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Runs every cargo-fuzz target for a bounded time (default 30 s each) and prints one line per
# target with its executions; exits non-zero on the first crash (its input is kept in
# fuzz/artifacts/<target>/):
#   scripts/fuzz.sh [seconds]
# Needs the nightly toolchain (rustup toolchain install nightly); installs cargo-fuzz if missing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../fuzz"
seconds="${1:-30}"
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    cargo install --locked cargo-fuzz
fi
cargo +nightly fuzz build >&2
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
for target in bearer jwt config challenge cache_key authserver; do
    if ! cargo +nightly fuzz run "$target" -- -max_total_time="$seconds" -rss_limit_mb=2048 >"$log" 2>&1; then
        tail -40 "$log" >&2
        echo "fuzz: $target CRASHED (input in fuzz/artifacts/$target/)"
        exit 1
    fi
    runs="$(grep -oE 'Done [0-9]+ runs in [0-9]+ second' "$log" | tail -1 | grep -oE '[0-9]+' | head -1)"
    echo "fuzz: $target: ${runs:-?} executions in ${seconds}s, 0 crashes"
done
