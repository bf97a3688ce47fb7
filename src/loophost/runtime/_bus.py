"""In-process broadcast of committed events to live subscribers of a session.

The bus never blocks a publisher and never drops silently: a subscriber whose buffer overflows is marked
`lagged`, its buffer is released, and its reader catches up from the durable log instead.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from typing import NamedTuple

from .store import StoredEvent

DEFAULT_BUFFER_LIMIT = 4096


class Preview(NamedTuple):
    """A stream-only preview (`event_start`, `event_delta`): never persisted, never replayed, best-effort."""

    session_id: str
    type: str
    body: str


StreamItem = StoredEvent | Preview


class Subscription:
    """One live reader of one session. Owned by whoever called `EventBus.subscribe`; close it when done."""

    __slots__ = ("_bus", "_waiter", "buffer", "closed", "lagged", "limit", "previews", "session_id")

    def __init__(self, bus: EventBus, session_id: str, limit: int, previews: bool) -> None:
        self._bus = bus
        self.session_id = session_id
        self.limit = limit
        self.previews = previews
        self.buffer: deque[StreamItem] = deque()
        self.lagged = False
        self.closed = False
        self._waiter: asyncio.Future[None] | None = None

    def _push(self, events: Sequence[StreamItem]) -> None:
        if not self.lagged:
            if len(self.buffer) + len(events) > self.limit:
                self.lagged = True
                self.buffer.clear()
            else:
                self.buffer.extend(events)
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def next_batch(self) -> list[StreamItem] | None:
        """Wait for live events. Returns them in publish order, or None when the reader must catch up from the
        log (it lagged). Returns [] once the subscription is closed and drained."""
        while not self.buffer and not self.lagged and not self.closed:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        if self.lagged:
            self.lagged = False
            return None
        items = list(self.buffer)
        self.buffer.clear()
        return items

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._bus._remove(self)
            self._wake()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EventBus:
    """Fan-out of committed events per session. Register `publish` as the store's commit listener."""

    def __init__(self, *, buffer_limit: int = DEFAULT_BUFFER_LIMIT) -> None:
        self._subs: dict[str, set[Subscription]] = {}
        self._buffer_limit = buffer_limit

    def subscribe(self, session_id: str, *, previews: bool = False) -> Subscription:
        sub = Subscription(self, session_id, self._buffer_limit, previews)
        self._subs.setdefault(session_id, set()).add(sub)
        return sub

    def _remove(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.session_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.session_id]

    def sessions(self) -> list[str]:
        """The sessions that have live subscribers."""
        return list(self._subs)

    def subscriber_count(self, session_id: str | None = None) -> int:
        if session_id is not None:
            return len(self._subs.get(session_id, ()))
        return sum(len(s) for s in self._subs.values())

    def publish(self, events: Sequence[StoredEvent]) -> None:
        if not self._subs or not events:
            return
        start = 0
        # Batches arrive grouped by operation, so runs of one session are contiguous: push each run at once.
        for i in range(1, len(events) + 1):
            if i == len(events) or events[i].session_id != events[start].session_id:
                subs = self._subs.get(events[start].session_id)
                if subs:
                    run = events[start:i]
                    for sub in tuple(subs):
                        sub._push(run)
                start = i

    def wants_previews(self, session_id: str) -> bool:
        """Whether a subscriber of the session asked for previews (a producer need not build them otherwise)."""
        return any(sub.previews for sub in self._subs.get(session_id, ()))

    def preview(self, session_id: str, type_: str, body: str) -> None:
        """Offer a preview to the subscribers of the session that asked for previews."""
        subs = self._subs.get(session_id)
        if subs:
            item = (Preview(session_id, type_, body),)
            for sub in tuple(subs):
                if sub.previews:
                    sub._push(item)

    def close_session(self, session_id: str, final: StoredEvent | None = None) -> None:
        """Deliver a last, unpersisted event (e.g. `session.deleted`) and end every subscription of the session."""
        for sub in tuple(self._subs.get(session_id, ())):
            if final is not None:
                sub.buffer.append(final)
            sub.close()
