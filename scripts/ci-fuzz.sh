#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The bounded fuzz step of .ci/run, after the tests: every cargo-fuzz target for FUZZ_SECONDS
# (default 20) each, about 8 minutes with the build. Skipped, with a line saying why, when there
# is no nightly toolchain or cargo-fuzz cannot be installed (CI never fails for that); a crash
# fails it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    echo "fuzz: skipped: no nightly toolchain (rustup toolchain install nightly to run it)"
    exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1 && ! cargo install --locked cargo-fuzz >&2; then
    echo "fuzz: skipped: cargo-fuzz could not be installed"
    exit 0
fi
exec scripts/fuzz.sh "${FUZZ_SECONDS:-20}"
