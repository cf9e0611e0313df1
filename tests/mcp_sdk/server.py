# SPDX-License-Identifier: Apache-2.0
"""An MCP server built with the official MCP Python SDK (PyPI `mcp`), for the Rust tests.

It has no auth of its own: Envoy and mcp-authz in front of it do that. It serves the SDK's
streamable HTTP transport (both eras: the 2026-07-28 per-request envelope and the
`initialize` handshake) on 127.0.0.1:<port><path> with three tools:

- `whoami`: the exact `Authorization` header this HTTP request carried, or "none";
- `admin_reset`: "reset done";
- `echo(text)`: `text`.

Every HTTP request it receives (any method, any path) appends one JSON line to the log file:

    {"http_method": "POST", "path": "/mcp",
     "method": <JSON-RPC method, a list of them for a batch, or null>,
     "tool": <params.name of a tools/call, or null>,
     "authorization": <the Authorization header, or null>,
     "headers": {"mcp-protocol-version": ..., "mcp-method": ..., "mcp-name": ...}}

(`headers` holds only those of the three that were present.) Once it listens it prints
`ready <port>` on stdout, and nothing else ever goes to stdout; logs go to stderr.

    python server.py [--port N] [--path /mcp[,/other/mcp...]] [--log FILE] [--stateless] [--json-response]

Port 0 (the default) picks a free port. Defaults come from MCP_SDK_SERVER_PORT,
MCP_SDK_SERVER_PATH and MCP_SDK_SERVER_LOG; without a log file nothing is logged.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import sys
import threading
from typing import Any

# stdout carries only the `ready` line: everything else that prints (uvicorn, the SDK's
# logging setup, a stray print) goes to stderr.
_READY_OUT = sys.stdout
sys.stdout = sys.stderr

import anyio  # noqa: E402
import uvicorn  # noqa: E402
from mcp.server.mcpserver import Context, MCPServer  # noqa: E402
from mcp.server.transport_security import TransportSecuritySettings  # noqa: E402

_LOGGED_HEADERS = ("mcp-protocol-version", "mcp-method", "mcp-name")


class RequestLog:
    """Appends one JSON line per HTTP request to a file (thread-safe, flushed per line)."""

    def __init__(self, path: str | None) -> None:
        self._file = open(path, "a", encoding="utf-8") if path else None  # noqa: SIM115
        self._lock = threading.Lock()

    def write(self, record: dict[str, Any]) -> None:
        if self._file is None:
            return
        line = json.dumps(record, separators=(",", ":"), ensure_ascii=False)
        with self._lock:
            self._file.write(line + "\n")
            self._file.flush()


def _rpc_fields(body: bytes) -> tuple[Any, Any]:
    """(method, tool) of a JSON-RPC body: a list of each for a batch, None where absent."""
    try:
        message = json.loads(body)
    except ValueError:
        return None, None

    def one(m: Any) -> tuple[Any, Any]:
        if not isinstance(m, dict):
            return None, None
        method = m.get("method")
        tool = None
        params = m.get("params")
        if method == "tools/call" and isinstance(params, dict):
            tool = params.get("name")
        return method, tool

    if isinstance(message, list):
        pairs = [one(m) for m in message]
        return [p[0] for p in pairs], [p[1] for p in pairs]
    return one(message)


class LogRequests:
    """ASGI middleware: buffers each HTTP request's body, logs the request, then replays it."""

    def __init__(self, app: Any, log: RequestLog, paths: list[str]) -> None:
        self.app = app
        self.log = log
        # The app serves paths[0]; the other paths are aliases rewritten to it.
        self.paths = paths

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        messages: list[Any] = []
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        headers: dict[str, str] = {}
        for name, value in scope.get("headers", []):
            # Several headers of one name: keep them all, comma-joined (as HTTP folds them).
            key = name.decode("latin-1").lower()
            text = value.decode("latin-1")
            headers[key] = f"{headers[key]}, {text}" if key in headers else text
        method, tool = _rpc_fields(b"".join(chunks)) if chunks else (None, None)
        self.log.write(
            {
                "http_method": scope.get("method"),
                "path": scope.get("path"),
                "method": method,
                "tool": tool,
                "authorization": headers.get("authorization"),
                "headers": {h: headers[h] for h in _LOGGED_HEADERS if h in headers},
            }
        )

        async def replay() -> Any:
            if messages:
                return messages.pop(0)
            return await receive()

        if scope.get("path") in self.paths[1:]:
            scope = dict(scope, path=self.paths[0], raw_path=self.paths[0].encode())
        await self.app(scope, replay, send)


def build_server() -> MCPServer:
    mcp = MCPServer("mcp-authz-test-backend", version="1.0.0", log_level="WARNING")

    @mcp.tool()
    def whoami(ctx: Context) -> str:
        """The Authorization header this request carried, or "none"."""
        headers = ctx.headers or {}
        value = headers.get("authorization")
        return value if value is not None else "none"

    @mcp.tool()
    def admin_reset() -> str:
        """Pretends to reset something (a tool a test can put behind a scope)."""
        return "reset done"

    @mcp.tool()
    def echo(text: str) -> str:
        """Returns its argument."""
        return text

    return mcp


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("port_arg", nargs="?", type=int, help="same as --port")
    parser.add_argument("--port", type=int, default=int(os.environ.get("MCP_SDK_SERVER_PORT", "0")))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--path",
        default=os.environ.get("MCP_SDK_SERVER_PATH", "/mcp"),
        help="endpoint path; several comma-separated paths serve the same server (e.g. one per Envoy route)",
    )
    parser.add_argument("--log", default=os.environ.get("MCP_SDK_SERVER_LOG"), help="request log (JSON lines)")
    parser.add_argument("--stateless", action="store_true", help="stateless streamable HTTP (no session ids)")
    parser.add_argument("--json-response", action="store_true", help="answer with JSON instead of SSE")
    args = parser.parse_args()
    port = args.port_arg if args.port_arg is not None else args.port
    paths = [p.strip() for p in args.path.split(",") if p.strip()]
    if not paths or not all(p.startswith("/") for p in paths):
        parser.error("--path: one or more comma-separated absolute paths")

    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="server.py: %(levelname)s %(name)s: %(message)s")

    mcp = build_server()
    app = mcp.streamable_http_app(
        streamable_http_path=paths[0],
        stateless_http=args.stateless,
        json_response=args.json_response,
        # Envoy may forward any Host; the loopback bind is the protection here.
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        host=args.host,
    )
    app = LogRequests(app, RequestLog(args.log), paths)

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, port))
    port = sock.getsockname()[1]

    config = uvicorn.Config(app, log_level="warning", access_log=False, log_config=None, lifespan="on")
    server = uvicorn.Server(config)

    async def run() -> None:
        async with anyio.create_task_group() as tg:

            async def announce() -> None:
                while not server.started:
                    if server.should_exit:
                        return
                    await anyio.sleep(0.01)
                _READY_OUT.write(f"ready {port}\n")
                _READY_OUT.flush()

            tg.start_soon(announce)
            await server.serve(sockets=[sock])
            tg.cancel_scope.cancel()

    anyio.run(run)


if __name__ == "__main__":
    main()
