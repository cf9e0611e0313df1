#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Runs every cargo-fuzz target for a bounded time (default 30 s each):
#   scripts/fuzz.sh [seconds]
# Needs the nightly toolchain (rustup toolchain install nightly); installs cargo-fuzz if missing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../fuzz"
seconds="${1:-30}"
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    cargo install --locked cargo-fuzz
fi
for target in bearer jwt config challenge cache_key; do
    echo "fuzz.sh: $target for ${seconds}s" >&2
    cargo +nightly fuzz run "$target" -- -max_total_time="$seconds" -rss_limit_mb=2048
done
