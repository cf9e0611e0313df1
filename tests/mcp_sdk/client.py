# SPDX-License-Identifier: Apache-2.0
"""A headless MCP client built with the official MCP Python SDK (PyPI `mcp`), for the Rust tests.

It connects to an MCP endpoint (normally Envoy's listener, e.g.
http://127.0.0.1:PORT/github/mcp) over streamable HTTP with the SDK's own OAuth support
(`mcp.client.auth.OAuthClientProvider`): discovery, dynamic registration (or a CIMD client id),
authorization code with PKCE, token exchange, refresh and step-up are all the SDK's. Only the
user is simulated: the redirect handler walks the authorization URL with a cookie-keeping HTTP
client, following redirects by hand and posting oidc-provider's devInteractions login form
(`prompt=login&login=<user>&password=any`), exactly like tests/common/browser.rs, until a
redirect reaches the redirect URI. Nothing listens there: the Location is intercepted, and the
callback handler returns its `code`, `state` and `iss`.

    python client.py URL --user alice [--calls '[{"name":"whoami"},{"name":"admin_reset"}]']
        [--scope S] [--client-metadata-url https://...] [--protocol-version auto|legacy|V]
        [--redirect-uri http://127.0.0.1:PORT/callback] [--skip-resource-check] [--timeout 60]
        [--elicitation none|url] [--elicitation-user bob]
    python client.py --print-client-metadata-document --client-metadata-url U --redirect-uri R

stdout carries exactly one line, a JSON object (everything else goes to stderr):

    {"url", "ok", "error", "protocol_version", "calls": [...], "exchanges": [...],
     "authorization_requests": [...], "registrations": [...], "registered": bool,
     "tokens": [...], "browser": [...], "elicitations": [...]}

- calls: per call, {"name", "ok", "text", "is_error", "error": {"type", "message"}}; calls not
  reached because an earlier failure ended the session have "error": {"type": "NotRun"}.
- exchanges: every HTTP request the SDK made (to the MCP endpoint and the authorization
  server), in order: method, url (no query), query_keys, kind (mcp, prm, as_metadata, register,
  token, other), status, location (no query), www_authenticate (401/403), the mcp-* request
  headers it sent, whether it sent a bearer token, the JSON-RPC method/tool of an MCP POST, the
  grant_type/resource/scope of a token request and the granted scope of its answer.
- authorization_requests: the query of each authorization URL the SDK opened, less the secrets
  (scope, prompt, resource, client_id, redirect_uri, response_type, code_challenge_method), and
  how the walk ended (the callback's error or "code").
- registrations: the JSON body of each dynamic registration request and its status.
- elicitations: with --elicitation url, each URL-mode elicitation the server sent: its URL less
  the last path segment (the single-use id), its message, and the page the browser ended on.

No token, code or secret appears in the output, except the `whoami` result text.
Exit status: 0 when every call succeeded (no exception, isError false), 1 otherwise, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import socket
import sys
import traceback
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

# stdout carries only the final JSON line.
_RESULT_OUT = sys.stdout
sys.stdout = sys.stderr

import anyio  # noqa: E402
import httpx2  # noqa: E402
import mcp_types as types  # noqa: E402
from mcp import Client  # noqa: E402
from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider  # noqa: E402
from mcp.client.session import ClientSession  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken  # noqa: E402
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS  # noqa: E402

_MCP_HEADERS = ("mcp-protocol-version", "mcp-method", "mcp-name")
_REDIRECT_STATUSES = (301, 302, 303, 307, 308)
# Authorization-request parameters worth recording (state and code_challenge are secrets of the flow).
_AUTHZ_PARAMS = ("response_type", "client_id", "redirect_uri", "scope", "prompt", "resource", "code_challenge_method")


def strip_query(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def query_keys(url: str) -> list[str]:
    return [k for k, _ in parse_qsl(urlsplit(url).query, keep_blank_values=True)]


class Secrets:
    """Every token, code and secret seen, so that none leaks into the output."""

    def __init__(self) -> None:
        self.values: set[str] = set()

    def add(self, value: Any) -> None:
        if isinstance(value, str) and len(value) >= 8:
            self.values.add(value)

    def redact(self, value: Any) -> Any:
        if isinstance(value, str):
            for secret in sorted(self.values, key=len, reverse=True):
                value = value.replace(secret, "<redacted>")
            return value
        if isinstance(value, list):
            return [self.redact(v) for v in value]
        if isinstance(value, dict):
            return {k: self.redact(v) for k, v in value.items()}
        return value


def jwt_identity(jwt: str) -> dict[str, Any]:
    """The `sub` of an access token that is a JWT, and a fingerprint of its `tsid` (a secret:
    only its SHA-256 prefix), so that a report can show two logins are one user's."""
    try:
        payload = jwt.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}
    tsid = claims.get("tsid")
    fingerprint = hashlib.sha256(tsid.encode()).hexdigest()[:16] if isinstance(tsid, str) else None
    return {"sub": claims.get("sub"), "tsid_sha256_16": fingerprint}


