"""Deployments' storage contract: deployments, and the runs their schedules (or callers) fire.

`Store.deployments` is a `DeploymentStore`. Promises every backend keeps, checked by
tests/runtime/store/test_contract_deployments.py:
- `fire` is compare-and-set on `next_run_at`: of any number of schedulers (nodes, restarts) that saw the same due
  time, one moves it on and records the run; the others write nothing. A run is recorded at most once per
  (deployment, scheduled time);
- a run is recorded `pending` before its session is started, and `claim_runs` hands a pending run to one caller
  until `claimed_until`, so a run whose node died before finishing it is finished by another (or after restart).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Protocol

from ._webhooks import OutboxEvent


@dataclass(frozen=True, slots=True)
class DeploymentRow:
    workspace: str
    id: str
    created_at: str
    archived_at: str | None
    status: str
    agent_id: str
    next_run_at: str | None
    """The schedule's next fire (UTC, RFC 3339); null when nothing is scheduled (paused, archived, manual-only)."""
    body: str


@dataclass(frozen=True, slots=True)
class RunRow:
    workspace: str
    id: str
    deployment_id: str
    created_at: str
    trigger_type: str
    scheduled_at: str | None
    state: str
    """`pending` until its session was started (or failed to), then `done`."""
    has_error: int
    claimed_until: str | None
    body: str


DEPLOYMENT_COLUMNS = ", ".join(f.name for f in fields(DeploymentRow))
RUN_COLUMNS = ", ".join(f.name for f in fields(RunRow))


def values(row: DeploymentRow | RunRow) -> tuple[Any, ...]:
    return tuple(getattr(row, f.name) for f in fields(row))


@dataclass(frozen=True, slots=True)
class DeploymentQuery:
    limit: int
    after: tuple[str, str] | None = None
    include_archived: bool = False
    agent_id: str | None = None
    status: str | None = None
    created_gte: str | None = None
    created_lte: str | None = None


@dataclass(frozen=True, slots=True)
class RunQuery:
    limit: int
    after: tuple[str, str] | None = None
    """Newest first: strictly before this (created_at, id)."""
    deployment_id: str | None = None
    has_error: bool | None = None
    trigger_type: str | None = None
    created_gt: str | None = None
    created_gte: str | None = None
    created_lt: str | None = None
    created_lte: str | None = None


def deployment_filter(workspace: str, query: DeploymentQuery, mark: str) -> tuple[str, list[Any]]:
    """WHERE … ORDER BY … LIMIT for a deployments page (oldest first), with `mark` as the placeholder."""
    where, args = [f"workspace = {mark}"], list[Any]([workspace])
    if not query.include_archived:
        where.append("archived_at IS NULL")
    for column, op, value in (
        ("agent_id", "=", query.agent_id),
        ("status", "=", query.status),
        ("created_at", ">=", query.created_gte),
        ("created_at", "<=", query.created_lte),
    ):
        if value is not None:
            where.append(f"{column} {op} {mark}")
            args.append(value)
    if query.after is not None:
        where.append(f"(created_at, id) > ({mark}, {mark})")
        args += list(query.after)
    args.append(query.limit)
    return f"WHERE {' AND '.join(where)} ORDER BY created_at, id LIMIT {mark}", args


def run_filter(workspace: str, query: RunQuery, mark: str) -> tuple[str, list[Any]]:
    """WHERE … ORDER BY … LIMIT for a runs page (newest first)."""
    where, args = [f"workspace = {mark}"], list[Any]([workspace])
    for column, op, value in (
        ("deployment_id", "=", query.deployment_id),
        ("trigger_type", "=", query.trigger_type),
        ("created_at", ">", query.created_gt),
        ("created_at", ">=", query.created_gte),
        ("created_at", "<", query.created_lt),
        ("created_at", "<=", query.created_lte),
    ):
        if value is not None:
            where.append(f"{column} {op} {mark}")
            args.append(value)
    if query.has_error is not None:
        where.append(f"has_error = {mark}")
        args.append(int(query.has_error))
    if query.after is not None:
        where.append(f"(created_at, id) < ({mark}, {mark})")
        args += list(query.after)
    args.append(query.limit)
    return f"WHERE {' AND '.join(where)} ORDER BY created_at DESC, id DESC LIMIT {mark}", args


class DeploymentStore(Protocol):
    async def insert_deployment(self, row: DeploymentRow, *, webhooks: tuple[OutboxEvent, ...] = ()) -> None: ...
    async def get_deployment(self, workspace: str, deployment_id: str) -> DeploymentRow | None: ...
    async def list_deployments(self, workspace: str, query: DeploymentQuery) -> list[DeploymentRow]: ...
    async def update_deployment(self, row: DeploymentRow, *, webhooks: tuple[OutboxEvent, ...] = ()) -> bool:
        """Replace the row; False when it is gone."""
        ...

    async def due_deployments(self, now: str, *, limit: int) -> list[DeploymentRow]:
        """Active, unarchived deployments whose `next_run_at` is at or before `now`, earliest first."""
        ...

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
        """If the deployment is still active and due at `expected_next`: move `next_run_at` to `new_next`, store
        `body`, and record `run` (pending) unless a run for its scheduled time exists. True when this call
        recorded the run; only then are the outbox rows of `webhooks` written, in the same transaction."""
        ...

    async def insert_run(self, run: RunRow) -> None: ...
    async def claim_runs(self, now: str, *, claimed_until: str, limit: int) -> list[RunRow]:
        """Pending runs not claimed past `now`, oldest first, each claimed until `claimed_until`."""
        ...

    async def finish_run(self, run: RunRow, *, webhooks: tuple[OutboxEvent, ...] = ()) -> None:
        """Store the run as `done` with its final body (session id or error)."""
        ...

    async def get_run(self, workspace: str, run_id: str) -> RunRow | None: ...
    async def list_runs(self, workspace: str, query: RunQuery) -> list[RunRow]: ...
