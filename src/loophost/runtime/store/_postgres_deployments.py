"""`PostgresDeploymentStore`: deployments and their runs on PostgreSQL; each write is one statement (atomic), its
outbox rows a CTE of it.

`fire` is one `UPDATE … WHERE next_run_at = <expected>` feeding the run's `INSERT`: READ COMMITTED re-checks the
condition on the row version it waited for, so of several nodes firing the same due time one matches and the
others match nothing. Pending runs are claimed with `FOR UPDATE SKIP LOCKED`.
"""

from __future__ import annotations

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
from ._postgres_db import Database
from ._postgres_webhooks import outbox_part
from ._webhooks import OutboxEvent

_RUN_NAMES = [c.strip() for c in RUN_COLUMNS.split(",")]
_DEPLOYMENT_NAMES = [c.strip() for c in DEPLOYMENT_COLUMNS.split(",")]


def _deployment(r: Sequence[Any]) -> DeploymentRow:
    workspace, deployment_id, created_at, archived_at, status, agent_id, next_run_at, body = r
    return DeploymentRow(workspace, deployment_id, created_at, archived_at, status, agent_id, next_run_at, body)


def _run(r: Sequence[Any]) -> RunRow:
    workspace, run_id, deployment_id, created_at, trigger, scheduled_at, state, has_error, claimed, body = r
    return RunRow(workspace, run_id, deployment_id, created_at, trigger, scheduled_at, state, has_error, claimed, body)


def _gated(write: str, params: dict[str, Any], webhooks: tuple[OutboxEvent, ...]) -> tuple[str, dict[str, Any]]:
    """`write` (a statement `RETURNING` something) and the outbox rows of `webhooks` when it touched a row."""
    if not webhooks:
        return f"WITH g AS ({write}) SELECT 1 FROM g", params
    outbox, outbox_params = outbox_part(webhooks, gate="g")
    return f"WITH g AS ({write}), w AS ({outbox}) SELECT 1 FROM g", {**params, **outbox_params}


class PostgresDeploymentStore:
    """See `DeploymentStore`."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def insert_deployment(self, row: DeploymentRow, *, webhooks: tuple[OutboxEvent, ...] = ()) -> None:
        params = dict(zip(_DEPLOYMENT_NAMES, values(row), strict=True))
        marks = ", ".join(f"%({n})s" for n in _DEPLOYMENT_NAMES)
        sql, args = _gated(
            f"INSERT INTO deployments ({DEPLOYMENT_COLUMNS}) VALUES ({marks}) RETURNING id", params, webhooks
        )
        await self._db.store(sql, args)

    async def get_deployment(self, workspace: str, deployment_id: str) -> DeploymentRow | None:
        r = await self._db.one(
            f"SELECT {DEPLOYMENT_COLUMNS} FROM deployments WHERE id = %s AND workspace = %s", (deployment_id, workspace)
        )
        return _deployment(r) if r else None

    async def list_deployments(self, workspace: str, query: DeploymentQuery) -> list[DeploymentRow]:
        tail, args = deployment_filter(workspace, query, "%s")
        return [
            _deployment(r) for r in await self._db.all(f"SELECT {DEPLOYMENT_COLUMNS} FROM deployments {tail}", args)
        ]

    async def update_deployment(self, row: DeploymentRow, *, webhooks: tuple[OutboxEvent, ...] = ()) -> bool:
        params = dict(zip(_DEPLOYMENT_NAMES, values(row), strict=True))
        sql, args = _gated(
            "UPDATE deployments SET archived_at = %(archived_at)s, status = %(status)s, agent_id = %(agent_id)s,"
            " next_run_at = %(next_run_at)s, body = %(body)s WHERE id = %(id)s AND workspace = %(workspace)s"
            " RETURNING id",
            params,
            webhooks,
        )
        r = await self._db.one(sql, args)
        return r is not None

    async def due_deployments(self, now: str, *, limit: int) -> list[DeploymentRow]:
        sql = (
            f"SELECT {DEPLOYMENT_COLUMNS} FROM deployments WHERE next_run_at IS NOT NULL AND next_run_at <= %s"
            " AND status = 'active' AND archived_at IS NULL ORDER BY next_run_at LIMIT %s"
        )
        return [_deployment(r) for r in await self._db.all(sql, (now, limit))]

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
        params: dict[str, Any] = dict(zip(_RUN_NAMES, values(run), strict=True))
        params.update({"did": deployment_id, "expected": expected_next, "new_next": new_next, "dbody": body})
        selected = ", ".join(f"%({n})s" for n in _RUN_NAMES)
        outbox = ""
        if webhooks:  # written only when the run was recorded (gated on `r`)
            outbox_sql, outbox_params = outbox_part(webhooks, gate="r")
            outbox = f", w AS ({outbox_sql})"
            params.update(outbox_params)
        r = await self._db.one(
            "WITH m AS (UPDATE deployments SET next_run_at = %(new_next)s, body = %(dbody)s"
            " WHERE id = %(did)s AND next_run_at = %(expected)s AND status = 'active' AND archived_at IS NULL"
            " RETURNING id),"
            f" r AS (INSERT INTO deployment_runs ({RUN_COLUMNS}) SELECT {selected} FROM m"
            f" ON CONFLICT DO NOTHING RETURNING id){outbox}"
            " SELECT count(*) FROM r",
            params,
        )
        return r is not None and int(r[0]) == 1

    async def insert_run(self, run: RunRow) -> None:
        marks = ", ".join(["%s"] * len(_RUN_NAMES))
        await self._db.store(f"INSERT INTO deployment_runs ({RUN_COLUMNS}) VALUES ({marks})", values(run))

    async def claim_runs(self, now: str, *, claimed_until: str, limit: int) -> list[RunRow]:
        rows = await self._db.all(
            "UPDATE deployment_runs SET claimed_until = %(until)s WHERE id IN (SELECT id FROM deployment_runs"
            " WHERE state = 'pending' AND (claimed_until IS NULL OR claimed_until < %(now)s)"
            " ORDER BY created_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED)"
            f" RETURNING {RUN_COLUMNS}",
            {"until": claimed_until, "now": now, "limit": limit},
        )
        return sorted((_run(r) for r in rows), key=lambda r: (r.created_at, r.id))

    async def finish_run(self, run: RunRow, *, webhooks: tuple[OutboxEvent, ...] = ()) -> None:
        sql, args = _gated(
            "UPDATE deployment_runs SET state = 'done', has_error = %(has_error)s, claimed_until = NULL,"
            " body = %(body)s WHERE id = %(id)s RETURNING id",
            {"has_error": run.has_error, "body": run.body, "id": run.id},
            webhooks,
        )
        await self._db.one(sql, args)

    async def get_run(self, workspace: str, run_id: str) -> RunRow | None:
        r = await self._db.one(
            f"SELECT {RUN_COLUMNS} FROM deployment_runs WHERE id = %s AND workspace = %s", (run_id, workspace)
        )
        return _run(r) if r else None

    async def list_runs(self, workspace: str, query: RunQuery) -> list[RunRow]:
        tail, args = run_filter(workspace, query, "%s")
        return [_run(r) for r in await self._db.all(f"SELECT {RUN_COLUMNS} FROM deployment_runs {tail}", args)]
