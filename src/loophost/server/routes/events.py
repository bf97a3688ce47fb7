"""Routes: events (spec §5) — send, list and the SSE stream, for a session and for its (primary) thread.

Everything that can be refused is checked before a stream's first byte, so a bad request is an ordinary JSON
error; after that, a failure can only be reported in-band, as an `event: error` frame.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection
from functools import partial
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Request, Response

from ... import wire
from ...runtime import EventPage, Runtime, RuntimeFailure
from ...runtime._bus import Preview, StreamItem
from .._deps import Runtime_, Workspace, list_param, time_param
from .._errors import ApiError, envelope, status_for
from .._responses import ERROR_RESPONSES
from .._sse import Batches, EventStreamResponse

log = logging.getLogger("loophost.server")

router = APIRouter(prefix="/v1", tags=["events"])

MAX_EVENT_DELTAS = 100
"""Spec §1: at most 100 `event_deltas[]` values."""

Limit = Annotated[int | None, Query(description="Page size (default 1000, at most 1000); out of range is a 400")]
Page = Annotated[str | None, Query(description="Opaque cursor: a previous page's `next_page`")]
Order = Annotated[Literal["asc", "desc"], Query(description="By `processed_at` (persisted order); default asc")]
Types = Annotated[
    list[str] | None, Query(alias="types[]", description="Only events of these types (repeat the parameter)")
]
CreatedAtGt = Annotated[str | None, Query(alias="created_at[gt]", description="RFC 3339; compared with processed_at")]
CreatedAtGte = Annotated[str | None, Query(alias="created_at[gte]", description="RFC 3339; compared with processed_at")]
CreatedAtLt = Annotated[str | None, Query(alias="created_at[lt]", description="RFC 3339; compared with processed_at")]
CreatedAtLte = Annotated[str | None, Query(alias="created_at[lte]", description="RFC 3339; compared with processed_at")]
EventDeltas = Annotated[
    list[str] | None,
    Query(
        alias="event_deltas[]",
        description="Also stream previews (`event_start`, `event_delta`) of these types: agent.message, "
        "agent.thinking (at most 100 values)",
    ),
]
AfterId = Annotated[
    str | None,
    Query(description="Extension: replay the durable log after this event id, then go live (as `Last-Event-ID`)"),
]
LastEventId = Annotated[
    str | None, Header(alias="Last-Event-ID", description="Extension: the SSE resume cursor, same as `after_id`")
]

STREAM_RESPONSES = {
    **ERROR_RESPONSES,
    200: {
        "description": "Server-Sent Events: `id:` (persisted events), `event:` = type, `data:` = the event JSON; "
        "`event: ping` heartbeats while idle. Ends after session.status_terminated or session.deleted.",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    },
}


# --- send -----------------------------------------------------------------------------------------------------


OPENAPI_ONLY = APIRouter(prefix="/v1", tags=["events"])
"""Routes served outside FastAPI, declared here for the OpenAPI document only (`_app.py` adds them to it)."""


@OPENAPI_ONLY.post("/sessions/{session_id}/events", response_model=wire.SendEventsResponse, responses=ERROR_RESPONSES)
async def send_events(
    session_id: str,
    params: wire.SendEventsParams,
    ws: Workspace,
    rt: Runtime_,
    idempotency_key: Annotated[
        str | None, Header(description="A retry with the same key returns the first answer and changes nothing")
    ] = None,
) -> Response:
    """Accept client events (validated all-or-nothing). The echo carries the id each event has in list and
    stream, so a client can dedupe; it is serialized as stored (unset optional fields left out).

    Served by `loophost.server._send_events.SendEventsEndpoint` (the request every turn makes, as plain ASGI)."""
    raise RuntimeError("POST /v1/sessions/{session_id}/events is served by SendEventsEndpoint")


# --- list -----------------------------------------------------------------------------------------------------


def _page_json(page: EventPage) -> Response:
    """The stored bodies as they are: they were validated when written, and re-validating a page of up to 1000
    events per request would cost more than everything else the list does."""
    body = '{"data":[' + ",".join(e.body for e in page.data) + '],"next_page":' + json.dumps(page.next_page) + "}"
    return Response(content=body, media_type="application/json")


async def _list(
    request: Request, ws: str, rt: Runtime, session_id: str, *, order: str, limit: int | None, page: str | None
) -> Response:
    result = await rt.list_events(
        ws,
        session_id,
        types=list_param(request, "types"),
        order=order,
        limit=limit,
        page=page,
        created_at_gt=time_param(request, "created_at[gt]"),
        created_at_gte=time_param(request, "created_at[gte]"),
        created_at_lt=time_param(request, "created_at[lt]"),
        created_at_lte=time_param(request, "created_at[lte]"),
    )
    return _page_json(result)


@router.get(
    "/sessions/{session_id}/events", response_model=wire.CursorPage[wire.SessionEvent], responses=ERROR_RESPONSES
)
async def list_events(
    session_id: str,
    request: Request,
    ws: Workspace,
    rt: Runtime_,
    types: Types = None,
    order: Order = "asc",
    limit: Limit = None,
    page: Page = None,
    created_at_gt: CreatedAtGt = None,
    created_at_gte: CreatedAtGte = None,
    created_at_lt: CreatedAtLt = None,
    created_at_lte: CreatedAtLte = None,
) -> Response:
    """The persisted history (never previews), oldest first by default. It returns at once: not a long poll.
    The bracketed parameters are declared for OpenAPI and read with `list_param` / `time_param`."""
    return await _list(request, ws, rt, session_id, order=order, limit=limit, page=page)


@router.get(
    "/sessions/{session_id}/threads/{thread_id}/events",
    response_model=wire.CursorPage[wire.SessionEvent],
    responses=ERROR_RESPONSES,
)
async def list_thread_events(
    session_id: str,
    thread_id: str,
    request: Request,
    ws: Workspace,
    rt: Runtime_,
    types: Types = None,
    order: Order = "asc",
    limit: Limit = None,
    page: Page = None,
    created_at_gt: CreatedAtGt = None,
    created_at_gte: CreatedAtGte = None,
    created_at_lt: CreatedAtLt = None,
    created_at_lte: CreatedAtLte = None,
) -> Response:
    """The primary thread's history is the session's; a child thread's is its own (`runtime/_threads.py`)."""
    where, target = await rt.thread_target(ws, session_id, thread_id)
    return await _list(request, where, rt, target, order=order, limit=limit, page=page)


