"""Routes: agents (spec §2). Versioned definitions: every effective update is a new immutable version."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from ... import wire
from .._deps import Runtime_, Workspace, time_param
from .._responses import ERROR_RESPONSES, json_response

router = APIRouter(prefix="/v1", tags=["agents"])

Limit = Annotated[int | None, Query(description="Page size (default 20); out of range is a 400")]
Page = Annotated[str | None, Query(description="Opaque cursor: a previous page's `next_page`")]
MAX_VERSION = 2**63 - 1
"""The largest integer the store can compare; a bigger `version` is malformed (400), not a store crash."""


@router.post("/agents", response_model=wire.Agent, responses=ERROR_RESPONSES)
async def create_agent(params: wire.AgentCreateParams, ws: Workspace, rt: Runtime_) -> Response:
    """Create an agent at version 1; the answer is fully resolved (model object, toolset configs)."""
    return json_response(await rt.create_agent(ws, params))


@router.get("/agents", response_model=wire.CursorPage[wire.Agent], responses=ERROR_RESPONSES)
async def list_agents(
    request: Request,
    ws: Workspace,
    rt: Runtime_,
    created_at_gte: Annotated[
        str | None, Query(alias="created_at[gte]", description="RFC 3339; created at or after (inclusive)")
    ] = None,
    created_at_lte: Annotated[
        str | None, Query(alias="created_at[lte]", description="RFC 3339; created at or before (inclusive)")
    ] = None,
    include_archived: bool = False,
    limit: Limit = None,
    page: Page = None,
) -> Response:
    """Oldest first, archived agents only on request. The bracketed time filters are declared for OpenAPI and
    parsed by `time_param`, which normalises them to the runtime's comparable form (or answers 400)."""
    result = await rt.list_agents(
        ws,
        limit=limit,
        page=page,
        include_archived=include_archived,
        created_at_gte=time_param(request, "created_at[gte]"),
        created_at_lte=time_param(request, "created_at[lte]"),
    )
    return json_response(result)


@router.get("/agents/{agent_id}", response_model=wire.Agent, responses=ERROR_RESPONSES)
async def get_agent(
    agent_id: str,
    ws: Workspace,
    rt: Runtime_,
    version: Annotated[
        int | None, Query(le=MAX_VERSION, description="A historical version (>= 1); omitted means latest")
    ] = None,
) -> Response:
    """The latest version, or the snapshot `version` asked for; `archived_at` is agent-level either way."""
    return json_response(await rt.get_agent(ws, agent_id, version))


@router.post("/agents/{agent_id}", response_model=wire.Agent, responses=ERROR_RESPONSES)
async def update_agent(agent_id: str, params: wire.AgentUpdateParams, ws: Workspace, rt: Runtime_) -> Response:
    """Patch semantics: the body is validated straight into the params model, so `model_fields_set` still tells
    an omitted field (preserve) from an explicit `null` (clear). `version` is an optimistic lock (409)."""
    return json_response(await rt.update_agent(ws, agent_id, params))


@router.post("/agents/{agent_id}/archive", response_model=wire.Agent, responses=ERROR_RESPONSES)
async def archive_agent(agent_id: str, ws: Workspace, rt: Runtime_) -> Response:
    """Terminal: the agent becomes read-only and new sessions may not use it. No body is read (none or `{}`)."""
    return json_response(await rt.archive_agent(ws, agent_id))


@router.get("/agents/{agent_id}/versions", response_model=wire.CursorPage[wire.Agent], responses=ERROR_RESPONSES)
async def list_agent_versions(
    agent_id: str, ws: Workspace, rt: Runtime_, limit: Limit = None, page: Page = None
) -> Response:
    """One item per stored version, newest first."""
    return json_response(await rt.list_agent_versions(ws, agent_id, limit=limit, page=page))
