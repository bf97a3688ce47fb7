"""Routes: webhook endpoints (loophost's own admin API, workspace-scoped; part 2 §6.1, §6.4). The signing secret
is in the create and `regenerate_signing_secret` answers only."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from ... import wire
from .._deps import Runtime_, Workspace
from .._responses import ERROR_RESPONSES, json_response

router = APIRouter(prefix="/v1", tags=["webhooks"])

Limit = Annotated[int | None, Query(description="Page size, 1-100 (default 20); out of range is a 400")]
Page = Annotated[str | None, Query(description="Opaque cursor: a previous page's `next_page`")]


@router.post("/webhooks", response_model=wire.NewWebhookEndpoint, responses=ERROR_RESPONSES)
async def create_webhook(params: wire.WebhookCreateParams, ws: Workspace, rt: Runtime_) -> Response:
    """Deliveries of `enabled_events` start at once. A private or loopback host, or plain http, is a 400 unless the
    server runs with `--webhooks-allow-private`."""
    return json_response(await rt.webhooks.create(ws, params))


@router.get("/webhooks", response_model=wire.CursorPage[wire.WebhookEndpoint], responses=ERROR_RESPONSES)
async def list_webhooks(
    ws: Workspace, rt: Runtime_, limit: Limit = None, page: Page = None, order: Literal["asc", "desc"] = "asc"
) -> Response:
    return json_response(await rt.webhooks.list(ws, limit=limit, page=page, order=order))


@router.get("/webhooks/{webhook_id}", response_model=wire.WebhookEndpoint, responses=ERROR_RESPONSES)
async def get_webhook(webhook_id: str, ws: Workspace, rt: Runtime_) -> Response:
    return json_response(await rt.webhooks.get(ws, webhook_id))


@router.post("/webhooks/{webhook_id}", response_model=wire.WebhookEndpoint, responses=ERROR_RESPONSES)
async def update_webhook(webhook_id: str, params: wire.WebhookUpdateParams, ws: Workspace, rt: Runtime_) -> Response:
    """`enabled_events` replaces the set (an empty list leaves it); `state: enabled` clears `disabled_reason` and
    resumes pending deliveries."""
    return json_response(await rt.webhooks.update(ws, webhook_id, params))


@router.get(
    "/webhooks/{webhook_id}/deliveries",
    response_model=wire.CursorPage[wire.WebhookDelivery],
    responses=ERROR_RESPONSES,
)
async def list_webhook_deliveries(
    webhook_id: str, ws: Workspace, rt: Runtime_, limit: Limit = None, page: Page = None
) -> Response:
    """The endpoint's deliveries, newest event first: state (`pending`, `delivered`, `failed`), attempts, the last
    error and the next try (loophost's own; the console's webhooks view reads it)."""
    return json_response(await rt.webhooks.deliveries(ws, webhook_id, limit=limit, page=page))


@router.post(
    "/webhooks/{webhook_id}/regenerate_signing_secret",
    response_model=wire.WebhookSigningSecret,
    responses=ERROR_RESPONSES,
)
async def regenerate_signing_secret(webhook_id: str, ws: Workspace, rt: Runtime_) -> Response:
    """Every delivery from now on, retries included, is signed with the new secret only."""
    return json_response(await rt.webhooks.regenerate_signing_secret(ws, webhook_id))


@router.delete("/webhooks/{webhook_id}", response_model=wire.Deleted, responses=ERROR_RESPONSES)
async def delete_webhook(webhook_id: str, ws: Workspace, rt: Runtime_) -> Response:
    """`{"id","type":"webhook_endpoint_deleted"}`; its undelivered events go with it."""
    return json_response(await rt.webhooks.delete(ws, webhook_id))
