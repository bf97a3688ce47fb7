"""SQLite-specific guarantees: WAL, the schema version, the index the replay query uses."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from loophost.runtime.store import DatabaseInUse, SQLiteStore, open_store
from loophost.runtime.store._sqlite_schema import SCHEMA_VERSION


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
