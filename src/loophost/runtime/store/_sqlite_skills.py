"""`SQLiteSkillStorage`: the skill tables on the SQLite store's engine."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from ._records import StoredEvent
from ._skills import SkillRow, SkillVersionRow
from ._sqlite_engine import SQLiteEngine

_SKILL_COLS = "workspace, id, created_at, source, body"
_VERSION_COLS = "workspace, id, skill_id, created_at, body"


class SQLiteSkillStorage:
    """See `SkillStorage`."""

    def __init__(self, engine: SQLiteEngine) -> None:
        self._engine = engine

    async def _one(self, sql: str, args: Sequence[Any]) -> tuple[Any, ...] | None:
        def fn(conn: sqlite3.Connection) -> tuple[Any, ...] | None:
            found: tuple[Any, ...] | None = conn.execute(sql, args).fetchone()
            return found

        return await self._engine.read(fn)

    async def _all(self, sql: str, args: Sequence[Any]) -> list[tuple[Any, ...]]:
        def fn(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
            return list(conn.execute(sql, args).fetchall())

        return await self._engine.read(fn)

    async def put_skill(self, row: SkillRow, version: SkillVersionRow | None = None, archive: bytes = b"") -> None:
        def fn(conn: sqlite3.Connection) -> tuple[None, Sequence[StoredEvent]]:
            conn.execute(
                f"INSERT OR REPLACE INTO skills ({_SKILL_COLS}) VALUES (?,?,?,?,?)",
                (row.workspace, row.id, row.created_at, row.source, row.body),
            )
            if version is not None:
                conn.execute(
                    f"INSERT INTO skill_versions ({_VERSION_COLS}, archive) VALUES (?,?,?,?,?,?)",
                    (version.workspace, version.id, version.skill_id, version.created_at, version.body, archive),
                )
            return None, ()

        await self._engine.write(fn)

    async def get_skill(self, workspace: str, skill_id: str) -> SkillRow | None:
        r = await self._one(f"SELECT {_SKILL_COLS} FROM skills WHERE id = ? AND workspace = ?", (skill_id, workspace))
        return SkillRow(*r) if r else None

    async def list_skills(
        self, workspace: str, *, after: tuple[str, str] | None, limit: int, source: str | None
    ) -> list[SkillRow]:
        where, args = ["workspace = ?"], [workspace]
        if source is not None:
            where.append("source = ?")
            args.append(source)
        if after is not None:
            where.append("(created_at > ? OR (created_at = ? AND id > ?))")
            args += [after[0], after[0], after[1]]
        sql = f"SELECT {_SKILL_COLS} FROM skills WHERE {' AND '.join(where)} ORDER BY created_at, id LIMIT ?"
        return [SkillRow(*r) for r in await self._all(sql, [*args, limit])]

    async def delete_skill(self, workspace: str, skill_id: str) -> bool:
        def fn(conn: sqlite3.Connection) -> tuple[bool, Sequence[StoredEvent]]:
            cur = conn.execute("DELETE FROM skills WHERE id = ? AND workspace = ?", (skill_id, workspace))
            if cur.rowcount != 1:
                return False, ()
            conn.execute("DELETE FROM skill_versions WHERE skill_id = ?", (skill_id,))
            return True, ()

        return await self._engine.write(fn)

    async def get_skill_version(self, workspace: str, skill_id: str, version_id: str) -> SkillVersionRow | None:
        r = await self._one(
            f"SELECT {_VERSION_COLS} FROM skill_versions WHERE id = ? AND skill_id = ? AND workspace = ?",
            (version_id, skill_id, workspace),
        )
        return SkillVersionRow(*r) if r else None

    async def skill_version_archive(self, workspace: str, skill_id: str, version_id: str) -> bytes | None:
        r = await self._one(
            "SELECT archive FROM skill_versions WHERE id = ? AND skill_id = ? AND workspace = ?",
            (version_id, skill_id, workspace),
        )
        return bytes(r[0]) if r else None

    async def list_skill_versions(
        self, workspace: str, skill_id: str, *, before: tuple[str, str] | None, limit: int
    ) -> list[SkillVersionRow]:
        where, args = ["skill_id = ?", "workspace = ?"], [skill_id, workspace]
        if before is not None:
            where.append("(created_at < ? OR (created_at = ? AND id < ?))")
            args += [before[0], before[0], before[1]]
        sql = (
            f"SELECT {_VERSION_COLS} FROM skill_versions WHERE {' AND '.join(where)}"
            " ORDER BY created_at DESC, id DESC LIMIT ?"
        )
        return [SkillVersionRow(*r) for r in await self._all(sql, [*args, limit])]

    async def delete_skill_version(self, row: SkillRow, version_id: str) -> bool:
        def fn(conn: sqlite3.Connection) -> tuple[bool, Sequence[StoredEvent]]:
            cur = conn.execute(
                "DELETE FROM skill_versions WHERE id = ? AND skill_id = ? AND workspace = ?",
                (version_id, row.id, row.workspace),
            )
            if cur.rowcount != 1:
                return False, ()
            conn.execute("UPDATE skills SET body = ? WHERE id = ? AND workspace = ?", (row.body, row.id, row.workspace))
            return True, ()

        return await self._engine.write(fn)
