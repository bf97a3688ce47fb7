"""Routes: environments (spec §3.1). Where a session's tools run; names are unique per workspace (409)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from ... import wire
from .._deps import Runtime_, Workspace
from .._responses import ERROR_RESPONSES, json_response

router = APIRouter(prefix="/v1", tags=["environments"])

Limit = Annotated[int | None, Query(description="Page size (default 20); out of range is a 400")]
Page = Annotated[str | None, Query(description="Opaque cursor: a previous page's `next_page`")]


@router.post("/environments", response_model=wire.Environment, responses=ERROR_RESPONSES)
async def create_environment(params: wire.EnvironmentCreateParams, ws: Workspace, rt: Runtime_) -> Response:
    """Create an environment; an omitted `config` is cloud with unrestricted networking and no packages."""
    return json_response(await rt.create_environment(ws, params))


@router.get("/environments", response_model=wire.CursorPage[wire.Environment], responses=ERROR_RESPONSES)
async def list_environments(
    ws: Workspace, rt: Runtime_, include_archived: bool = False, limit: Limit = None, page: Page = None
) -> Response:
    """Oldest first, archived environments only on request."""
    return json_response(await rt.list_environments(ws, limit=limit, page=page, include_archived=include_archived))


@router.get("/environments/{environment_id}", response_model=wire.Environment, responses=ERROR_RESPONSES)
async def get_environment(environment_id: str, ws: Workspace, rt: Runtime_) -> Response:
    """One environment of the caller's workspace (another workspace's id is a 404)."""
    return json_response(await rt.get_environment(ws, environment_id))


@router.post("/environments/{environment_id}", response_model=wire.Environment, responses=ERROR_RESPONSES)
async def update_environment(
    environment_id: str, params: wire.EnvironmentUpdateParams, ws: Workspace, rt: Runtime_
) -> Response:
    """Patch semantics (omitted preserves, `null` clears, `metadata` merges key-wise), which is why the body is
    validated straight into the params model: `model_fields_set` keeps what was sent."""
    return json_response(await rt.update_environment(ws, environment_id, params))


@router.post("/environments/{environment_id}/archive", response_model=wire.Environment, responses=ERROR_RESPONSES)
async def archive_environment(environment_id: str, ws: Workspace, rt: Runtime_) -> Response:
    """Read-only from now on; new sessions may not use it. No body is read (none or `{}`)."""
    return json_response(await rt.archive_environment(ws, environment_id))


@router.delete("/environments/{environment_id}", response_model=wire.Deleted, responses=ERROR_RESPONSES)
async def delete_environment(environment_id: str, ws: Workspace, rt: Runtime_) -> Response:
    """`{"id","type":"environment_deleted"}` as JSON, never a 204: the SDK parses the answer into a model."""
    return json_response(await rt.delete_environment(ws, environment_id))