# --- stream ---------------------------------------------------------------------------------------------------


def _event_deltas(request: Request) -> list[str]:
    """`event_deltas[]`, each a previewable type, at most 100; a 400 otherwise, before any stream bytes."""
    values = list_param(request, "event_deltas") or []
    if len(values) > MAX_EVENT_DELTAS:
        raise ApiError(400, f"event_deltas takes at most {MAX_EVENT_DELTAS} values", code="too_many_event_deltas")
    unknown = sorted(set(values) - wire.EVENT_DELTA_TYPES)
    if unknown:
        raise ApiError(
            400,
            f"event_deltas: unknown type {unknown[0]!r}; expected {' or '.join(sorted(wire.EVENT_DELTA_TYPES))}",
            code="invalid_event_deltas",
        )
    return values


class _PreviewsOf:
    """Only the previews of the requested types: an `event_start` names its event's type, and each `event_delta`
    follows the start of the same event id."""

    def __init__(self, items: Batches, kinds: Collection[str]) -> None:
        self._items = items
        self._kinds = kinds
        self._started: set[str] = set()

    async def next_batch(self) -> list[StreamItem]:
        while True:
            kept = [item for item in await self._items.next_batch() if self._wanted(item)]
            if kept:
                return kept

    def _wanted(self, item: StreamItem) -> bool:
        if not isinstance(item, Preview):
            return True
        data = json.loads(item.body)
        if item.type == "event_start":
            event = data.get("event") or {}
            if event.get("type") not in self._kinds:
                return False
            self._started.add(str(event.get("id")))
            return True
        return data.get("event_id") in self._started

    async def aclose(self) -> None:
        await self._items.aclose()


def _error_envelope(request: Request, exc: Exception) -> str:
    """The §0.1 envelope for a failure after the stream started (in an `event: error` frame)."""
    if isinstance(exc, RuntimeFailure):
        status = status_for(exc)
        if status >= 500:
            log.error("runtime failure streaming %s: %s", request.url.path, exc)
        response = envelope(
            request, status, exc.message, exc.to_details(), error_type=exc.error_type if status != 409 else None
        )
    else:
        log.error("unexpected error streaming %s", request.url.path, exc_info=exc)
        response = envelope(request, 500, "internal server error", {"error_code": "internal_error"})
    return bytes(response.body).decode()


async def _stream(
    request: Request, ws: str, rt: Runtime, session_id: str, after_id: str | None, last_event_id: str | None
) -> Response:
    deltas = _event_deltas(request)
    # opened now: unknown sessions (and other workspaces') are 404s and unknown resume ids 400s, as ordinary JSON
    # errors before any stream bytes; and the start point is fixed before the headers go out (the SDK sends right
    # after `events.stream()` returns, so nothing committed after this request may be missed)
    items: Batches = await rt.open_stream(
        ws, session_id, after_id=after_id or last_event_id or None, previews=bool(deltas)
    )
    if deltas and not wire.EVENT_DELTA_TYPES.issubset(deltas):
        items = _PreviewsOf(items, frozenset(deltas))
    return EventStreamResponse(
        items,
        heartbeat=request.app.state.settings.heartbeat_interval,
        closing=request.app.state.closing,
        on_error=partial(_error_envelope, request),
    )


@router.get(
    "/sessions/{session_id}/events/stream",
    response_class=EventStreamResponse,
    status_code=200,
    responses=STREAM_RESPONSES,
)
async def stream_events(
    session_id: str,
    request: Request,
    ws: Workspace,
    rt: Runtime_,
    event_deltas: EventDeltas = None,
    after_id: AfterId = None,
    last_event_id: LastEventId = None,
) -> Response:
    """Live events as SSE (`200 text/event-stream`, whatever `Accept` says). Like the Claude API, a new
    connection gets only what is persisted after it attaches; `Last-Event-ID` / `after_id` (an extension)
    replay the durable log after that event first, exactly once and in order."""
    return await _stream(request, ws, rt, session_id, after_id, last_event_id)


@router.get(
    "/sessions/{session_id}/threads/{thread_id}/stream",
    response_class=EventStreamResponse,
    status_code=200,
    responses=STREAM_RESPONSES,
)
async def stream_thread_events(
    session_id: str,
    thread_id: str,
    request: Request,
    ws: Workspace,
    rt: Runtime_,
    event_deltas: EventDeltas = None,
    after_id: AfterId = None,
    last_event_id: LastEventId = None,
) -> Response:
    """A thread's stream (the SDK's path is `/threads/{tid}/stream`, not `/events/stream`): the session's for its
    primary thread, the child thread's own otherwise."""
    where, target = await rt.thread_target(ws, session_id, thread_id)
    return await _stream(request, where, rt, target, after_id, last_event_id)
