"""Shared set-up for benchmarks on the runtime's low-level pieces: store + bus, sessions, realistic events."""

from __future__ import annotations

import asyncio
import base64
import json
import random
import time
from array import array
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

from loophost.runtime._bus import EventBus
from loophost.runtime.store import NewEvent, SessionRow, SQLiteStore

WORKSPACE = "bench"
SYNCHRONOUS = "NORMAL"
"""The store's default durability mode; every store line says which one it measured."""

_TEXT = (
    "the agent reads the repository layout and then opens the failing test to check which fixture sets up "
    "the database connection before it edits anything because a change in the schema migration could break "
    "the replay path so it runs the suite again with verbose output and notes that two cases still time out "
    "under load while the cache warms up after a cold start of the worker process"
)
_WORDS = _TEXT.split(" ")
T = TypeVar("T")

_TOOLS = ("read_file", "bash", "grep", "edit_file", "list_dir")
_BASE_TIME = datetime(2026, 3, 14, 9, 26, 53, tzinfo=UTC)


@asynccontextmanager
async def open_store(path: Path, *, synchronous: str = SYNCHRONOUS) -> AsyncIterator[tuple[SQLiteStore, EventBus]]:
    """A fresh `SQLiteStore` on `path` with an `EventBus` registered as its commit listener."""
    store = SQLiteStore(path, synchronous=synchronous)
    await store.open()
    bus = EventBus()
    store.add_commit_listener(bus.publish)
    try:
        yield store, bus
    finally:
        await store.close()


@asynccontextmanager
async def closing(stream: AsyncIterator[T]) -> AsyncIterator[AsyncIterator[T]]:
    """Like `contextlib.aclosing` for an iterator typed as `AsyncIterator` (e.g. `stream_log`): leaving the
    block closes it at once, so its subscription is released now rather than by garbage collection."""
    try:
        yield stream
    finally:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            await aclose()


async def new_session(store: SQLiteStore, session_id: str) -> str:
    await store.insert_session(
        SessionRow(
            WORKSPACE,
            session_id,
            "agent_bench",
            1,
            "env_bench",
            "idle",
            _BASE_TIME.isoformat().replace("+00:00", "Z"),
            None,
            1,
            0,
            "{}",
        )
    )
    return session_id


async def new_sessions(store: SQLiteStore, count: int, prefix: str = "sesn_bench") -> list[str]:
    return [await new_session(store, f"{prefix}_{i:05d}") for i in range(count)]


def make_events(count: int, *, seed: int = 0, tag: str = "") -> list[NewEvent]:
    """`count` serialized events shaped like the wire's (agent messages, tool uses and results), ~200-400
    bytes each. Deterministic for a seed; ids are unique within one call (and across calls
    with other tags)."""
    rng = random.Random(seed)
    events: list[NewEvent] = []
    for i in range(count):
        event_id = "sevt_" + tag + base64.b32encode(rng.randbytes(15)).decode().lower()
        stamp = (_BASE_TIME + timedelta(milliseconds=i)).isoformat(timespec="microseconds").replace("+00:00", "Z")
        kind = i % 4
        text = " ".join(rng.choices(_WORDS, k=rng.randint(20, 50)))
        body: dict[str, object]
        if kind == 1:
            event_type = "agent.tool_use"
            body = {
                "id": event_id,
                "type": event_type,
                "processed_at": stamp,
                "name": rng.choice(_TOOLS),
                "input": {"path": f"src/pkg/module_{rng.randint(0, 999)}.py", "reason": text[:120]},
            }
        elif kind == 2:
            event_type = "agent.tool_result"
            body = {
                "id": event_id,
                "type": event_type,
                "processed_at": stamp,
                "tool_use_id": "sevt_" + base64.b32encode(rng.randbytes(15)).decode().lower(),
                "is_error": False,
                "content": [{"type": "text", "text": text}],
            }
        else:
            event_type = "agent.message"
            body = {
                "id": event_id,
                "type": event_type,
                "processed_at": stamp,
                "content": [{"type": "text", "text": text}],
            }
        events.append(NewEvent(event_id, event_type, stamp, json.dumps(body, separators=(",", ":"))))
    return events


def mean_body_bytes(events: Sequence[NewEvent]) -> float:
    return sum(len(e.body.encode()) for e in events) / max(len(events), 1)


async def prefill(store: SQLiteStore, session_id: str, events: Sequence[NewEvent], *, batch: int = 2000) -> None:
    """Append `events` fast: many events per `commit_session` call (one transaction each)."""
    for start in range(0, len(events), batch):
        await store.commit_session(session_id, expected_revision=None, events=events[start : start + batch])


async def append_concurrently(
    store: SQLiteStore, plan: Sequence[tuple[str, Sequence[NewEvent]]], *, per_append: int = 1
) -> tuple[float, array[float]]:
    """One task per `(session_id, events)` entry, each appending its events `per_append` at a time (one at a time
    by default) through `commit_session`, the runtime's write path, and awaiting every ack. Returns the wall time
    from start to the last ack (s) and every append's ack latency (s)."""
    latencies: array[float] = array("d")
    clock = time.perf_counter

    async def appender(session_id: str, events: Sequence[NewEvent]) -> None:
        commit = store.commit_session
        record = latencies.append
        for start in range(0, len(events), per_append):
            started = clock()
            await commit(session_id, expected_revision=None, events=events[start : start + per_append])
            record(clock() - started)

    started = clock()
    await asyncio.gather(*(appender(sid, evs) for sid, evs in plan))
    return clock() - started, latencies


def split(events: Sequence[NewEvent], parts: int) -> list[Sequence[NewEvent]]:
    """`events` cut into `parts` nearly equal consecutive slices."""
    size, extra = divmod(len(events), parts)
    out: list[Sequence[NewEvent]] = []
    start = 0
    for i in range(parts):
        end = start + size + (1 if i < extra else 0)
        out.append(events[start:end])
        start = end
    return out
