"""`PostgresSkillStorage`: the skill tables on PostgreSQL (a version and its skill's new document are one short
transaction; the rest is one statement each)."""

from __future__ import annotations

from ._postgres_db import Database, nul_is_invalid
from ._skills import SkillRow, SkillVersionRow

_SKILL_COLS = "workspace, id, created_at, source, body"
_VERSION_COLS = "workspace, id, skill_id, created_at, body"


def _version_values(v: SkillVersionRow) -> tuple[str, str, str, str, str]:
    return (v.workspace, v.id, v.skill_id, v.created_at, v.body)


class PostgresSkillStorage:
    """See `SkillStorage`."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def put_skill(self, row: SkillRow, version: SkillVersionRow | None = None, archive: bytes = b"") -> None:
        skill_args = (row.workspace, row.id, row.created_at, row.source, row.body)
        async with self._db.connection() as conn:
            with nul_is_invalid(skill_args):
                async with conn.transaction():
                    await conn.execute(
                        f"INSERT INTO skills ({_SKILL_COLS}) VALUES (%s, %s, %s, %s, %s)"
                        " ON CONFLICT (id) DO UPDATE SET body = EXCLUDED.body",
                        skill_args,
                    )
                    if version is not None:
                        await conn.execute(
                            f"INSERT INTO skill_versions ({_VERSION_COLS}, archive) VALUES (%s, %s, %s, %s, %s, %s)",
                            (*_version_values(version), archive),
                        )

    async def get_skill(self, workspace: str, skill_id: str) -> SkillRow | None:
        r = await self._db.one(
            f"SELECT {_SKILL_COLS} FROM skills WHERE id = %s AND workspace = %s", (skill_id, workspace)
        )
        return SkillRow(*r) if r else None

    async def list_skills(
        self, workspace: str, *, after: tuple[str, str] | None, limit: int, source: str | None
    ) -> list[SkillRow]:
        where, args = ["workspace = %s"], [workspace]
        if source is not None:
            where.append("source = %s")
            args.append(source)
        if after is not None:
            where.append("(created_at > %s OR (created_at = %s AND id > %s))")
            args += [after[0], after[0], after[1]]
        sql = f"SELECT {_SKILL_COLS} FROM skills WHERE {' AND '.join(where)} ORDER BY created_at, id LIMIT %s"
        return [SkillRow(*r) for r in await self._db.all(sql, [*args, limit])]

    async def delete_skill(self, workspace: str, skill_id: str) -> bool:
        async with self._db.connection() as conn, conn.transaction():
            cur = await conn.execute("DELETE FROM skills WHERE id = %s AND workspace = %s", (skill_id, workspace))
            if cur.rowcount != 1:
                return False
            await conn.execute("DELETE FROM skill_versions WHERE skill_id = %s", (skill_id,))
            return True

    async def get_skill_version(self, workspace: str, skill_id: str, version_id: str) -> SkillVersionRow | None:
        r = await self._db.one(
            f"SELECT {_VERSION_COLS} FROM skill_versions WHERE id = %s AND skill_id = %s AND workspace = %s",
            (version_id, skill_id, workspace),
        )
        return SkillVersionRow(*r) if r else None

    async def skill_version_archive(self, workspace: str, skill_id: str, version_id: str) -> bytes | None:
        r = await self._db.one(
            "SELECT archive FROM skill_versions WHERE id = %s AND skill_id = %s AND workspace = %s",
            (version_id, skill_id, workspace),
        )
        return bytes(r[0]) if r else None

    async def list_skill_versions(
        self, workspace: str, skill_id: str, *, before: tuple[str, str] | None, limit: int
    ) -> list[SkillVersionRow]:
        where, args = ["skill_id = %s", "workspace = %s"], [skill_id, workspace]
        if before is not None:
            where.append("(created_at < %s OR (created_at = %s AND id < %s))")
            args += [before[0], before[0], before[1]]
        sql = (
            f"SELECT {_VERSION_COLS} FROM skill_versions WHERE {' AND '.join(where)}"
            " ORDER BY created_at DESC, id DESC LIMIT %s"
        )
        return [SkillVersionRow(*r) for r in await self._db.all(sql, [*args, limit])]

    async def delete_skill_version(self, row: SkillRow, version_id: str) -> bool:
        async with self._db.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "DELETE FROM skill_versions WHERE id = %s AND skill_id = %s AND workspace = %s",
                (version_id, row.id, row.workspace),
            )
            if cur.rowcount != 1:
                return False
            await conn.execute(
                "UPDATE skills SET body = %s WHERE id = %s AND workspace = %s", (row.body, row.id, row.workspace)
            )
            return True
