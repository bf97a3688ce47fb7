"""Routes: deployments and their runs (part 2 §5.4; SDK `resources/beta/deployments.py`, `deployment_runs.py`)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response

from ... import wire
from .._deps import Runtime_, Workspace, time_param
from .._responses import ERROR_RESPONSES, json_response

router = APIRouter(prefix="/v1", tags=["deployments"])

Page = Annotated[str | None, Query(description="Opaque cursor: a previous page's `next_page`")]
_RFC3339 = "RFC 3339"


@router.post("/deployments", response_model=wire.Deployment, responses=ERROR_RESPONSES)
async def create_deployment(params: wire.DeploymentCreateParams, ws: Workspace, rt: Runtime_) -> Response:
    """With a `schedule` (5-field cron in an IANA time zone) it fires on its own; without, only `run` fires it."""
    return json_response(await rt.deployments.create(ws, params))


@router.get("/deployments", response_model=wire.CursorPage[wire.Deployment], responses=ERROR_RESPONSES)
async def list_deployments(
    request: Request,
    ws: Workspace,
    rt: Runtime_,
    agent_id: str | None = None,
    status: Literal["active", "paused"] | None = None,
    include_archived: bool = False,
    created_at_gte: Annotated[str | None, Query(alias="created_at[gte]", description=_RFC3339)] = None,
    created_at_lte: Annotated[str | None, Query(alias="created_at[lte]", description=_RFC3339)] = None,
    limit: Annotated[int | None, Query(description="1-100 (default 20)")] = None,
    page: Page = None,
) -> Response:
    """Oldest first; archived ones only with `include_archived` (not combinable with `status`)."""
    return json_response(
        await rt.deployments.list(
            ws,
            limit=limit,
            page=page,
            agent_id=agent_id,
            status=status,
            include_archived=include_archived,
            created_gte=time_param(request, "created_at[gte]"),
            created_lte=time_param(request, "created_at[lte]"),
        )
    )


@router.get("/deployments/{deployment_id}", response_model=wire.Deployment, responses=ERROR_RESPONSES)
async def get_deployment(deployment_id: str, ws: Workspace, rt: Runtime_) -> Response:
    return json_response(await rt.deployments.get(ws, deployment_id))


@router.post("/deployments/{deployment_id}", response_model=wire.Deployment, responses=ERROR_RESPONSES)
async def update_deployment(
    deployment_id: str, params: wire.DeploymentUpdateParams, ws: Workspace, rt: Runtime_
) -> Response:
    """Omitted fields are kept; `schedule: null` makes it manual-only."""
    return json_response(await rt.deployments.update(ws, deployment_id, params))


@router.post("/deployments/{deployment_id}/pause", response_model=wire.Deployment, responses=ERROR_RESPONSES)
async def pause_deployment(deployment_id: str, ws: Workspace, rt: Runtime_) -> Response:
    return json_response(await rt.deployments.pause(ws, deployment_id))


@router.post("/deployments/{deployment_id}/unpause", response_model=wire.Deployment, responses=ERROR_RESPONSES)
async def unpause_deployment(deployment_id: str, ws: Workspace, rt: Runtime_) -> Response:
    """Fires missed while paused are not made up: the next fire is the schedule's next after now."""
    return json_response(await rt.deployments.unpause(ws, deployment_id))


@router.post("/deployments/{deployment_id}/archive", response_model=wire.Deployment, responses=ERROR_RESPONSES)
async def archive_deployment(deployment_id: str, ws: Workspace, rt: Runtime_) -> Response:
    return json_response(await rt.deployments.archive(ws, deployment_id))


@router.post("/deployments/{deployment_id}/run", response_model=wire.DeploymentRun, responses=ERROR_RESPONSES)
async def run_deployment(deployment_id: str, ws: Workspace, rt: Runtime_) -> Response:
    """A manual run, now; the answer records its session, or why it could not start."""
    return json_response(await rt.deployments.run_now(ws, deployment_id))


@router.get("/deployment_runs", response_model=wire.CursorPage[wire.DeploymentRun], responses=ERROR_RESPONSES)
async def list_deployment_runs(
    request: Request,
    ws: Workspace,
    rt: Runtime_,
    deployment_id: str | None = None,
    has_error: bool | None = None,
    trigger_type: Literal["schedule", "manual"] | None = None,
    created_at_gt: Annotated[str | None, Query(alias="created_at[gt]", description=_RFC3339)] = None,
    created_at_gte: Annotated[str | None, Query(alias="created_at[gte]", description=_RFC3339)] = None,
    created_at_lt: Annotated[str | None, Query(alias="created_at[lt]", description=_RFC3339)] = None,
    created_at_lte: Annotated[str | None, Query(alias="created_at[lte]", description=_RFC3339)] = None,
    limit: Annotated[int | None, Query(description="1-1000 (default 20)")] = None,
    page: Page = None,
) -> Response:
    """Newest first."""
    created = {op: time_param(request, f"created_at[{op}]") for op in ("gt", "gte", "lt", "lte")}
    return json_response(
        await rt.deployments.list_runs(
            ws,
            limit=limit,
            page=page,
            deployment_id=deployment_id,
            has_error=has_error,
            trigger_type=trigger_type,
            created=created,
        )
    )


@router.get("/deployment_runs/{run_id}", response_model=wire.DeploymentRun, responses=ERROR_RESPONSES)
async def get_deployment_run(run_id: str, ws: Workspace, rt: Runtime_) -> Response:
    return json_response(await rt.deployments.get_run(ws, run_id))
