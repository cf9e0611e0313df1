#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The benchmark suite, in one run (called by bench/run.sh, which installs and builds first).

Placement on this 2-core machine: every server under test (mcp-authz, the no-op Check server,
Envoy) runs pinned to CPU 0; the load generator (loadgen, h2load) runs pinned to CPU 1. Each
mcp-authz scenario is compared with the no-op server measured the same way, in the same run.

Environment: ENVOY_BIN, REDIS_SERVER_BIN, NODE_BIN, OAUTH_SERVER_JS (from setup-test-env.sh),
BENCH_SECONDS (default 8), BENCH_JSON (where to write the results as JSON), BENCH_PERF_DIR (record
the fresh-JWT scenario with `perf record` there and print its flat profile).
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RELEASE = os.path.join(ROOT, "target", "release")
SECONDS = float(os.environ.get("BENCH_SECONDS", "8"))
SERVER_CPU, LOAD_CPU = "0", "1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
AUDIENCE = "http://127.0.0.1:10000/mcp"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=20):
    end = time.time() + timeout
    while time.time() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port}")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class Proc:
    def __init__(self, args, cpu=SERVER_CPU, env=None, stdout=subprocess.DEVNULL):
        self.p = subprocess.Popen(
            ["taskset", "-c", cpu, *args],
            env={**os.environ, **(env or {})},
            stdout=stdout,
            stderr=subprocess.DEVNULL,
        )

    @property
    def pid(self):
        return self.p.pid

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


def loadgen(port, *extra, connections=2, concurrency=32, seconds=SECONDS, warmup=1):
    args = [
        "taskset", "-c", LOAD_CPU, os.path.join(RELEASE, "loadgen"),
        "--target", f"http://127.0.0.1:{port}",
        "--connections", str(connections), "--concurrency", str(concurrency),
        "--duration", str(seconds), "--warmup", str(warmup), *extra,
    ]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def measure(server_pid, run):
    """Runs `run()` and returns its result with the server's CPU µs per request and RSS."""
    before = cpu_seconds(server_pid)
    result = run()
    used = cpu_seconds(server_pid) - before
    requests = result["requests"]
    result["server_cpu_us"] = used * 1e6 / requests if requests else None
    result["server_rss_mib"] = rss_mib(server_pid)
    return result


def profiled(name, server_pid, run):
    """`run()`, recorded with perf into BENCH_PERF_DIR/name.data when that is set; the flat
    profile (self time by library and symbol) goes to name.txt and to stderr."""
    out_dir = os.environ.get("BENCH_PERF_DIR")
    if not out_dir:
        return run()
    os.makedirs(out_dir, exist_ok=True)
    data = os.path.join(out_dir, f"{name}.data")
    perf = subprocess.Popen(["taskset", "-c", LOAD_CPU, "perf", "record", "-F", "1999", "-p", str(server_pid),
                             "-o", data], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    try:
        result = run()
    finally:
        perf.send_signal(signal.SIGINT)
        perf.wait(60)
    report = subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children", "--sort", "dso,symbol",
                             "--percent-limit", "0.5"], capture_output=True, text=True).stdout
    with open(os.path.join(out_dir, f"{name}.txt"), "w") as f:
        f.write(report)
    print(report, file=sys.stderr)
    return result


