"""The work queue of self-hosted environments: how a session's built-in tools reach the machine that runs them.

A session on a `self_hosted` environment gets a work item when it is created, and again when input reaches it
(or the turn engine parks on calls for a worker) while it has no live item. A worker polls its environment's
queue with an environment key, acknowledges the item, heartbeats its lease, serves the session (it runs the
calls and posts `user.tool_result`), and stops the item.

    queued --poll--> (pending: polled, not acknowledged; handed out again after `reclaim_older_than_ms`)
    queued --ack--> starting --first heartbeat--> active --stop {}--> stopping --next heartbeat tells the worker
    any live state --stop {"force": true}--> stopped

Promises (tests/runtime/test_work.py, tests/server/test_work_api.py):
- a session has at most one live item (the store's unique index), and a poll hands an item to one worker only;
- a heartbeat is a compare-and-set on the last one: the first sends `NO_HEARTBEAT`, each later one echoes the
  previous answer's `last_heartbeat` byte for byte, and anything else is `PreconditionFailed` (HTTP 412) with the
  lease as the server holds it;
- an item whose lease runs out (its worker died) is queued again for another worker, and the worker calls its
  session was waiting for are answered as interrupted: a call that may have run is never run twice;
- environment keys and sessions tokens are stored as hashes only.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Literal, Protocol

from .. import wire
from ._clock import now, rfc3339
from ._core import RuntimeConfig
from ._cursors import check_limit, cut_page, decode, keyset
from ._errors import Conflict, InvalidRequest, NotFound, PreconditionFailed
from ._ids import new_id
from .store import EnvironmentKeyRow, Store, WorkRow

log = logging.getLogger("loophost.runtime")

ENVIRONMENT_KEY_PREFIX = "lhe-"
SESSIONS_TOKEN_PREFIX = "lhs-"
LIVE_STATES = ("queued", "starting", "active", "stopping")
LEASED_STATES = ("starting", "active", "stopping")
MIN_TTL, MAX_TTL = 10, 600
POLLERS_WINDOW = timedelta(seconds=30)
_CAS_ATTEMPTS = 20

LEASE_LOST_MESSAGE = (
    "The worker running this tool call stopped answering (its work item's lease expired) before it posted a "
    "result; the call was not run again, to avoid repeating its side effects."
)


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Caller:
    """Who a request comes from, when it is not an API key: an environment key (its environment's queue and
    sessions) or a work item's sessions token (that item's lifecycle and its session, while it is held)."""

    kind: Literal["environment_key", "sessions_token"]
    workspace: str
    environment_id: str
    session_id: str | None = None
    work_id: str | None = None
    holds_session: bool = False
    """For a sessions token: whether its item is acknowledged and not stopped (only then may it use the session)."""

    def may_use_session(self, environment_id: str, session_id: str) -> bool:
        if self.kind == "environment_key":
            return environment_id == self.environment_id
        return self.holds_session and session_id == self.session_id

    def may_use_item(self, environment_id: str, work_id: str) -> bool:
        if self.kind == "environment_key":
            return environment_id == self.environment_id
        return environment_id == self.environment_id and work_id == self.work_id


class WorkSessions(Protocol):
    """What the queue needs of the sessions it serves (`Runtime` is one)."""

    async def open_worker_calls(self, workspace: str, session_id: str) -> list[str]:
        """The tool-use event ids the session waits on a worker for (empty when none, or the session is gone)."""
        ...

    async def interrupt_worker_calls(self, workspace: str, session_id: str, message: str) -> None:
        """Answer every call the session waits on a worker for with an error result saying `message`."""
        ...


def _secret_payload(token: str) -> str:
    """The `secret` of a polled item: URL-safe base64 (unpadded) JSON carrying the item's sessions token."""
    raw = json.dumps({"sessions_token": token}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _work(row: WorkRow, *, secret: str | None = None) -> wire.Work:
    return wire.Work(
        id=row.id,
        environment_id=row.environment_id,
        data=wire.WorkData(type=row.data_type, id=row.session_id),
        metadata=json.loads(row.metadata),
        state=row.state,
        secret=secret,
        created_at=row.created_at,
        acknowledged_at=row.acknowledged_at,
        started_at=row.started_at,
        latest_heartbeat_at=row.latest_heartbeat_at,
        stop_requested_at=row.stop_requested_at,
        stopped_at=row.stopped_at,
    )


class WorkQueue:
    """The queues of every self-hosted environment of the runtime, and their keys (see the module docstring).

    Polls block in-process until an item arrives (at most `block_ms`); items enqueued by another node are seen by
    the next poll. A sweeper task owned here (started by `open`, cancelled by `close`) takes back the leases of
    workers that stopped heartbeating."""

    def __init__(self, store: Store, config: RuntimeConfig, sessions: WorkSessions) -> None:
        self._store = store
        self._config = config
        self._sessions = sessions
        self._arrivals: dict[str, asyncio.Future[None]] = {}
        self._sweeper: asyncio.Task[None] | None = None

    @property
    def lease_seconds(self) -> int:
        return self._config.work_lease_seconds

    # lifecycle -----------------------------------------------------------------------------------------------
    def open(self) -> None:
        if self._sweeper is None:
            self._sweeper = asyncio.create_task(self._sweep(), name="loophost-work-leases")

    async def close(self) -> None:
        task, self._sweeper = self._sweeper, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        for future in self._arrivals.values():
            future.cancel()
        self._arrivals.clear()

    async def _sweep(self) -> None:
        interval = max(0.2, min(5.0, self.lease_seconds / 4))
        while True:
            await asyncio.sleep(interval)
            try:
                await self.expire_leases()
            except Exception:
                log.exception("taking back expired work leases failed")

    # credentials ---------------------------------------------------------------------------------------------
    async def create_key(self, workspace: str, environment_id: str) -> wire.EnvironmentKeyCreated:
        await self._environment(workspace, environment_id)
        secret = ENVIRONMENT_KEY_PREFIX + secrets.token_urlsafe(32)
        row = EnvironmentKeyRow(workspace, new_id("ekey"), environment_id, secret_hash(secret), rfc3339(now()))
        await self._store.work.insert_environment_key(row)
        return wire.EnvironmentKeyCreated(
            id=row.id, environment_id=environment_id, created_at=row.created_at, key=secret
        )

    async def list_keys(self, workspace: str, environment_id: str) -> wire.CursorPage[wire.EnvironmentKey]:
        await self._environment(workspace, environment_id, self_hosted=False)
        rows = await self._store.work.list_environment_keys(workspace, environment_id)
        data = [wire.EnvironmentKey(id=r.id, environment_id=r.environment_id, created_at=r.created_at) for r in rows]
        return wire.CursorPage[wire.EnvironmentKey](data=data, next_page=None)

    async def delete_key(self, workspace: str, environment_id: str, key_id: str) -> wire.Deleted:
        await self._environment(workspace, environment_id, self_hosted=False)
        if not await self._store.work.delete_environment_key(workspace, environment_id, key_id):
            raise NotFound(f"environment key {key_id!r} not found", resource="environment_key")
        return wire.Deleted(id=key_id, type="environment_key_deleted")

    async def authenticate(self, secret: str) -> Caller | None:
        """The caller an environment key or a sessions token stands for; None for anything else (or a key whose
        environment is gone)."""
        if secret.startswith(ENVIRONMENT_KEY_PREFIX):
            key = await self._store.work.environment_key_by_hash(secret_hash(secret))
            if key is None or await self._store.get_environment(key.workspace, key.environment_id) is None:
                return None
            return Caller("environment_key", key.workspace, key.environment_id)
        if secret.startswith(SESSIONS_TOKEN_PREFIX):
            row = await self._store.work.work_by_token(secret_hash(secret))
            if row is None:
                return None
            held = row.state in LEASED_STATES
            return Caller("sessions_token", row.workspace, row.environment_id, row.session_id, row.id, held)
        return None

    # enqueue -------------------------------------------------------------------------------------------------
    async def enqueue(self, workspace: str, environment_id: str, session_id: str, metadata: dict[str, str]) -> bool:
        """Queue an item for the session unless it has a live one; True when one was queued."""
        if await self._store.work.live_work(session_id) is not None:
            return False
        row = WorkRow(
            workspace=workspace,
            id=new_id("work"),
            environment_id=environment_id,
            session_id=session_id,
            data_type="session",
            state="queued",
            metadata=json.dumps(metadata),
            created_at=rfc3339(now()),
            ttl_seconds=self.lease_seconds,
        )
        try:
            await self._store.work.insert_work(row)
        except Conflict:
            return False  # a concurrent enqueue won
        self._arrived(environment_id)
        return True

    def _arrived(self, environment_id: str) -> None:
        future = self._arrivals.pop(environment_id, None)
        if future is not None and not future.done():
            future.set_result(None)

    def _arrival(self, environment_id: str) -> asyncio.Future[None]:
        future = self._arrivals.get(environment_id)
        if future is None or future.done():
            future = self._arrivals[environment_id] = asyncio.get_running_loop().create_future()
        return future

    # the worker's calls --------------------------------------------------------------------------------------
    async def poll(
        self,
        workspace: str,
        environment_id: str,
        *,
        block_ms: int | None = None,
        reclaim_older_than_ms: int | None = None,
        worker_id: str | None = None,
    ) -> wire.Work | None:
        """The oldest claimable item, with its `secret`; waits up to `block_ms` for one (None: no wait)."""
        if block_ms is not None and not 1 <= block_ms <= 999:
            raise InvalidRequest(
                "block_ms must be 1-999 (omit it for a poll that does not wait)", code="invalid_block_ms"
            )
        if reclaim_older_than_ms is not None and reclaim_older_than_ms < 0:
            raise InvalidRequest("reclaim_older_than_ms must not be negative", code="invalid_reclaim")
        await self._environment(workspace, environment_id)
        reclaim = timedelta(
            milliseconds=self._config.work_reclaim_ms if reclaim_older_than_ms is None else reclaim_older_than_ms
        )
        if worker_id:
            await self._store.work.note_poll(environment_id, worker_id[:256], rfc3339(now()))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (block_ms or 0) / 1000
        while True:
            arrival = self._arrival(environment_id)
            token = SESSIONS_TOKEN_PREFIX + secrets.token_urlsafe(32)
            at = now()
            row = await self._store.work.claim_work(
                environment_id, now=rfc3339(at), reclaim_before=rfc3339(at - reclaim), token_hash=secret_hash(token)
            )
            if row is not None:
                return _work(row, secret=_secret_payload(token))
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(arrival), remaining)

    async def ack(self, workspace: str, environment_id: str, work_id: str) -> wire.Work:
        def change(row: WorkRow) -> WorkRow | None:
            if row.state in ("starting", "active"):
                return None  # acknowledged already: the same answer again
            if row.state != "queued":
                raise Conflict(f"work {work_id!r} is {row.state}; it cannot be acknowledged", code="work_stopped")
            if row.polled_at is None:
                raise Conflict(f"work {work_id!r} was not handed out by a poll", code="work_not_polled")
            at = now()
            return replace(
                row,
                state="starting",
                acknowledged_at=rfc3339(at),
                lease_expires_at=rfc3339(at + timedelta(seconds=row.ttl_seconds)),
            )

        return _work(await self._change(workspace, environment_id, work_id, change))

    async def heartbeat(
        self,
        workspace: str,
        environment_id: str,
        work_id: str,
        *,
        expected_last_heartbeat: str | None = None,
        desired_ttl_seconds: int | None = None,
    ) -> wire.WorkHeartbeat:
        """Extend the lease, compare-and-set on the last heartbeat (see the module docstring)."""
        if desired_ttl_seconds is not None and desired_ttl_seconds < 1:
            raise InvalidRequest("desired_ttl_seconds must be positive", code="invalid_ttl")
        answer: list[wire.WorkHeartbeat] = []

        def change(row: WorkRow) -> WorkRow | None:
            answer.clear()
            if row.state in ("stopping", "stopped"):  # not compared: the worker is told to stop
                answer.append(_beat(row, extended=False))
                return None
            if expected_last_heartbeat is not None:
                held = row.latest_heartbeat_at
                if expected_last_heartbeat != (wire.NO_HEARTBEAT if held is None else held):
                    state = wire.WorkLeaseState(state=row.state, last_heartbeat=held, ttl_seconds=row.ttl_seconds)
                    raise PreconditionFailed(
                        f"expected_last_heartbeat does not match the stored heartbeat of work {work_id!r}: another "
                        "worker may hold its lease",
                        code="heartbeat_precondition_failed",
                        current_state=state.model_dump(mode="json"),
                    )
            if row.state == "queued":
                raise Conflict(f"work {work_id!r} is not acknowledged; ack it first", code="work_not_acknowledged")
            ttl = row.ttl_seconds
            if desired_ttl_seconds is not None:
                ttl = max(min(MIN_TTL, self.lease_seconds), min(MAX_TTL, desired_ttl_seconds))
            at = now()
            beat = rfc3339(at)
            if beat == row.latest_heartbeat_at:  # each beat's value is new, so a stale echo never matches
                at += timedelta(microseconds=1)
                beat = rfc3339(at)
            updated = replace(
                row,
                state="active",
                started_at=row.started_at or beat,
                latest_heartbeat_at=beat,
                lease_expires_at=rfc3339(at + timedelta(seconds=ttl)),
                ttl_seconds=ttl,
            )
            answer.append(_beat(updated, extended=True))
            return updated

        await self._change(workspace, environment_id, work_id, change)
        return answer[0]

    async def stop(self, workspace: str, environment_id: str, work_id: str, *, force: bool = False) -> wire.Work:
        """`force`: stopped now. Otherwise an acknowledged item is `stopping` until its worker, told by its next
        heartbeat, stops it (an item no worker holds yet stops at once). A stopped item is a `Conflict`."""

        def change(row: WorkRow) -> WorkRow:
            if row.state == "stopped":
                raise Conflict(f"work {work_id!r} is already stopped", code="work_stopped")
            at = rfc3339(now())
            if force or row.state == "queued":
                return replace(row, state="stopped", stopped_at=at, stop_requested_at=row.stop_requested_at or at)
            if row.state == "stopping":
                raise Conflict(f"work {work_id!r} is already stopping", code="work_stopping")
            return replace(row, state="stopping", stop_requested_at=at)

        stopped = await self._change(workspace, environment_id, work_id, change)
        if stopped.state == "stopped":
            await self.ensure(workspace, stopped.session_id)
        return _work(stopped)

    async def ensure(self, workspace: str, session_id: str) -> bool:
        """Queue an item for a session that waits on a worker and has no live item (its worker stopped with calls
        unanswered); True when one was queued."""
        if not await self._sessions.open_worker_calls(workspace, session_id):
            return False
        session = await self._store.get_session(workspace, session_id)
        if session is None:
            return False
        metadata = json.loads(session.body).get("metadata") or {}
        return await self.enqueue(workspace, session.environment_id, session_id, metadata)

    # the operator's calls ------------------------------------------------------------------------------------
    async def retrieve(self, workspace: str, environment_id: str, work_id: str) -> wire.Work:
        return _work(await self._item(workspace, environment_id, work_id))

    async def list(
        self, workspace: str, environment_id: str, *, limit: int | None = None, page: str | None = None
    ) -> wire.CursorPage[wire.Work]:
        await self._environment(workspace, environment_id, self_hosted=False)
        size = check_limit(limit, default=self._config.default_page_size, maximum=self._config.max_page_size)
        cursor = keyset(decode(page, descending=False))
        rows = await self._store.work.list_work(workspace, environment_id, after=cursor, limit=size + 1)
        rows, next_page = cut_page(rows, size, descending=False)
        return wire.CursorPage[wire.Work](data=[_work(r) for r in rows], next_page=next_page)

    async def update(
        self, workspace: str, environment_id: str, work_id: str, params: wire.WorkUpdateParams
    ) -> wire.Work:
        def change(row: WorkRow) -> WorkRow | None:
            current = json.loads(row.metadata)
            try:
                merged = wire.patch_metadata(current, params.metadata)
            except ValueError as exc:
                raise InvalidRequest(str(exc), code="invalid_metadata") from exc
            return None if merged == current else replace(row, metadata=json.dumps(merged))

        return _work(await self._change(workspace, environment_id, work_id, change))

    async def stats(self, workspace: str, environment_id: str) -> wire.WorkQueueStats:
        await self._environment(workspace, environment_id)
        at = now()
        reclaim = timedelta(milliseconds=self._config.work_reclaim_ms)
        counts = await self._store.work.queue_counts(environment_id, pending_since=rfc3339(at - reclaim))
        polling = await self._store.work.workers_polling(environment_id, since=rfc3339(at - POLLERS_WINDOW))
        return wire.WorkQueueStats(
            depth=counts.depth,
            pending=counts.pending,
            oldest_queued_at=counts.oldest_queued_at,
            workers_polling=polling,
        )

    # leases --------------------------------------------------------------------------------------------------
    async def expire_leases(self) -> int:
        """Take back the items whose worker stopped heartbeating: a stopping one is stopped, any other is queued
        again, and the calls its session waited on are answered as interrupted. The number taken back."""
        expired = await self._store.work.expired_work(rfc3339(now()), limit=100)
        taken = 0
        for row in expired:
            if row.state == "stopping":
                lost = replace(row, state="stopped", stopped_at=rfc3339(now()), revision=row.revision + 1)
            else:
                lost = replace(
                    row,
                    state="queued",
                    acknowledged_at=None,
                    started_at=None,
                    latest_heartbeat_at=None,
                    polled_at=None,
                    lease_expires_at=None,
                    ttl_seconds=self.lease_seconds,
                    revision=row.revision + 1,
                )
            if not await self._store.work.update_work(lost, expected_revision=row.revision):
                continue  # a heartbeat (or a stop) got there first
            taken += 1
            log.warning("work %s of session %s lost its lease; it is %s", row.id, row.session_id, lost.state)
            await self._sessions.interrupt_worker_calls(row.workspace, row.session_id, LEASE_LOST_MESSAGE)
            if lost.state == "queued":
                self._arrived(row.environment_id)
            else:
                await self.ensure(row.workspace, row.session_id)
        return taken

    # helpers -------------------------------------------------------------------------------------------------
    async def _environment(self, workspace: str, environment_id: str, *, self_hosted: bool = True) -> None:
        """NotFound for an environment the workspace does not have; with `self_hosted`, InvalidRequest for one
        that is not self-hosted (it has no queue)."""
        row = await self._store.get_environment(workspace, environment_id)
        if row is None:
            raise NotFound(f"environment {environment_id!r} not found", resource="environment")
        if self_hosted and json.loads(row.body).get("config", {}).get("type") != "self_hosted":
            raise InvalidRequest(
                f"environment {environment_id!r} is not self_hosted: it has no work queue", code="not_self_hosted"
            )

    async def _item(self, workspace: str, environment_id: str, work_id: str) -> WorkRow:
        row = await self._store.work.get_work(workspace, work_id)
        if row is None or row.environment_id != environment_id:
            await self._environment(workspace, environment_id, self_hosted=False)
            raise NotFound(f"work {work_id!r} not found in environment {environment_id!r}", resource="work")
        return row

    async def _change(
        self, workspace: str, environment_id: str, work_id: str, change: Callable[[WorkRow], WorkRow | None]
    ) -> WorkRow:
        """Apply `change` to the item, compare-and-set on its revision, read again and retry on a race. `change`
        returns None for no change (the current row is the answer) or raises to refuse."""
        for _ in range(_CAS_ATTEMPTS):
            row = await self._item(workspace, environment_id, work_id)
            updated = change(row)
            if updated is None:
                return row
            updated = replace(updated, revision=row.revision + 1)
            if await self._store.work.update_work(updated, expected_revision=row.revision):
                return updated
        raise Conflict(f"work {work_id!r} is changing too often; try again", code="work_contended")


def _beat(row: WorkRow, *, extended: bool) -> wire.WorkHeartbeat:
    return wire.WorkHeartbeat(
        last_heartbeat=row.latest_heartbeat_at or "",
        lease_extended=extended,
        state=row.state,
        ttl_seconds=row.ttl_seconds,
    )
