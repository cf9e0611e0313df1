#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""How long a configuration reload can hold up a Check.

mcp-authz (release build, CPU 0) serves a steady closed-loop Check load from loadgen (CPU 1) on an
`unauthenticated` backend; meanwhile the config file is rewritten and SIGHUP sent every 0.5 s,
alternating a normal file with a hostile or huge one. The table gives the Check latency
percentiles and maximum with no reload, with a 50,000-level nested file (refused), and with an
8 MB file of 200,000 backends (accepted). Run it through bench/reload.sh, or with RELEASE set
to another build's target/release to compare builds.

Environment: RELEASE (default target/release), RELOAD_SECONDS (default 6).
"""
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (the suite's helpers: ports, processes, loadgen)

RELEASE = os.environ.get("RELEASE", run.RELEASE)
SECONDS = float(os.environ.get("RELOAD_SECONDS", "6"))


def config(http_port, grpc_port, key, extra_backends=""):
    return f"""
server:
  grpcAddr: 127.0.0.1:{grpc_port}
  httpAddr: 127.0.0.1:{http_port}
  resourceUrl: {run.AUDIENCE}
  audit: {{ enabled: false }}
incomingAuth:
  type: oidc
  oidc: {{ issuer: "http://127.0.0.1:{http_port}", audience: "{run.AUDIENCE}" }}
authServer:
  issuer: http://127.0.0.1:{http_port}
  allowedAudiences: ["{run.AUDIENCE}"]
  signingKeyFile: {key}
  upstreams:
    - {{ name: demo, type: oidc, oidc: {{ issuerUrl: "https://idp.invalid", clientId: c }} }}
outgoingAuth:
  backends:
    public: {{ type: unauthenticated }}
{extra_backends}"""


def reloader(path, files, server_pid, stop):
    """Writes the files in turn and sends SIGHUP, every 0.5 s, until `stop` is set."""
    i = 0
    while not stop.is_set():
        with open(path, "w") as f:
            f.write(files[i % len(files)])
        os.kill(server_pid, signal.SIGHUP)
        i += 1
        stop.wait(0.5)
    return i


def main():
    tmp = tempfile.mkdtemp(prefix="mcp-authz-reload-")
    key = os.path.join(tmp, "signing.pem")
    tokens = os.path.join(tmp, "token.txt")
    http_port, grpc_port = run.free_port(), run.free_port()
    subprocess.run([os.path.join(RELEASE, "loadgen"), "--mint-tokens", "1", "--mint-key", key,
                    "--mint-out", tokens, "--issuer", f"http://127.0.0.1:{http_port}",
                    "--audience", run.AUDIENCE], check=True)
    with open(tokens) as f:
        token = f.readline().strip()
    normal = config(http_port, grpc_port, key)
    deep = normal + "    deep: " + "[" * 50_000 + "]" * 50_000 + "\n"
    many = "".join(f"    b{i:06}: {{ type: unauthenticated }}\n" for i in range(200_000))
    large = config(http_port, grpc_port, key, many)
    path = os.path.join(tmp, "config.yaml")
    with open(path, "w") as f:
        f.write(normal)
    server = run.Proc([os.path.join(RELEASE, "mcp-authz"), "serve", "--config", path,
                       "--watch-interval", "0"])
    rows = []
    try:
        run.wait_port(grpc_port)
        for name, files in [
            ("no reload", None),
            ("reload: 50,000-level nesting (refused) / normal", [deep, normal]),
            (f"reload: {len(large) / 1e6:.1f} MB, 200,000 backends (accepted) / normal", [large, normal]),
        ]:
            stop = threading.Event()
            count = [0]
            thread = None
            if files:
                thread = threading.Thread(
                    target=lambda: count.__setitem__(0, reloader(path, files, server.pid, stop)))
                thread.start()
            r = run.loadgen(grpc_port, "--backend", "public", "--token", token,
                            connections=1, concurrency=4, seconds=SECONDS)
            stop.set()
            if thread:
                thread.join()
            with open(path, "w") as f:
                f.write(normal)
            os.kill(server.pid, signal.SIGHUP)
            time.sleep(1.0)
            lat = r["latency_us"]
            rows.append((name, count[0], r["rps"], lat["p50"], lat["p99"], lat["p999"], lat["max"],
                         r["grpc_status"]))
    finally:
        server.stop()
    print(f"build: {RELEASE}")
    print("| scenario | reloads | req/s | p50 µs | p99 µs | p99.9 µs | max µs | statuses |")
    print("|---|---|---|---|---|---|---|---|")
    for name, n, rps, p50, p99, p999, mx, statuses in rows:
        print(f"| {name} | {n} | {rps:,.0f} | {p50:,} | {p99:,} | {p999:,} | {mx:,} | {statuses} |")


if __name__ == "__main__":
    main()
