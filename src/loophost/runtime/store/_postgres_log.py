"""The statements that write a session and its log on PostgreSQL, each one statement (one round trip, atomic).

A commit is a single `WITH` statement run in autocommit mode: its first part updates the session row (the
compare-and-set on `revision` when one is expected, and `last_seq + n`), which locks the row until the statement
ends; every other part (history entries, idempotency record, processed marks, the events) reads that part's
`RETURNING`, so a stale or missing session writes nothing at all. Seqs are `last_seq - n + 1 .. last_seq` of the
locked row: writers on any number of nodes queue on the row lock, each sees the last seq the previous one
committed (READ COMMITTED re-reads a row it waited for), and the log stays gap-free and monotonic. The same
re-read makes the fence exact: a commit made under a lease that moved on while it waited matches no row.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from psycopg import errors

from .._errors import Conflict, LeaseLost, StaleWrite
from ._cluster import Fence
from ._postgres_db import nul_is_invalid
from ._postgres_webhooks import outbox_part
from ._records import IdempotencyRecord, NewEvent, SessionChange, SessionRow, StoredEvent, TokenCounts
from ._webhooks import OutboxEvent

if TYPE_CHECKING:
    from ._postgres_db import Connection

SESSION_COLS = (
    "workspace, id, agent_id, agent_version, environment_id, status, created_at, archived_at, revision, last_seq,"
    " body, internal, wants_worker, updated_at, input_tokens, output_tokens, cache_read_input_tokens,"
    " cache_creation_input_tokens"
)
EVENT_COLS = "seq, id, type, processed_at, body"

_EVENTS_FROM = (
    "unnest(%(event_ids)s::text[], %(event_types)s::text[], %(event_processed)s::text[], %(event_bodies)s::text[])"
    " WITH ORDINALITY AS u(id, type, processed_at, body, ord)"
)


def event_params(events: Sequence[NewEvent]) -> dict[str, Any]:
    return {
        "event_ids": [e.id for e in events],
        "event_types": [e.type for e in events],
        "event_processed": [e.processed_at for e in events],
        "event_bodies": [e.body for e in events],
    }


def insert_session(
    row: SessionRow, events: Sequence[NewEvent], webhooks: Sequence[OutboxEvent] = ()
) -> tuple[str, dict[str, Any]]:
    """The session row and its first events (seqs 1..n), and the outbox rows of `webhooks`."""
    params: dict[str, Any] = {
        "workspace": row.workspace,
        "id": row.id,
        "agent_id": row.agent_id,
        "agent_version": row.agent_version,
        "environment_id": row.environment_id,
        "status": row.status,
        "created_at": row.created_at,
        "archived_at": row.archived_at,
        "revision": row.revision,
        "last_seq": len(events),
        "body": row.body,
        "internal": row.internal,
        "wants_worker": row.wants_worker,
        "updated_at": row.updated_at,
    }
    columns = ", ".join(params)
    values = ", ".join(f"%({name})s" for name in params)
    insert = f"INSERT INTO sessions ({columns}) VALUES ({values})"
    if webhooks:
        outbox, outbox_params = outbox_part(webhooks, gate="s")
        params.update(outbox_params)
        parts = [f"s AS ({insert} RETURNING id)", f"w AS ({outbox})"]
        if events:
            params.update(event_params(events))
            parts.append(
                "e AS (INSERT INTO events (session_id, seq, id, type, processed_at, body)"
                f" SELECT s.id, u.ord, u.id, u.type, u.processed_at, u.body FROM s, {_EVENTS_FROM})"
            )
        return f"WITH {', '.join(parts)} SELECT 1 FROM s", params
    if not events:
        return insert, params
    params.update(event_params(events))
    sql = (
        f"WITH s AS ({insert} RETURNING id) "
        "INSERT INTO events (session_id, seq, id, type, processed_at, body) "
        f"SELECT s.id, u.ord, u.id, u.type, u.processed_at, u.body FROM s, {_EVENTS_FROM}"
    )
    return sql, params


def commit_session(
    session_id: str,
    *,
    expected_revision: int | None,
    change: SessionChange | None,
    events: Sequence[NewEvent],
    idempotency: tuple[str, str] | None,
    processed: tuple[Sequence[tuple[str, str]], str] | None,
    fence: Fence | None = None,
    ttl: float = 0.0,
) -> tuple[str, dict[str, Any]]:
    """The one statement of a commit; it returns the session's new (revision, last_seq), or no row when the
    session is gone, its revision is not `expected_revision`, or its lease is not `fence` (which the commit also
    renews for `ttl` seconds). `processed` carries the rewritten bodies. A commit that appends events notifies
    `loophost_events` with `<session id>:<last seq>` (delivered at COMMIT: a wake-up for other nodes' streams)."""
    params: dict[str, Any] = {"sid": session_id, "n": len(events)}
    sets = ["last_seq = last_seq + %(n)s"]
    if fence is not None:
        sets.append("lease_expires_at = now() + make_interval(secs => %(ttl)s)")
        params["ttl"] = ttl
    if change is not None:
        sets.append("revision = revision + 1")
        for column, value in (
            ("body", change.body),
            ("status", change.status),
            ("internal", change.internal),
            ("updated_at", change.updated_at),
            ("archived_at", change.archived_at),
            ("wants_worker", change.wants_worker),
        ):
            if value is not None:
                sets.append(f"{column} = %({column})s")
                params[column] = value
        if change.usage is not None:
            for column, added in zip(TokenCounts._fields, change.usage, strict=True):
                if added:
                    sets.append(f"{column} = {column} + %({column})s")
                    params[column] = added
    where = "id = %(sid)s"
    if expected_revision is not None:
        where += " AND revision = %(expected)s"
        params["expected"] = expected_revision
    if fence is not None:  # re-checked on the latest row version after a wait for its lock
        where += " AND lease_owner = %(fence_owner)s AND lease_epoch = %(fence_epoch)s"
        params["fence_owner"], params["fence_epoch"] = fence.owner, fence.epoch
    parts = [f"s AS (UPDATE sessions SET {', '.join(sets)} WHERE {where} RETURNING revision, last_seq)"]
    checkpoint = change.checkpoint if change is not None else None
    if checkpoint is not None and checkpoint.append:
        parts.append(
            "c AS (INSERT INTO checkpoint_entries (session_id, idx, body)"
            " SELECT %(sid)s, %(keep)s + u.ord - 1, u.body FROM s,"
            " unnest(%(entries)s::bytea[]) WITH ORDINALITY AS u(body, ord))"
        )
        params["keep"] = checkpoint.keep
        params["entries"] = list(checkpoint.append)
    if idempotency is not None:
        parts.append(
            "i AS (INSERT INTO idempotency (session_id, key, response) SELECT %(sid)s, %(ikey)s, %(iresponse)s FROM s)"
        )
        params["ikey"], params["iresponse"] = idempotency
    if change is not None and change.webhooks:
        outbox, outbox_params = outbox_part(change.webhooks, gate="s")
        parts.append(f"w AS ({outbox})")
        params.update(outbox_params)
    if processed is not None and processed[0]:
        rewrites, at = processed
        parts.append(
            "p AS (UPDATE events AS e SET processed_at = %(processed_at)s, body = u.body"
            " FROM s, unnest(%(processed_ids)s::text[], %(processed_bodies)s::text[]) AS u(id, body)"
            " WHERE e.session_id = %(sid)s AND e.id = u.id AND e.processed_at IS NULL)"
        )
        params["processed_at"] = at
        params["processed_ids"] = [event_id for event_id, _ in rewrites]
        params["processed_bodies"] = [body for _, body in rewrites]
    if events:
        parts.append(
            "e AS (INSERT INTO events (session_id, seq, id, type, processed_at, body)"
            f" SELECT %(sid)s, s.last_seq - %(n)s + u.ord, u.id, u.type, u.processed_at, u.body FROM s, {_EVENTS_FROM})"
        )
        params.update(event_params(events))
    notify = ", pg_notify('loophost_events', %(sid)s || ':' || last_seq)" if events else ""
    return f"WITH {', '.join(parts)} SELECT revision, last_seq{notify} FROM s", params


def stored_events(session_id: str, last_seq: int, events: Sequence[NewEvent]) -> list[StoredEvent]:
    first = last_seq - len(events) + 1
    return [StoredEvent(session_id, first + i, e.id, e.type, e.processed_at, e.body) for i, e in enumerate(events)]


def mark_processed(body: str, at: str) -> str:
    """The stored JSON of an event with `processed_at` set (as SQLite's `json_set` does: same keys, same order)."""
    document = json.loads(body)
    document["processed_at"] = at
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


async def run_commit(
    conn: Connection,
    session_id: str,
    *,
    expected_revision: int | None,
    change: SessionChange | None,
    events: Sequence[NewEvent],
    idempotency: IdempotencyRecord | None,
    processed: tuple[Sequence[str], str] | None,
    fence: Fence | None,
    ttl: float,
    then_commit: bool = False,
) -> tuple[int, list[StoredEvent]]:
    """A commit on `conn` (a pooled connection, or a transaction holding the session's row): the processed
    inputs' bodies are read and rewritten first, then the one statement runs (with `then_commit`, followed by
    COMMIT in the same round trip: it ends the transaction `conn` is in). The new revision and the events with
    their seqs; `StaleWrite` (`LeaseLost` for a fence that moved on) when it matched no row."""
    rewrites: tuple[list[tuple[str, str]], str] | None = None
    if processed is not None and processed[0]:
        ids, at = processed
        cur = await conn.execute(
            "SELECT id, body FROM events WHERE session_id = %s AND id = ANY(%s::text[]) AND processed_at IS NULL",
            (session_id, list(ids)),
        )
        rewrites = ([(event_id, mark_processed(body, at)) for event_id, body in await cur.fetchall()], at)
    sql, params = commit_session(
        session_id,
        expected_revision=expected_revision,
        change=change,
        events=events,
        idempotency=(idempotency.key, idempotency.response) if idempotency is not None else None,
        processed=rewrites,
        fence=fence,
        ttl=ttl,
    )
    try:
        with nul_is_invalid(params):
            if then_commit:
                async with conn.pipeline():
                    cur = await conn.execute(sql, params)
                    await conn.execute("COMMIT")
            else:
                cur = await conn.execute(sql, params)
    except errors.UniqueViolation as exc:
        raise commit_conflict(session_id, change, exc) from exc
    row = await cur.fetchone()
    if row is None:
        await raise_stale(conn, session_id, expected_revision, fence)
    assert row is not None
    revision, last_seq = int(row[0]), int(row[1])
    return revision, stored_events(session_id, last_seq, events)


def commit_conflict(session_id: str, change: SessionChange | None, exc: errors.UniqueViolation) -> Exception:
    """The error a commit's unique violation means: a used idempotency key, or a history position another writer
    took; anything else (an event id used twice) as it is."""
    constraint = exc.diag.constraint_name
    if constraint == "idempotency_pkey":
        return Conflict("idempotency key already used", code="idempotent_replay")
    if constraint == "checkpoint_entries_pkey" and change is not None and change.checkpoint is not None:
        keep = change.checkpoint.keep
        return StaleWrite(f"session {session_id}'s history already has an entry at {keep}")
    return exc


async def raise_stale(conn: Connection, session_id: str, expected: int | None, fence: Fence | None) -> None:
    """The commit matched no row: say whether the session is gone, its lease moved on, or it changed."""
    cur = await conn.execute("SELECT revision, lease_owner, lease_epoch FROM sessions WHERE id = %s", (session_id,))
    row = await cur.fetchone()
    if row is None:
        raise StaleWrite(f"session {session_id} no longer exists", code="session_gone")
    if fence is not None and (row[1], row[2]) != (fence.owner, fence.epoch):
        raise LeaseLost(
            f"session {session_id}'s lease moved on (held by {row[1]} at epoch {row[2]}; this write had epoch"
            f" {fence.epoch})"
        )
    raise StaleWrite(f"session {session_id} changed concurrently (revision {row[0]}; expected {expected})")


SESSION_TABLES = ("events", "idempotency", "checkpoint_entries", "session_resources")


async def delete_session(conn: Connection, session_id: str, webhooks: Sequence[OutboxEvent] = ()) -> int:
    """Delete the session's row, then what hangs off it (the row first: its lock waits for a commit in flight on
    any node, and a later one finds it gone), and write the outbox rows of `webhooks`; the rows the first delete
    removed. Notifies `loophost_events` with `<session id>:<last seq + 1>:deleted`, so other nodes end the
    session's streams."""
    cur = await conn.execute(
        "WITH d AS (DELETE FROM sessions WHERE id = %(sid)s RETURNING last_seq)"
        " SELECT pg_notify('loophost_events', %(sid)s || ':' || (last_seq + 1) || ':deleted') FROM d",
        {"sid": session_id},
    )
    if await cur.fetchone() is None:
        return 0
    for table in SESSION_TABLES:
        await conn.execute(f"DELETE FROM {table} WHERE session_id = %s", (session_id,))
    if webhooks:
        outbox, params = outbox_part(webhooks, gate=None)
        await conn.execute(outbox, params)
    return 1
