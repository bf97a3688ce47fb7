"""Routes: the work queue of a self-hosted environment (spec part 2 §1) and its environment keys.

Who may call what (spec part 2 §1.4; `_worker_auth.py` refuses a worker's credential outside its scope):
poll, ack and list take the environment key; heartbeat the environment key or the item's sessions token; stop
any of these or an API key; retrieve, update, stats and the keys an API key.
"""

from __future__ import annotations

from typing import Annotated

import pydantic
from fastapi import APIRouter, Header, Query, Request, Response

from ... import wire
from ...runtime import Caller
from .._deps import Runtime_, Workspace
from .._errors import ApiError, validation_message
from .._responses import ERROR_RESPONSES, json_response
from .._worker_auth import bearer, granted

router = APIRouter(prefix="/v1", tags=["work"])

WORK_RESPONSES = {
    **ERROR_RESPONSES,
    403: {"model": wire.ErrorEnvelope, "description": "The credential may not call this endpoint"},
}
HEARTBEAT_RESPONSES = {
    **WORK_RESPONSES,
    412: {"model": wire.ErrorEnvelope, "description": "`expected_last_heartbeat` does not match the stored one"},
}


def worker_caller(request: Request) -> Caller | None:
    """The worker's credential the request carries (None: an API key). Read after `Workspace` authenticated it."""
    grant = granted(bearer(request.headers))
    return grant.caller if grant is not None else None


async def require_worker(request: Request, rt: Runtime_, ws: str, environment_id: str, *, token: bool = False) -> None:
    """403 unless the request carries the environment key (or, with `token`, a sessions token); an API key of
    another workspace gets the 404 of the environment first, as everywhere."""
    caller = worker_caller(request)
    if caller is None:
        await rt.get_environment(ws, environment_id)
    if caller is None or (caller.kind != "environment_key" and not token):
        kinds = "the environment key or the item's sessions token" if token else "the environment key"
        raise ApiError(403, f"this endpoint takes {kinds}, not an API key", code="permission_denied")


# environment keys -------------------------------------------------------------------------------------------------
@router.post("/environments/{environment_id}/keys", response_model=wire.EnvironmentKeyCreated, responses=WORK_RESPONSES)
async def create_environment_key(environment_id: str, ws: Workspace, rt: Runtime_) -> Response:
    """A new key for the environment's workers; its secret `key` is in this answer only (a hash is stored)."""
    return json_response(await rt.work.create_key(ws, environment_id))


@router.get(
    "/environments/{environment_id}/keys",
    response_model=wire.CursorPage[wire.EnvironmentKey],
    responses=WORK_RESPONSES,
)
async def list_environment_keys(environment_id: str, ws: Workspace, rt: Runtime_) -> Response:
    """The environment's keys, oldest first, without their secrets."""
    return json_response(await rt.work.list_keys(ws, environment_id))


@router.delete("/environments/{environment_id}/keys/{key_id}", response_model=wire.Deleted, responses=WORK_RESPONSES)
async def delete_environment_key(environment_id: str, key_id: str, ws: Workspace, rt: Runtime_) -> Response:
    """Revoke a key: its next request is a 401."""
    return json_response(await rt.work.delete_key(ws, environment_id, key_id))


# the queue ---------------------------------------------------------------------------------------------------------
@router.get("/environments/{environment_id}/work/poll", response_model=wire.Work | None, responses=WORK_RESPONSES)
async def poll_work(
    environment_id: str,
    request: Request,
    ws: Workspace,
    rt: Runtime_,
    block_ms: Annotated[int | None, Query(description="Wait up to this long for work (1-999); omit: no wait")] = None,
    reclaim_older_than_ms: Annotated[
        int | None, Query(description="Hand out again items polled this long ago and not acknowledged (5000)")
    ] = None,
    anthropic_worker_id: Annotated[str | None, Header(alias="Anthropic-Worker-ID")] = None,
) -> Response:
    """The oldest claimable item, with its `secret` (base64url JSON carrying the item's sessions token), or JSON
    `null` when there is none. Acknowledge it within `reclaim_older_than_ms`, or it is handed out again."""
    await require_worker(request, rt, ws, environment_id)
    work = await rt.work.poll(
        ws,
        environment_id,
        block_ms=block_ms,
        reclaim_older_than_ms=reclaim_older_than_ms,
        worker_id=anthropic_worker_id,
    )
    if work is None:
        return Response(content=b"null", media_type="application/json")
    return json_response(work)


