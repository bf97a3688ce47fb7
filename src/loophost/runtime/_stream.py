"""Replay + live, stitched without gap or duplicate.

1. subscribe to the bus (so nothing committed from now on can be missed);
2. replay the durable log after the cursor, page by page;
3. switch to the live buffer, dropping anything at or below the last delivered seq, and reading the log again
   whenever the live half shows a hole or the subscription lagged.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable

from ._bus import EventBus, Preview, StreamItem, Subscription
from ._errors import CursorOutOfRange, NotFound
from .store import EventQuery, Store, StoredEvent

TERMINAL_TYPES = frozenset({"session.status_terminated", "session.deleted"})
REPLAY_PAGE = 1000
FIRST_PAGE = 100


class LogStream:
    """An open stream: subscribed, cursor checked, start point fixed. Iterate it item by item, or take what is
    ready as one batch with `next_batch()` (a server writes a commit's events as one write); close it with
    `aclose()` (which releases the subscription even if it was never iterated)."""

    def __init__(self, sub: Subscription, batches: AsyncGenerator[list[StreamItem], None]) -> None:
        self._sub = sub
        self._batches = batches
        self._ready: deque[StreamItem] = deque()

    def __aiter__(self) -> LogStream:
        return self

    async def __anext__(self) -> StreamItem:
        while not self._ready:
            self._ready.extend(await self._batches.__anext__())
        return self._ready.popleft()

    async def next_batch(self) -> list[StreamItem]:
        """The next items, in order, never none: those ready now (a commit's events arrive together), else the
        next to arrive. `StopAsyncIteration` at the end of the stream."""
        if self._ready:
            ready = list(self._ready)
            self._ready.clear()
            return ready
        return await self._batches.__anext__()

    async def aclose(self) -> None:
        try:
            await self._batches.aclose()
        finally:
            self._sub.close()


async def open_log_stream(
    store: Store,
    bus: EventBus,
    session_id: str,
    after_seq: int | None = 0,
    *,
    is_finished: Callable[[], Awaitable[bool]] | None = None,
    page_size: int = REPLAY_PAGE,
    previews: bool = False,
    end: Callable[[], Awaitable[int | None]] | None = None,
) -> LogStream:
    """Subscribe and check the cursor now (`after_seq=None`: from the current end, live only); then iterate.

    `end`, when given, tells the log's last seq exactly as of the moment it is awaited (after the subscription):
    the stream then skips reading a log it has nothing to replay from. Without it the store is asked.

    Every event with seq > `after_seq`, exactly once, in order, then live events. Ends after a terminal event
    (`session.status_terminated`, `session.deleted`), or after the replay when `is_finished` (awaited) says the
    session can produce no more events. With `previews`, live previews (`Preview`) are interleaved where they were
    offered; they have no seq and are never replayed.
    """
    sub = bus.subscribe(session_id, previews=previews)
    try:
        last = await (end() if end is not None else store.last_seq(session_id))
        if last is None:
            raise NotFound(f"session {session_id} not found", resource="session")
        start = last if after_seq is None else after_seq
        if start < 0 or start > last:
            raise CursorOutOfRange(
                f"cursor {start} is beyond the end of session {session_id}'s log (last seq {last})", last_seq=last
            )
    except BaseException:
        sub.close()
        raise
    follow = _follow(
        store, sub, session_id, start, is_finished=is_finished, page_size=page_size, replay=end is None or start < last
    )
    return LogStream(sub, follow)


async def stream_log(
    store: Store,
    bus: EventBus,
    session_id: str,
    after_seq: int | None = 0,
    *,
    is_finished: Callable[[], Awaitable[bool]] | None = None,
    page_size: int = REPLAY_PAGE,
    previews: bool = False,
) -> AsyncIterator[StreamItem]:
    """`open_log_stream` as an async generator that closes the stream when it ends."""
    stream = await open_log_stream(
        store, bus, session_id, after_seq, is_finished=is_finished, page_size=page_size, previews=previews
    )
    try:
        async for item in stream:
            yield item
    finally:
        await stream.aclose()


def _through_terminal(items: list[StoredEvent]) -> tuple[list[StoredEvent], bool]:
    """`items` up to and including the first terminal event, and whether there was one."""
    for index, item in enumerate(items):
        if item.type in TERMINAL_TYPES:
            return items[: index + 1], True
    return items, False


async def _follow(
    store: Store,
    sub: Subscription,
    session_id: str,
    cursor: int,
    *,
    is_finished: Callable[[], Awaitable[bool]] | None,
    page_size: int,
    replay: bool = True,
) -> AsyncGenerator[list[StreamItem], None]:
    """The stream as batches, each non-empty and in order: pages of the log while replaying or catching up, then
    what each bus delivery brings."""
    try:

        async def catch_up(until: int | None) -> AsyncIterator[list[StoredEvent]]:
            nonlocal cursor
            size = FIRST_PAGE  # a small first page: the first event reaches the reader sooner
            while True:
                query = EventQuery(after_seq=cursor, before_seq=until, limit=size)
                page = await store.list_events(session_id, query)
                if page:
                    cursor = page[-1].seq
                    yield page
                if len(page) < size:
                    return
                size = page_size

        async def replay_log() -> AsyncIterator[tuple[list[StreamItem], bool]]:
            async for page in catch_up(None):
                batch, ended = _through_terminal(page)
                yield list(batch), ended
                if ended:
                    return

        if replay:
            async for batch, ended in replay_log():
                yield batch
                if ended:
                    return
        if is_finished is not None and await is_finished():
            # Nothing can follow; but a terminal event may have committed (or, for a deletion, been handed to the
            # subscription) between the replay and now.
            async for batch, ended in replay_log():
                yield batch
                if ended:
                    return
            for item in list(sub.buffer):
                if isinstance(item, StoredEvent) and item.seq > cursor and item.type in TERMINAL_TYPES:
                    yield [item]
                    return
            return
        while True:
            delivered = await sub.next_batch()
            if delivered is None:  # lagged: the log has everything the buffer dropped
                async for batch, ended in replay_log():
                    yield batch
                    if ended:
                        return
                continue
            if not delivered and sub.closed:
                return
            out: list[StreamItem] = []
            for item in delivered:
                if isinstance(item, Preview):
                    out.append(item)
                    continue
                if item.seq <= cursor:
                    continue
                if item.seq > cursor + 1:  # a hole: what came before it is in the log
                    if out:
                        yield out
                        out = []
                    async for missed in catch_up(item.seq):
                        yield list(missed)
                cursor = item.seq
                out.append(item)
                if item.type in TERMINAL_TYPES:
                    yield out
                    return
            if out:
                yield out
            if sub.closed and not sub.buffer:
                return
    finally:
        sub.close()
