"""Server-Sent Events: a session's stream items as SSE frames, with heartbeats while the stream is idle.

The anthropic SDK's decoder drops any frame without an `event:` line, so every frame has one (the event type);
persisted events also carry `id:` (what a browser's EventSource echoes as `Last-Event-ID`), previews do not.

Teardown is structured: `EventStreamResponse` owns the only tasks it starts (the pending read of the item
iterator and the wait for the client's disconnect) and settles them, then closes the item iterator (and with it
the runtime's bus subscription), when the response ends for any reason: done, client gone, shutdown. Nothing
started for a stream outlives its request.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from starlette.responses import Response
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


class Batches(Protocol):
    """A stream's items as batches (`runtime.LogStream`): what is ready is framed and written at once."""

    async def next_batch(self) -> list[StreamItem]:
        """The next items, never none; `StopAsyncIteration` at the end."""
        ...

    async def aclose(self) -> None: ...


async def _next(items: Batches) -> list[StreamItem] | None:
    """The next batch, None at the end (a task result, so no StopAsyncIteration crosses the task boundary)."""
    try:
        return await items.next_batch()
    except StopAsyncIteration:
        return None


async def _disconnected(receive: Receive) -> None:
    """Returns once the client has gone (a stream's request has no body left to read)."""
    while (await receive())["type"] != "http.disconnect":
        pass


class Closing:
    """The server's shutdown, announced to every open stream through a future of its own (a future, not a
    watcher task: an idle stream should hold as little as possible; and not one shared future, which would make
    every stream's wake-up cost O(open streams) in its callback list)."""

    def __init__(self) -> None:
        self._set = False
        self._waiters: set[asyncio.Future[None]] = set()

    def set(self) -> None:
        self._set = True
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)

    def is_set(self) -> bool:
        return self._set

    def waiter(self) -> asyncio.Future[None]:
        """A future done once `set()` is called (at once if it was); `release` it when the stream ends."""
        waiter = asyncio.get_running_loop().create_future()
        if self._set:
            waiter.set_result(None)
        else:
            self._waiters.add(waiter)
        return waiter

    def release(self, waiter: asyncio.Future[None]) -> None:
        self._waiters.discard(waiter)


class EventStreamResponse(Response):
    """`200 text/event-stream`: `items` framed as SSE, a `PING` after every `heartbeat` seconds without output
    (<= 0: never), until `items` ends, the client goes away, or the server closes (`closing`). The items that are
    ready together (a commit's events) go out as one write.

    One coroutine drives it and reads the items itself, so a commit's events are written one loop step after the
    commit (no task per batch). It owns two helper tasks: the heartbeat, which writes a `PING` after `heartbeat`
    seconds without output, and the wait for the client's disconnect. The disconnect and the server's shutdown end
    the read where it waits (a cancel scope), since nothing will read those items again. The helpers are cancelled
    and awaited, and `items` closed, on every way out, so nothing started for a stream outlives its request.
    (Starlette's `StreamingResponse` would add an anyio task group and two more tasks per stream: an idle stream
    costs memory for every task it holds.) An exception from `items` becomes an
    `event: error` frame built by `on_error` (the headers are long gone, so a status code can't carry it).
    """

    media_type = "text/event-stream"

    def __init__(
        self,
        items: Batches,
        *,
        heartbeat: float,
        closing: Closing,
        on_error: Callable[[Exception], str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.status_code = 200
        self.background = None
        self.init_headers({**SSE_HEADERS, **(headers or {})})
        self._items = items
        self._heartbeat = heartbeat
        self._closing = closing
        self._on_error = on_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        items = self._items
        loop = asyncio.get_running_loop()
        closing = self._closing.waiter()
        gone: asyncio.Task[None] = asyncio.ensure_future(_disconnected(receive))
        beat: asyncio.Task[None] | None = None
        try:
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
            written = [loop.time()]  # when the stream last wrote (a heartbeat is due `heartbeat` s after it)

            async def write(body: bytes) -> None:
                written[0] = loop.time()
                await send({"type": "http.response.body", "body": body, "more_body": True})

            if self._heartbeat > 0:
                beat = asyncio.ensure_future(_heartbeats(self._heartbeat, written, write, loop))
            async with asyncio.timeout(None) as scope_:
                # the client leaving or the server closing ends the read where it waits (the items are closed
                # on the way out, so a read cut off mid-way is never resumed)
                stop = lambda _: scope_.reschedule(loop.time())  # noqa: E731
                gone.add_done_callback(stop)
                closing.add_done_callback(stop)
                try:
                    while not closing.done() and not gone.done():
                        try:
                            batch = await items.next_batch()
                        except StopAsyncIteration:
                            break
                        except Exception as exc:
                            if self._on_error is None:
                                raise
                            await write(error_frame(self._on_error(exc)))
                            break
                        await write(b"".join(map(frame, batch)))
                finally:
                    gone.remove_done_callback(stop)
                    closing.remove_done_callback(stop)
        except TimeoutError:
            pass  # stopped by `gone` or `closing`
        finally:
            client_gone = gone.done()
            self._closing.release(closing)
            await _settle(items, beat, gone)
        if not client_gone:
            await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _heartbeats(
    period: float, written: list[float], write: Callable[[bytes], Awaitable[None]], loop: asyncio.AbstractEventLoop
) -> None:
    """A `PING` whenever the stream has written nothing for `period` seconds."""
    while True:
        await asyncio.sleep(max(0.0, written[0] + period - loop.time()))
        if loop.time() - written[0] >= period:
            await write(PING)


async def _settle(items: Batches, *tasks: asyncio.Task[Any] | None) -> None:
    """Cancel `tasks` and wait until they are done, then close `items`.

    Runs while the stream unwinds, possibly under a cancellation that is re-delivered at every await: the tasks
    are already cancelled and finish within a loop iteration or two, so the wait is retried, and the
    cancellation re-raised once everything is released.
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
    await items.aclose()  # a no-op if a cancelled read already finalized it
    if interrupted:
        raise asyncio.CancelledError
