"""SQLite-specific guarantees: WAL, the schema version, the index the replay query uses."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from loophost.runtime.store import DatabaseInUse, EventQuery, NewEvent, SQLiteStore, open_store
from loophost.runtime.store._sqlite_schema import SCHEMA_VERSION

from ._rows import session_row


async def test_opens_in_wal_mode_with_the_current_schema(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "a.db")
    await store.open()
    await store.close()
    conn = sqlite3.connect(tmp_path / "a.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


async def test_refuses_a_database_from_a_newer_loophost(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "new.db")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    store = SQLiteStore(tmp_path / "new.db")
    with pytest.raises(RuntimeError, match="newer"):
        await store.open()


async def test_replay_query_uses_the_seq_index(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "a.db")
    await store.open()
    try:  # the statement `list_events` runs for a replay page (after a seq, ascending)
        conn = sqlite3.connect(store.path)
        rows = conn.execute(
            "EXPLAIN QUERY PLAN SELECT seq, id, type, processed_at, body FROM events "
            "WHERE session_id = ? AND seq > ? ORDER BY seq ASC LIMIT ?",
            ("x", 0, 10),
        ).fetchall()
        conn.close()
        plan = " | ".join(str(r[-1]) for r in rows)
    finally:
        await store.close()
    assert "USING INDEX events_by_seq" in plan and "seq>?" in plan.replace(" ", "")
    assert "SCAN" not in plan


def test_database_urls(tmp_path: Path) -> None:
    assert isinstance(open_store(f"sqlite:///{tmp_path}/x.db"), SQLiteStore)
    store = open_store(f"sqlite:///{tmp_path}/y.db")
    assert isinstance(store, SQLiteStore) and store.path == f"{tmp_path}/y.db"
    with pytest.raises(ValueError, match="unsupported"):
        open_store("mysql://x")


async def test_memory_database_is_private_and_removed_on_close() -> None:
    store = SQLiteStore(":memory:")
    await store.open()
    path = Path(store.path)
    assert path.exists()
    await store.close()
    assert not path.exists()


async def test_a_second_owner_of_the_file_is_refused(tmp_path: Path) -> None:
    first = SQLiteStore(tmp_path / "owned.db")
    await first.open()
    try:
        second = SQLiteStore(tmp_path / "owned.db")
        with pytest.raises(DatabaseInUse, match="another loophost process"):
            await second.open()
    finally:
        await first.close()
    third = SQLiteStore(tmp_path / "owned.db")  # released on close
    await third.open()
    await third.close()


async def test_the_wal_stays_bounded_under_sustained_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A PASSIVE checkpoint never lets a WAL under constant writes start over; the writer's restart does, on the
    writer thread (the event loop never waits for it)."""
    from loophost.runtime.store import _sqlite_engine

    monkeypatch.setattr(_sqlite_engine, "WAL_RESET_BYTES", 256 * 1024)
    monkeypatch.setattr(_sqlite_engine, "CHECKPOINT_INTERVAL", 0.02)
    loop_thread = threading.current_thread()
    restarted_on: list[threading.Thread] = []
    reset_wal = _sqlite_engine.SQLiteEngine._reset_wal

    def recording_reset_wal(engine: _sqlite_engine.SQLiteEngine) -> None:
        restarted_on.append(threading.current_thread())
        reset_wal(engine)

    monkeypatch.setattr(_sqlite_engine.SQLiteEngine, "_reset_wal", recording_reset_wal)
    store = SQLiteStore(tmp_path / "wal.db")
    await store.open()
    try:
        await store.insert_session(session_row())
        body = "x" * 2000
        largest = 0
        for i in range(1500):  # ~3 MB of events, written without pause
            event = NewEvent(f"sevt_{i}", "agent.message", None, body)
            await store.commit_session("sesn_1", expected_revision=None, events=[event])
            if i % 50 == 0:
                await asyncio.sleep(0)
                largest = max(largest, (tmp_path / "wal.db-wal").stat().st_size)
        assert largest < 2 * 1024 * 1024, f"the WAL grew to {largest} bytes"
        assert len(await store.list_events("sesn_1", EventQuery(limit=5000))) == 1500
    finally:
        await store.close()
    assert restarted_on, "the WAL never restarted"
    assert loop_thread not in restarted_on, "a RESTART checkpoint ran on the event loop"
