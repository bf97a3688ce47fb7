"""`SQLiteWorkStore`: the work queue's tables on the SQLite store's engine (writes through its one writer)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from .._errors import Conflict
from ._records import StoredEvent
from ._sqlite_engine import SQLiteEngine
from ._work import WORK_COLUMNS, WORK_FIELDS, EnvironmentKeyRow, QueueCounts, WorkRow, work_values

_KEY_COLS = "workspace, id, environment_id, key_hash, created_at"
_WORK_PARAMS = ",".join("?" * len(WORK_FIELDS))
_WORK_UPDATE = ", ".join(f"{n} = ?" for n in WORK_FIELDS if n not in ("workspace", "id"))


def _work(r: Sequence[Any]) -> WorkRow:
    return WorkRow(*r)


class SQLiteWorkStore:
    """See `WorkStore`. A poll's claim is one `UPDATE … RETURNING` on the single writer, so no two polls get the
    same item."""

    def __init__(self, engine: SQLiteEngine) -> None:
        self._engine = engine

    async def _write(self, sql: str, args: Sequence[Any]) -> int:
        def fn(conn: sqlite3.Connection) -> tuple[int, Sequence[StoredEvent]]:
            return conn.execute(sql, args).rowcount, ()

        return await self._engine.write(fn)

    async def _one(self, sql: str, args: Sequence[Any]) -> tuple[Any, ...] | None:
        def fn(conn: sqlite3.Connection) -> tuple[Any, ...] | None:
            found: tuple[Any, ...] | None = conn.execute(sql, args).fetchone()
            return found

        return await self._engine.read(fn)

    async def _all(self, sql: str, args: Sequence[Any]) -> list[tuple[Any, ...]]:
        def fn(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
            return list(conn.execute(sql, args).fetchall())

        return await self._engine.read(fn)

    # work items ----------------------------------------------------------------------------------------------
    async def insert_work(self, row: WorkRow) -> None:
        def fn(conn: sqlite3.Connection) -> tuple[None, Sequence[StoredEvent]]:
            try:
                conn.execute(f"INSERT INTO work_items ({WORK_COLUMNS}) VALUES ({_WORK_PARAMS})", work_values(row))
            except sqlite3.IntegrityError as exc:
                raise Conflict(
                    f"session {row.session_id!r} already has a live work item", code="live_work_exists"
                ) from exc
            return None, ()

        await self._engine.write(fn)

    async def get_work(self, workspace: str, work_id: str) -> WorkRow | None:
        r = await self._one(
            f"SELECT {WORK_COLUMNS} FROM work_items WHERE id = ? AND workspace = ?", (work_id, workspace)
        )
        return _work(r) if r else None

    async def update_work(self, row: WorkRow, *, expected_revision: int) -> bool:
        values = work_values(row)[2:]

        def fn(conn: sqlite3.Connection) -> tuple[bool, Sequence[StoredEvent]]:
            try:
                cur = conn.execute(
                    f"UPDATE work_items SET {_WORK_UPDATE} WHERE id = ? AND workspace = ? AND revision = ?",
                    (*values, row.id, row.workspace, expected_revision),
                )
            except sqlite3.IntegrityError as exc:
                raise Conflict(
                    f"session {row.session_id!r} already has a live work item", code="live_work_exists"
                ) from exc
            return cur.rowcount == 1, ()

        return await self._engine.write(fn)

    async def claim_work(
        self, environment_id: str, *, now: str, reclaim_before: str, token_hash: str
    ) -> WorkRow | None:
        def fn(conn: sqlite3.Connection) -> tuple[WorkRow | None, Sequence[StoredEvent]]:
            r = conn.execute(
                "UPDATE work_items SET polled_at = ?, token_hash = ?, revision = revision + 1 WHERE id = ("
                " SELECT id FROM work_items WHERE environment_id = ? AND state = 'queued'"
                " AND (polled_at IS NULL OR polled_at < ?) ORDER BY created_at, id LIMIT 1"
                f") RETURNING {WORK_COLUMNS}",
                (now, token_hash, environment_id, reclaim_before),
            ).fetchone()
            return (_work(r) if r else None), ()

        return await self._engine.write(fn)

    async def list_work(
        self, workspace: str, environment_id: str, *, after: tuple[str, str] | None, limit: int
    ) -> list[WorkRow]:
        where, args = "workspace = ? AND environment_id = ?", [workspace, environment_id]
        if after is not None:
            where += " AND (created_at, id) > (?, ?)"
            args += list(after)
        sql = f"SELECT {WORK_COLUMNS} FROM work_items WHERE {where} ORDER BY created_at, id LIMIT ?"
        return [_work(r) for r in await self._all(sql, [*args, limit])]

    async def live_work(self, session_id: str) -> WorkRow | None:
        r = await self._one(
            f"SELECT {WORK_COLUMNS} FROM work_items WHERE session_id = ? AND state <> 'stopped'", (session_id,)
        )
        return _work(r) if r else None

    async def expired_work(self, now: str, *, limit: int) -> list[WorkRow]:
        sql = (
            f"SELECT {WORK_COLUMNS} FROM work_items WHERE state IN ('starting', 'active', 'stopping')"
            " AND lease_expires_at < ? ORDER BY lease_expires_at LIMIT ?"
        )
        return [_work(r) for r in await self._all(sql, (now, limit))]

    async def work_by_token(self, token_hash: str) -> WorkRow | None:
        r = await self._one(f"SELECT {WORK_COLUMNS} FROM work_items WHERE token_hash = ?", (token_hash,))
        return _work(r) if r else None

    async def queue_counts(self, environment_id: str, *, pending_since: str) -> QueueCounts:
        r = await self._one(
            "SELECT COALESCE(SUM(polled_at IS NULL OR polled_at < ?), 0), COALESCE(SUM(polled_at >= ?), 0),"
            " MIN(created_at) FROM work_items WHERE environment_id = ? AND state = 'queued'",
            (pending_since, pending_since, environment_id),
        )
        assert r is not None
        return QueueCounts(int(r[0]), int(r[1]), r[2])

    async def note_poll(self, environment_id: str, worker_id: str, at: str) -> None:
        await self._write(
            "INSERT INTO work_pollers (environment_id, worker_id, polled_at) VALUES (?, ?, ?)"
            " ON CONFLICT (environment_id, worker_id) DO UPDATE SET polled_at = excluded.polled_at",
            (environment_id, worker_id, at),
        )

    async def workers_polling(self, environment_id: str, *, since: str) -> int:
        r = await self._one(
            "SELECT COUNT(*) FROM work_pollers WHERE environment_id = ? AND polled_at >= ?", (environment_id, since)
        )
        return int(r[0]) if r else 0

    # environment keys ----------------------------------------------------------------------------------------
    async def insert_environment_key(self, row: EnvironmentKeyRow) -> None:
        await self._write(
            f"INSERT INTO environment_keys ({_KEY_COLS}) VALUES (?,?,?,?,?)",
            (row.workspace, row.id, row.environment_id, row.key_hash, row.created_at),
        )

    async def list_environment_keys(self, workspace: str, environment_id: str) -> list[EnvironmentKeyRow]:
        sql = (
            f"SELECT {_KEY_COLS} FROM environment_keys WHERE workspace = ? AND environment_id = ?"
            " ORDER BY created_at, id"
        )
        return [EnvironmentKeyRow(*r) for r in await self._all(sql, (workspace, environment_id))]

    async def delete_environment_key(self, workspace: str, environment_id: str, key_id: str) -> bool:
        deleted = await self._write(
            "DELETE FROM environment_keys WHERE id = ? AND workspace = ? AND environment_id = ?",
            (key_id, workspace, environment_id),
        )
        return deleted == 1

    async def environment_key_by_hash(self, key_hash: str) -> EnvironmentKeyRow | None:
        r = await self._one(f"SELECT {_KEY_COLS} FROM environment_keys WHERE key_hash = ?", (key_hash,))
        return EnvironmentKeyRow(*r) if r else None
