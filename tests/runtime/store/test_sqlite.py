"""SQLite-specific guarantees: WAL, the schema version, the index the replay query uses."""

from __future__ import annotations

import asyncio
import sqlite3
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
    try:
        plan = store.explain_events_query()
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
    """A PASSIVE checkpoint never lets a WAL under constant writes start over; the writer's restart does."""
    from loophost.runtime.store import _sqlite_engine

    monkeypatch.setattr(_sqlite_engine, "WAL_RESET_BYTES", 256 * 1024)
    monkeypatch.setattr(_sqlite_engine, "CHECKPOINT_INTERVAL", 0.02)
    store = SQLiteStore(tmp_path / "wal.db")
    await store.open()
    try:
        await store.insert_session(session_row())
        body = "x" * 2000
        largest = 0
        for i in range(1500):  # ~3 MB of events, written without pause
            await store.append_events("sesn_1", [NewEvent(f"sevt_{i}", "agent.message", None, body)])
            if i % 50 == 0:
                await asyncio.sleep(0)
                largest = max(largest, (tmp_path / "wal.db-wal").stat().st_size)
        assert largest < 2 * 1024 * 1024, f"the WAL grew to {largest} bytes"
        assert len(await store.list_events("sesn_1", EventQuery(limit=5000))) == 1500
    finally:
        await store.close()
