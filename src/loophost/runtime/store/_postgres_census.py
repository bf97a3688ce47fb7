"""`PostgresCensus`: the grouped counts of `Census` on PostgreSQL (the whole cluster's, whichever node asks)."""

from __future__ import annotations

from ._census import Counts
from ._postgres_db import Database
from ._sqlite_census import BACKLOG, QUEUED, SESSIONS, WORK


class PostgresCensus:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def counts(self) -> Counts:
        sessions = await self._db.all(SESSIONS)
        work = await self._db.all(WORK)
        queued = await self._db.all(QUEUED)
        ((backlog,),) = await self._db.all(BACKLOG)
        return Counts(
            {str(k): int(n) for k, n in sessions},
            {str(k): int(n) for k, n in work},
            {str(k): int(n) for k, n in queued},
            int(backlog),
        )
