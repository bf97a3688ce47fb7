"""`SQLiteWebhookStore`: webhook endpoints and the delivery outbox on the SQLite store's engine."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from ._records import StoredEvent
from ._sqlite_engine import SQLiteEngine
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
_OUTBOX = (
    "INSERT INTO webhook_deliveries"
    " (endpoint_id, event_id, workspace, type, created_at, payload, state, attempts, next_attempt_at)"
    " SELECT id, ?, workspace, ?, ?, ?, 'pending', 0, ? FROM webhook_endpoints"
    " WHERE workspace = ? AND state = 'enabled' AND EXISTS (SELECT 1 FROM json_each(enabled_events) WHERE value = ?)"
    " ON CONFLICT DO NOTHING"
)


def write_outbox(conn: sqlite3.Connection, events: Sequence[OutboxEvent]) -> None:
    """Inside the caller's transaction: one pending delivery per subscribed, enabled endpoint (none: nothing)."""
    if events:
        conn.executemany(
            _OUTBOX, [(e.id, e.type, e.created_at, e.payload, e.created_at, e.workspace, e.type) for e in events]
        )


class SQLiteWebhookStore:
    """See `WebhookStore`. Claims are single `UPDATE … RETURNING`s on the one writer."""

    def __init__(self, engine: SQLiteEngine) -> None:
        self._engine = engine

    async def _write(self, sql: str, args: Sequence[Any]) -> int:
        def fn(conn: sqlite3.Connection) -> tuple[int, Sequence[StoredEvent]]:
            return conn.execute(sql, args).rowcount, ()

        return await self._engine.write(fn)

    async def _all(self, sql: str, args: Sequence[Any]) -> list[tuple[Any, ...]]:
        def fn(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
            return list(conn.execute(sql, args).fetchall())

        return await self._engine.read(fn)

    async def insert_endpoint(self, row: WebhookEndpointRow) -> None:
        await self._write(
            f"INSERT INTO webhook_endpoints ({_ENDPOINT_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
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
        rows = await self._all(
            f"SELECT {_ENDPOINT_COLS} FROM webhook_endpoints WHERE id = ? AND workspace = ?", (endpoint_id, workspace)
        )
        return endpoint_row(rows[0]) if rows else None

    async def list_endpoints(
        self, workspace: str, *, after: tuple[str, str] | None, descending: bool, limit: int
    ) -> list[WebhookEndpointRow]:
        where, args = "workspace = ?", [workspace]
        if after is not None:
            where += f" AND (created_at, id) {'<' if descending else '>'} (?, ?)"
            args += list(after)
        order = "DESC" if descending else "ASC"
        sql = (
            f"SELECT {_ENDPOINT_COLS} FROM webhook_endpoints WHERE {where}"
            f" ORDER BY created_at {order}, id {order} LIMIT ?"
        )
        return [endpoint_row(r) for r in await self._all(sql, [*args, limit])]

    async def count_endpoints(self, workspace: str) -> int:
        rows = await self._all("SELECT COUNT(*) FROM webhook_endpoints WHERE workspace = ?", (workspace,))
        return int(rows[0][0])

    async def endpoint_workspaces(self) -> set[str]:
        return {str(r[0]) for r in await self._all("SELECT DISTINCT workspace FROM webhook_endpoints", ())}

    async def update_endpoint(self, row: WebhookEndpointRow) -> bool:
        changed = await self._write(
            "UPDATE webhook_endpoints SET url = ?, enabled_events = ?, state = ?, disabled_reason = ?, name = ?,"
            " description = ?, updated_at = ?, secret = ?,"
            " consecutive_failures = CASE WHEN ? = 'enabled' THEN 0 ELSE consecutive_failures END"
            " WHERE id = ? AND workspace = ?",
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
        def fn(conn: sqlite3.Connection) -> tuple[bool, Sequence[StoredEvent]]:
            cur = conn.execute("DELETE FROM webhook_endpoints WHERE id = ? AND workspace = ?", (endpoint_id, workspace))
            if cur.rowcount != 1:
                return False, ()
            conn.execute("DELETE FROM webhook_deliveries WHERE endpoint_id = ?", (endpoint_id,))
            return True, ()

        return await self._engine.write(fn)

    async def add_events(self, events: Sequence[OutboxEvent]) -> None:
        def fn(conn: sqlite3.Connection) -> tuple[None, Sequence[StoredEvent]]:
            write_outbox(conn, events)
            return None, ()

        await self._engine.write(fn)

    async def claim_deliveries(self, *, now: str, claimed_until: str, limit: int) -> list[DeliveryRow]:
        def fn(conn: sqlite3.Connection) -> tuple[list[DeliveryRow], Sequence[StoredEvent]]:
            claimed = conn.execute(
                "UPDATE webhook_deliveries SET claimed_until = ? WHERE rowid IN ("
                " SELECT d.rowid FROM webhook_deliveries AS d JOIN webhook_endpoints AS e ON e.id = d.endpoint_id"
                " WHERE d.state = 'pending' AND d.next_attempt_at <= ? AND e.state = 'enabled'"
                " AND (d.claimed_until IS NULL OR d.claimed_until < ?) ORDER BY d.next_attempt_at LIMIT ?)"
                " RETURNING endpoint_id, event_id, workspace, type, created_at, payload, attempts",
                (claimed_until, now, now, limit),
            ).fetchall()
            if not claimed:
                return [], ()
            ids = sorted({r[0] for r in claimed})
            marks = ",".join("?" * len(ids))
            found = conn.execute(f"SELECT id, url, secret FROM webhook_endpoints WHERE id IN ({marks})", ids)
            endpoints = {i: (url, bytes(secret)) for i, url, secret in found.fetchall()}
            rows = [delivery_row(r, *endpoints[r[0]]) for r in claimed]
            return sorted(rows, key=lambda d: (d.created_at, d.event_id)), ()

        return await self._engine.write(fn)

    async def release_claims(self) -> None:
        await self._write("UPDATE webhook_deliveries SET claimed_until = NULL WHERE claimed_until IS NOT NULL", ())

    async def delivered(self, endpoint_id: str, event_id: str, *, at: str) -> None:
        def fn(conn: sqlite3.Connection) -> tuple[None, Sequence[StoredEvent]]:
            conn.execute(
                "UPDATE webhook_deliveries SET state = 'delivered', delivered_at = ?, attempts = attempts + 1,"
                " claimed_until = NULL, last_error = NULL WHERE endpoint_id = ? AND event_id = ?",
                (at, endpoint_id, event_id),
            )
            conn.execute("UPDATE webhook_endpoints SET consecutive_failures = 0 WHERE id = ?", (endpoint_id,))
            return None, ()

        await self._engine.write(fn)

    async def failed(
        self, endpoint_id: str, event_id: str, *, error: str, next_attempt_at: str | None, disable_after: int
    ) -> bool:
        def fn(conn: sqlite3.Connection) -> tuple[bool, Sequence[StoredEvent]]:
            conn.execute(
                "UPDATE webhook_deliveries SET attempts = attempts + 1, last_error = ?, claimed_until = NULL,"
                " next_attempt_at = COALESCE(?, next_attempt_at),"
                " state = CASE WHEN ? IS NULL THEN 'failed' ELSE 'pending' END"
                " WHERE endpoint_id = ? AND event_id = ?",
                (error, next_attempt_at, next_attempt_at, endpoint_id, event_id),
            )
            r = conn.execute(
                "UPDATE webhook_endpoints SET consecutive_failures = consecutive_failures + 1 WHERE id = ?"
                " RETURNING consecutive_failures, state",
                (endpoint_id,),
            ).fetchone()
            if r is None or r[1] != "enabled" or int(r[0]) < disable_after:
                return False, ()
            conn.execute(
                "UPDATE webhook_endpoints SET state = 'disabled', disabled_reason = ? WHERE id = ?",
                (f"{int(r[0])} consecutive delivery failures; the last: {error}", endpoint_id),
            )
            return True, ()

        return await self._engine.write(fn)

    async def disable_endpoint(self, endpoint_id: str, reason: str, *, at: str) -> None:
        await self._write(
            "UPDATE webhook_endpoints SET state = 'disabled', disabled_reason = ?, updated_at = ? WHERE id = ?",
            (reason, at, endpoint_id),
        )

    async def recent_deliveries(
        self, endpoint_id: str, *, before: tuple[str, str] | None, limit: int
    ) -> list[DeliveryRecord]:
        where, args = "endpoint_id = ?", [endpoint_id]
        if before is not None:
            where += " AND (created_at, event_id) < (?, ?)"
            args += list(before)
        sql = (
            f"SELECT {DELIVERY_RECORD_COLS} FROM webhook_deliveries WHERE {where}"
            " ORDER BY created_at DESC, event_id DESC LIMIT ?"
        )
        return [delivery_record(r) for r in await self._all(sql, [*args, limit])]

    async def delivery_state(self, endpoint_id: str, event_id: str) -> tuple[str, int, str | None] | None:
        rows = await self._all(
            "SELECT state, attempts, last_error FROM webhook_deliveries WHERE endpoint_id = ? AND event_id = ?",
            (endpoint_id, event_id),
        )
        return (rows[0][0], int(rows[0][1]), rows[0][2]) if rows else None
