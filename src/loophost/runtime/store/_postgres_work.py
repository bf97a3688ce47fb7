"""`PostgresWorkStore`: the work queue's tables on PostgreSQL. Every call is one statement in autocommit mode.

A poll's claim locks the row it picks with `FOR UPDATE SKIP LOCKED`, so polls on several nodes never hand out
the same item and never wait on each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg import errors

from .._errors import Conflict
from ._postgres_db import Database
from ._work import WORK_COLUMNS, WORK_FIELDS, EnvironmentKeyRow, QueueCounts, WorkRow, work_values

_KEY_COLS = "workspace, id, environment_id, key_hash, created_at"
_WORK_PARAMS = ", ".join(["%s"] * len(WORK_FIELDS))
_WORK_UPDATE = ", ".join(f"{n} = %s" for n in WORK_FIELDS if n not in ("workspace", "id"))


def _work(r: Sequence[Any]) -> WorkRow:
    return WorkRow(*r)


def _live_conflict(session_id: str, exc: Exception) -> Conflict:
    return Conflict(f"session {session_id!r} already has a live work item", code="live_work_exists")


class PostgresWorkStore:
    """See `WorkStore`."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # work items ----------------------------------------------------------------------------------------------
    async def insert_work(self, row: WorkRow) -> None:
        try:
            await self._db.store(f"INSERT INTO work_items ({WORK_COLUMNS}) VALUES ({_WORK_PARAMS})", work_values(row))
        except errors.UniqueViolation as exc:
            raise _live_conflict(row.session_id, exc) from exc

    async def get_work(self, workspace: str, work_id: str) -> WorkRow | None:
        r = await self._db.one(
            f"SELECT {WORK_COLUMNS} FROM work_items WHERE id = %s AND workspace = %s", (work_id, workspace)
        )
        return _work(r) if r else None

    async def update_work(self, row: WorkRow, *, expected_revision: int) -> bool:
        try:
            changed = await self._db.store(
                f"UPDATE work_items SET {_WORK_UPDATE} WHERE id = %s AND workspace = %s AND revision = %s",
                (*work_values(row)[2:], row.id, row.workspace, expected_revision),
            )
        except errors.UniqueViolation as exc:
            raise _live_conflict(row.session_id, exc) from exc
        return changed == 1

    async def claim_work(
        self, environment_id: str, *, now: str, reclaim_before: str, token_hash: str
    ) -> WorkRow | None:
        r = await self._db.one(
            "UPDATE work_items SET polled_at = %s, token_hash = %s, revision = revision + 1 WHERE id = ("
            " SELECT id FROM work_items WHERE environment_id = %s AND state = 'queued'"
            " AND (polled_at IS NULL OR polled_at < %s) ORDER BY created_at, id LIMIT 1 FOR UPDATE SKIP LOCKED"
            f") RETURNING {WORK_COLUMNS}",
            (now, token_hash, environment_id, reclaim_before),
        )
        return _work(r) if r else None

    async def list_work(
        self, workspace: str, environment_id: str, *, after: tuple[str, str] | None, limit: int
    ) -> list[WorkRow]:
        where, args = "workspace = %s AND environment_id = %s", [workspace, environment_id]
        if after is not None:
            where += " AND (created_at, id) > (%s, %s)"
            args += list(after)
        sql = f"SELECT {WORK_COLUMNS} FROM work_items WHERE {where} ORDER BY created_at, id LIMIT %s"
        return [_work(r) for r in await self._db.all(sql, [*args, limit])]

    async def live_work(self, session_id: str) -> WorkRow | None:
        r = await self._db.one(
            f"SELECT {WORK_COLUMNS} FROM work_items WHERE session_id = %s AND state <> 'stopped'", (session_id,)
        )
        return _work(r) if r else None

    async def expired_work(self, now: str, *, limit: int) -> list[WorkRow]:
        sql = (
            f"SELECT {WORK_COLUMNS} FROM work_items WHERE state IN ('starting', 'active', 'stopping')"
            " AND lease_expires_at < %s ORDER BY lease_expires_at LIMIT %s"
        )
        return [_work(r) for r in await self._db.all(sql, (now, limit))]

    async def work_by_token(self, token_hash: str) -> WorkRow | None:
        r = await self._db.one(f"SELECT {WORK_COLUMNS} FROM work_items WHERE token_hash = %s", (token_hash,))
        return _work(r) if r else None

    async def queue_counts(self, environment_id: str, *, pending_since: str) -> QueueCounts:
        r = await self._db.one(
            "SELECT COUNT(*) FILTER (WHERE polled_at IS NULL OR polled_at < %s),"
            " COUNT(*) FILTER (WHERE polled_at >= %s), MIN(created_at)"
            " FROM work_items WHERE environment_id = %s AND state = 'queued'",
            (pending_since, pending_since, environment_id),
        )
        assert r is not None
        return QueueCounts(int(r[0]), int(r[1]), r[2])

    async def note_poll(self, environment_id: str, worker_id: str, at: str) -> None:
        await self._db.store(
            "INSERT INTO work_pollers (environment_id, worker_id, polled_at) VALUES (%s, %s, %s)"
            " ON CONFLICT (environment_id, worker_id) DO UPDATE SET polled_at = EXCLUDED.polled_at",
            (environment_id, worker_id, at),
        )

    async def workers_polling(self, environment_id: str, *, since: str) -> int:
        r = await self._db.one(
            "SELECT COUNT(*) FROM work_pollers WHERE environment_id = %s AND polled_at >= %s", (environment_id, since)
        )
        return int(r[0]) if r else 0

    # environment keys ----------------------------------------------------------------------------------------
    async def insert_environment_key(self, row: EnvironmentKeyRow) -> None:
        await self._db.store(
            f"INSERT INTO environment_keys ({_KEY_COLS}) VALUES (%s, %s, %s, %s, %s)",
            (row.workspace, row.id, row.environment_id, row.key_hash, row.created_at),
        )

    async def list_environment_keys(self, workspace: str, environment_id: str) -> list[EnvironmentKeyRow]:
        sql = (
            f"SELECT {_KEY_COLS} FROM environment_keys WHERE workspace = %s AND environment_id = %s"
            " ORDER BY created_at, id"
        )
        return [EnvironmentKeyRow(*r) for r in await self._db.all(sql, (workspace, environment_id))]

    async def delete_environment_key(self, workspace: str, environment_id: str, key_id: str) -> bool:
        deleted = await self._db.run(
            "DELETE FROM environment_keys WHERE id = %s AND workspace = %s AND environment_id = %s",
            (key_id, workspace, environment_id),
        )
        return deleted == 1

    async def environment_key_by_hash(self, key_hash: str) -> EnvironmentKeyRow | None:
        r = await self._db.one(f"SELECT {_KEY_COLS} FROM environment_keys WHERE key_hash = %s", (key_hash,))
        return EnvironmentKeyRow(*r) if r else None
