"""Which webhook events a state change causes, as outbox rows to commit with it (part 2 §6.3).

Session events are read off the log events a commit appends (the status events say what happened), so every
path that changes a session's status — the turn engine, an interrupt, a budget, recovery — announces it without
knowing about webhooks. The mapping (log event -> webhook events):

- `session.status_running` -> `session.status_run_started` and `session.running`
- `session.status_idle` -> `session.status_idled` and `session.idled`, plus `session.requires_action` or
  `session.budget_reached` when that is its stop reason
- `session.status_rescheduled`, `session.status_terminated`, `session.updated` -> the same names
- `session.thread_created`, `session.thread_status_idle`, `session.thread_status_terminated` ->
  `session.thread_created`, `session.thread_idled`, `session.thread_terminated` (with `session_thread_id`)
- `span.outcome_evaluation_end` -> `session.outcome_evaluation_ended`
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from .. import wire
from ._clock import rfc3339
from ._ids import new_id
from .store import NewEvent, OutboxEvent

_SIMPLE: dict[str, tuple[str, ...]] = {
    "session.status_running": ("session.status_run_started", "session.running"),
    "session.status_rescheduled": ("session.status_rescheduled",),
    "session.status_terminated": ("session.status_terminated",),
    "session.updated": ("session.updated",),
    "span.outcome_evaluation_end": ("session.outcome_evaluation_ended",),
}
_THREAD = {
    "session.thread_created": "session.thread_created",
    "session.thread_status_idle": "session.thread_idled",
    "session.thread_status_terminated": "session.thread_terminated",
}
_IDLE_REASONS = {"requires_action": "session.requires_action", "budget_reached": "session.budget_reached"}
SOURCE_TYPES = frozenset({*_SIMPLE, *_THREAD, "session.status_idle"})
"""The log event types that cause a webhook event."""


def outbox_event(name: str, resource_id: str, workspace: str, *, at: str | None = None, **extra: str) -> OutboxEvent:
    """One webhook event, its thin payload serialized once (every delivery and retry sends these bytes)."""
    created = at or rfc3339(wire.utcnow())
    event_id = new_id("wevt")
    payload = wire.webhook_event(event_id, created, name, resource_id, workspace, **extra)
    return OutboxEvent(
        id=event_id,
        workspace=workspace,
        type=name,
        created_at=created,
        payload=payload.model_dump_json(by_alias=True),
    )


def session_webhooks(workspace: str, session_id: str, events: Sequence[NewEvent]) -> tuple[OutboxEvent, ...]:
    """The webhook events announcing what `events` (about to be appended to the session's log) record."""
    found: list[OutboxEvent] = []
    for event in events:
        if event.type not in SOURCE_TYPES:
            continue
        at = event.processed_at
        names = _SIMPLE.get(event.type)
        if names is not None:
            found.extend(outbox_event(name, session_id, workspace, at=at) for name in names)
            continue
        body = json.loads(event.body)
        thread = _THREAD.get(event.type)
        if thread is not None:
            thread_id = str(body.get("session_thread_id", ""))
            found.append(outbox_event(thread, session_id, workspace, at=at, session_thread_id=thread_id))
            continue
        found.append(outbox_event("session.status_idled", session_id, workspace, at=at))
        found.append(outbox_event("session.idled", session_id, workspace, at=at))
        reason = (body.get("stop_reason") or {}).get("type")
        if reason in _IDLE_REASONS:
            found.append(outbox_event(_IDLE_REASONS[reason], session_id, workspace, at=at))
    return tuple(found)