def h2load(port, path, token, seconds=SECONDS, clients=8, streams=8):
    args = [
        "taskset", "-c", LOAD_CPU, "h2load", "-c", str(clients), "-m", str(streams),
        "-D", str(int(seconds)), "--warm-up-time=1",
        "-H", f"authorization: Bearer {token}", f"http://127.0.0.1:{port}{path}",
    ]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    rps = float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out).group(1))
    done = re.search(r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed", out)
    status = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    timing = re.search(r"time for request:\s+(\S+)\s+(\S+)\s+(\S+)", out)

    def micros(v):
        n = float(re.match(r"[\d.]+", v).group(0))
        return n * {"us": 1, "ms": 1e3, "s": 1e6}[re.search(r"[a-z]+$", v).group(0)]

    return {
        "requests": int(done.group(2)),
        "rps": rps,
        "http_2xx": int(status.group(1)),
        "http_non_2xx": int(status.group(3)) + int(status.group(4)),
        "latency_us": {"min": micros(timing.group(1)), "max": micros(timing.group(2)), "mean": micros(timing.group(3))},
    }


def config(http_port, grpc_port, idp, key, storage, server_extra=""):
    """The shipped defaults (audit events on, to stdout, every allow written) unless
    `server_extra` says otherwise."""
    return f"""
server:
  grpcAddr: 127.0.0.1:{grpc_port}
  httpAddr: 127.0.0.1:{http_port}
  resourceUrl: {AUDIENCE}
{server_extra}incomingAuth:
  type: oidc
  oidc: {{ issuer: "http://127.0.0.1:{http_port}", audience: "{AUDIENCE}" }}
authServer:
  issuer: http://127.0.0.1:{http_port}
  allowedAudiences: ["{AUDIENCE}"]
  signingKeyFile: {key}
  upstreams:
    - {{ name: demo, type: oidc, oidc: {{ issuerUrl: "{idp}", clientId: mcp-authz, clientSecret: mcp-authz-secret }} }}
  storage: {storage}
outgoingAuth:
  backends:
    github: {{ type: upstream_inject, upstreamInject: {{ providerName: demo }} }}
    public: {{ type: unauthenticated }}
    exchange: {{ type: token_exchange, tokenExchange: {{ tokenUrl: "{idp}/token", clientId: exchanger, clientSecret: exchanger-secret, subjectProviderName: demo }} }}
"""


ENVOY = """
static_resources:
  listeners:
  - address: {{ socket_address: {{ address: 127.0.0.1, port_value: {listen} }} }}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: bench
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {{ prefix: "/" }}
                direct_response: {{ status: 200, body: {{ inline_string: "ok" }} }}
                {per_route}
          http_filters:
          {ext_authz}
          - name: envoy.filters.http.router
            typed_config: {{ "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }}
  clusters:
  - name: authz
    type: STATIC
    connect_timeout: 1s
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {{ http2_protocol_options: {{}} }}
    load_assignment:
      cluster_name: authz
      endpoints: [{{ lb_endpoints: [{{ endpoint: {{ address: {{ socket_address: {{ address: 127.0.0.1, port_value: {authz} }} }} }} }}] }}]
admin:
  address: {{ socket_address: {{ address: 127.0.0.1, port_value: {admin} }} }}
"""

EXT_AUTHZ = """- name: envoy.filters.http.ext_authz
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz
              grpc_service: { envoy_grpc: { cluster_name: authz }, timeout: 0.5s }
              transport_api_version: V3
              failure_mode_allow: false
              status_on_error: { code: 503 }"""

PER_ROUTE = """typed_per_filter_config:
                  envoy.filters.http.ext_authz:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute
                    check_settings: { context_extensions: { backend: github } }"""


def start_envoy(tmp, authz_port):
    listen, admin = free_port(), free_port()
    with_authz = authz_port is not None
    text = ENVOY.format(
        listen=listen, admin=admin, authz=authz_port or 1,
        ext_authz=EXT_AUTHZ if with_authz else "", per_route=PER_ROUTE if with_authz else "",
    )
    path = os.path.join(tmp, f"envoy-{listen}.yaml")
    with open(path, "w") as f:
        f.write(text)
    proc = Proc([os.environ["ENVOY_BIN"], "-c", path, "--concurrency", "1", "--log-level", "error",
                 "--base-id", str(listen)])
    wait_port(listen)
    return proc, listen


def row(name, result, baseline=None, same=None):
    """`baseline`: the empty-answer no-op; `same`: the no-op returning the same answer."""
    lat = result["latency_us"]
    ratio = result["rps"] / baseline["rps"] if baseline else None
    ratio_same = result["rps"] / same["rps"] if same else None
    return {
        "scenario": name, "rps": round(result["rps"]), "ratio": round(ratio, 3) if ratio else None,
        "ratio_same": round(ratio_same, 3) if ratio_same else None,
        "p50_us": lat.get("p50"), "p99_us": lat.get("p99"), "p999_us": lat.get("p999"),
        "mean_us": round(lat["mean"]) if "mean" in lat else None,
        "server_cpu_us": round(result["server_cpu_us"], 1) if result.get("server_cpu_us") else None,
        "rss_mib": round(result.get("server_rss_mib", 0), 1),
        "status": result.get("grpc_status") or {"2xx": result.get("http_2xx"), "non_2xx": result.get("http_non_2xx")},
    }


def main():
    tmp = tempfile.mkdtemp(prefix="mcp-authz-bench-")
    procs = []
    rows = []
    try:
        key = os.path.join(tmp, "signing.pem")
        tokens = os.path.join(tmp, "tokens.txt")
        http_port, grpc_port, idp_port = free_port(), free_port(), free_port()
        issuer = f"http://127.0.0.1:{http_port}"
        fresh = int(os.environ.get("BENCH_FRESH_TOKENS", "101000"))
        subprocess.run([os.path.join(RELEASE, "loadgen"), "--mint-tokens", str(fresh), "--mint-key", key,
                        "--mint-out", tokens, "--issuer", issuer, "--audience", AUDIENCE], check=True)

        # The demo identity provider (the test OAuth server) on CPU 1, out of the servers' way.
        idp = Proc([os.environ["NODE_BIN"], os.environ["OAUTH_SERVER_JS"]], cpu=LOAD_CPU,
                   env={"PORT": str(idp_port), "LOGIN_REDIRECT_URIS": f"{issuer}/oauth/callback"})
        procs.append(idp)
        wait_port(idp_port)

        # The baseline's requests carry a JWT of the same size as the others.
        with open(tokens) as f:
            sample = f.readline().strip()

        # Baseline: the no-op Check server.
        noop_port = free_port()
        noop = Proc([os.path.join(RELEASE, "noop-authz"), f"127.0.0.1:{noop_port}"])
        procs.append(noop)
        wait_port(noop_port)
        baseline = measure(noop.pid, lambda: loadgen(noop_port, "--backend", "github", "--token", sample))
        rows.append(row("no-op Check server (baseline)", baseline))

        # Cross-check of loadgen: h2load posting the same CheckRequest as a prebuilt gRPC frame,
        # same connections and streams, against the same no-op server.
        frame = os.path.join(tmp, "check.frame")
        subprocess.run([os.path.join(RELEASE, "loadgen"), "--emit-frame", frame, "--token", sample], check=True)
        def cross_check():
            out = subprocess.run(
                ["taskset", "-c", LOAD_CPU, "h2load", "-c", "2", "-m", "32", "-D", str(int(SECONDS)),
                 "--warm-up-time=1", "-d", frame, "-H", "content-type: application/grpc", "-H", "te: trailers",
                 f"http://127.0.0.1:{noop_port}/envoy.service.auth.v3.Authorization/Check"],
                check=True, capture_output=True, text=True).stdout
            done = int(re.search(r"requests: \d+ total, \d+ started, (\d+) done", out).group(1))
            rps = float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out).group(1))
            return {"requests": done, "rps": rps}
        h2 = measure(noop.pid, cross_check)
        rows.append({"scenario": "cross-check: h2load, same frame, no-op server", "rps": round(h2["rps"]),
                     "ratio": round(h2["rps"] / baseline["rps"], 3), "p50_us": None, "p99_us": None,
                     "p999_us": None, "mean_us": None, "server_cpu_us": round(h2["server_cpu_us"], 1),
                     "rss_mib": round(h2["server_rss_mib"], 1), "status": {}})

        redis_port = free_port()
        redis = Proc([os.environ["REDIS_SERVER_BIN"], "--port", str(redis_port), "--bind", "127.0.0.1",
                      "--save", "", "--appendonly", "no"], cpu=LOAD_CPU)
        procs.append(redis)
        wait_port(redis_port)

        answer = os.path.join(tmp, "answer.pb")
        same = {}
        redis_storage = f'{{ type: redis, redis: {{ url: "redis://127.0.0.1:{redis_port}/", timeoutMs: 200 }} }}'
        for storage_name, storage, server_extra in [
            ("memory", "{ type: memory }", ""),
            ("memory-audit-off", "{ type: memory }", "  audit: { enabled: false }\n"),
            ("redis", redis_storage, ""),
            ("redis-near-cache-off", redis_storage.replace("timeoutMs: 200", "timeoutMs: 200, nearCacheEntries: 0"), ""),
        ]:
            path = os.path.join(tmp, f"config-{storage_name}.yaml")
            with open(path, "w") as f:
                f.write(config(http_port, grpc_port, f"http://127.0.0.1:{idp_port}", key, storage, server_extra))
            server = Proc([os.path.join(RELEASE, "mcp-authz"), "serve", "--config", path, "--watch-interval", "0"])
            procs.append(server)
            wait_port(grpc_port)
            wait_port(http_port)
            jwt = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "login.py"), issuer],
                                 check=True, capture_output=True, text=True).stdout.strip()
            if storage_name == "memory":
                # The same-answer no-ops: exactly what mcp-authz answers for the github backend
                # (header, removals, dynamic metadata), and the same without dynamic metadata.
                subprocess.run([os.path.join(RELEASE, "loadgen"), "--target", f"http://127.0.0.1:{grpc_port}",
                                "--emit-answer", answer, "--backend", "github", "--token", jwt], check=True)
                for variant, extra in [("same", []), ("same-no-metadata", ["no-metadata"])]:
                    port = free_port()
                    proc = Proc([os.path.join(RELEASE, "noop-authz"), f"127.0.0.1:{port}", answer, *extra])
                    procs.append(proc)
                    wait_port(port)
                    same[variant] = (proc, port)
                same_proc, same_port = same["same"]
                same_direct = measure(same_proc.pid, lambda: loadgen(same_port, "--backend", "github", "--token", jwt))
                rows.append(row("no-op returning the same answer as (a)", same_direct, baseline))
                r = measure(server.pid, lambda: loadgen(grpc_port, "--backend", "github", "--token", jwt))
                rows.append(row("(a) upstream_inject, warm, memory store", r, baseline, same_direct))
                # 100k distinct identities, each verified in full once; RSS then shows the
                # verified-token cache holding them all.
                # (b)'s fair baseline: a no-op that checks each JWT's ES256 signature (the same
                # library call, no claims, no cache) and returns the answer mcp-authz gives for
                # this backend, at the rate that leaves.
                answer_public = os.path.join(tmp, "answer-public.pb")
                subprocess.run([os.path.join(RELEASE, "loadgen"), "--target", f"http://127.0.0.1:{grpc_port}",
                                "--emit-answer", answer_public, "--backend", "public", "--token", sample], check=True)
                port = free_port()
                verify_noop = Proc([os.path.join(RELEASE, "noop-authz"), f"127.0.0.1:{port}", answer_public,
                                    f"es256={key}"])
                procs.append(verify_noop)
                wait_port(port)
                fresh_loadgen = lambda p: loadgen(p, "--backend", "public", "--token-list", tokens,
                                                  "--requests", str(fresh - 1000), seconds=120, warmup=0)
                verify_base = measure(verify_noop.pid, lambda: fresh_loadgen(port))
                verify_noop.stop()
                rows.append(row("no-op + one ES256 signature check, same answer as (b) (fresh JWTs)", verify_base, baseline))
                r = profiled("fresh-jwt", server.pid, lambda: measure(server.pid, lambda: fresh_loadgen(grpc_port)))
                rows.append(row("(b) fresh JWT per request (ES256 verify), unauthenticated backend, 100k identities",
                                r, baseline, verify_base))
                r = measure(server.pid, lambda: loadgen(grpc_port, "--backend", "exchange", "--token", jwt))
                rows.append(row("(d) token_exchange, cache hit", r, baseline))

                # Through Envoy: alone, with the no-op server, with mcp-authz.
                pids = {noop_port: noop.pid, grpc_port: server.pid,
                        same["same"][1]: same["same"][0].pid,
                        same["same-no-metadata"][1]: same["same-no-metadata"][0].pid}
                for name, authz in [("Envoy alone (direct_response)", None),
                                    ("Envoy + ext_authz(no-op)", noop_port),
                                    ("Envoy + ext_authz(same-answer no-op)", same["same"][1]),
                                    ("Envoy + ext_authz(same-answer no-op, no dynamic metadata)",
                                     same["same-no-metadata"][1]),
                                    ("Envoy + ext_authz(mcp-authz, upstream_inject warm)", grpc_port)]:
                    envoy, listen = start_envoy(tmp, authz)
                    procs.append(envoy)
                    target = pids[authz] if authz else envoy.pid
                    before_envoy = cpu_seconds(envoy.pid)
                    r = measure(target, lambda: h2load(listen, "/mcp", jwt))
                    r["envoy_cpu_us"] = (cpu_seconds(envoy.pid) - before_envoy) * 1e6 / max(r["requests"], 1)
                    rows.append({**row(name, r), "envoy_cpu_us": round(r["envoy_cpu_us"], 1)})
                    envoy.stop()
                # Unloaded latency through Envoy, one request at a time.
                for name, authz in [("Envoy + no-op, unloaded (1 in flight)", noop_port),
                                    ("Envoy + same-answer no-op, unloaded (1 in flight)", same["same"][1]),
                                    ("Envoy + mcp-authz, unloaded (1 in flight)", grpc_port)]:
                    envoy, listen = start_envoy(tmp, authz)
                    procs.append(envoy)
                    r = h2load(listen, "/mcp", jwt, seconds=4, clients=1, streams=1)
                    rows.append(row(name, r))
                    envoy.stop()
            else:
                name = {
                    "memory-audit-off": "(a) with audit events off (not the default)",
                    "redis": "(c) upstream_inject, Redis store (near cache warm)",
                    "redis-near-cache-off": "(c) with the near cache off (a GET per Check, not the default)",
                }[storage_name]
                r = measure(server.pid, lambda: loadgen(grpc_port, "--backend", "github", "--token", jwt))
                rows.append(row(name, r, baseline, same_direct))
            server.stop()
            procs.remove(server)
        # The near cache's invalidation bound, against the same Redis.
        near = subprocess.run(["cargo", "bench", "--locked", "--bench", "near_cache"], cwd=ROOT, check=True,
                              capture_output=True, text=True,
                              env={**os.environ, "REDIS_URL": f"redis://127.0.0.1:{redis_port}/"}).stdout
        near_line = next(line for line in near.splitlines() if line.startswith("near_cache:"))
    finally:
        for p in procs:
            p.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    # Ratios for the Envoy rows: against Envoy + no-op.
    by = {r["scenario"]: r for r in rows}
    envoy_noop = by.get("Envoy + ext_authz(no-op)")
    envoy_same = by.get("Envoy + ext_authz(same-answer no-op)")
    for r in rows:
        if r["scenario"].startswith("Envoy + ext_authz(") and envoy_noop and r is not envoy_noop:
            r["ratio"] = round(r["rps"] / envoy_noop["rps"], 3)
        if r["scenario"].startswith("Envoy + ext_authz(mcp-authz") and envoy_same:
            r["ratio_same"] = round(r["rps"] / envoy_same["rps"], 3)
    header = ("| scenario | req/s | ratio vs no-op | ratio vs same-answer no-op | p50 µs | p99 µs "
              "| p99.9 µs | mean µs | server CPU µs/req | RSS MiB |")
    print(header)
    print("|" + "---|" * 10)
    for r in rows:
        print(f"| {r['scenario']} | {r['rps']} | {r['ratio'] or ''} | {r.get('ratio_same') or ''} "
              f"| {r['p50_us'] or ''} | {r['p99_us'] or ''} "
              f"| {r['p999_us'] or ''} | {r['mean_us'] or ''} | {r['server_cpu_us'] or ''} | {r['rss_mib']} |")
    print()
    print(near_line)
    out = os.environ.get("BENCH_JSON")
    if out:
        with open(out, "w") as f:
            json.dump({"placement": {"servers": SERVER_CPU, "load": LOAD_CPU}, "seconds": SECONDS, "rows": rows,
                       "near_cache": near_line}, f, indent=2)
    for r in rows:
        status = r["status"]
        errors = {k: v for k, v in status.items() if k not in ("0", "2xx") and v}
        if errors:
            print(f"warning: {r['scenario']}: non-OK answers {errors}", file=sys.stderr)


if __name__ == "__main__":
    main()