@router.get("/environments/{environment_id}/work/stats", response_model=wire.WorkQueueStats, responses=WORK_RESPONSES)
async def work_stats(environment_id: str, ws: Workspace, rt: Runtime_) -> Response:
    """`depth` (waiting), `pending` (polled, not acknowledged), the oldest queued item's time, and how many
    workers (by `Anthropic-Worker-ID`) polled in the last 30 seconds."""
    return json_response(await rt.work.stats(ws, environment_id))


@router.get("/environments/{environment_id}/work", response_model=wire.CursorPage[wire.Work], responses=WORK_RESPONSES)
async def list_work(
    environment_id: str,
    request: Request,
    ws: Workspace,
    rt: Runtime_,
    limit: Annotated[int | None, Query(description="Page size (default 20)")] = None,
    page: Annotated[str | None, Query(description="Opaque cursor: a previous page's `next_page`")] = None,
) -> Response:
    """Every item of the environment, oldest first (`secret` always null)."""
    await require_worker(request, rt, ws, environment_id)
    return json_response(await rt.work.list(ws, environment_id, limit=limit, page=page))


@router.post("/environments/{environment_id}/work/{work_id}/ack", response_model=wire.Work, responses=WORK_RESPONSES)
async def ack_work(environment_id: str, work_id: str, request: Request, ws: Workspace, rt: Runtime_) -> Response:
    """`queued -> starting`: the item leaves the queue and its lease starts. No body is read."""
    await require_worker(request, rt, ws, environment_id)
    return json_response(await rt.work.ack(ws, environment_id, work_id))


@router.post(
    "/environments/{environment_id}/work/{work_id}/heartbeat",
    response_model=wire.WorkHeartbeat,
    responses=HEARTBEAT_RESPONSES,
)
async def heartbeat_work(
    environment_id: str,
    work_id: str,
    request: Request,
    ws: Workspace,
    rt: Runtime_,
    expected_last_heartbeat: Annotated[
        str | None, Query(description="`NO_HEARTBEAT` first, then the previous answer's `last_heartbeat`, exactly")
    ] = None,
    desired_ttl_seconds: Annotated[int | None, Query(description="The lease to keep (clamped to 10-600)")] = None,
) -> Response:
    """Extend the lease. A `stopping` or `stopped` answer (or `lease_extended: false`) tells the worker to stop;
    a mismatched `expected_last_heartbeat` is a 412 whose `error.details.current_state` is the lease held."""
    await require_worker(request, rt, ws, environment_id, token=True)
    return json_response(
        await rt.work.heartbeat(
            ws,
            environment_id,
            work_id,
            expected_last_heartbeat=expected_last_heartbeat,
            desired_ttl_seconds=desired_ttl_seconds,
        )
    )


@router.post("/environments/{environment_id}/work/{work_id}/stop", response_model=wire.Work, responses=WORK_RESPONSES)
async def stop_work(environment_id: str, work_id: str, request: Request, ws: Workspace, rt: Runtime_) -> Response:
    """`{}` (or no body): the worker is told to stop at its next heartbeat (`stopping`); `{"force": true}`: stopped
    now. A stopped item is a 409."""
    body = await request.body()
    try:
        params = wire.WorkStopParams.model_validate_json(body if body.strip() else b"{}")
    except pydantic.ValidationError as exc:
        raise ApiError(400, validation_message(exc.errors(include_url=False)), code="validation_error") from exc
    return json_response(await rt.work.stop(ws, environment_id, work_id, force=params.force))


@router.get("/environments/{environment_id}/work/{work_id}", response_model=wire.Work, responses=WORK_RESPONSES)
async def get_work(environment_id: str, work_id: str, ws: Workspace, rt: Runtime_) -> Response:
    """One item (`secret` always null)."""
    return json_response(await rt.work.retrieve(ws, environment_id, work_id))


@router.post("/environments/{environment_id}/work/{work_id}", response_model=wire.Work, responses=WORK_RESPONSES)
async def update_work(
    environment_id: str, work_id: str, params: wire.WorkUpdateParams, ws: Workspace, rt: Runtime_
) -> Response:
    """Merge `metadata` key-wise (a string upserts, null deletes)."""
    return json_response(await rt.work.update(ws, environment_id, work_id, params))
