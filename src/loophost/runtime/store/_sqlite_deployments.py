"""`SQLiteDeploymentStore`: deployments and their runs on the SQLite store's engine (one writer: every
compare-and-set is exact)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from ._deployments import (
    DEPLOYMENT_COLUMNS,
    RUN_COLUMNS,
    DeploymentQuery,
    DeploymentRow,
    RunQuery,
    RunRow,
    deployment_filter,
    run_filter,
    values,
)
from ._records import StoredEvent
from ._sqlite_engine import SQLiteEngine
from ._sqlite_webhooks import write_outbox
from ._webhooks import OutboxEvent

_DEPLOYMENT_INSERT = f"INSERT INTO deployments ({DEPLOYMENT_COLUMNS}) VALUES ({','.join('?' * 8)})"
_RUN_INSERT = f"INSERT INTO deployment_runs ({RUN_COLUMNS}) VALUES ({','.join('?' * 10)}) ON CONFLICT DO NOTHING"


def _deployment(r: Sequence[Any]) -> DeploymentRow:
    workspace, deployment_id, created_at, archived_at, status, agent_id, next_run_at, body = r
    return DeploymentRow(workspace, deployment_id, created_at, archived_at, status, agent_id, next_run_at, body)


def _run(r: Sequence[Any]) -> RunRow:
    workspace, run_id, deployment_id, created_at, trigger, scheduled_at, state, has_error, claimed, body = r
    return RunRow(workspace, run_id, deployment_id, created_at, trigger, scheduled_at, state, has_error, claimed, body)


class SQLiteDeploymentStore:
    """See `DeploymentStore`."""

    def __init__(self, engine: SQLiteEngine) -> None:
        self._engine = engine

    async def _all(self, sql: str, args: Sequence[Any]) -> list[tuple[Any, ...]]:
        def fn(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
            return list(conn.execute(sql, args).fetchall())

        return await self._engine.read(fn)

    async def insert_deployment(self, row: DeploymentRow, *, webhooks: tuple[OutboxEvent, ...] = ()) -> None:
        def fn(conn: sqlite3.Connection) -> tuple[None, Sequence[StoredEvent]]:
            conn.execute(_DEPLOYMENT_INSERT, values(row))
            write_outbox(conn, webhooks)
            return None, ()

        await self._engine.write(fn)

    async def get_deployment(self, workspace: str, deployment_id: str) -> DeploymentRow | None:
        rows = await self._all(
            f"SELECT {DEPLOYMENT_COLUMNS} FROM deployments WHERE id = ? AND workspace = ?", (deployment_id, workspace)
        )
        return _deployment(rows[0]) if rows else None

    async def list_deployments(self, workspace: str, query: DeploymentQuery) -> list[DeploymentRow]:
        tail, args = deployment_filter(workspace, query, "?")
        return [_deployment(r) for r in await self._all(f"SELECT {DEPLOYMENT_COLUMNS} FROM deployments {tail}", args)]

    async def update_deployment(self, row: DeploymentRow, *, webhooks: tuple[OutboxEvent, ...] = ()) -> bool:
        def fn(conn: sqlite3.Connection) -> tuple[bool, Sequence[StoredEvent]]:
            cur = conn.execute(
                "UPDATE deployments SET archived_at = ?, status = ?, agent_id = ?, next_run_at = ?, body = ?"
                " WHERE id = ? AND workspace = ?",
                (row.archived_at, row.status, row.agent_id, row.next_run_at, row.body, row.id, row.workspace),
            )
            if cur.rowcount == 1:
                write_outbox(conn, webhooks)
            return cur.rowcount == 1, ()

        return await self._engine.write(fn)

    async def due_deployments(self, now: str, *, limit: int) -> list[DeploymentRow]:
        sql = (
            f"SELECT {DEPLOYMENT_COLUMNS} FROM deployments WHERE next_run_at IS NOT NULL AND next_run_at <= ?"
            " AND status = 'active' AND archived_at IS NULL ORDER BY next_run_at LIMIT ?"
        )
        return [_deployment(r) for r in await self._all(sql, (now, limit))]

    async def fire(
        self,
        deployment_id: str,
        *,
        expected_next: str,
        new_next: str | None,
        body: str,
        run: RunRow,
        webhooks: tuple[OutboxEvent, ...] = (),
    ) -> bool:
        def fn(conn: sqlite3.Connection) -> tuple[bool, Sequence[StoredEvent]]:
            moved = conn.execute(
                "UPDATE deployments SET next_run_at = ?, body = ? WHERE id = ? AND next_run_at = ?"
                " AND status = 'active' AND archived_at IS NULL",
                (new_next, body, deployment_id, expected_next),
            )
            if moved.rowcount != 1:
                return False, ()
            recorded = conn.execute(_RUN_INSERT, values(run)).rowcount == 1
            if recorded:
                write_outbox(conn, webhooks)
            return recorded, ()

        return await self._engine.write(fn)

    async def insert_run(self, run: RunRow) -> None:
        def fn(conn: sqlite3.Connection) -> tuple[None, Sequence[StoredEvent]]:
            conn.execute(_RUN_INSERT, values(run))
            return None, ()

        await self._engine.write(fn)

    async def claim_runs(self, now: str, *, claimed_until: str, limit: int) -> list[RunRow]:
        def fn(conn: sqlite3.Connection) -> tuple[list[RunRow], Sequence[StoredEvent]]:
            rows = conn.execute(
                "UPDATE deployment_runs SET claimed_until = ? WHERE id IN (SELECT id FROM deployment_runs"
                " WHERE state = 'pending' AND (claimed_until IS NULL OR claimed_until < ?)"
                f" ORDER BY created_at LIMIT ?) RETURNING {RUN_COLUMNS}",
                (claimed_until, now, limit),
            ).fetchall()
            return sorted((_run(r) for r in rows), key=lambda r: (r.created_at, r.id)), ()

        return await self._engine.write(fn)

    async def finish_run(self, run: RunRow, *, webhooks: tuple[OutboxEvent, ...] = ()) -> None:
        def fn(conn: sqlite3.Connection) -> tuple[None, Sequence[StoredEvent]]:
            conn.execute(
                "UPDATE deployment_runs SET state = 'done', has_error = ?, claimed_until = NULL, body = ? WHERE id = ?",
                (run.has_error, run.body, run.id),
            )
            write_outbox(conn, webhooks)
            return None, ()

        await self._engine.write(fn)

    async def get_run(self, workspace: str, run_id: str) -> RunRow | None:
        rows = await self._all(
            f"SELECT {RUN_COLUMNS} FROM deployment_runs WHERE id = ? AND workspace = ?", (run_id, workspace)
        )
        return _run(rows[0]) if rows else None

    async def list_runs(self, workspace: str, query: RunQuery) -> list[RunRow]:
        tail, args = run_filter(workspace, query, "?")
        return [_run(r) for r in await self._all(f"SELECT {RUN_COLUMNS} FROM deployment_runs {tail}", args)]
