"""Routes: sessions (spec §4) and their threads (§9; spec part 2 §3.2: `runtime/_threads.py`).

Thread events and the thread stream live with the other event routes (`routes/events.py`).
"""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from fastapi import APIRouter, Query, Request, Response

from ... import wire
from .._deps import Runtime_, Workspace, list_param, time_param
from .._errors import ApiError
from .._responses import ERROR_RESPONSES, json_response

router = APIRouter(prefix="/v1", tags=["sessions"])

Limit = Annotated[int | None, Query(description="Page size (default 20); out of range is a 400")]
Page = Annotated[str | None, Query(description="Opaque cursor: a previous page's `next_page`")]
Statuses = Annotated[
    list[wire.SessionStatus] | None, Query(alias="statuses[]", description="Repeat the parameter for several")
]

SESSION_STATUSES = frozenset(get_args(wire.SessionStatus))
MAX_THREADS_LIMIT = 1000
MAX_VERSION = 2**63 - 1
"""The largest integer the store can compare; a bigger `agent_version` is malformed (400), not a store crash."""


def _statuses(request: Request) -> list[str] | None:
    """`statuses[]` (or `statuses`), each a known status: a typo would otherwise silently match nothing."""
    values = list_param(request, "statuses")
    unknown = sorted(set(values or ()) - SESSION_STATUSES)
    if unknown:
        raise ApiError(
            400,
            f"unknown status {unknown[0]!r}; expected one of {', '.join(sorted(SESSION_STATUSES))}",
            code="invalid_status",
        )
    return values


@router.post("/sessions", response_model=wire.Session, responses=ERROR_RESPONSES)
async def create_session(params: wire.SessionCreateParams, ws: Workspace, rt: Runtime_) -> Response:
    """Start an idle session on a snapshot of the agent (overrides applied); `initial_events` start it at once."""
    return json_response(await rt.start_session(ws, params))


@router.get("/sessions", response_model=wire.BidirectionalPage[wire.Session], responses=ERROR_RESPONSES)
async def list_sessions(
    request: Request,
    ws: Workspace,
    rt: Runtime_,
    agent_id: str | None = None,
    agent_version: Annotated[int | None, Query(le=MAX_VERSION, description="Only with `agent_id`")] = None,
    created_at_gt: Annotated[str | None, Query(alias="created_at[gt]", description="RFC 3339")] = None,
    created_at_gte: Annotated[str | None, Query(alias="created_at[gte]", description="RFC 3339")] = None,
    created_at_lt: Annotated[str | None, Query(alias="created_at[lt]", description="RFC 3339")] = None,
    created_at_lte: Annotated[str | None, Query(alias="created_at[lte]", description="RFC 3339")] = None,
    deployment_id: Annotated[
        str | None, Query(description="The newest `limit` sessions its runs started (one page; no cursor)")
    ] = None,
    include_archived: bool = False,
    limit: Limit = None,
    memory_store_id: Annotated[str | None, Query(description="Sessions that attach this memory store")] = None,
    order: Literal["asc", "desc"] = "desc",
    page: Page = None,
    statuses: Statuses = None,
) -> Response:
    """Newest first by default, as a bidirectional page. The bracketed parameters are declared for OpenAPI and
    read with the server's helpers (`time_param` normalises timestamps, `list_param` takes `statuses[]`)."""
    result = await rt.list_sessions(
        ws,
        limit=limit,
        page=page,
        order=order,
        include_archived=include_archived,
        agent_id=agent_id,
        agent_version=agent_version,
        statuses=_statuses(request),
        created_at_gt=time_param(request, "created_at[gt]"),
        created_at_gte=time_param(request, "created_at[gte]"),
        created_at_lt=time_param(request, "created_at[lt]"),
        created_at_lte=time_param(request, "created_at[lte]"),
        memory_store_id=memory_store_id,
    )
    if deployment_id is not None:  # the sessions its runs started, newest first (`Deployments.sessions`)
        found = await rt.deployments.sessions(ws, deployment_id, limit=limit or 20, include_archived=include_archived)
        result = wire.BidirectionalPage[wire.Session](data=found, next_page=None, prev_page=None)
    return json_response(result)


