"""`PostgresWebhookStore`: webhook endpoints and the delivery outbox on PostgreSQL.

A claim locks the deliveries it picks with `FOR UPDATE SKIP LOCKED` and stamps `claimed_until` on them, so
deliverers on several nodes never send the same event at once; a node that dies mid-send loses its claim when
`claimed_until` passes, and another node sends it again (with the same `webhook-id`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._postgres_db import Database
from ._webhooks import (
    DELIVERY_RECORD_COLS,
    DeliveryRecord,
    DeliveryRow,
    OutboxEvent,
    WebhookEndpointRow,
    delivery_record,
    delivery_row,
    endpoint_row,
)

_ENDPOINT_COLS = (
    "workspace, id, url, enabled_events, state, disabled_reason, name, description, created_at, updated_at, secret,"
    " consecutive_failures"
)


def outbox_part(events: Sequence[OutboxEvent], *, gate: str | None) -> tuple[str, dict[str, Any]]:
    """A data-modifying CTE body writing the outbox rows of `events` (one per subscribed, enabled endpoint),
    only when the CTE `gate` returned a row (so a commit that matched nothing writes none)."""
    source = f"{gate} CROSS JOIN " if gate else ""
    sql = (
        "INSERT INTO webhook_deliveries"
        " (endpoint_id, event_id, workspace, type, created_at, payload, state, attempts, next_attempt_at)"
        " SELECT ep.id, u.id, ep.workspace, u.type, u.created_at, u.payload, 'pending', 0, u.created_at"
        f" FROM {source}unnest(%(wh_ids)s::text[], %(wh_ws)s::text[], %(wh_types)s::text[],"
        " %(wh_created)s::text[], %(wh_payloads)s::text[]) AS u(id, workspace, type, created_at, payload)"
        " JOIN webhook_endpoints AS ep ON ep.workspace = u.workspace AND ep.state = 'enabled'"
        " AND ep.enabled_events::jsonb @> jsonb_build_array(u.type)"
        " ON CONFLICT DO NOTHING"
    )
    params = {
        "wh_ids": [e.id for e in events],
        "wh_ws": [e.workspace for e in events],
        "wh_types": [e.type for e in events],
        "wh_created": [e.created_at for e in events],
        "wh_payloads": [e.payload for e in events],
    }
    return sql, params


class PostgresWebhookStore:
    """See `WebhookStore`."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def insert_endpoint(self, row: WebhookEndpointRow) -> None:
        await self._db.store(
            f"INSERT INTO webhook_endpoints ({_ENDPOINT_COLS}) VALUES ({', '.join(['%s'] * 12)})",
            (
                row.workspace,
                row.id,
                row.url,
                row.enabled_events,
                row.state,
                row.disabled_reason,
                row.name,
                row.description,
                row.created_at,
                row.updated_at,
                row.secret,
                row.consecutive_failures,
            ),
        )

    async def get_endpoint(self, workspace: str, endpoint_id: str) -> WebhookEndpointRow | None:
        r = await self._db.one(
            f"SELECT {_ENDPOINT_COLS} FROM webhook_endpoints WHERE id = %s AND workspace = %s",
            (endpoint_id, workspace),
        )
        return endpoint_row(r) if r else None

    async def list_endpoints(
        self, workspace: str, *, after: tuple[str, str] | None, descending: bool, limit: int
    ) -> list[WebhookEndpointRow]:
        where, args = "workspace = %s", [workspace]
        if after is not None:
            where += f" AND (created_at, id) {'<' if descending else '>'} (%s, %s)"
            args += list(after)
        order = "DESC" if descending else "ASC"
        sql = (
            f"SELECT {_ENDPOINT_COLS} FROM webhook_endpoints WHERE {where}"
            f" ORDER BY created_at {order}, id {order} LIMIT %s"
        )
        return [endpoint_row(r) for r in await self._db.all(sql, [*args, limit])]

    async def count_endpoints(self, workspace: str) -> int:
        r = await self._db.one("SELECT COUNT(*) FROM webhook_endpoints WHERE workspace = %s", (workspace,))
        return int(r[0]) if r else 0

    async def endpoint_workspaces(self) -> set[str]:
        return {str(r[0]) for r in await self._db.all("SELECT DISTINCT workspace FROM webhook_endpoints", ())}

    async def update_endpoint(self, row: WebhookEndpointRow) -> bool:
        changed = await self._db.store(
            "UPDATE webhook_endpoints SET url = %s, enabled_events = %s, state = %s, disabled_reason = %s, name = %s,"
            " description = %s, updated_at = %s, secret = %s,"
            " consecutive_failures = CASE WHEN %s = 'enabled' THEN 0 ELSE consecutive_failures END"
            " WHERE id = %s AND workspace = %s",
            (
                row.url,
                row.enabled_events,
                row.state,
                row.disabled_reason,
                row.name,
                row.description,
                row.updated_at,
                row.secret,
                row.state,
                row.id,
                row.workspace,
            ),
        )
        return changed == 1

    async def delete_endpoint(self, workspace: str, endpoint_id: str) -> bool:
        deleted = await self._db.run(
            "WITH e AS (DELETE FROM webhook_endpoints WHERE id = %s AND workspace = %s RETURNING id),"
            " d AS (DELETE FROM webhook_deliveries WHERE endpoint_id IN (SELECT id FROM e))"
            " SELECT id FROM e",
            (endpoint_id, workspace),
        )
        return deleted == 1

    async def add_events(self, events: Sequence[OutboxEvent]) -> None:
        if events:
            sql, params = outbox_part(events, gate=None)
            await self._db.store(sql, params)

    async def claim_deliveries(self, *, now: str, claimed_until: str, limit: int) -> list[DeliveryRow]:
        rows = await self._db.all(
            "WITH c AS (SELECT d.endpoint_id, d.event_id FROM webhook_deliveries AS d"
            " JOIN webhook_endpoints AS e ON e.id = d.endpoint_id"
            " WHERE d.state = 'pending' AND d.next_attempt_at <= %(now)s AND e.state = 'enabled'"
            " AND (d.claimed_until IS NULL OR d.claimed_until < %(now)s)"
            " ORDER BY d.next_attempt_at LIMIT %(limit)s FOR UPDATE OF d SKIP LOCKED),"
            " u AS (UPDATE webhook_deliveries AS d SET claimed_until = %(until)s FROM c"
            " WHERE d.endpoint_id = c.endpoint_id AND d.event_id = c.event_id"
            " RETURNING d.endpoint_id, d.event_id, d.workspace, d.type, d.created_at, d.payload, d.attempts)"
            " SELECT u.*, e.url, e.secret FROM u JOIN webhook_endpoints AS e ON e.id = u.endpoint_id"
            " ORDER BY u.created_at, u.event_id",
            {"now": now, "until": claimed_until, "limit": limit},
        )
        return [delivery_row(r, r[7], bytes(r[8])) for r in rows]

    async def release_claims(self) -> None:
        """Several nodes share the database: a claim is left to expire, never released wholesale."""

    async def delivered(self, endpoint_id: str, event_id: str, *, at: str) -> None:
        await self._db.run(
            "WITH d AS (UPDATE webhook_deliveries SET state = 'delivered', delivered_at = %(at)s,"
            " attempts = attempts + 1, claimed_until = NULL, last_error = NULL"
            " WHERE endpoint_id = %(ep)s AND event_id = %(ev)s)"
            " UPDATE webhook_endpoints SET consecutive_failures = 0 WHERE id = %(ep)s",
            {"at": at, "ep": endpoint_id, "ev": event_id},
        )

    async def failed(
        self, endpoint_id: str, event_id: str, *, error: str, next_attempt_at: str | None, disable_after: int
    ) -> bool:
        r = await self._db.one(
            "WITH d AS (UPDATE webhook_deliveries SET attempts = attempts + 1, last_error = %(error)s,"
            " claimed_until = NULL, next_attempt_at = COALESCE(%(next)s, next_attempt_at),"
            " state = CASE WHEN %(next)s::text IS NULL THEN 'failed' ELSE 'pending' END"
            " WHERE endpoint_id = %(ep)s AND event_id = %(ev)s)"
            " UPDATE webhook_endpoints SET consecutive_failures = consecutive_failures + 1,"
            " state = CASE WHEN state = 'enabled' AND consecutive_failures + 1 >= %(limit)s THEN 'disabled'"
            " ELSE state END,"
            " disabled_reason = CASE WHEN state = 'enabled' AND consecutive_failures + 1 >= %(limit)s"
            " THEN (consecutive_failures + 1) || ' consecutive delivery failures; the last: ' || %(error)s"
            " ELSE disabled_reason END"
            " WHERE id = %(ep)s RETURNING state, consecutive_failures",
            {"error": error, "next": next_attempt_at, "ep": endpoint_id, "ev": event_id, "limit": disable_after},
        )
        return r is not None and r[0] == "disabled" and int(r[1]) == disable_after

    async def disable_endpoint(self, endpoint_id: str, reason: str, *, at: str) -> None:
        await self._db.run(
            "UPDATE webhook_endpoints SET state = 'disabled', disabled_reason = %s, updated_at = %s WHERE id = %s",
            (reason, at, endpoint_id),
        )

    async def recent_deliveries(
        self, endpoint_id: str, *, before: tuple[str, str] | None, limit: int
    ) -> list[DeliveryRecord]:
        where, args = "endpoint_id = %s", [endpoint_id]
        if before is not None:
            where += " AND (created_at, event_id) < (%s, %s)"
            args += list(before)
        sql = (
            f"SELECT {DELIVERY_RECORD_COLS} FROM webhook_deliveries WHERE {where}"
            " ORDER BY created_at DESC, event_id DESC LIMIT %s"
        )
        return [delivery_record(r) for r in await self._db.all(sql, [*args, limit])]

    async def delivery_state(self, endpoint_id: str, event_id: str) -> tuple[str, int, str | None] | None:
        r = await self._db.one(
            "SELECT state, attempts, last_error FROM webhook_deliveries WHERE endpoint_id = %s AND event_id = %s",
            (endpoint_id, event_id),
        )
        return (r[0], int(r[1]), r[2]) if r else None
