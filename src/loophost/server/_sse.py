"""Server-Sent Events: a session's stream items as SSE frames, with heartbeats while the stream is idle.

The anthropic SDK's decoder drops any frame without an `event:` line, so every frame has one (the event type);
persisted events also carry `id:` (what a browser's EventSource echoes as `Last-Event-ID`), previews do not.

Teardown is structured: `sse_frames` owns the only tasks it starts (the pending read of the item iterator and
the shutdown watcher) and settles them in its `finally`, and `EventStreamResponse` closes the frame generator
when the response ends for any reason (done, client gone, shutdown), which closes the item iterator and with
it the runtime's bus subscription. Nothing started for a stream outlives its request.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from ..runtime._bus import Preview, StreamItem

PING = b'event: ping\ndata: {"type":"ping"}\n\n'
"""The heartbeat: skipped by the SDK, and enough traffic to keep proxies and NATs from dropping the socket."""

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
"""No caching, and no buffering in nginx-style proxies (a buffered stream arrives all at once, at the end)."""


def _one_line(body: str) -> str:
    """`data:` must be one line; stored bodies are compact JSON already, so this rarely re-serializes."""
    if "\n" in body or "\r" in body:
        return json.dumps(json.loads(body), separators=(",", ":"), ensure_ascii=False)
    return body


def frame(item: StreamItem) -> bytes:
    """One SSE frame: `id:` (persisted events only), `event:` = the type, `data:` = the stored wire JSON."""
    data = _one_line(item.body)
    if isinstance(item, Preview):
        return f"event: {item.type}\ndata: {data}\n\n".encode()
    return f"id: {item.id}\nevent: {item.type}\ndata: {data}\n\n".encode()


def error_frame(envelope: str) -> bytes:
    """An `event: error` frame: the SDK raises `APIStatusError` with this error envelope as the body."""
    return f"event: error\ndata: {_one_line(envelope)}\n\n".encode()


async def _next(items: AsyncIterator[StreamItem]) -> StreamItem | None:
    """The next item, None at the end (a task result, so no StopAsyncIteration crosses the task boundary)."""
    try:
        return await anext(items)
    except StopAsyncIteration:
        return None


async def sse_frames(
    items: AsyncIterator[StreamItem],
    *,
    heartbeat: float,
    closing: asyncio.Event,
    on_error: Callable[[Exception], str] | None = None,
) -> AsyncGenerator[bytes, None]:
    """Frame `items` as SSE, a `PING` after every `heartbeat` seconds without output (<= 0: never).

    Ends when `items` ends, or when `closing` is set (graceful shutdown). An exception from `items` becomes an
    `event: error` frame built by `on_error` (the headers are long gone, so a status code can't carry it).
    The read of the next item is a task that survives heartbeats (cancelling a pending `anext` would finalize
    the iterator); it and the shutdown watcher are cancelled and awaited on every way out.
    """
    timeout = heartbeat if heartbeat > 0 else None
    stop: asyncio.Task[Any] = asyncio.create_task(closing.wait())
    pending: asyncio.Task[StreamItem | None] | None = None
    try:
        while not closing.is_set():
            if pending is None:
                pending = asyncio.create_task(_next(items))
            done, _ = await asyncio.wait({pending, stop}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            if pending in done:
                ready, pending = pending, None
                try:
                    item = ready.result()
                except Exception as exc:
                    if on_error is None:
                        raise
                    yield error_frame(on_error(exc))
                    return
                if item is None:
                    return
                yield frame(item)
            elif stop in done:
                return
            else:
                yield PING
    finally:
        await _settle(items, pending, stop)


async def _settle(items: AsyncIterator[StreamItem], *tasks: asyncio.Task[Any] | None) -> None:
    """Cancel `tasks` and wait until they are done, then close `items`.

    Runs while the stream unwinds, possibly under a cancellation that is re-delivered at every await (anyio's
    cancel scopes do that): the tasks are already cancelled and finish within a loop iteration or two, so the
    wait is retried, and the cancellation re-raised once everything is released.
    """
    live = [t for t in tasks if t is not None and not t.done()]
    for task in live:
        task.cancel()
    interrupted = False
    while live:
        try:
            await asyncio.wait(live)
        except asyncio.CancelledError:
            interrupted = True
        live = [t for t in live if not t.done()]
    for done in tasks:
        if done is not None and not done.cancelled():
            done.exception()  # retrieved: an error here was already reported as a frame (or is moot)
    aclose = getattr(items, "aclose", None)
    if aclose is not None:
        await aclose()  # a no-op if a cancelled read already finalized it
    if interrupted:
        raise asyncio.CancelledError


class EventStreamResponse(StreamingResponse):
    """`200 text/event-stream` that always closes its frame generator when the response ends.

    Starlette abandons the body iterator mid-`send` when the client goes away (the cancellation lands in `send`,
    not in the generator), which would leave the generator suspended until garbage collection; closing it here
    makes teardown immediate and deterministic.
    """

    media_type = "text/event-stream"

    def __init__(self, frames: AsyncGenerator[bytes, None], *, headers: dict[str, str] | None = None) -> None:
        super().__init__(frames, headers={**SSE_HEADERS, **(headers or {})})
        self._frames = frames

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._frames.aclose()
