"""The worker's HTTP: the work queue and the session calls of a self-hosted environment, as the official SDK's
worker makes them (bearer credentials, the managed-agents beta header), over one httpx2 client."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx2

BETA = "managed-agents-2026-04-01"
NO_HEARTBEAT = "NO_HEARTBEAT"


class WorkerHttpError(Exception):
    """A request the host refused, or could not be made (`status` None)."""

    def __init__(self, status: int | None, message: str, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body

    @property
    def transient(self) -> bool:
        """Worth retrying later: no answer, a 5xx, 408, 409 (the SDK's rule) or 429."""
        return self.status is None or self.status >= 500 or self.status in (408, 409, 429)


def sessions_token(secret: str | None) -> str | None:
    """The per-item bearer inside a polled item's `secret` (URL-safe base64 JSON); None if it carries none."""
    if not secret:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(secret + "=" * (-len(secret) % 4)))
    except (ValueError, TypeError):
        return None
    token = payload.get("sessions_token") if isinstance(payload, dict) else None
    return token if isinstance(token, str) and token else None


class WorkerHttp:
    """JSON calls and SSE streams with a given bearer credential per call."""

    def __init__(self, client: httpx2.AsyncClient) -> None:
        self._client = client

    async def call(
        self,
        method: str,
        path: str,
        credential: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Any:
        sent = {"authorization": f"Bearer {credential}", "anthropic-beta": BETA, **(headers or {})}
        try:
            response = await self._client.request(
                method,
                path,
                params=dict(params) if params else None,
                json=body,
                headers=sent,
                timeout=timeout if timeout is not None else httpx2.USE_CLIENT_DEFAULT,
            )
        except httpx2.TransportError as exc:
            raise WorkerHttpError(None, f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        if response.status_code >= 400:
            try:
                answer: Any = response.json()
            except ValueError:
                answer = response.text
            error = answer.get("error") if isinstance(answer, dict) else None
            message = error.get("message") if isinstance(error, dict) else str(answer)[:200]
            raise WorkerHttpError(response.status_code, f"{method} {path}: {response.status_code} {message}", answer)
        return response.json() if response.content else None

    async def download(self, path: str, credential: str) -> bytes:
        """The raw bytes a GET answers (a skill's archive)."""
        headers = {"authorization": f"Bearer {credential}", "accept": "application/binary"}
        try:
            response = await self._client.get(path, headers=headers)
        except httpx2.TransportError as exc:
            raise WorkerHttpError(None, f"GET {path}: {type(exc).__name__}: {exc}") from exc
        if response.status_code >= 400:
            raise WorkerHttpError(response.status_code, f"GET {path}: {response.status_code}")
        return response.content

    @asynccontextmanager
    async def stream(self, session_id: str, credential: str) -> AsyncIterator[AsyncIterator[Mapping[str, Any]]]:
        """Open the session's live stream (the request is answered when this enters), and iterate its events
        (`ping` frames skipped) until the host closes it."""
        headers = {"authorization": f"Bearer {credential}", "anthropic-beta": BETA, "accept": "text/event-stream"}
        path = f"/v1/sessions/{session_id}/events/stream"
        try:
            async with self._client.stream("GET", path, headers=headers, timeout=httpx2.Timeout(10.0, read=None)) as r:
                if r.status_code >= 400:
                    await r.aread()
                    raise WorkerHttpError(r.status_code, f"opening the event stream: {r.status_code}")
                yield _events(r)
        except httpx2.TransportError as exc:
            raise WorkerHttpError(None, f"the event stream broke: {type(exc).__name__}: {exc}") from exc

    async def events(self, session_id: str, credential: str) -> list[Mapping[str, Any]]:
        """The session's whole log, page by page."""
        found: list[Mapping[str, Any]] = []
        page: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 1000}
            if page:
                params["page"] = page
            data = await self.call("GET", f"/v1/sessions/{session_id}/events", credential, params=params)
            found += data.get("data") or []
            page = data.get("next_page")
            if not page:
                return found


async def _events(response: httpx2.Response) -> AsyncIterator[Mapping[str, Any]]:
    async for sse in httpx2.EventSource(response):
        if sse.event == "ping" or not sse.data:
            continue
        try:
            event = json.loads(sse.data)
        except ValueError:
            continue
        if isinstance(event, dict):
            yield event
