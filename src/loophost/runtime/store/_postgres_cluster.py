"""`PostgresCluster`: session leases, the cross-node session lock and wake-ups, on the `sessions` row and
LISTEN/NOTIFY (the `Cluster` of `_cluster.py`).

- A lease is three columns of the session's row: `lease_owner` (a node id, random per process), `lease_epoch`
  (moved on by every claim) and `lease_expires_at` (the database's clock: nodes' clocks never compare). A claim
  is one UPDATE that succeeds only while nobody holds a live lease. A sweep finds the sessions that want a worker
  and have no live owner; each is then claimed by the worker it wakes, one UPDATE each, so a claim never races a
  worker of the same node (nodes sweeping at once: one claim wins, the others tell the winner).
- Renewal runs on a thread with its own synchronous connection (`LeaseKeeper`), every TTL/3, one UPDATE for all
  the leases this node holds: a turn that keeps the event loop busy cannot starve it. Rows another transaction
  has locked are skipped (not waited for) and retried at the next round. A lease this node could not renew in
  time by its own monotonic clock is lost, whether or not another node took it yet: the worker stops, so a node
  paused past its TTL (SIGSTOP) finds its leases gone when it resumes, and its writes are fenced out anyway.
- `hold` is a transaction that locked the session's row (BEGIN and the `SELECT ... FOR UPDATE` in one round
  trip). A commit inside it is the statement and COMMIT in one round trip, which ends the transaction; the commit
  listeners hear its events then. If that round trip's connection fails, the outcome is checked (the row is locked
  again, which waits for the old transaction to end, then the first event's id is looked up); what cannot be
  checked is `Unavailable`. A hold that wrote nothing rolls back; a deletion commits when the hold ends.
- Notices: commits notify `loophost_events` with `<session>:<last seq>` (a delete with `<session>:<seq>:deleted`,
  the seq its `session.deleted` would have); a node whose claim finds a live owner
  notifies `loophost_wake` with `<owner>:<session>:<0|1 interrupt>`. One dedicated connection LISTENs to both and
  reconnects when it drops, then says `reconnected` (the listener catches up from the log).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg
from psycopg import AsyncConnection

from .._errors import StaleWrite, Unavailable
from . import _postgres_log as log
from ._cluster import Fence, Lease, Notice
from ._postgres_db import CONNECTION_ERRORS, Connection, Database, has_nul, unavailable
from ._records import IdempotencyRecord, NewEvent, SessionChange, SessionRow, StoredEvent
from ._sql import session_row
from ._webhooks import OutboxEvent

if TYPE_CHECKING:
    from ._postgres import PostgresStore

_log = logging.getLogger("loophost.runtime.cluster")
T = TypeVar("T")

_SET_LEASE = (
    "lease_owner = %(me)s, lease_epoch = lease_epoch + 1, lease_expires_at = now() + make_interval(secs => %(ttl)s)"
)
_CLAIM = (
    f"WITH c AS (UPDATE sessions SET {_SET_LEASE} WHERE id = %(sid)s"
    " AND (lease_owner IS NULL OR lease_owner = %(me)s OR lease_expires_at < now()) RETURNING lease_epoch)"
    " SELECT (SELECT lease_epoch FROM c), lease_owner FROM sessions WHERE id = %(sid)s"
)
_SWEEP = (
    "SELECT id FROM sessions WHERE wants_worker AND (lease_owner IS NULL OR lease_expires_at < now())"
    " AND NOT (id = ANY(%(busy)s::text[])) ORDER BY created_at, id LIMIT %(limit)s"
)
_RELEASE = (
    "UPDATE sessions SET lease_owner = NULL, lease_expires_at = NULL"
    " WHERE id = %s AND lease_owner = %s AND lease_epoch = %s"
)
_RENEW = (
    "UPDATE sessions SET lease_expires_at = now() + make_interval(secs => %(ttl)s) WHERE id IN (SELECT id FROM sessions"
    " WHERE id = ANY(%(ids)s::text[]) AND lease_owner = %(me)s AND lease_expires_at > now() FOR UPDATE SKIP LOCKED)"
    " RETURNING id, lease_epoch"
)
_HOLD = f"SELECT {log.SESSION_COLS}, lease_owner, lease_epoch FROM sessions WHERE id = %s FOR UPDATE"
EVENTS_CHANNEL = "loophost_events"
WAKE_CHANNEL = "loophost_wake"


class PostgresCluster:
    """The leases and notices of one node (one store). Started by the runtime (`start`), closed with the store."""

    def __init__(self, db: Database, store: PostgresStore, *, ttl: float) -> None:
        self._db = db
        self._store = store
        self.node_id = secrets.token_hex(8)
        self.ttl = ttl
        self._keeper = LeaseKeeper(db, self.node_id, ttl)

    async def start(self, on_lost: Callable[[Lease], None]) -> None:
        self._keeper.start(asyncio.get_running_loop(), on_lost)

    async def close(self) -> None:
        await asyncio.to_thread(self._keeper.stop)

    # leases -------------------------------------------------------------------------------------------------
    async def claim(self, session_id: str) -> Lease | str | None:
        if has_nul((session_id,)):
            return None
        sent = time.monotonic()
        row = await self._db.one(_CLAIM, {"sid": session_id, "me": self.node_id, "ttl": self.ttl})
        if row is None:
            return None
        epoch, owner = row
        if epoch is None:
            return str(owner) if owner is not None else None
        lease = Lease(session_id, Fence(self.node_id, int(epoch)))
        self._keeper.add(lease, sent + self.ttl)
        return lease

    async def sweep(self, limit: int, busy: Sequence[str]) -> list[str]:
        return [str(r[0]) for r in await self._db.all(_SWEEP, {"busy": list(busy), "limit": limit})]

    async def release(self, lease: Lease) -> None:
        self._keeper.remove(lease)
        async with self._db.connection() as conn:
            await conn.execute(_RELEASE, (lease.session_id, lease.fence.owner, lease.fence.epoch))

    def valid(self, lease: Lease) -> bool:
        return self._keeper.valid(lease)

    # notices ------------------------------------------------------------------------------------------------
    async def wake_owner(self, owner: str, session_id: str, interrupt: bool) -> None:
        async with self._db.connection() as conn:
            await conn.execute("SELECT pg_notify(%s, %s)", (WAKE_CHANNEL, f"{owner}:{session_id}:{int(interrupt)}"))

    async def notices(self) -> AsyncGenerator[Notice, None]:
        delay = 0.05
        connected_before = False
        while True:
            try:
                conn = await AsyncConnection.connect(self._db.url, autocommit=True)
            except CONNECTION_ERRORS:
                await asyncio.sleep(delay)
                delay = min(delay * 2, max(self.ttl / 3, 0.2))
                continue
            try:
                await conn.execute(f"LISTEN {EVENTS_CHANNEL}")
                await conn.execute(f"LISTEN {WAKE_CHANNEL}")
                delay = 0.05
                if connected_before:
                    yield Notice("reconnected")
                connected_before = True
                async for note in conn.notifies():
                    notice = self._parse(note.channel, note.payload)
                    if notice is not None:
                        yield notice
            except CONNECTION_ERRORS:
                _log.warning("the notice connection dropped; reconnecting")
            finally:
                with contextlib.suppress(Exception):
                    await conn.close()

    def _parse(self, channel: str, payload: str) -> Notice | None:
        try:
            if channel == EVENTS_CHANNEL:
                session_id, seq, *deleted = payload.split(":")
                return Notice("deleted" if deleted else "events", session_id, int(seq))
            owner, session_id, interrupt = payload.split(":")
        except ValueError:
            return None
        if owner != self.node_id:
            return None
        return Notice("wake", session_id, interrupt=interrupt == "1")

    # the cross-node session lock --------------------------------------------------------------------------
    @asynccontextmanager
    async def hold(self, session_id: str) -> AsyncIterator[Held]:
        for attempt in range(self._db.read_attempts):
            async with self._db.connection() as conn:
                try:  # locking the row writes nothing: a dropped connection is retried on another
                    r = await _lock_row(conn, session_id)
                except CONNECTION_ERRORS:
                    await _discard(conn)
                    if attempt < self._db.read_attempts - 1:
                        continue
                    raise
                row = session_row(r[:-2]) if r is not None else None
                fence = Fence(r[-2], int(r[-1])) if r is not None and r[-2] is not None else None
                held = Held(self, conn, session_id, row, fence)
                try:
                    yield held
                except BaseException as exc:
                    if held.committed:
                        raise
                    if isinstance(exc, asyncio.CancelledError) and held.wrote and not held.failed:
                        await _settled(self._finish(conn, held))  # what was written commits; the cancellation goes on
                    else:
                        await _rollback(conn)
                    raise
                if held.committed:
                    return
                if held.failed or not held.wrote:
                    await _rollback(conn)
                else:
                    await _settled(self._finish(conn, held))
                return

    async def _finish(self, conn: Connection, held: Held) -> None:
        """COMMIT what the hold wrote without committing it (a deletion)."""
        try:
            await conn.execute("COMMIT")
        except CONNECTION_ERRORS as exc:
            raise unavailable(exc) from exc
        held.committed = True

    async def committed(self, session_id: str, event_id: str) -> tuple[int, int] | None:
        """Whether a commit whose COMMIT got no answer committed, by its first event: (the session's revision, the
        event's seq), or None. Asked once the session's row lock is free (the old transaction has ended)."""
        async with self._db.connection() as conn, conn.transaction():
            cur = await conn.execute("SELECT revision FROM sessions WHERE id = %s FOR UPDATE", (session_id,))
            session = await cur.fetchone()
            cur = await conn.execute("SELECT seq FROM events WHERE id = %s", (event_id,))
            event = await cur.fetchone()
            return (int(session[0]), int(event[0])) if session is not None and event is not None else None


class Held:
    """A session's row locked by a transaction of this node (`PostgresCluster.hold`)."""

    def __init__(
        self, cluster: PostgresCluster, conn: Connection, session_id: str, row: SessionRow | None, fence: Fence | None
    ) -> None:
        self._cluster = cluster
        self._conn = conn
        self.session_id = session_id
        self.row = row
        self.fence = fence
        self.wrote = False
        self.failed = False
        self.committed = False

    async def commit_session(
        self,
        *,
        expected_revision: int | None,
        change: SessionChange | None = None,
        events: Sequence[NewEvent] = (),
        idempotency: IdempotencyRecord | None = None,
        processed: tuple[Sequence[str], str] | None = None,
        fence: Fence | None = None,
    ) -> tuple[int, list[StoredEvent]]:
        """The commit ends the hold's transaction (COMMIT in the same round trip as the statement), and the commit
        listeners hear its events; if that round trip's connection fails, whether it committed is found out."""
        try:
            revision, stored = await self._write(
                log.run_commit(
                    self._conn,
                    self.session_id,
                    expected_revision=expected_revision,
                    change=change,
                    events=events,
                    idempotency=idempotency,
                    processed=processed,
                    fence=fence,
                    ttl=self._cluster.ttl,
                    then_commit=True,
                )
            )
        except Unavailable:
            found = await self._cluster.committed(self.session_id, events[0].id) if events else None
            if found is None:
                raise
            revision, first = found
            stored = log.stored_events(self.session_id, first + len(events) - 1, events)
        self.committed = True
        self._cluster._store._publish(stored)
        return revision, stored

    async def delete_session(self, workspace: str, *, webhooks: Sequence[OutboxEvent] = ()) -> bool:
        if self.row is None or self.row.workspace != workspace:
            return False
        await self._write(log.delete_session(self._conn, self.session_id, webhooks))
        return True

    async def _write(self, write: Coroutine[Any, Any, T]) -> T:
        if self.failed or self.committed:
            write.close()
            raise StaleWrite(f"session {self.session_id}'s transaction has ended; it writes nothing more")
        try:
            result = await write
        except BaseException as exc:
            self.failed = True  # the transaction is aborted: it rolls back when the hold ends
            if isinstance(exc, CONNECTION_ERRORS):
                raise unavailable(exc) from exc
            raise
        self.wrote = True
        return result


class LeaseKeeper:
    """Renews this node's leases from a thread of its own (see the module docstring)."""

    def __init__(self, db: Database, node_id: str, ttl: float) -> None:
        self._db = db
        self._node_id = node_id
        self._ttl = ttl
        self._leases: dict[str, tuple[int, float]] = {}  # session id -> (epoch, valid until, monotonic)
        self._mutex = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._on_lost: Callable[[Lease], None] | None = None

    def start(self, loop: asyncio.AbstractEventLoop, on_lost: Callable[[Lease], None]) -> None:
        if self._thread is None:
            self._loop, self._on_lost = loop, on_lost
            self._thread = threading.Thread(target=self._run, name="loophost-leases", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()

    def add(self, lease: Lease, valid_until: float) -> None:
        with self._mutex:
            self._leases[lease.session_id] = (lease.fence.epoch, valid_until)

    def remove(self, lease: Lease) -> None:
        with self._mutex:
            held = self._leases.get(lease.session_id)
            if held is not None and held[0] == lease.fence.epoch:
                del self._leases[lease.session_id]

    def valid(self, lease: Lease) -> bool:
        with self._mutex:
            held = self._leases.get(lease.session_id)
        return held is not None and held[0] == lease.fence.epoch and time.monotonic() < held[1]

    def _run(self) -> None:
        conn: psycopg.Connection[tuple[Any, ...]] | None = None
        try:
            while not self._stopping.wait(self._ttl / 3):
                conn = self._renew(conn)
        finally:
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()

    def _renew(self, conn: psycopg.Connection[tuple[Any, ...]] | None) -> psycopg.Connection[tuple[Any, ...]] | None:
        with self._mutex:
            held = {session_id: epoch for session_id, (epoch, _) in self._leases.items()}
        lost: list[Lease] = []
        if held:
            sent = time.monotonic()
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(
                        self._db.url,
                        autocommit=True,
                        connect_timeout=max(2, round(self._ttl)),
                        options=f"{self._db.session_options()} -c statement_timeout={max(100, round(self._ttl * 300))}",
                    )
                params = {"ids": list(held), "me": self._node_id, "ttl": self._ttl}
                renewed = {str(sid): int(epoch) for sid, epoch in conn.execute(_RENEW, params).fetchall()}
                missing = [sid for sid, epoch in held.items() if renewed.get(sid) != epoch]
                if missing:  # locked by a transaction (skipped: next round), or moved on
                    rows = conn.execute(
                        "SELECT id, lease_owner, lease_epoch FROM sessions WHERE id = ANY(%s::text[])", (missing,)
                    ).fetchall()
                    current = {str(sid): (owner, int(epoch)) for sid, owner, epoch in rows}
                    lost += [
                        Lease(sid, Fence(self._node_id, held[sid]))
                        for sid in missing
                        if current.get(sid) != (self._node_id, held[sid])
                    ]
                with self._mutex:
                    for session_id, epoch in renewed.items():
                        entry = self._leases.get(session_id)
                        if entry is not None and entry[0] == epoch:
                            self._leases[session_id] = (epoch, max(entry[1], sent + self._ttl))
            except psycopg.Error as exc:
                _log.warning("could not renew leases: %s", exc)
                if conn is not None:
                    with contextlib.suppress(Exception):
                        conn.close()
                conn = None
        now = time.monotonic()
        with self._mutex:
            lost += [
                Lease(sid, Fence(self._node_id, epoch)) for sid, (epoch, until) in self._leases.items() if until <= now
            ]
            for lease in lost:
                entry = self._leases.get(lease.session_id)
                if entry is not None and entry[0] == lease.fence.epoch:
                    del self._leases[lease.session_id]
        for lease in lost:
            self._report(lease)
        return conn

    def _report(self, lease: Lease) -> None:
        loop, on_lost = self._loop, self._on_lost
        if loop is None or on_lost is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is left to tell
            loop.call_soon_threadsafe(on_lost, lease)


async def _lock_row(conn: Connection, session_id: str) -> tuple[Any, ...] | None:
    if has_nul((session_id,)):
        await conn.execute("BEGIN")
        return None
    async with conn.pipeline():
        await conn.execute("BEGIN")
        cur = await conn.execute(_HOLD, (session_id,))
    return await cur.fetchone()


async def _rollback(conn: Connection) -> None:
    """End the transaction without writing; a connection that cannot is closed (the pool then drops it)."""
    try:
        await conn.execute("ROLLBACK")
    except Exception:
        await _discard(conn)


async def _discard(conn: Connection) -> None:
    with contextlib.suppress(Exception):
        await conn.close()


async def _settled(write: Coroutine[Any, Any, None]) -> None:
    """Run `write` to its end even if the caller is cancelled meanwhile; then let the cancellation through."""
    task = asyncio.ensure_future(write)
    cancelled = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            cancelled = True
    task.result()
    if cancelled:
        raise asyncio.CancelledError
