"""Webhooks' storage contract: endpoints, and the outbox of deliveries.

`Store.webhooks` is a `WebhookStore`. Promises every backend keeps, checked by
tests/runtime/store/test_contract_webhooks.py:
- an outbox event (`OutboxEvent`) is written in the transaction of the state change that causes it
  (`SessionChange.webhooks`, or the `webhooks=` of an agent/environment/vault write): one delivery row per enabled
  endpoint of the workspace subscribed to its type at that moment; a change that rolls back writes none;
- `claim_deliveries` hands a due delivery to one caller only until `claimed_until`, however many nodes claim at
  once (PostgreSQL: `FOR UPDATE SKIP LOCKED`);
- the signing secret is stored sealed (the caller encrypts it); a lookup returns it sealed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    """A webhook event as written with its state change: `payload` is the JSON body every delivery sends."""

    id: str
    workspace: str
    type: str
    created_at: str
    payload: str


@dataclass(frozen=True, slots=True)
class WebhookEndpointRow:
    workspace: str
    id: str
    url: str
    enabled_events: str
    """JSON array of event names."""
    state: str
    disabled_reason: str
    name: str
    description: str
    created_at: str
    updated_at: str
    secret: bytes
    """Sealed by the runtime's key ring; never stored plain."""
    consecutive_failures: int = 0


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    """One event for one endpoint, with what the sender needs of the endpoint (read when claimed)."""

    endpoint_id: str
    event_id: str
    workspace: str
    type: str
    created_at: str
    payload: str
    attempts: int
    url: str
    secret: bytes


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """A delivery as an operator reads it (no payload, no secret): newest first in `recent_deliveries`."""

    event_id: str
    type: str
    created_at: str
    state: str
    """`pending`, `delivered` or `failed` (given up)."""
    attempts: int
    last_error: str | None
    next_attempt_at: str
    delivered_at: str | None


DELIVERY_RECORD_COLS = "event_id, type, created_at, state, attempts, last_error, next_attempt_at, delivered_at"
"""The columns of `DeliveryRecord`, in order, as both backends select them."""


def delivery_record(r: Sequence[Any]) -> DeliveryRecord:
    event_id, event_type, created_at, state, attempts, last_error, next_attempt_at, delivered_at = r
    return DeliveryRecord(
        event_id, event_type, created_at, state, int(attempts), last_error, next_attempt_at, delivered_at
    )


def endpoint_row(r: Sequence[Any]) -> WebhookEndpointRow:
    """An endpoint row as both backends select it (the columns of `WebhookEndpointRow`, in order)."""
    workspace, endpoint_id, url, events, state, reason, name, description, created, updated, secret, failures = r
    return WebhookEndpointRow(
        workspace, endpoint_id, url, events, state, reason, name, description, created, updated, bytes(secret), failures
    )


def delivery_row(r: Sequence[Any], url: str, secret: bytes) -> DeliveryRow:
    """A claimed delivery: its first seven selected columns, and its endpoint's URL and sealed secret."""
    endpoint_id, event_id, workspace, event_type, created_at, payload, attempts = r[:7]
    return DeliveryRow(endpoint_id, event_id, workspace, event_type, created_at, payload, int(attempts), url, secret)


class WebhookStore(Protocol):
    # endpoints
    async def insert_endpoint(self, row: WebhookEndpointRow) -> None: ...
    async def get_endpoint(self, workspace: str, endpoint_id: str) -> WebhookEndpointRow | None: ...
    async def list_endpoints(
        self, workspace: str, *, after: tuple[str, str] | None, descending: bool, limit: int
    ) -> list[WebhookEndpointRow]: ...
    async def count_endpoints(self, workspace: str) -> int: ...
    async def endpoint_workspaces(self) -> set[str]:
        """The workspaces that hold at least one endpoint, whatever its state."""
        ...

    async def update_endpoint(self, row: WebhookEndpointRow) -> bool:
        """Replace the endpoint's fields (not its failure count); False when it is gone."""
        ...

    async def delete_endpoint(self, workspace: str, endpoint_id: str) -> bool:
        """Remove the endpoint and its deliveries."""
        ...

    # the outbox
    async def add_events(self, events: Sequence[OutboxEvent]) -> None:
        """Events with no other state change to ride with (the state change was committed by the same call)."""
        ...

    async def claim_deliveries(self, *, now: str, claimed_until: str, limit: int) -> list[DeliveryRow]:
        """Pending deliveries due at `now` to enabled endpoints, not claimed past `now`, oldest due first; each
        is claimed until `claimed_until`."""
        ...

    async def release_claims(self) -> None:
        """Forget every claim (one process owns a SQLite file: on open, its last run's claims are dead)."""
        ...

    async def delivered(self, endpoint_id: str, event_id: str, *, at: str) -> None:
        """Mark it delivered and reset the endpoint's consecutive failures."""
        ...

    async def failed(
        self, endpoint_id: str, event_id: str, *, error: str, next_attempt_at: str | None, disable_after: int
    ) -> bool:
        """Record a failed attempt: retry at `next_attempt_at` (None: give up). The endpoint's consecutive
        failures go up by one; at `disable_after` it is disabled with a `disabled_reason` naming `error`. True
        when this failure disabled it."""
        ...

    async def disable_endpoint(self, endpoint_id: str, reason: str, *, at: str) -> None: ...
    async def recent_deliveries(
        self, endpoint_id: str, *, before: tuple[str, str] | None, limit: int
    ) -> list[DeliveryRecord]:
        """The endpoint's deliveries, newest event first (by `created_at`, then event id), strictly before the
        (created_at, event_id) position `before` when given."""
        ...

    async def delivery_state(self, endpoint_id: str, event_id: str) -> tuple[str, int, str | None] | None:
        """(state, attempts, last error) of a delivery; for tests and operators."""
        ...
