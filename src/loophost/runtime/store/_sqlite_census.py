"""`SQLiteCensus`: the grouped counts of `Census`, read on the SQLite store's engine (never through its writer)."""

from __future__ import annotations

import sqlite3

from ._census import Counts
from ._sqlite_engine import SQLiteEngine

SESSIONS = "SELECT status, COUNT(*) FROM sessions GROUP BY status"
WORK = "SELECT state, COUNT(*) FROM work_items WHERE state <> 'stopped' GROUP BY state"
QUEUED = "SELECT environment_id, COUNT(*) FROM work_items WHERE state = 'queued' GROUP BY environment_id"
BACKLOG = "SELECT COUNT(*) FROM webhook_deliveries WHERE state = 'pending'"


class SQLiteCensus:
    def __init__(self, engine: SQLiteEngine) -> None:
        self._engine = engine

    async def counts(self) -> Counts:
        def fn(conn: sqlite3.Connection) -> Counts:
            return Counts(
                {str(k): int(n) for k, n in conn.execute(SESSIONS)},
                {str(k): int(n) for k, n in conn.execute(WORK)},
                {str(k): int(n) for k, n in conn.execute(QUEUED)},
                int(conn.execute(BACKLOG).fetchone()[0]),
            )

        return await self._engine.read(fn)
