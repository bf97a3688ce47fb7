"""Routes: memory stores, their memories and memory versions (spec part 2 §5.1).

The SDK sends the `agent-memory-2026-07-22` beta (or `managed-agents-2026-04-01`); like every loophost route these
accept any beta header, so both work. `view` is always a query parameter. Who made a change is recorded on its
version: an API key as an `api_actor` (the key's id, never the key), a self-hosted worker's sessions token as the
`session_actor` of its session.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response

from ... import wire
from .._deps import Runtime_, Workspace, time_param
from .._responses import ERROR_RESPONSES, json_response
from .._worker_auth import bearer, granted

router = APIRouter(prefix="/v1", tags=["memory_stores"])

Limit = Annotated[int | None, Query(description="Page size, 1-100 (default 20; at most 20 with view=full)")]
Page = Annotated[str | None, Query(description="Opaque cursor: a previous page's `next_page`")]
View = Annotated[Literal["basic", "full"] | None, Query(description="Whether memories carry their content")]
_STORE = "/memory_stores/{memory_store_id}"
_MEMORY = _STORE + "/memories/{memory_id}"
_VERSION = _STORE + "/memory_versions/{memory_version_id}"


def api_key_id(credential: str) -> str:
    """A stable id for an API key that reveals nothing of it."""
    return "apikey_" + hashlib.sha256(credential.encode()).hexdigest()[:24]


def caller_actor(request: Request) -> wire.Actor:
    credential = bearer(request.headers)
    grant = granted(credential)
    if grant is not None and grant.caller.session_id is not None:
        return wire.SessionActor(session_id=grant.caller.session_id)
    return wire.ApiActor(api_key_id=api_key_id(credential))


# stores ----------------------------------------------------------------------------------------------------------
@router.post("/memory_stores", response_model=wire.MemoryStore, responses=ERROR_RESPONSES)
async def create_memory_store(params: wire.MemoryStoreCreateParams, ws: Workspace, rt: Runtime_) -> Response:
    """A named store of text memories; attach it to sessions as a `memory_store` resource."""
    return json_response(await rt.memory.create_store(ws, params))


@router.get("/memory_stores", response_model=wire.CursorPage[wire.MemoryStore], responses=ERROR_RESPONSES)
async def list_memory_stores(
    request: Request,
    ws: Workspace,
    rt: Runtime_,
    include_archived: bool = False,
    limit: Limit = None,
    page: Page = None,
    created_at_gte: Annotated[str | None, Query(alias="created_at[gte]", description="RFC 3339")] = None,
    created_at_lte: Annotated[str | None, Query(alias="created_at[lte]", description="RFC 3339")] = None,
) -> Response:
    """Oldest first; archived stores only on request."""
    return json_response(
        await rt.memory.list_stores(
            ws,
            limit=limit,
            page=page,
            include_archived=include_archived,
            created_at_gte=time_param(request, "created_at[gte]"),
            created_at_lte=time_param(request, "created_at[lte]"),
        )
    )


@router.get(_STORE, response_model=wire.MemoryStore, responses=ERROR_RESPONSES)
async def get_memory_store(memory_store_id: str, ws: Workspace, rt: Runtime_) -> Response:
    return json_response(await rt.memory.get_store(ws, memory_store_id))


@router.post(_STORE, response_model=wire.MemoryStore, responses=ERROR_RESPONSES)
async def update_memory_store(
    memory_store_id: str, params: wire.MemoryStoreUpdateParams, ws: Workspace, rt: Runtime_
) -> Response:
    """Patch; 400 on an archived store."""
    return json_response(await rt.memory.update_store(ws, memory_store_id, params))


@router.post(_STORE + "/archive", response_model=wire.MemoryStore, responses=ERROR_RESPONSES)
async def archive_memory_store(memory_store_id: str, ws: Workspace, rt: Runtime_) -> Response:
    """One-way and idempotent; an archived store is read-only and cannot be attached to new sessions."""
    return json_response(await rt.memory.archive_store(ws, memory_store_id))


@router.delete(_STORE, response_model=wire.Deleted, responses=ERROR_RESPONSES)
async def delete_memory_store(memory_store_id: str, ws: Workspace, rt: Runtime_) -> Response:
    """`{"id","type":"memory_store_deleted"}`; its memories and versions go with it."""
    return json_response(await rt.memory.delete_store(ws, memory_store_id))


# memories --------------------------------------------------------------------------------------------------------
@router.post(_STORE + "/memories", response_model=wire.Memory, responses=ERROR_RESPONSES)
async def create_memory(
    request: Request,
    memory_store_id: str,
    params: wire.MemoryCreateParams,
    ws: Workspace,
    rt: Runtime_,
    view: View = None,
) -> Response:
    """409 `memory_path_conflict_error` (with `conflicting_memory_id`) when the path is taken."""
    actor = caller_actor(request)
    return json_response(await rt.memory.create_memory(ws, memory_store_id, params, actor, view=view))


@router.get(_STORE + "/memories", response_model=wire.CursorPage[wire.MemoryListItem], responses=ERROR_RESPONSES)
async def list_memories(
    memory_store_id: str,
    ws: Workspace,
    rt: Runtime_,
    path_prefix: Annotated[str | None, Query(description="Ends with '/'; matches whole segments")] = None,
    depth: Annotated[int | None, Query(description="0: everything below; N: rolled up below N segments")] = None,
    limit: Limit = None,
    page: Page = None,
    view: View = None,
) -> Response:
    """In byte order of path; memories deeper than `depth` are listed as `memory_prefix` items."""
    return json_response(
        await rt.memory.list_memories(
            ws, memory_store_id, path_prefix=path_prefix, depth=depth, limit=limit, page=page, view=view
        )
    )


@router.get(_MEMORY, response_model=wire.Memory, responses=ERROR_RESPONSES)
async def get_memory(memory_store_id: str, memory_id: str, ws: Workspace, rt: Runtime_, view: View = None) -> Response:
    return json_response(await rt.memory.get_memory(ws, memory_store_id, memory_id, view=view))


async def _update(
    request: Request,
    memory_store_id: str,
    memory_id: str,
    params: wire.MemoryUpdateParams,
    ws: str,
    rt: Runtime_,
    view: str | None,
) -> Response:
    actor = caller_actor(request)
    return json_response(await rt.memory.update_memory(ws, memory_store_id, memory_id, params, actor, view=view))


@router.post(_MEMORY, response_model=wire.Memory, responses=ERROR_RESPONSES)
async def update_memory(
    request: Request,
    memory_store_id: str,
    memory_id: str,
    params: wire.MemoryUpdateParams,
    ws: Workspace,
    rt: Runtime_,
    view: View = None,
) -> Response:
    """New content and/or path; a `content_sha256` precondition that fails is a 409
    `memory_precondition_failed_error`, a path taken by another memory a 409 `memory_path_conflict_error`."""
    return await _update(request, memory_store_id, memory_id, params, ws, rt, view)


@router.patch(_MEMORY, response_model=wire.Memory, responses=ERROR_RESPONSES)
async def patch_memory(
    request: Request,
    memory_store_id: str,
    memory_id: str,
    params: wire.MemoryUpdateParams,
    ws: Workspace,
    rt: Runtime_,
    view: View = None,
) -> Response:
    """The same as POST (the SDK sends POST; the condensed docs say PATCH)."""
    return await _update(request, memory_store_id, memory_id, params, ws, rt, view)


@router.delete(_MEMORY, response_model=wire.Deleted, responses=ERROR_RESPONSES)
async def delete_memory(
    request: Request,
    memory_store_id: str,
    memory_id: str,
    ws: Workspace,
    rt: Runtime_,
    expected_content_sha256: str | None = None,
) -> Response:
    """`{"id","type":"memory_deleted"}`; a mismatched `expected_content_sha256` is a 409. Versions stay."""
    actor = caller_actor(request)
    return json_response(
        await rt.memory.delete_memory(
            ws, memory_store_id, memory_id, actor, expected_content_sha256=expected_content_sha256
        )
    )


# versions --------------------------------------------------------------------------------------------------------
@router.get(_STORE + "/memory_versions", response_model=wire.CursorPage[wire.MemoryVersion], responses=ERROR_RESPONSES)
async def list_memory_versions(
    request: Request,
    memory_store_id: str,
    ws: Workspace,
    rt: Runtime_,
    memory_id: str | None = None,
    operation: Literal["created", "modified", "deleted"] | None = None,
    session_id: str | None = None,
    api_key_id: str | None = None,
    service_account_id: str | None = None,
    created_at_gte: Annotated[str | None, Query(alias="created_at[gte]", description="RFC 3339")] = None,
    created_at_lte: Annotated[str | None, Query(alias="created_at[lte]", description="RFC 3339")] = None,
    limit: Limit = None,
    page: Page = None,
    view: View = None,
) -> Response:
    """Newest first."""
    return json_response(
        await rt.memory.list_versions(
            ws,
            memory_store_id,
            memory_id=memory_id,
            operation=operation,
            session_id=session_id,
            api_key_id=api_key_id,
            service_account_id=service_account_id,
            created_at_gte=time_param(request, "created_at[gte]"),
            created_at_lte=time_param(request, "created_at[lte]"),
            limit=limit,
            page=page,
            view=view,
        )
    )


@router.get(_VERSION, response_model=wire.MemoryVersion, responses=ERROR_RESPONSES)
async def get_memory_version(
    memory_store_id: str, memory_version_id: str, ws: Workspace, rt: Runtime_, view: View = None
) -> Response:
    return json_response(await rt.memory.get_version(ws, memory_store_id, memory_version_id, view=view))


@router.post(_VERSION + "/redact", response_model=wire.MemoryVersion, responses=ERROR_RESPONSES)
async def redact_memory_version(
    request: Request, memory_store_id: str, memory_version_id: str, ws: Workspace, rt: Runtime_
) -> Response:
    """Clears content, hash, size and path; keeps who wrote it and when. 409 for a live memory's current
    version."""
    actor = caller_actor(request)
    return json_response(await rt.memory.redact_version(ws, memory_store_id, memory_version_id, actor))
