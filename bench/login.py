#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Log in through mcp-authz's authorization server (and the demo IdP's login form) like an MCP
client would, and print our access token. Standard library only.

    login.py http://127.0.0.1:9090 [user]
"""
import base64
import hashlib
import http.cookiejar
import json
import re
import secrets
import sys
import urllib.error
import urllib.parse
import urllib.request

REDIRECT = "http://127.0.0.1:1/bench-callback"


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def main():
    base = sys.argv[1].rstrip("/")
    user = sys.argv[2] if len(sys.argv) > 2 else "bench"
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), NoRedirect
    )
    body = json.dumps({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"})
    req = urllib.request.Request(
        base + "/oauth/register", data=body.encode(), headers={"content-type": "application/json"}
    )
    client = json.load(urllib.request.urlopen(req))["client_id"]
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    metadata = json.load(urllib.request.urlopen(base + "/.well-known/oauth-authorization-server"))
    query = urllib.parse.urlencode({
        "response_type": "code", "client_id": client, "redirect_uri": REDIRECT,
        "code_challenge": challenge, "code_challenge_method": "S256", "state": "bench",
    })
    url = metadata["authorization_endpoint"] + "?" + query
    code = None
    for _ in range(30):
        if url.startswith(REDIRECT):
            code = urllib.parse.parse_qs(urllib.parse.urlparse(url).query)["code"][0]
            break
        try:
            page = opener.open(url).read().decode()
            action = re.search(r'action="([^"]+)"', page).group(1)
            form = urllib.parse.urlencode({"prompt": "login", "login": user, "password": "x"}).encode()
            try:
                opener.open(urllib.parse.urljoin(url, action), data=form)
            except urllib.error.HTTPError as e:
                url = urllib.parse.urljoin(url, e.headers["Location"])
        except urllib.error.HTTPError as e:
            url = urllib.parse.urljoin(url, e.headers["Location"])
    if code is None:
        sys.exit("login did not reach the client redirect")
    form = urllib.parse.urlencode({
        "grant_type": "authorization_code", "client_id": client, "code": code,
        "redirect_uri": REDIRECT, "code_verifier": verifier,
    }).encode()
    tokens = json.load(urllib.request.urlopen(base + "/oauth/token", data=form))
    print(tokens["access_token"])


if __name__ == "__main__":
    main()
