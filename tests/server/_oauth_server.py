"""A real OAuth token endpoint for the tests: a small Starlette app on a loopback port (uvicorn in a thread) that
answers the refresh-token grant (RFC 6749 §6) with the client authentication it was set up for, rotates refresh
tokens, and issues access tokens that expire. The issuer is also the token check of an MCP test server
(`McpTestServer(name, tokens=issuer)`): a token is accepted while it is known and not expired.

Expiry is driven by the test (`expire_all`), never by the clock, so no test waits for a token to run out."""

from __future__ import annotations

import asyncio
import base64
import secrets as random
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qs, unquote

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

AuthMethod = Literal["none", "client_secret_basic", "client_secret_post"]


@dataclass
class OAuthIssuer:
    client_id: str
    client_secret: str | None
    method: AuthMethod
    lifetime: int = 3600
    delay: float = 0.0
    """Seconds the token endpoint takes to answer (widens the window in which refreshes could race)."""
    issued: list[str] = field(default_factory=list)
    """Every token this issuer made, access and refresh (for the secret sweep)."""
    refresh_requests: int = 0
    bad_client: int = 0
    port: int = 0
    _access: dict[str, bool] = field(default_factory=dict)
    _refresh: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None

    @property
    def token_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    def __contains__(self, token: object) -> bool:
        with self._lock:
            return isinstance(token, str) and self._access.get(token, False)

    def issue(self) -> tuple[str, str]:
        """A fresh (access token, refresh token) pair, as an authorization would have given it."""
        access, refresh = f"at-{random.token_hex(16)}", f"rt-{random.token_hex(16)}"
        with self._lock:
            self._access[access] = True
            self._refresh.add(refresh)
            self.issued += [access, refresh]
        return access, refresh

    def expire_all(self) -> None:
        """Every access token issued so far is expired from now on (refresh tokens stay valid)."""
        with self._lock:
            self._access = dict.fromkeys(self._access, False)

    def revoke_refresh_tokens(self) -> None:
        with self._lock:
            self._refresh.clear()

    def _client_ok(self, request: Request, form: dict[str, str]) -> bool:
        header = request.headers.get("authorization", "")
        if self.method == "client_secret_basic":
            if not header.startswith("Basic ") or "client_id" in form or "client_secret" in form:
                return False
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            return (unquote(user), unquote(password)) == (self.client_id, self.client_secret)
        if header:
            return False
        if self.method == "client_secret_post":
            return (form.get("client_id"), form.get("client_secret")) == (self.client_id, self.client_secret)
        return form.get("client_id") == self.client_id and "client_secret" not in form

    async def _token(self, request: Request) -> JSONResponse:
        body = (await request.body()).decode()
        form = {k: v[0] for k, v in parse_qs(body).items()}
        if self.delay:
            await asyncio.sleep(self.delay)
        with self._lock:
            self.refresh_requests += 1
            if not self._client_ok(request, form):
                self.bad_client += 1
                return JSONResponse({"error": "invalid_client"}, status_code=401)
            given = form.get("refresh_token", "")
            if form.get("grant_type") != "refresh_token" or given not in self._refresh:
                # an error body that repeats the refresh token: the credential must show it scrubbed
                return JSONResponse({"error": "invalid_grant", "error_description": f"unknown {given}"}, 400)
            self._refresh.discard(given)  # rotation: a refresh token works once
        access, refresh = self.issue()
        data: dict[str, Any] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.lifetime,
            "refresh_token": refresh,
        }
        return JSONResponse(data, headers={"cache-control": "no-store"})

    def start(self) -> OAuthIssuer:
        app = Starlette(routes=[Route("/token", self._token, methods=["POST"])])
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self.port = sock.getsockname()[1]
        self._server = uvicorn.Server(
            uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1)
        )
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the token endpoint did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
            self._server = None

    def credential(self, mcp_url: str, access_token: str, refresh_token: str) -> dict[str, Any]:
        """The `auth` of an `mcp_oauth` credential for this issuer."""
        endpoint_auth: dict[str, Any] = {"type": self.method}
        if self.method != "none":
            endpoint_auth["client_secret"] = self.client_secret
        return {
            "type": "mcp_oauth",
            "mcp_server_url": mcp_url,
            "access_token": access_token,
            "refresh": {
                "client_id": self.client_id,
                "refresh_token": refresh_token,
                "token_endpoint": self.token_endpoint,
                "token_endpoint_auth": endpoint_auth,
            },
        }
