"""HTTP exchanges a vault makes on its own: probing an MCP server with a credential (`initialize`), and the OAuth
refresh-token grant (RFC 6749 §6) with the token endpoint authentication the credential names.

Nothing here logs, and every captured response body is scrubbed of the credential's secrets before it is
returned, so what reaches a caller or a log line holds no secret.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import quote

import httpx2

from .. import wire

_BODY_LIMIT = 2048
_TIMEOUT = 15.0
_INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "loophost-vault-probe", "version": "1"},
    },
}


def scrubbed(response: httpx2.Response, secrets: Iterable[str]) -> wire.ProbeHttpResponse:
    """A captured response, truncated and with every secret replaced."""
    body = response.text
    for secret in secrets:
        if secret:
            body = body.replace(secret, "[redacted]")
    return wire.ProbeHttpResponse(
        status_code=response.status_code,
        content_type=response.headers.get("content-type", ""),
        body=body[:_BODY_LIMIT],
        body_truncated=len(body) > _BODY_LIMIT,
    )


@dataclass(frozen=True, slots=True)
class Probe:
    """`status`: the HTTP status of `initialize`, None when the server could not be reached."""

    status: int | None
    response: wire.ProbeHttpResponse | None


async def probe_mcp(url: str, token: str, secrets: Iterable[str]) -> Probe:
    headers = {
        "authorization": f"Bearer {token}",
        "accept": "application/json, text/event-stream",
        "content-type": "application/json",
    }
    try:
        async with httpx2.AsyncClient(timeout=_TIMEOUT) as client:
            response = await client.post(url, json=_INITIALIZE, headers=headers)
    except httpx2.HTTPError:
        return Probe(None, None)
    if response.is_success:
        return Probe(response.status_code, None)
    return Probe(response.status_code, scrubbed(response, secrets))


@dataclass(frozen=True, slots=True)
class Refreshed:
    status: Literal["succeeded", "failed", "connect_error"]
    access_token: str | None = None
    refresh_token: str | None = None
    expires_at: datetime | None = None
    response: wire.ProbeHttpResponse | None = None


async def refresh_grant(refresh: dict[str, Any], secrets: dict[str, str]) -> Refreshed:
    """POST `grant_type=refresh_token` to the credential's token endpoint. `refresh` is the shown refresh block
    (client id, endpoint, auth type, scope, resource), `secrets` the decrypted ones."""
    form = {"grant_type": "refresh_token", "refresh_token": secrets.get("refresh_token", "")}
    auth: str | None = None
    kind = refresh["token_endpoint_auth"]["type"]
    if kind == "client_secret_basic":  # RFC 6749 §2.3.1: both parts form-urlencoded, then Basic
        pair = f"{quote(refresh['client_id'], safe='')}:{quote(secrets.get('client_secret', ''), safe='')}"
        auth = "Basic " + base64.b64encode(pair.encode()).decode()
    else:
        form["client_id"] = refresh["client_id"]
        if kind == "client_secret_post":
            form["client_secret"] = secrets.get("client_secret", "")
    for name in ("scope", "resource"):
        if refresh.get(name):
            form[name] = refresh[name]
    try:
        async with httpx2.AsyncClient(timeout=_TIMEOUT) as client:
            response = await client.post(
                refresh["token_endpoint"],
                data=form,
                headers={"accept": "application/json", **({"authorization": auth} if auth else {})},
            )
    except httpx2.HTTPError:
        return Refreshed("connect_error")
    try:
        data = response.json() if response.is_success else None
    except ValueError:
        data = None
    token = data.get("access_token") if isinstance(data, dict) else None
    if not isinstance(token, str) or not token:
        return Refreshed("failed", response=scrubbed(response, secrets.values()))
    assert isinstance(data, dict)
    expires_in = data.get("expires_in")
    expires_at = (
        datetime.now(UTC) + timedelta(seconds=float(expires_in)) if isinstance(expires_in, int | float) else None
    )
    rotated = data.get("refresh_token")
    return Refreshed("succeeded", token, rotated if isinstance(rotated, str) and rotated else None, expires_at)
