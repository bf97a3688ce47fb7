"""`NoticeRelay`: what other nodes write, brought to this node (with a cluster): their commits to this node's
streams, and their wake-ups to this node's workers.

Notices are wake-ups, never data: a notice that a session's log grew to seq N makes the relay read the log after the
last seq this node's bus carried for that session, and publish what it read; only sessions with live subscribers
here are read at all. The relay may publish late or twice (a local commit can overtake a read in flight): the
stream drops what it already delivered and reads the log to fill a hole (`_stream.py`), so order and
exactly-once are the stream's, as for local commits. A session deleted on another node ends its streams here with
`session.deleted`, as on the deleting node. After the notice connection drops and comes back, every
session with subscribers is caught up from the log, since its notices may have been missed. A missed wake-up is
the sweeper's (`engine/_leases.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence

from .. import wire
from ._bus import EventBus
from ._clock import now, rfc3339
from ._errors import Unavailable
from ._ids import new_id
from .store import Cluster, EventQuery, Notice, Store, StoredEvent

log = logging.getLogger("loophost.runtime")

PAGE = 1000
_UNKNOWN = 0
"""A pending read whose target seq is not known (after a reconnect): read to the end of the log."""


class NoticeRelay:
    """Listens to the cluster's notices; owns the listening task and the task that reads the log."""

    def __init__(self, cluster: Cluster, store: Store, bus: EventBus, wake: Callable[[str, bool], None]) -> None:
        self._cluster = cluster
        self._store = store
        self._bus = bus
        self._wake = wake
        self._published: dict[str, int] = {}
        """Per session with subscribers: the last seq this node's bus carried."""
        self._pending: dict[str, int] = {}
        self._ready = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def published(self, events: Sequence[StoredEvent]) -> None:
        """A commit listener (after the bus's): remember the last seq a local commit published."""
        last: dict[str, int] = {}
        for event in events:
            last[event.session_id] = event.seq
        for session_id, seq in last.items():
            if session_id in self._published or self._bus.subscriber_count(session_id):
                self._published[session_id] = max(self._published.get(session_id, 0), seq)

    async def start(self) -> None:
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._listen(), name="loophost-notices"),
                asyncio.create_task(self._deliver(), name="loophost-relay"),
            ]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def _listen(self) -> None:
        async with contextlib.aclosing(self._cluster.notices()) as notices:
            async for notice in notices:
                self._take(notice)

    def _take(self, notice: Notice) -> None:
        if notice.kind == "wake":
            self._wake(notice.session_id, notice.interrupt)
        elif notice.kind == "deleted":
            self._published.pop(notice.session_id, None)
            self._pending.pop(notice.session_id, None)
            if self._bus.subscriber_count(notice.session_id):  # the deleting node ended its own streams
                self._bus.close_session(notice.session_id, deleted_event(notice.session_id, notice.seq))
        elif notice.kind == "events":
            if self._bus.subscriber_count(notice.session_id):
                self._want(notice.session_id, notice.seq)
            else:
                self._published.pop(notice.session_id, None)
        else:  # reconnected: what was missed is in the log
            for session_id in self._bus.sessions():
                self._want(session_id, _UNKNOWN)

    def _want(self, session_id: str, seq: int) -> None:
        pending = self._pending.get(session_id)
        self._pending[session_id] = _UNKNOWN if _UNKNOWN in (seq, pending) else max(seq, pending or 0)
        self._ready.set()

    async def _deliver(self) -> None:
        while True:
            await self._ready.wait()
            self._ready.clear()
            batch, self._pending = self._pending, {}
            await asyncio.gather(*(self._read(session_id, seq) for session_id, seq in batch.items()))
            self._forget_unsubscribed()

    async def _read(self, session_id: str, seq: int) -> None:
        """Publish the session's log after the last seq published here (up to `seq`, or its end)."""
        known = self._published.get(session_id)
        if seq != _UNKNOWN and known is not None and seq <= known:
            return  # a local commit published it already
        try:
            if known is None:  # the subscribers' cursors are theirs: start at the newest event, the stream fills holes
                last = seq if seq != _UNKNOWN else await self._store.last_seq(session_id)
                if last is None or last == 0:
                    return
                known = last - 1
            while self._bus.subscriber_count(session_id):
                page = await self._store.list_events(session_id, EventQuery(after_seq=known, limit=PAGE))
                if not page:
                    return
                self._bus.publish(page)
                known = page[-1].seq
                self._published[session_id] = max(self._published.get(session_id, 0), known)
                if len(page) < PAGE or (seq != _UNKNOWN and known >= seq):
                    return
        except Unavailable as exc:  # read again shortly: the stream waits for these events
            log.warning("could not read session %s's log for its streams: %s", session_id, exc)
            await asyncio.sleep(0.2)
            self._want(session_id, seq)

    def _forget_unsubscribed(self) -> None:
        if len(self._published) > 2 * self._bus.subscriber_count() + 64:
            for session_id in [s for s in self._published if not self._bus.subscriber_count(s)]:
                del self._published[session_id]


def deleted_event(session_id: str, seq: int) -> StoredEvent:
    """The unpersisted `session.deleted` that ends a deleted session's streams (as `delete_session` makes it)."""
    event_id, at = new_id("sevt"), rfc3339(now())
    body = wire.parse_event({"id": event_id, "type": "session.deleted", "processed_at": at}).model_dump_json()
    return StoredEvent(session_id, seq, event_id, "session.deleted", at, body)
