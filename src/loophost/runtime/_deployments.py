"""Deployments (`Runtime.deployments`, part 2 §5.4): an agent bound to an environment, initial events, resources,
vaults and a budget, fired on a cron schedule in a time zone or on demand. Each fire is a run record; a run
creates a session (or records why it could not). The scheduler task is `_deployment_runs.py`'s.

Time comes from `clock` (tests move it; no minute-long sleeps). Cron is 5-field POSIX (croniter), evaluated in
the schedule's IANA time zone (zoneinfo), so a 09:00 schedule stays at 09:00 local across DST changes.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from .. import wire
from ._clock import now as wall_clock
from ._clock import rfc3339
from ._cursors import check_limit, cut_page, decode, keyset
from ._errors import Conflict, InvalidRequest, NotFound
from ._ids import new_id
from ._webhook_events import outbox_event
from .store import DeploymentQuery, DeploymentRow, OutboxEvent, RunQuery, RunRow, Store

_MAX_LIST = 100
CLAIM = timedelta(seconds=60)
"""How long a run's claim lasts: far longer than a session start, so only a dead node's runs are taken over."""
_MAX_RUNS = 1000
UPCOMING = 5
_UNSUPPORTED_CRON = re.compile(r"[LW#?@]")

SessionStarter = Callable[[str, wire.SessionCreateParams, str], Awaitable[wire.Session]]
"""(workspace, params, deployment id) -> the started session, which carries the deployment id."""


def check_schedule(schedule: wire.ScheduleParams) -> None:
    """A 5-field POSIX cron expression and a known IANA zone, or a 400 saying which is wrong."""
    fields = schedule.expression.split()
    if len(fields) != 5 or _UNSUPPORTED_CRON.search(schedule.expression) or not croniter.is_valid(schedule.expression):
        raise InvalidRequest(
            f"schedule.expression {schedule.expression!r} is not a 5-field cron expression (minute hour day-of-month"
            " month day-of-week; no seconds, years, L, W, #, ? or @shortcuts)",
            code="invalid_schedule",
        )
    try:
        ZoneInfo(schedule.timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidRequest(
            f"schedule.timezone {schedule.timezone!r} is not an IANA time zone", code="invalid_schedule"
        ) from exc


def fires_after(expression: str, timezone: str, after: datetime, count: int) -> list[datetime]:
    """The next `count` instants (UTC) strictly after `after` at which the cron matches in `timezone`."""
    cron = croniter(expression, after.astimezone(ZoneInfo(timezone)))
    return [cron.get_next(datetime).astimezone(UTC) for _ in range(count)]


def run_error(exc: Exception) -> wire.DeploymentError:
    """The run error type (SDK `…RunErrorObject` union) a failed session start means."""
    message = str(exc)
    resource = getattr(exc, "details", {}).get("resource")
    if isinstance(exc, Conflict) and exc.code == "archived":
        kind = message.split(" ", 1)[0]
        if kind in ("agent", "environment", "vault"):
            return wire.DeploymentError(type=f"{kind}_archived_error", message=message)
    if isinstance(exc, NotFound) and resource in ("environment", "vault", "file", "skill"):
        return wire.DeploymentError(type=f"{resource}_not_found_error", message=message)
    if isinstance(exc, InvalidRequest | Conflict):
        return wire.DeploymentError(type="session_creation_rejected_error", message=message)
    return wire.DeploymentError(type="unknown_error", message=f"{type(exc).__name__}: {message}")


class Deployments:
    """The deployment service. Every call takes the caller's workspace first; other workspaces' ids are not found."""

    def __init__(self, store: Store, *, start_session: SessionStarter, default_page_size: int = 20) -> None:
        self._store = store
        self.start_session = start_session
        self.clock: Callable[[], datetime] = wall_clock
        self._page = default_page_size
        self.on_change: Callable[[], None] | None = None
        """Called when a schedule may have become due sooner (the scheduler re-reads)."""
        self.read_session: Callable[[str, str], Awaitable[wire.Session | None]] | None = None
        """A session of the workspace, or None when it is gone (for `sessions`)."""
        self.on_outbox: Callable[[], None] | None = None
        """Called after a write that committed webhook outbox rows (the runtime wakes the deliverer)."""

    # reading ------------------------------------------------------------------------------------------------
    def view(self, row: DeploymentRow) -> wire.Deployment:
        """The stored document with the schedule's upcoming runs (none once archived)."""
        deployment = wire.Deployment.model_validate_json(row.body)
        if deployment.schedule is not None and deployment.archived_at is None:
            upcoming = fires_after(deployment.schedule.expression, deployment.schedule.timezone, self.clock(), UPCOMING)
            deployment.schedule.upcoming_runs_at = upcoming
        return deployment

    async def _row(self, workspace: str, deployment_id: str) -> DeploymentRow:
        row = await self._store.deployments.get_deployment(workspace, deployment_id)
        if row is None:
            raise NotFound(f"deployment {deployment_id!r} not found", resource="deployment")
        return row

    async def get(self, workspace: str, deployment_id: str) -> wire.Deployment:
        return self.view(await self._row(workspace, deployment_id))

    async def list(
        self,
        workspace: str,
        *,
        limit: int | None = None,
        page: str | None = None,
        agent_id: str | None = None,
        status: str | None = None,
        include_archived: bool = False,
        created_gte: str | None = None,
        created_lte: str | None = None,
    ) -> wire.CursorPage[wire.Deployment]:
        """Oldest first. Time bounds are RFC 3339 UTC strings as the store compares them."""
        if status is not None and include_archived:
            raise InvalidRequest("`status` and `include_archived` cannot be combined", code="invalid_filter")
        size = check_limit(limit, default=self._page, maximum=_MAX_LIST)
        query = DeploymentQuery(
            limit=size + 1,
            after=keyset(decode(page, descending=False)),
            include_archived=include_archived,
            agent_id=agent_id,
            status=status,
            created_gte=created_gte,
            created_lte=created_lte,
        )
        rows = await self._store.deployments.list_deployments(workspace, query)
        rows, next_page = cut_page(rows, size, descending=False)
        return wire.CursorPage[wire.Deployment](data=[self.view(r) for r in rows], next_page=next_page)

    # writing ------------------------------------------------------------------------------------------------
    async def _agent(self, workspace: str, ref: wire.AgentReferenceParams) -> wire.DeploymentAgent:
        row = await self._store.get_agent(workspace, ref.id, ref.version)
        if row is None:
            raise NotFound(f"agent {ref.id!r} not found", resource="agent")
        if row.archived_at is not None:
            raise Conflict(f"agent {ref.id!r} is archived", code="archived")
        return wire.DeploymentAgent(id=ref.id, version=row.version)

    async def _environment(self, workspace: str, environment_id: str) -> None:
        env = await self._store.get_environment(workspace, environment_id)
        if env is None:
            raise NotFound(f"environment {environment_id!r} not found", resource="environment")
        if env.archived_at is not None:
            raise Conflict(f"environment {environment_id!r} is archived", code="archived")

    def _next_run(self, deployment: wire.Deployment) -> str | None:
        schedule = deployment.schedule
        if schedule is None or deployment.status != "active" or deployment.archived_at is not None:
            return None
        return rfc3339(fires_after(schedule.expression, schedule.timezone, self.clock(), 1)[0])

    def _stored(self, workspace: str, deployment: wire.Deployment, created_at: str) -> DeploymentRow:
        stored = deployment.model_copy(deep=True)
        if stored.schedule is not None:
            stored.schedule.upcoming_runs_at = []
        return DeploymentRow(
            workspace=workspace,
            id=deployment.id,
            created_at=created_at,
            archived_at=rfc3339(deployment.archived_at) if deployment.archived_at else None,
            status=deployment.status,
            agent_id=deployment.agent.id,
            next_run_at=self._next_run(deployment),
            body=stored.model_dump_json(by_alias=True, exclude_none=False),
        )

    async def create(self, workspace: str, params: wire.DeploymentCreateParams) -> wire.Deployment:
        if params.schedule is not None:
            check_schedule(params.schedule)
        agent = await self._agent(workspace, params.agent)
        await self._environment(workspace, params.environment_id)
        ts = self.clock()
        deployment = wire.Deployment(
            id=new_id("depl"),
            name=params.name,
            description=params.description,
            agent=agent,
            environment_id=params.environment_id,
            initial_events=[e.model_dump(mode="json", exclude_none=True) for e in params.initial_events],
            resources=[r.model_dump(mode="json", exclude_none=True) for r in params.resources or []],
            vault_ids=list(dict.fromkeys(params.vault_ids or [])),
            budget=params.budget,
            metadata=dict(params.metadata or {}),
            schedule=wire.Schedule(**params.schedule.model_dump(exclude={"type"})) if params.schedule else None,
            created_at=ts,
            updated_at=ts,
        )
        row = self._stored(workspace, deployment, rfc3339(ts))
        await self._store.deployments.insert_deployment(
            row, webhooks=(outbox_event("deployment.created", deployment.id, workspace, at=row.created_at),)
        )
        self._changed()
        return self.view(row)

    async def update(self, workspace: str, deployment_id: str, params: wire.DeploymentUpdateParams) -> wire.Deployment:
        row = await self._row(workspace, deployment_id)
        current = wire.Deployment.model_validate_json(row.body)
        if current.archived_at is not None:
            raise Conflict(f"deployment {deployment_id!r} is archived and read-only", code="archived")
        given = params.model_fields_set
        update: dict[str, Any] = {}
        if params.name is not None:
            update["name"] = params.name
        if "description" in given:
            update["description"] = params.description or None
        if params.agent is not None:
            update["agent"] = await self._agent(workspace, params.agent)
        if params.environment_id is not None:
            await self._environment(workspace, params.environment_id)
            update["environment_id"] = params.environment_id
        if params.initial_events is not None:
            update["initial_events"] = [e.model_dump(mode="json", exclude_none=True) for e in params.initial_events]
        if "schedule" in given:
            if params.schedule is not None:
                check_schedule(params.schedule)
                kept = current.schedule.last_run_at if current.schedule else None
                update["schedule"] = wire.Schedule(**params.schedule.model_dump(exclude={"type"}), last_run_at=kept)
            else:
                update["schedule"] = None
        if "budget" in given:
            update["budget"] = params.budget
        if "resources" in given:
            update["resources"] = [r.model_dump(mode="json", exclude_none=True) for r in params.resources or []]
        if "vault_ids" in given:
            update["vault_ids"] = list(dict.fromkeys(params.vault_ids or []))
        if "metadata" in given:
            try:
                update["metadata"] = wire.patch_metadata(current.metadata, params.metadata)
            except ValueError as exc:
                raise InvalidRequest(str(exc), code="invalid_metadata") from exc
        return await self._save(row, current.model_copy(update=update), "deployment.updated")

    async def _save(self, row: DeploymentRow, deployment: wire.Deployment, event: str) -> wire.Deployment:
        deployment = deployment.model_copy(update={"updated_at": self.clock()})
        changed = self._stored(row.workspace, deployment, row.created_at)
        if changed.next_run_at is not None and row.next_run_at is not None and deployment.schedule is not None:
            current = wire.Deployment.model_validate_json(row.body).schedule
            if current is not None and (current.expression, current.timezone) == (
                deployment.schedule.expression,
                deployment.schedule.timezone,
            ):
                changed = replace(changed, next_run_at=row.next_run_at)  # the same schedule keeps its due fire
        hook = (outbox_event(event, row.id, row.workspace),)
        if not await self._store.deployments.update_deployment(changed, webhooks=hook):
            raise NotFound(f"deployment {row.id!r} not found", resource="deployment")
        self._changed()
        return self.view(changed)

    async def pause(self, workspace: str, deployment_id: str) -> wire.Deployment:
        row = await self._row(workspace, deployment_id)
        current = wire.Deployment.model_validate_json(row.body)
        if current.archived_at is not None:
            raise Conflict(f"deployment {deployment_id!r} is archived", code="archived")
        if current.status == "paused":
            return self.view(row)
        paused = current.model_copy(update={"status": "paused", "paused_reason": wire.PausedReason(type="manual")})
        return await self._save(row, paused, "deployment.paused")

    async def unpause(self, workspace: str, deployment_id: str) -> wire.Deployment:
        row = await self._row(workspace, deployment_id)
        current = wire.Deployment.model_validate_json(row.body)
        if current.archived_at is not None:
            raise Conflict(f"deployment {deployment_id!r} is archived", code="archived")
        if current.status == "active":
            return self.view(row)
        active = current.model_copy(update={"status": "active", "paused_reason": None})
        return await self._save(replace(row, next_run_at=None), active, "deployment.unpaused")

    async def archive(self, workspace: str, deployment_id: str) -> wire.Deployment:
        row = await self._row(workspace, deployment_id)
        current = wire.Deployment.model_validate_json(row.body)
        if current.archived_at is not None:
            raise Conflict(f"deployment {deployment_id!r} is already archived", code="archived")
        return await self._save(row, current.model_copy(update={"archived_at": self.clock()}), "deployment.archived")

    def _changed(self) -> None:
        """A deployment was written (with its webhook event): the scheduler re-reads, the deliverer wakes."""
        if self.on_change is not None:
            self.on_change()
        self.outbox_written()

    def outbox_written(self) -> None:
        """A write committed webhook outbox rows: the deliverer sends them now, not at its next poll."""
        if self.on_outbox is not None:
            self.on_outbox()

    # runs ---------------------------------------------------------------------------------------------------
    async def run_now(self, workspace: str, deployment_id: str) -> wire.DeploymentRun:
        """A manual run, now: its session is started before this returns (the run records it, or the error)."""
        row = await self._row(workspace, deployment_id)
        deployment = wire.Deployment.model_validate_json(row.body)
        if deployment.archived_at is not None:
            raise Conflict(f"deployment {deployment_id!r} is archived", code="archived")
        at = self.clock()
        run = new_run(row, deployment, at, trigger=wire.TriggerContext(type="manual"))
        await self._store.deployments.insert_run(run)
        return await self.execute(run)

    async def execute(self, run: RunRow) -> wire.DeploymentRun:
        """Start the run's session with the deployment as it is now, record the session or the error, and (for a
        scheduled run that failed) pause the deployment with the error as its reason."""
        record = wire.DeploymentRun.model_validate_json(run.body)
        row = await self._store.deployments.get_deployment(run.workspace, run.deployment_id)
        error: wire.DeploymentError | None = None
        if row is None:
            error = wire.DeploymentError(type="unknown_error", message="the deployment no longer exists")
        else:
            deployment = wire.Deployment.model_validate_json(row.body)
            try:
                session = await self.start_session(run.workspace, session_params(deployment), deployment.id)
                record.session_id = session.id
            except (InvalidRequest, NotFound, Conflict) as exc:
                error = run_error(exc)
        record.error = error
        scheduled = run.trigger_type == "schedule"
        hooks: tuple[OutboxEvent, ...] = ()
        if scheduled:  # `deployment_run.started` was written with the run (`DeploymentScheduler.run_once`)
            name = "deployment_run.failed" if error else "deployment_run.succeeded"
            hooks = (outbox_event(name, record.id, run.workspace, deployment_id=run.deployment_id),)
        done = replace(run, state="done", has_error=int(error is not None), body=record.model_dump_json(by_alias=True))
        await self._store.deployments.finish_run(done, webhooks=hooks)
        if hooks:
            self.outbox_written()
        if scheduled and error is not None and row is not None:
            await self._pause_for(row, error)
        return record

    async def _pause_for(self, row: DeploymentRow, error: wire.DeploymentError) -> None:
        current = await self._store.deployments.get_deployment(row.workspace, row.id)
        if current is None:
            return
        deployment = wire.Deployment.model_validate_json(current.body)
        if deployment.status == "paused" or deployment.archived_at is not None:
            return
        reason = wire.PausedReason(type="error", error=error)
        await self._save(
            current, deployment.model_copy(update={"status": "paused", "paused_reason": reason}), "deployment.paused"
        )

    async def sessions(
        self, workspace: str, deployment_id: str, *, limit: int, include_archived: bool = False
    ) -> builtins.list[wire.Session]:
        """The newest `limit` sessions the deployment's runs started and that still exist (one page: the
        filter `sessions.list(deployment_id=)` serves)."""
        if self.read_session is None:
            return []
        found: builtins.list[wire.Session] = []
        page: str | None = None
        while len(found) < limit:
            runs = await self.list_runs(workspace, deployment_id=deployment_id, has_error=False, limit=100, page=page)
            for run in runs.data:
                session = await self.read_session(workspace, run.session_id or "")
                if session is not None and (include_archived or session.archived_at is None):
                    found.append(session)
            page = runs.next_page
            if not page:
                break
        return found[:limit]

    async def get_run(self, workspace: str, run_id: str) -> wire.DeploymentRun:
        run = await self._store.deployments.get_run(workspace, run_id)
        if run is None:
            raise NotFound(f"deployment run {run_id!r} not found", resource="deployment_run")
        return wire.DeploymentRun.model_validate_json(run.body)

    async def list_runs(
        self,
        workspace: str,
        *,
        limit: int | None = None,
        page: str | None = None,
        deployment_id: str | None = None,
        has_error: bool | None = None,
        trigger_type: str | None = None,
        created: dict[str, str | None] | None = None,
    ) -> wire.CursorPage[wire.DeploymentRun]:
        """Newest first. `created`: RFC 3339 UTC bounds keyed `gt`, `gte`, `lt`, `lte`."""
        size = check_limit(limit, default=self._page, maximum=_MAX_RUNS)
        bounds = created or {}
        query = RunQuery(
            limit=size + 1,
            after=keyset(decode(page, descending=True)),
            deployment_id=deployment_id,
            has_error=has_error,
            trigger_type=trigger_type,
            created_gt=bounds.get("gt"),
            created_gte=bounds.get("gte"),
            created_lt=bounds.get("lt"),
            created_lte=bounds.get("lte"),
        )
        rows = await self._store.deployments.list_runs(workspace, query)
        rows, next_page = cut_page(rows, size, descending=True)
        return wire.CursorPage[wire.DeploymentRun](
            data=[wire.DeploymentRun.model_validate_json(r.body) for r in rows], next_page=next_page
        )


