"""Webhook endpoints (loophost's own admin API, shaped like the SDK's organization webhooks, part 2 §6.4) and the
thin event a delivery carries (SDK `BetaWebhookEvent`, part 2 §6.2)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from ._base import ParamsModel, Timestamp, WireModel

WEBHOOK_EVENT_TYPES: tuple[str, ...] = (
    "session.created",
    "session.running",
    "session.idled",
    "session.requires_action",
    "session.updated",
    "session.archived",
    "session.deleted",
    "session.status_run_started",
    "session.status_idled",
    "session.status_rescheduled",
    "session.status_terminated",
    "session.thread_created",
    "session.thread_idled",
    "session.thread_terminated",
    "session.outcome_evaluation_ended",
    "session.budget_reached",
    "vault.created",
    "vault.archived",
    "vault.deleted",
    "vault_credential.created",
    "vault_credential.archived",
    "vault_credential.deleted",
    "vault_credential.refresh_failed",
    "agent.created",
    "agent.updated",
    "agent.archived",
    "deployment.created",
    "deployment.updated",
    "deployment.paused",
    "deployment.unpaused",
    "deployment.archived",
    "deployment_run.started",
    "deployment_run.succeeded",
    "deployment_run.failed",
    "environment.created",
    "environment.updated",
    "environment.archived",
    "environment.deleted",
    "memory_store.created",
    "memory_store.archived",
    "memory_store.deleted",
)
"""The workspace event names of SDK 2.11.0's `BetaWebhookEventData` union (part 2 §6.3) an endpoint may ask for:
each is emitted (the table in docs/webhooks.md says when). The others are `UNEMITTED_WEBHOOK_EVENT_TYPES`."""

UNEMITTED_WEBHOOK_EVENT_TYPES: dict[str, str] = {
    "session.pending": "loophost sessions have no pending state (their statuses are rescheduling, running, idle and"
    " terminated): subscribe to session.created or session.status_rescheduled",
    "agent.deleted": "agents cannot be deleted, only archived: subscribe to agent.archived",
    "deployment.deleted": "deployments cannot be deleted, only archived: subscribe to deployment.archived",
}
"""Names in the SDK's union that loophost never emits, with why: asking for one is a 400 saying so, rather than
a subscription that is silently never served."""

WebhookEndpointState = Literal["enabled", "disabled"]
MAX_WEBHOOK_ENDPOINTS = 32
"""Per workspace, as the organization API allows per organization."""


def _check_events(value: list[str]) -> list[str]:
    never = sorted(set(value) & set(UNEMITTED_WEBHOOK_EVENT_TYPES))
    if never:
        reasons = "; ".join(f"{name}: {UNEMITTED_WEBHOOK_EVENT_TYPES[name]}" for name in never)
        raise ValueError(f"event type(s) {never} are never emitted by loophost ({reasons})")
    unknown = sorted(set(value) - set(WEBHOOK_EVENT_TYPES))
    if unknown:
        raise ValueError(f"unknown event type(s) {unknown}; known: {', '.join(WEBHOOK_EVENT_TYPES)}")
    return list(dict.fromkeys(value))


class WebhookEndpoint(WireModel):
    """`disabled_reason` is empty unless loophost disabled the endpoint itself (20 failed deliveries in a row, or
    an address it refuses)."""

    type: Literal["webhook_endpoint"] = "webhook_endpoint"
    id: str
    name: str = ""
    description: str = ""
    url: str
    enabled_events: list[str]
    state: WebhookEndpointState = "enabled"
    disabled_reason: str = ""
    created_at: Timestamp
    updated_at: Timestamp


class NewWebhookEndpoint(WebhookEndpoint):
    """The create answer: the only one, with `regenerate_signing_secret`'s, that carries the secret."""

    signing_secret: str


class WebhookSigningSecret(WireModel):
    signing_secret: str


class WebhookCreateParams(ParamsModel):
    url: str = Field(min_length=1, max_length=2048)
    enabled_events: list[str] = Field(min_length=1)
    name: str = Field(default="", max_length=256)
    description: str = Field(default="", max_length=2048)

    _events = field_validator("enabled_events")(_check_events)


class WebhookUpdateParams(ParamsModel):
    """`enabled_events` replaces the set; an empty list leaves it unchanged. `state: enabled` clears
    `disabled_reason`."""

    url: str | None = Field(default=None, min_length=1, max_length=2048)
    enabled_events: list[str] | None = None
    name: str | None = Field(default=None, max_length=256)
    description: str | None = Field(default=None, max_length=2048)
    state: WebhookEndpointState | None = None

    @field_validator("enabled_events")
    @classmethod
    def _events(cls, value: list[str] | None) -> list[str] | None:
        return _check_events(value) if value is not None else None


WebhookDeliveryState = Literal["pending", "delivered", "failed"]


class WebhookDelivery(WireModel):
    """One event's delivery to one endpoint, as an operator sees it (loophost's own; the console's webhooks view):
    `pending` is still being tried (`next_attempt_at`), `failed` was given up (the event is a day old)."""

    type: Literal["webhook_delivery"] = "webhook_delivery"
    event_id: str
    event_type: str
    created_at: Timestamp
    state: WebhookDeliveryState
    attempts: int
    last_error: str | None = None
    next_attempt_at: Timestamp | None = None
    """When it is tried next (pending only)."""
    delivered_at: Timestamp | None = None


class WebhookEventData(WireModel):
    """Thin: the receiver fetches the resource. Extra ids (`session_thread_id`, `vault_id`, `deployment_id`)
    ride along as extra fields."""

    type: str
    id: str
    organization_id: str = ""
    workspace_id: str


class WebhookEvent(WireModel):
    type: Literal["event"] = "event"
    id: str
    created_at: Timestamp
    data: WebhookEventData


def webhook_event(
    event_id: str, created_at: Any, name: str, resource_id: str, workspace: str, **extra: str
) -> WebhookEvent:
    return WebhookEvent(
        id=event_id,
        created_at=created_at,
        data=WebhookEventData(type=name, id=resource_id, workspace_id=workspace, **extra),
    )