@router.get("/sessions/{session_id}", response_model=wire.Session, responses=ERROR_RESPONSES)
async def get_session(session_id: str, ws: Workspace, rt: Runtime_) -> Response:
    """One session of the caller's workspace (another workspace's id is a 404)."""
    return json_response(await rt.get_session(ws, session_id))


@router.post("/sessions/{session_id}", response_model=wire.Session, responses=ERROR_RESPONSES)
async def update_session(session_id: str, params: wire.SessionUpdateParams, ws: Workspace, rt: Runtime_) -> Response:
    """Patch semantics need `model_fields_set` (e.g. `budget: null` removes, omitted keeps), so the body is
    validated straight into the params model. `vault_ids` is parsed only for the runtime to refuse it (400)."""
    return json_response(await rt.update_session(ws, session_id, params))


@router.post("/sessions/{session_id}/archive", response_model=wire.Session, responses=ERROR_RESPONSES)
async def archive_session(session_id: str, ws: Workspace, rt: Runtime_) -> Response:
    """Read-only and `terminated` from now on; 409 while running. No body is read (none or `{}`)."""
    return json_response(await rt.archive_session(ws, session_id))


@router.delete("/sessions/{session_id}", response_model=wire.Deleted, responses=ERROR_RESPONSES)
async def delete_session(session_id: str, ws: Workspace, rt: Runtime_) -> Response:
    """`{"id","type":"session_deleted"}`; 409 while running. Files, agents and environments survive."""
    return json_response(await rt.delete_session(ws, session_id))


@router.get(
    "/sessions/{session_id}/threads", response_model=wire.CursorPage[wire.SessionThread], responses=ERROR_RESPONSES
)
async def list_threads(
    session_id: str,
    request: Request,
    ws: Workspace,
    rt: Runtime_,
    limit: Annotated[int | None, Query(description="Page size (default 1000)")] = None,
    page: Annotated[str | None, Query(description="Never needed: every thread fits on the first page")] = None,
    statuses: Statuses = None,
) -> Response:
    """The primary thread (`parent_thread_id` null), then a coordinator's child threads, filtered by `statuses[]`.
    Everything fits on one page, so no cursor is ever handed out and any `page` given is a 400 like any unknown
    cursor."""
    if limit is not None and not 1 <= limit <= MAX_THREADS_LIMIT:
        raise ApiError(400, f"limit must be between 1 and {MAX_THREADS_LIMIT}", code="invalid_limit")
    if page:
        raise ApiError(400, f"invalid page cursor {page!r}", code="invalid_cursor")
    wanted = _statuses(request)
    threads = await rt.list_threads(ws, session_id, wanted)
    page_size = limit or MAX_THREADS_LIMIT
    return json_response(wire.CursorPage[wire.SessionThread](data=threads[:page_size], next_page=None))


@router.get("/sessions/{session_id}/threads/{thread_id}", response_model=wire.SessionThread, responses=ERROR_RESPONSES)
async def get_thread(session_id: str, thread_id: str, ws: Workspace, rt: Runtime_) -> Response:
    """The primary thread or one of a coordinator's child threads; any other id is a 404."""
    return json_response(await rt.get_thread(ws, session_id, thread_id))


@router.post(
    "/sessions/{session_id}/threads/{thread_id}/archive",
    response_model=wire.SessionThread,
    responses=ERROR_RESPONSES,
)
async def archive_thread(session_id: str, thread_id: str, ws: Workspace, rt: Runtime_) -> Response:
    """An idle child thread (twice is a no-op); a running one, or the primary thread (whose life is the session's:
    use `sessions.archive`), is a 400. Unknown sessions and threads are 404s first."""
    return json_response(await rt.archive_thread(ws, session_id, thread_id))
