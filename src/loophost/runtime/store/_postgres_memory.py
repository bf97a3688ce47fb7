"""`PostgresMemoryStorage`: the memory tables on PostgreSQL. A memory change and its version are one short
transaction; everything else is one statement in autocommit mode."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg import errors

from . import _memory_sql as q
from ._memory import MemoryRow, MemoryStoreRow, MemoryVersionRow, PathTaken, VersionQuery
from ._postgres_db import Database, nul_is_invalid
from ._postgres_webhooks import outbox_part
from ._webhooks import OutboxEvent

P = "%s"


class PostgresMemoryStorage:
    """See `MemoryStorage`."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # stores --------------------------------------------------------------------------------------------------
    async def put_memory_store(self, row: MemoryStoreRow, *, webhooks: Sequence[OutboxEvent] = ()) -> None:
        sql = (
            f"INSERT INTO memory_stores ({q.STORE_COLS}) VALUES (%s, %s, %s, %s, %s)"
            " ON CONFLICT (id) DO UPDATE SET archived_at = EXCLUDED.archived_at, body = EXCLUDED.body"
        )
        args = (row.workspace, row.id, row.created_at, row.archived_at, row.body)
        if not webhooks:
            await self._db.store(sql, args)
            return
        outbox, params = outbox_part(webhooks, gate=None)
        async with self._db.connection() as conn, conn.transaction():
            with nul_is_invalid(args):
                await conn.execute(sql, args)
            await conn.execute(outbox, params)

    async def get_memory_store(self, workspace: str, store_id: str) -> MemoryStoreRow | None:
        r = await self._db.one(
            f"SELECT {q.STORE_COLS} FROM memory_stores WHERE id = %s AND workspace = %s", (store_id, workspace)
        )
        return q.store_row(r) if r else None

    async def list_memory_stores(
        self,
        workspace: str,
        *,
        after: tuple[str, str] | None,
        limit: int,
        include_archived: bool,
        created_gte: str | None,
        created_lte: str | None,
    ) -> list[MemoryStoreRow]:
        sql, args = q.list_stores_sql(
            P,
            workspace,
            after=after,
            limit=limit,
            include_archived=include_archived,
            created_gte=created_gte,
            created_lte=created_lte,
        )
        return [q.store_row(r) for r in await self._db.all(sql, args)]

    async def delete_memory_store(self, workspace: str, store_id: str, *, webhooks: Sequence[OutboxEvent] = ()) -> bool:
        async with self._db.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "DELETE FROM memory_stores WHERE id = %s AND workspace = %s", (store_id, workspace)
            )
            if cur.rowcount != 1:
                return False
            for table in ("memories", "memory_versions", "memory_attachments"):
                await conn.execute(f"DELETE FROM {table} WHERE store_id = %s", (store_id,))
            if webhooks:
                outbox, params = outbox_part(webhooks, gate=None)
                await conn.execute(outbox, params)
            return True

    # memories ------------------------------------------------------------------------------------------------
    async def get_memory(
        self, workspace: str, store_id: str, memory_id: str, *, with_content: bool
    ) -> MemoryRow | None:
        cols = q.MEMORY_COLS if with_content else q.MEMORY_BASIC_COLS
        r = await self._db.one(
            f"SELECT {cols} FROM memories WHERE id = %s AND workspace = %s AND store_id = %s",
            (memory_id, workspace, store_id),
        )
        return q.memory_row(r) if r else None

    async def memory_at(self, workspace: str, store_id: str, path: str) -> MemoryRow | None:
        r = await self._db.one(
            f"SELECT {q.MEMORY_BASIC_COLS} FROM memories WHERE store_id = %s AND path = %s AND workspace = %s",
            (store_id, path, workspace),
        )
        return q.memory_row(r) if r else None

    async def list_memories(
        self,
        workspace: str,
        store_id: str,
        *,
        prefix: str,
        after: str | None,
        at_or_after: str | None,
        limit: int,
        with_content: bool,
    ) -> list[MemoryRow]:
        sql, args = q.list_memories_sql(
            P,
            workspace,
            store_id,
            prefix=prefix,
            after=after,
            at_or_after=at_or_after,
            limit=limit,
            with_content=with_content,
        )
        return [q.memory_row(r) for r in await self._db.all(sql, args)]

    async def _in_transaction(self, first: tuple[str, list[Any]], version: MemoryVersionRow, path: str) -> bool:
        """Run `first`; when it touched a row, add `version` in the same transaction."""
        values = q.version_values(version)
        async with self._db.connection() as conn:
            try:
                with nul_is_invalid(first[1]), nul_is_invalid(values):
                    async with conn.transaction():
                        cur = await conn.execute(first[0], first[1])
                        if cur.rowcount != 1:
                            return False
                        await conn.execute(q.insert_version_sql(P), values)
            except errors.UniqueViolation as exc:
                raise PathTaken(path) from exc
        return True

    async def insert_memory(self, row: MemoryRow, version: MemoryVersionRow) -> None:
        await self._in_transaction((q.insert_memory_sql(P), list(q.memory_values(row))), version, row.path)

    async def replace_memory(self, row: MemoryRow, version: MemoryVersionRow, *, expected_version_id: str) -> bool:
        first = (q.replace_memory_sql(P), q.replace_memory_args(row, expected_version_id))
        return await self._in_transaction(first, version, row.path)

    async def delete_memory(
        self, workspace: str, store_id: str, memory_id: str, version: MemoryVersionRow, *, expected_version_id: str
    ) -> bool:
        first = (
            "DELETE FROM memories WHERE id = %s AND workspace = %s AND store_id = %s AND version_id = %s",
            [memory_id, workspace, store_id, expected_version_id],
        )
        return await self._in_transaction(first, version, "")

    # versions ------------------------------------------------------------------------------------------------
    async def get_memory_version(
        self, workspace: str, store_id: str, version_id: str, *, with_content: bool
    ) -> MemoryVersionRow | None:
        cols = q.VERSION_COLS if with_content else q.VERSION_BASIC_COLS
        r = await self._db.one(
            f"SELECT {cols} FROM memory_versions WHERE id = %s AND workspace = %s AND store_id = %s",
            (version_id, workspace, store_id),
        )
        return q.version_row(r) if r else None

    async def list_memory_versions(self, workspace: str, store_id: str, query: VersionQuery) -> list[MemoryVersionRow]:
        sql, args = q.list_versions_sql(P, workspace, store_id, query)
        return [q.version_row(r) for r in await self._db.all(sql, args)]

    async def redact_memory_version(
        self, workspace: str, store_id: str, version_id: str, *, redacted_at: str, redacted_by: str
    ) -> bool:
        changed = await self._db.run(
            f"UPDATE memory_versions SET {q.REDACT_SET.format(p=P)} WHERE id = %s AND workspace = %s AND store_id = %s",
            (redacted_at, redacted_by, version_id, workspace, store_id),
        )
        return changed == 1

    # attachments ---------------------------------------------------------------------------------------------
    async def attach_memory_stores(self, workspace: str, session_id: str, store_ids: list[str]) -> None:
        for store_id in store_ids:
            await self._db.store(
                "INSERT INTO memory_attachments (store_id, session_id) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                (store_id, session_id),
            )
