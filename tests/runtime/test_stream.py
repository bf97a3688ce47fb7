"""Replay + live stitching: for any cursor and any interleaving, every event exactly once, in order."""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loophost.runtime import CursorOutOfRange, NotFound
from loophost.runtime._bus import EventBus
from loophost.runtime._stream import open_log_stream, stream_log
from loophost.runtime.store import SQLiteStore, StoredEvent

from .store._rows import event, session_row


@dataclass
class Reader:
    start: int
    stop_after: int | None
    by_batch: bool = False
    """Reads `next_batch()` (what the SSE response does) rather than item by item."""
    got: list[int] = field(default_factory=list)


Op = tuple[str, int]
ops_strategy = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.integers(1, 6)),  # commit a batch of n events
        st.tuples(st.just("reader"), st.integers(0, 10_000)),  # start a reader at a cursor ≤ the log's end
        st.tuples(st.just("short_reader"), st.integers(0, 10_000)),  # one that disconnects after a few events
        st.tuples(st.just("batch_reader"), st.integers(0, 10_000)),  # one that reads batches
        st.tuples(st.just("yield"), st.integers(0, 3)),  # let tasks run
    ),
    min_size=1,
    max_size=40,
)


async def _scenario(ops: list[Op], buffer_limit: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(Path(tmp) / "s.db")
        bus = EventBus(buffer_limit=buffer_limit)
        store.add_commit_listener(bus.publish)
        await store.open()
        try:
            await store.insert_session(session_row())
            total = 0
            readers: list[tuple[Reader, asyncio.Task[None]]] = []
            pending_appends: list[asyncio.Task[object]] = []

            async def read(reader: Reader) -> None:
                if reader.by_batch:
                    stream = await open_log_stream(store, bus, "sesn_1", reader.start, page_size=3)
                    try:
                        while True:
                            batch = await stream.next_batch()
                            assert batch
                            reader.got += [item.seq for item in batch if isinstance(item, StoredEvent)]
                    except StopAsyncIteration:
                        return
                    finally:
                        await stream.aclose()
                async for ev in stream_log(store, bus, "sesn_1", reader.start, page_size=3):
                    reader.got.append(ev.seq)
                    if reader.stop_after is not None and len(reader.got) >= reader.stop_after:
                        return

            for kind, n in ops:
                if kind == "append":
                    batch = [event(f"{total}_{i}") for i in range(n)]
                    total += n
                    pending_appends.append(
                        asyncio.create_task(store.commit_session("sesn_1", expected_revision=None, events=batch))
                    )
                elif kind in ("reader", "short_reader", "batch_reader"):
                    committed = await store.last_seq("sesn_1")
                    assert committed is not None
                    reader = Reader(
                        start=n % (committed + 1),
                        stop_after=2 if kind == "short_reader" else None,
                        by_batch=kind == "batch_reader",
                    )
                    readers.append((reader, asyncio.create_task(read(reader))))
                else:
                    for _ in range(n):
                        await asyncio.sleep(0)
            await asyncio.gather(*pending_appends)
            final = await store.last_seq("sesn_1")
            assert final == total
            # let every reader catch up with the end of the log (or its own stop), then stop it
            for reader, task in readers:
                expected = list(range(reader.start + 1, total + 1))
                if reader.stop_after is not None:
                    expected = expected[: reader.stop_after]
                deadline = asyncio.get_running_loop().time() + 5
                while len(reader.got) < len(expected) and asyncio.get_running_loop().time() < deadline:
                    await asyncio.sleep(0.001)
                await asyncio.sleep(0.002)  # room for a duplicate to show up, were there one
                if task.done():
                    task.result()  # a reader that stopped by itself must not have failed
                else:
                    task.cancel()
                    with pytest.raises(asyncio.CancelledError):
                        await task
                assert reader.got == expected, (reader.start, reader.got, total)
            assert bus.subscriber_count() == 0  # every disconnect released its subscription
        finally:
            await store.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=ops_strategy)
def test_replay_then_live_has_no_gap_and_no_duplicate(ops: list[Op]) -> None:
    asyncio.run(_scenario(ops, buffer_limit=4096))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=ops_strategy)
def test_a_lagging_subscriber_catches_up_from_the_log(ops: list[Op]) -> None:
    """With a tiny buffer every reader lags constantly; the log must fill every hole."""
    asyncio.run(_scenario(ops, buffer_limit=2))


async def test_cursor_beyond_the_end_is_an_error_not_a_hang(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    bus = EventBus()
    await store.open()
    try:
        await store.insert_session(session_row(), [event(1)])
        with pytest.raises(CursorOutOfRange):
            async for _ in stream_log(store, bus, "sesn_1", 5):
                pass
        with pytest.raises(NotFound):
            async for _ in stream_log(store, bus, "sesn_nope", 0):
                pass
        assert bus.subscriber_count() == 0
    finally:
        await store.close()


async def test_a_commits_events_are_one_batch(tmp_path: Path) -> None:
    """What one commit wrote reaches a batch reader together; item reads of the same stream see each once."""
    store = SQLiteStore(tmp_path / "s.db")
    bus = EventBus()
    store.add_commit_listener(bus.publish)
    await store.open()
    try:
        await store.insert_session(session_row(), [event(1)])
        stream = await open_log_stream(store, bus, "sesn_1", None)
        try:
            await store.commit_session("sesn_1", expected_revision=None, events=[event(2), event(3), event(4)])
            first = await anext(stream)
            assert isinstance(first, StoredEvent) and first.seq == 2
            assert [item.seq for item in await stream.next_batch() if isinstance(item, StoredEvent)] == [3, 4]
            await store.commit_session("sesn_1", expected_revision=None, events=[event(5), event(6)])
            assert [item.seq for item in await stream.next_batch() if isinstance(item, StoredEvent)] == [5, 6]
        finally:
            await stream.aclose()
        assert bus.subscriber_count() == 0
    finally:
        await store.close()


async def test_stream_ends_after_a_terminal_event(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    bus = EventBus()
    store.add_commit_listener(bus.publish)
    await store.open()
    try:
        await store.insert_session(session_row(), [event(1)])
        got: list[str] = []

        async def read() -> None:
            async for ev in stream_log(store, bus, "sesn_1", 0):
                got.append(ev.type)

        task = asyncio.create_task(read())
        await store.commit_session(
            "sesn_1", expected_revision=None, events=[event(2, "session.status_terminated"), event(3)]
        )
        await asyncio.wait_for(task, 5)
        assert got == ["agent.message", "session.status_terminated"]
    finally:
        await store.close()