class MemoryStorage:
    """The SDK's TokenStorage protocol, in memory (one run = one client)."""

    def __init__(self, secrets: Secrets, tokens_log: list[dict[str, Any]]) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None
        self._secrets = secrets
        self._tokens_log = tokens_log

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self._secrets.add(tokens.access_token)
        self._secrets.add(tokens.refresh_token)
        self._tokens_log.append(
            {
                "scope": tokens.scope,
                "expires_in": tokens.expires_in,
                "has_refresh_token": tokens.refresh_token is not None,
                **jwt_identity(tokens.access_token),
            }
        )
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self._secrets.add(client_info.client_secret)
        self.client_info = client_info


class Browser:
    """A user agent like tests/common/browser.rs: no automatic redirects, its own cookie jar,
    and the devInteractions login form filled in with `login`."""

    def __init__(self, login: str, secrets: Secrets, hops: list[dict[str, Any]]) -> None:
        self.http = httpx2.AsyncClient(follow_redirects=False, timeout=30.0)
        self.cookies: dict[str, str] = {}
        self.login = login
        self._secrets = secrets
        self._hops = hops

    async def aclose(self) -> None:
        await self.http.aclose()

    async def _send(self, method: str, url: str, **kwargs: Any) -> tuple[int, str | None, str]:
        headers = dict(kwargs.pop("headers", {}))
        if self.cookies:
            headers["cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        response = await self.http.request(method, url, headers=headers, **kwargs)
        for value in response.headers.get_list("set-cookie"):
            pair = value.split(";", 1)[0]
            if "=" in pair:
                name, _, val = pair.partition("=")
                name = name.strip()
                if val:
                    self.cookies[name] = val
                else:
                    self.cookies.pop(name, None)
        location = response.headers.get("location")
        if location is not None:
            location = urljoin(url, location)
        body = response.text
        self._hops.append(
            {
                "method": method,
                "url": strip_query(url),
                "query_keys": query_keys(url),
                "status": response.status_code,
                "location": strip_query(location) if location else None,
            }
        )
        return response.status_code, location, body

    async def open_page(self, url: str) -> tuple[int, str]:
        """Opens `url` as a user would (following redirects, logging in at every login form)
        and returns the page it ends on: its status and text."""
        page: list[tuple[int, str]] = []
        await self.walk(url, stop_at=None, page=page)
        return page[0]

    async def walk(self, url: str, stop_at: str | None, page: list[tuple[int, str]] | None = None) -> str:
        """Follows redirects from `url`, logging in at every login form, until a redirect
        leaves for a URL starting with `stop_at`, which is returned (with `page`: until a page
        that is neither, which is appended to `page`)."""
        for _ in range(30):
            if stop_at is not None and url.startswith(stop_at):
                return url
            status, location, body = await self._send("GET", url)
            if location is not None and status in _REDIRECT_STATUSES:
                url = location
            elif location is None and status == 200 and 'name="login"' in body:
                action = form_action(body)
                target = urljoin(url, action) if action else url
                form = urlencode({"prompt": "login", "login": self.login, "password": "any"})
                _, next_url, _ = await self._send(
                    "POST", target, content=form, headers={"content-type": "application/x-www-form-urlencoded"}
                )
                if next_url is None:
                    raise RuntimeError(f"the login form at {strip_query(target)} did not redirect")
                url = next_url
            elif location is None and status == 200 and 'value="consent"' in body:
                # Not in browser.rs (the test IdP grants consent itself); here for other IdPs.
                action = form_action(body)
                target = urljoin(url, action) if action else url
                _, next_url, _ = await self._send(
                    "POST", target, content="prompt=consent", headers={"content-type": "application/x-www-form-urlencoded"}
                )
                if next_url is None:
                    raise RuntimeError(f"the consent form at {strip_query(target)} did not redirect")
                url = next_url
            elif page is not None:
                page.append((status, body))
                return url
            else:
                snippet = " ".join(body.split())[:300]
                raise RuntimeError(f"login walk stopped at {strip_query(url)}: HTTP {status}: {snippet}")
        raise RuntimeError("login walk: too many hops")


def form_action(html: str) -> str | None:
    start = html.find('action="')
    if start < 0:
        return None
    start += len('action="')
    end = html.find('"', start)
    if end < 0:
        return None
    return html[start:end].replace("&amp;", "&")


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def describe(exc: BaseException) -> dict[str, str]:
    return {"type": type(exc).__name__, "message": str(exc)}


def leaf_exceptions(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        leaves: list[BaseException] = []
        for inner in exc.exceptions:
            leaves.extend(leaf_exceptions(inner))
        return leaves
    return [exc]


def main_error(exc: BaseException) -> dict[str, Any]:
    """The most telling exception of a failure (task groups wrap the transport's in groups)."""
    leaves = [e for e in leaf_exceptions(exc) if not isinstance(e, anyio.get_cancelled_exc_class())]
    chosen = leaves[0] if leaves else exc
    error = describe(chosen)
    if len(leaves) > 1:
        error["others"] = [describe(e) for e in leaves[1:]]
    return error


class Run:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.url: str = args.url
        self.secrets = Secrets()
        self.exchanges: list[dict[str, Any]] = []
        self.authorization_requests: list[dict[str, Any]] = []
        self.registrations: list[dict[str, Any]] = []
        self.tokens: list[dict[str, Any]] = []
        self.browser_hops: list[dict[str, Any]] = []
        self.calls: list[dict[str, Any]] = []
        self.elicitations: list[dict[str, Any]] = []
        self.protocol_version: str | None = None
        self.error: dict[str, Any] | None = None
        self._pending: dict[int, dict[str, Any]] = {}
        self._callback: AuthorizationCodeResult | None = None
        self.browser = Browser(args.user, self.secrets, self.browser_hops)

    # ------------------------------------------------------------- recording ----
    def _kind(self, request: httpx2.Request, url: str) -> str:
        path = urlsplit(url).path
        content_type = request.headers.get("content-type", "")
        if url == strip_query(self.url):
            return "mcp"
        if "/.well-known/oauth-protected-resource" in path:
            return "prm"
        if "/.well-known/oauth-authorization-server" in path or "/.well-known/openid-configuration" in path:
            return "as_metadata"
        if request.method == "POST" and content_type.startswith("application/json"):
            return "register"
        if request.method == "POST" and content_type.startswith("application/x-www-form-urlencoded"):
            return "token"
        return "other"

    async def on_request(self, request: httpx2.Request) -> None:
        url = strip_query(str(request.url))
        record: dict[str, Any] = {
            "method": request.method,
            "url": url,
            "query_keys": query_keys(str(request.url)),
            "kind": self._kind(request, url),
            "headers": {h: request.headers[h] for h in _MCP_HEADERS if h in request.headers},
            "bearer": request.headers.get("authorization", "").lower().startswith("bearer "),
            "status": None,
        }
        body: bytes | None
        try:
            body = request.content
        except httpx2.RequestNotRead:
            body = None
        if record["kind"] == "mcp" and body:
            try:
                message = json.loads(body)
            except ValueError:
                message = None
            if isinstance(message, dict):
                record["rpc"] = message.get("method")
                params = message.get("params")
                if message.get("method") == "tools/call" and isinstance(params, dict):
                    record["tool"] = params.get("name")
        elif record["kind"] == "register" and body:
            try:
                registration = json.loads(body)
            except ValueError:
                registration = None
            entry = {"url": url, "request": registration, "status": None}
            self.registrations.append(entry)
            record["_registration"] = entry
        elif record["kind"] == "token" and body:
            form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
            for key in ("code", "refresh_token", "code_verifier", "client_secret"):
                self.secrets.add(form.get(key))
            record["grant_type"] = form.get("grant_type")
            record["resource"] = form.get("resource")
            record["scope"] = form.get("scope")
            record["client_id"] = form.get("client_id")
        self._pending[id(request)] = record
        self.exchanges.append(record)

    async def on_response(self, response: httpx2.Response) -> None:
        record = self._pending.pop(id(response.request), None)
        if record is None:
            return
        record["status"] = response.status_code
        location = response.headers.get("location")
        if location is not None:
            record["location"] = strip_query(urljoin(str(response.request.url), location))
        www = response.headers.get("www-authenticate")
        if www is not None and response.status_code in (401, 403):
            record["www_authenticate"] = www
        registration = record.pop("_registration", None)
        if registration is not None:
            registration["status"] = response.status_code
            try:
                await response.aread()
                answer = response.json()
            except Exception:  # noqa: BLE001
                answer = None
            if isinstance(answer, dict):
                self.secrets.add(answer.get("client_secret"))
                registration["response_keys"] = sorted(answer)
                registration["client_id"] = answer.get("client_id")
        if record["kind"] == "token":
            try:
                await response.aread()
                answer = response.json()
            except Exception:  # noqa: BLE001
                answer = None
            if isinstance(answer, dict):
                self.secrets.add(answer.get("access_token"))
                self.secrets.add(answer.get("refresh_token"))
                record["granted_scope"] = answer.get("scope")
                record["error"] = answer.get("error")

    # ---------------------------------------------------------- user agent ----
    async def redirect_handler(self, authorization_url: str) -> None:
        params = dict(parse_qsl(urlsplit(authorization_url).query, keep_blank_values=True))
        entry: dict[str, Any] = {"url": strip_query(authorization_url)}
        entry.update({k: params.get(k) for k in _AUTHZ_PARAMS})
        self.authorization_requests.append(entry)
        self._callback = None
        try:
            landed = await self.browser.walk(authorization_url, self.args.redirect_uri)
        except Exception as exc:
            entry["result"] = describe(exc)
            raise
        answer = dict(parse_qsl(urlsplit(landed).query, keep_blank_values=True))
        self.secrets.add(answer.get("code"))
        entry["callback_keys"] = sorted(answer)
        entry["iss"] = answer.get("iss")
        if "error" in answer:
            entry["result"] = {"error": answer.get("error"), "error_description": answer.get("error_description")}
            raise RuntimeError(
                f"authorization failed: {answer.get('error')}: {answer.get('error_description') or ''}".rstrip(": ")
            )
        entry["result"] = "code"
        self._callback = AuthorizationCodeResult(
            code=answer.get("code", ""), state=answer.get("state"), iss=answer.get("iss")
        )

    async def callback_handler(self) -> AuthorizationCodeResult:
        if self._callback is None:
            raise RuntimeError("no authorization response was captured")
        result, self._callback = self._callback, None
        return result

    # -------------------------------------------------------------- session ----
    def provider(self) -> OAuthClientProvider:
        metadata = OAuthClientMetadata(
            redirect_uris=[self.args.redirect_uri],
            token_endpoint_auth_method="none",
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            client_name=self.args.client_name,
            scope=self.args.scope,
        )

        async def accept_any_resource(_server_url: str, _prm_resource: str | None) -> None:
            return None

        return OAuthClientProvider(
            server_url=self.url,
            client_metadata=metadata,
            storage=MemoryStorage(self.secrets, self.tokens),
            redirect_handler=self.redirect_handler,
            callback_handler=self.callback_handler,
            client_metadata_url=self.args.client_metadata_url,
            validate_resource_url=accept_any_resource if self.args.skip_resource_check else None,
        )

    async def elicitation_callback(self, _context: Any, params: Any) -> Any:
        """URL mode (--elicitation url): the user opens the URL in the same browser that logged
        in (its cookies, so its login session) and accepts; anything else is refused."""
        url = getattr(params, "url", None)
        if getattr(params, "mode", None) != "url" or not isinstance(url, str):
            self.elicitations.append({"mode": getattr(params, "mode", None), "handled": False})
            return types.ErrorData(code=types.INVALID_REQUEST, message="only URL-mode elicitation is handled")
        # The last path segment of a connect URL is a single-use id: a secret of the flow.
        self.secrets.add(urlsplit(url).path.rsplit("/", 1)[-1])
        if self.args.elicitation_user:
            # Someone else opens the link (a forwarded link, a phishing attempt): their own browser.
            other = Browser(self.args.elicitation_user, self.secrets, self.browser_hops)
            try:
                status, page = await other.open_page(url)
            finally:
                await other.aclose()
        else:
            status, page = await self.browser.open_page(url)
        self.elicitations.append(
            {
                "mode": "url",
                "url": strip_query(url).rsplit("/", 1)[0] + "/",
                "message": params.message,
                "page_status": status,
                "page": " ".join(page.split())[:200],
            }
        )
        return types.ElicitResult(action="accept" if status == 200 else "decline")

    async def run_calls(self, call_tool: Any, list_tools: Any) -> None:
        for call in self.calls:
            try:
                if "sleep" in call:
                    await anyio.sleep(float(call["sleep"]))
                    call["ok"] = True
                elif call.get("method") == "tools/list":
                    listing = await list_tools()
                    call["tools"] = [t.name for t in listing.tools]
                    call["ok"] = True
                else:
                    result = await call_tool(call["name"], call.get("arguments") or {})
                    texts = [c.text for c in result.content if isinstance(c, types.TextContent)]
                    call["text"] = "\n".join(texts) if texts else None
                    call["is_error"] = bool(result.is_error)
                    call["ok"] = not result.is_error
                call["error"] = None
            except Exception as exc:  # noqa: BLE001
                call["ok"] = False
                call["error"] = describe(exc)

    async def session(self, http: httpx2.AsyncClient) -> None:
        version = self.args.protocol_version
        transport = streamable_http_client(self.url, http_client=http)
        if version in HANDSHAKE_PROTOCOL_VERSIONS:
            # The SDK's Client only offers its newest handshake version; an older one takes the
            # session layer: send `initialize` with that version, then adopt the answer.
            async with transport as (read, write), ClientSession(read, write) as session:
                result = await session.send_request(
                    types.InitializeRequest(
                        params=types.InitializeRequestParams(
                            protocol_version=version,
                            capabilities=types.ClientCapabilities(),
                            client_info=types.Implementation(name="mcp-authz-tests", version="1"),
                        )
                    ),
                    types.InitializeResult,
                )
                session.adopt(result)
                await session.send_notification(types.InitializedNotification())
                self.protocol_version = session.protocol_version
                await self.run_calls(session.call_tool, session.list_tools)
            return
        mode = {"auto": "auto", "legacy": "legacy"}.get(version, version)
        callbacks: dict[str, Any] = {}
        if self.args.elicitation == "url":
            callbacks["elicitation_callback"] = self.elicitation_callback
        async with Client(
            transport, mode=mode, client_info=types.Implementation(name="mcp-authz-tests", version="1"), **callbacks
        ) as client:
            self.protocol_version = client.protocol_version
            await self.run_calls(client.call_tool, client.list_tools)

    async def run(self) -> None:
        try:
            provider = self.provider()
        except ValueError as exc:  # e.g. a client_metadata_url that is not https with a path
            self.error = describe(exc)
            return
        http = httpx2.AsyncClient(
            auth=provider,
            timeout=httpx2.Timeout(30.0, read=300.0),
            event_hooks={"request": [self.on_request], "response": [self.on_response]},
        )
        try:
            with anyio.fail_after(self.args.timeout):
                await self.session(http)
        except BaseException as exc:
            if not isinstance(exc, Exception) and not isinstance(exc, BaseExceptionGroup):
                raise
            traceback.print_exception(exc, file=sys.stderr)
            self.error = main_error(exc) if not isinstance(exc, TimeoutError) else {
                "type": "TimeoutError",
                "message": f"no answer within {self.args.timeout} s",
            }
            for call in self.calls:
                if "ok" not in call:
                    call["ok"] = False
                    call["error"] = {"type": "NotRun", "message": "the session ended before this call"}
            # The call in flight when the session died gets the session's error.
            for call in self.calls:
                if call["error"] and call["error"]["type"] == "NotRun":
                    call["error"] = dict(self.error)
                    break
        finally:
            await http.aclose()
            await self.browser.aclose()

    def output(self) -> dict[str, Any]:
        calls = []
        for call in self.calls:
            keep_text = call.get("name") == "whoami"
            text = call.get("text")
            redacted = self.secrets.redact({k: v for k, v in call.items() if k != "text"})
            redacted["text"] = text if keep_text else self.secrets.redact(text)
            calls.append(redacted)
        out = {
            "url": self.url,
            "ok": self.error is None and all(c.get("ok") for c in self.calls),
            "error": self.error,
            "protocol_version": self.protocol_version,
            "calls": calls,
            "exchanges": [{k: v for k, v in e.items() if not k.startswith("_")} for e in self.exchanges],
            "authorization_requests": self.authorization_requests,
            "registrations": self.registrations,
            "registered": bool(self.registrations),
            "tokens": self.tokens,
            "browser": self.browser_hops,
            "elicitations": self.elicitations,
        }
        return {k: (v if k == "calls" else self.secrets.redact(v)) for k, v in out.items()}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Headless MCP SDK client with OAuth, for the mcp-authz tests.")
    parser.add_argument("url", nargs="?", help="MCP endpoint, e.g. http://127.0.0.1:PORT/github/mcp")
    parser.add_argument("--user", default="alice", help="login typed into every devInteractions form")
    parser.add_argument("--scope", help="OAuthClientMetadata.scope (the SDK replaces it on the first 401; see README)")
    parser.add_argument("--client-metadata-url", help="CIMD client id (https URL with a path)")
    parser.add_argument(
        "--calls",
        default='[{"name":"whoami"}]',
        help='JSON list: [{"name": TOOL, "arguments": {...}}, {"method": "tools/list"}, {"sleep": SECONDS}, ...]',
    )
    parser.add_argument(
        "--protocol-version",
        default="auto",
        help="auto (SDK default: server/discover, then initialize), legacy (initialize offering the newest "
        f"handshake version), a modern version {list(MODERN_PROTOCOL_VERSIONS)} or a handshake version "
        f"{list(HANDSHAKE_PROTOCOL_VERSIONS)}",
    )
    parser.add_argument("--redirect-uri", help="default http://127.0.0.1:<free port>/callback (never listened on)")
    parser.add_argument("--client-name", default="mcp-authz SDK test client")
    parser.add_argument("--skip-resource-check", action="store_true", help="accept any PRM `resource`")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds for the whole session")
    parser.add_argument(
        "--elicitation",
        choices=("none", "url"),
        default="none",
        help="url: declare URL-mode elicitation and open each URL in the login browser, then accept",
    )
    parser.add_argument(
        "--elicitation-user",
        help="open elicitation URLs in a new browser whose user types this login instead",
    )
    parser.add_argument(
        "--print-client-metadata-document",
        action="store_true",
        help="print the CIMD document to serve at --client-metadata-url and exit",
    )
    args = parser.parse_args(argv)
    if args.redirect_uri is None:
        args.redirect_uri = f"http://127.0.0.1:{free_loopback_port()}/callback"
    known = ("auto", "legacy", *MODERN_PROTOCOL_VERSIONS, *HANDSHAKE_PROTOCOL_VERSIONS)
    if args.protocol_version not in known:
        parser.error(f"--protocol-version must be one of {list(known)}")
    if not args.print_client_metadata_document and not args.url:
        parser.error("URL is required")
    return args


def main() -> int:
    args = parse_args(sys.argv[1:])
    if args.print_client_metadata_document:
        if not args.client_metadata_url:
            print("--print-client-metadata-document needs --client-metadata-url", file=sys.stderr)
            return 2
        document = {
            "client_id": args.client_metadata_url,
            "client_name": args.client_name,
            "redirect_uris": [args.redirect_uri],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        }
        _RESULT_OUT.write(json.dumps(document) + "\n")
        _RESULT_OUT.flush()
        return 0
    try:
        calls = json.loads(args.calls)
        if not isinstance(calls, list) or not all(
            isinstance(c, dict)
            and (isinstance(c.get("name"), str) or c.get("method") == "tools/list" or isinstance(c.get("sleep"), (int, float)))
            for c in calls
        ):
            raise ValueError("not a list of {name, arguments} objects")
    except ValueError as exc:
        print(f"--calls: {exc}", file=sys.stderr)
        return 2
    run = Run(args)
    run.calls = [dict(c) for c in calls]
    anyio.run(run.run)
    out = run.output()
    _RESULT_OUT.write(json.dumps(out, separators=(",", ":"), ensure_ascii=False) + "\n")
    _RESULT_OUT.flush()
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