def new_run(row: DeploymentRow, deployment: wire.Deployment, at: datetime, *, trigger: wire.TriggerContext) -> RunRow:
    """A pending run record, claimed by its creator for a minute (another node finishes it if this one dies)."""
    record = wire.DeploymentRun(
        id=new_id("drun"), deployment_id=row.id, agent=deployment.agent, trigger_context=trigger, created_at=at
    )
    return RunRow(
        workspace=row.workspace,
        id=record.id,
        deployment_id=row.id,
        created_at=rfc3339(at),
        trigger_type=trigger.type,
        scheduled_at=rfc3339(trigger.scheduled_at) if trigger.scheduled_at else None,
        state="pending",
        has_error=0,
        claimed_until=rfc3339(at + CLAIM),
        body=record.model_dump_json(by_alias=True),
    )


def session_params(deployment: wire.Deployment) -> wire.SessionCreateParams:
    return wire.SessionCreateParams.model_validate(
        {
            "agent": {"type": "agent", "id": deployment.agent.id, "version": deployment.agent.version},
            "environment_id": deployment.environment_id,
            "initial_events": deployment.initial_events,
            "resources": deployment.resources or None,
            "vault_ids": deployment.vault_ids or None,
            "budget": deployment.budget.model_dump(mode="json") if deployment.budget else None,
        }
    )
