"""`ClaudeManagedAgents`: the Claude Managed Agents API over httpx2, against api.anthropic.com or any
loophost server (same wire).

Control-plane calls retry transient failures (429, 5xx, `x-should-retry`); event sends carry an
`Idempotency-Key`, so a resend after a dropped connection is applied once. The event stream is SSE, parsed
by httpx2's `EventSource`; `Last-Event-ID` is sent on reconnect (a loophost server replays from it, the
Claude API ignores it, and the loop's listing plus dedupe covers both).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack
from typing import Any

import httpx2

from .._errors import ClientError, ConnectionLost, HostError
from .._telemetry import propagate_context
from ._cma_host import CMAHost, ControlPlane, EventStream

__all__ = ("ClaudeManagedAgents",)

DEFAULT_BASE_URL = "https://api.anthropic.com"
BETA = "managed-agents-2026-04-01"
ANTHROPIC_VERSION = "2023-06-01"
_RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})


class ClaudeManagedAgents(CMAHost):
    """The Claude Managed Agents host (streaming). `api_key` defaults to `ANTHROPIC_API_KEY`, `base_url` to
    `ANTHROPIC_BASE_URL` or api.anthropic.com; point `base_url` at a loophost server to use that instead.

    Use it as `async with` to share one connection pool across runs; otherwise each run opens its own.
    """

    name = "claude"

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float = 60.0,
        stream_idle_timeout: float = 120.0,
        max_retries: int = 3,
        http_client: httpx2.AsyncClient | None = None,
    ) -> None:
        key = api_key if api_key is not None else os.environ.get("ANTHROPIC_API_KEY")
        if not key:
            raise ClientError("ClaudeManagedAgents needs an API key: api_key= or ANTHROPIC_API_KEY")
        self._api_key = key
        self.base_url = (base_url or os.environ.get("ANTHROPIC_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        self.timeout = timeout
        self.stream_idle_timeout = stream_idle_timeout
        self.max_retries = max_retries
        self._given_client = http_client
        self._client: httpx2.AsyncClient | None = http_client
        self._depth = 0

    def __repr__(self) -> str:  # never the key
        return f"ClaudeManagedAgents(base_url={self.base_url!r})"

    async def __aenter__(self) -> ClaudeManagedAgents:
        if self._depth == 0 and self._client is None:
            self._client = httpx2.AsyncClient(
                base_url=self.base_url,
                headers={
                    "x-api-key": self._api_key,
                    "anthropic-version": ANTHROPIC_VERSION,
                    "anthropic-beta": BETA,
                },
                timeout=httpx2.Timeout(self.timeout),
                event_hooks={"request": [propagate_context]},  # the caller's trace context, on every call
            )
        self._depth += 1
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._depth -= 1
        if self._depth == 0 and self._client is not None and self._given_client is None:
            client, self._client = self._client, None
            await client.aclose()

    def cache_scope(self) -> str:
        return f"claude:{self.base_url}"

    def control(self) -> ControlPlane:
        if self._client is None:
            raise ClientError("the provider is not open: use `async with` (loophost.run does it for you)")
        return _HttpControl(self._client, self.max_retries, self.stream_idle_timeout)

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
        idempotent: bool | None = None,
    ) -> Any:
        """Any call of the API (`/v1/...`) as JSON, for tools beyond the session loop (`loophost sessions`,
        `loophost apply`). Retried on transient failures when repeating it is safe (by default: not a POST).
        Raises `HostError` for an error answer, `ConnectionLost` when the host cannot be reached."""
        control = self.control()
        assert isinstance(control, _HttpControl)
        safe = method.upper() != "POST" if idempotent is None else idempotent
        return await control._call(method, path, body=body, params=params, idempotent=safe)


class _HttpControl:
    """The control plane over HTTP: JSON in, JSON out, errors typed."""

    def __init__(self, client: httpx2.AsyncClient, max_retries: int, stream_idle_timeout: float) -> None:
        self._client = client
        self._max_retries = max_retries
        self._stream_idle_timeout = stream_idle_timeout

    async def _call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool = True,
    ) -> Any:
        """One API call with retries on transient failures (only when repeating it is safe)."""
        attempt = 0
        while True:
            try:
                request = self._client.build_request(method, path, json=body, params=params, headers=headers)
                response = await self._client.send(request)
            except httpx2.TransportError as exc:
                connected = not isinstance(exc, httpx2.ConnectError | httpx2.ConnectTimeout)
                if attempt < self._max_retries and (idempotent or not connected):
                    attempt += 1
                    await asyncio.sleep(min(0.5 * 2**attempt, 8.0))
                    continue
                raise ConnectionLost(
                    f"{method} {path}: {type(exc).__name__}: {exc}", delivered=None if connected else False
                ) from exc
            if response.status_code < 400:
                return response.json() if response.content else {}
            error = _host_error(response, method, path)
            if error.retryable and attempt < self._max_retries and idempotent:
                attempt += 1
                await asyncio.sleep(_retry_after(response) or min(0.5 * 2**attempt, 8.0))
                continue
            raise error

    async def create_agent(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return await self._call("POST", "/v1/agents", body=body, idempotent=False)

    async def get_agent(self, agent_id: str) -> dict[str, Any]:
        return await self._call("GET", f"/v1/agents/{agent_id}")

    async def archive_agent(self, agent_id: str) -> None:
        await self._call("POST", f"/v1/agents/{agent_id}/archive")

    async def create_environment(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return await self._call("POST", "/v1/environments", body=body, idempotent=False)

    async def list_environments(self, page: str | None) -> tuple[list[dict[str, Any]], str | None]:
        params: dict[str, Any] = {"limit": 100}
        if page:
            params["page"] = page
        data = await self._call("GET", "/v1/environments", params=params)
        return list(data.get("data") or []), data.get("next_page")

    async def archive_environment(self, environment_id: str) -> None:
        await self._call("POST", f"/v1/environments/{environment_id}/archive")

    async def create_session(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return await self._call("POST", "/v1/sessions", body=body, idempotent=False)

    async def send_events(self, session_id: str, events: Sequence[Mapping[str, Any]], key: str) -> None:
        await self._call(
            "POST",
            f"/v1/sessions/{session_id}/events",
            body={"events": list(events)},
            headers={"Idempotency-Key": key},
        )

    async def list_events(self, session_id: str, page: str | None) -> tuple[list[Mapping[str, Any]], str | None]:
        params: dict[str, Any] = {"limit": 1000}
        if page:
            params["page"] = page
        data = await self._call("GET", f"/v1/sessions/{session_id}/events", params=params)
        return list(data.get("data") or []), data.get("next_page")

    async def open_stream(self, session_id: str, after_id: str | None, previews: bool) -> EventStream:
        headers = {"accept": "text/event-stream"}
        params = {"event_deltas[]": "agent.message"} if previews else None
        if after_id is not None:
            headers["Last-Event-ID"] = after_id
        stack = AsyncExitStack()
        timeout = httpx2.Timeout(self._client.timeout.connect or 10.0, read=self._stream_idle_timeout)
        try:
            response = await stack.enter_async_context(
                self._client.stream(
                    "GET",
                    f"/v1/sessions/{session_id}/events/stream",
                    headers=headers,
                    params=params,
                    timeout=timeout,
                )
            )
            if response.status_code >= 400:
                await response.aread()
                raise _host_error(response, "GET", "events/stream")
        except httpx2.TransportError as exc:
            await stack.aclose()
            raise ConnectionLost(f"opening the event stream: {type(exc).__name__}: {exc}") from exc
        except BaseException:
            await stack.aclose()
            raise
        return _SseStream(response, stack)


class _SseStream:
    """One open SSE response as an iterator of event objects; `ping` frames are skipped."""

    def __init__(self, response: httpx2.Response, stack: AsyncExitStack) -> None:
        self._stack = stack
        self._events = aiter(httpx2.EventSource(response))

    def __aiter__(self) -> AsyncIterator[Mapping[str, Any]]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Mapping[str, Any]]:
        while True:
            try:
                sse = await anext(self._events)
            except StopAsyncIteration:
                return
            except httpx2.TransportError as exc:
                raise ConnectionLost(f"the event stream broke: {type(exc).__name__}: {exc}") from exc
            if sse.event == "ping" or not sse.data:
                continue
            try:
                event = json.loads(sse.data)
            except ValueError:
                continue  # not an event object (a comment-like frame): nothing to act on
            if isinstance(event, dict):
                yield event

    async def aclose(self) -> None:
        await self._stack.aclose()


def _host_error(response: httpx2.Response, method: str, path: str) -> HostError:
    try:
        body = response.json()
    except ValueError:
        body = response.text
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    error_type = error.get("type") if isinstance(error, dict) else None
    should_retry = response.headers.get("x-should-retry")
    retryable = should_retry == "true" or (should_retry != "false" and response.status_code in _RETRY_STATUSES)
    return HostError(
        f"{method} {path}: HTTP {response.status_code} {error_type or ''}: {message or body}".strip(),
        status=response.status_code,
        error_type=error_type,
        body=body,
        retryable=retryable,
    )


def _retry_after(response: httpx2.Response) -> float | None:
    for header, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = response.headers.get(header)
        if value:
            try:
                return min(float(value) * scale, 60.0)
            except ValueError:
                return None
    return None
