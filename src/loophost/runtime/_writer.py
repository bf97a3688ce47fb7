"""`SessionWriter`: every change of a session goes through one typed commit.

Promises kept here (the store keeps the rest, see store/_protocol.py):
- read-modify-write of one session is serialised by the session's lock (`lock`, `apply`): in this process by an
  asyncio lock; with a `cluster` (several nodes on one database) also across nodes, by a transaction that locked
  the session's row, so a `build` runs exactly once, on the row as it is, and a write on another node waits for
  it instead of failing; without a cluster the store's compare-and-set on `revision` rejects a writer that read a
  stale row (`StaleWrite`);
- a write made by a session's worker carries the worker's lease (`current_fence`, set by the worker's task), and
  the store writes nothing if the lease moved on (`LeaseLost`): a stale owner's writes never land;
- a commit writes what changed and nothing else: events, the runtime's small internal state, the history delta,
  usage as counters; the session document is rewritten only when a field of it changes (title, agent, ...);
- the write that leaves a session needing a worker (running, rescheduling, or an interrupt to apply) wakes one:
  a commit (once it is committed), or the insert of a session created with input; no other path starts workers;
- without a cluster, a session loaded or committed here is kept in memory (least recently used first out) and
  served from there: every change of a session row goes through `commit`, and the store's file lock makes this
  process the only writer of the database, so what is kept is what is stored. A commit cut off by a cancellation
  still settles (it is shielded) before the cancellation goes on, so memory never falls behind the store. With a
  cluster other nodes write too, so nothing is kept: a load outside the lock reads the store, one inside it the
  locked row.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel

from .. import wire
from . import _metrics
from ._clock import rfc3339
from ._errors import LeaseLost, NotFound, PayloadTooLarge
from ._state import SessionInternal
from ._webhook_events import outbox_event, session_webhooks
from .store import (
    CheckpointWrite,
    Fence,
    HeldSession,
    IdempotencyRecord,
    Lease,
    NewEvent,
    OutboxEvent,
    SessionChange,
    SessionRow,
    Store,
    StoredEvent,
    TokenCounts,
)

INPUT_TYPES = frozenset({"user.message", "user.define_outcome", "system.message"})
"""Input that waits its turn: `processed_at` stays null until a turn takes it."""

T = TypeVar("T")

Waker = Callable[[str, bool], None]
"""Called with (session id, interrupt) after a commit that leaves the session needing a worker."""

current_fence: ContextVar[Fence | None] = ContextVar("loophost_fence", default=None)
"""The lease of the session worker running in this task (with a cluster); its writes carry it."""


@dataclass(frozen=True, slots=True)
class Change:
    """What one step commits, in one transaction. Every field is optional; only what is set is written."""

    events: Sequence[BaseModel | NewEvent] = ()
    status: wire.SessionStatus | None = None
    internal: SessionInternal | None = None
    """The runtime's state after the step (replaces the stored one)."""
    document: wire.Session | None = None
    """The session document, only when a field of it changed (its status, updated_at and usage are columns)."""
    history: CheckpointWrite | None = None
    usage: TokenCounts | None = None
    """Added to the session's counters."""
    processed: Sequence[str] = ()
    """Queued input events taken by this step: their `processed_at` is set to `processed_at` (default: now)."""
    processed_at: datetime | None = None
    archived_at: str | None = None
    idempotency: IdempotencyRecord | None = None


@dataclass(slots=True)
class LoadedSession:
    """A session as last committed: its row (status, updated_at and usage columns), document and internal state."""

    row: SessionRow
    document: wire.Session
    internal: SessionInternal
    _view: wire.Session | None = None

    @property
    def id(self) -> str:
        return self.row.id

    @property
    def status(self) -> str:
        return self.row.status

    @property
    def session(self) -> wire.Session:
        """The wire object: the document with the columns laid over it."""
        if self._view is None:
            self._view = overlay(self.document, self.row)
        return self._view


def overlay(document: wire.Session, row: SessionRow) -> wire.Session:
    """The session document with the row's status, updated_at and usage counters, which steps change in place."""
    usage = document.usage
    input_tokens, output_tokens, cache_read, cache_creation = row.usage
    cache = usage.cache_creation.model_copy(update={"ephemeral_5m_input_tokens": cache_creation})
    update: dict[str, object] = {
        "status": row.status,
        "usage": usage.model_copy(
            update={
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
                "cache_read_input_tokens": cache_read,
                "cache_creation": cache,
            }
        ),
    }
    if row.updated_at is not None:
        update["updated_at"] = datetime.fromisoformat(row.updated_at)
    return document.model_copy(update=update)


def wants_worker(status: str, archived: bool, internal: SessionInternal) -> bool:
    """Whether the session has work a worker must do (the store indexes this flag for recovery)."""
    if status == "terminated" or archived:
        return False
    if internal.parent is not None and internal.parent.waiting is not None:
        return True  # a child thread owes its coordinator an answer (`engine/_threads.py`)
    return status in ("running", "rescheduling") or internal.interrupt_requested


@dataclass(slots=True)
class SessionLocks:
    """Serialises read-modify-write of one session within this process (the store CAS guards across)."""

    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    def lock(self, session_id: str) -> asyncio.Lock:
        lock = self._locks.get(session_id)
        if lock is None:
            lock = self._locks[session_id] = asyncio.Lock()
        return lock

    def discard(self, session_id: str) -> None:
        lock = self._locks.get(session_id)
        if lock is not None and not lock.locked():
            del self._locks[session_id]


@dataclass(slots=True)
class _Holding:
    """The session's row as locked by a task of this process (with a cluster)."""

    task: asyncio.Task[Any] | None
    held: HeldSession
    loaded: LoadedSession | None = None
    wakes: list[bool] = field(default_factory=list)
    outbox: bool = False
    """A write of the hold wrote outbox rows: the deliverer is woken once the hold has committed them."""


class SessionWriter:
    """Loads and commits sessions, and keeps the recently used ones in memory (see the module docstring)."""

    def __init__(self, store: Store, *, max_event_bytes: int, cache_size: int = 4096) -> None:
        self.store = store
        self.cluster = store.cluster
        self.max_event_bytes = max_event_bytes
        self.locks = SessionLocks()
        self._cache: OrderedDict[str, LoadedSession] = OrderedDict()
        self._cache_size = cache_size
        self._inputs: OrderedDict[str, str] = OrderedDict()
        self._holding: dict[str, _Holding] = {}
        self.waker: Waker | None = None
        self.webhook_audience: Callable[[str], bool] = _everyone
        """Whether a workspace may have a webhook endpoint to tell (`Webhooks.may_hear`): commits elsewhere build
        no outbox events."""
        self.on_outbox: Callable[[], None] = _nothing
        """Called after a commit that wrote outbox events (the webhook deliverer's wake-up)."""
        self.on_status: Callable[[str, LoadedSession], Awaitable[None]] | None = None
        """Called with (status before, session) after `apply` (or a caller, `status_changed`) changed a session's
        status: a child thread's status is mirrored on its coordinator's stream (`engine/_threads.py`)."""

    def input_body(self, event_id: str) -> str | None:
        """The stored JSON of an input event this process committed (a turn reads its prompt from it once), or
        None when it is not in memory (read it from the log)."""
        return self._inputs.pop(event_id, None)

    def forget(self, session_id: str) -> None:
        """Drop a session from memory (it was deleted)."""
        self._cache.pop(session_id, None)

    def _keep(self, loaded: LoadedSession) -> None:
        self._cache[loaded.row.id] = loaded
        self._cache.move_to_end(loaded.row.id)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def lock(self, session_id: str) -> AbstractAsyncContextManager[Any]:
        """The session's lock, for a read-modify-write: `load`, then `commit`, inside it."""
        if self.cluster is None:
            return self.locks.lock(session_id)
        return self._hold(session_id)

    @asynccontextmanager
    async def _hold(self, session_id: str) -> AsyncIterator[None]:
        """With a cluster: this process's lock, then the row's (a transaction, ended by the block's commit); the
        wake-ups the commit calls for go out when the block ends."""
        assert self.cluster is not None
        holding: _Holding | None = None
        try:
            async with self.locks.lock(session_id), self.cluster.hold(session_id) as held:
                holding = self._holding[session_id] = _Holding(asyncio.current_task(), held)
                try:
                    yield
                finally:
                    del self._holding[session_id]
        except asyncio.CancelledError:
            self._wake(session_id, holding)  # what was written is committed (see `Cluster.hold`)
            raise
        self._wake(session_id, holding)

    def _wake(self, session_id: str, holding: _Holding | None) -> None:
        if holding is not None and holding.wakes and self.waker is not None:
            self.waker(session_id, any(holding.wakes))
        if holding is not None and holding.outbox:
            self.on_outbox()

    def _outbox_written(self, holding: _Holding | None) -> None:
        """Wake the deliverer for outbox rows just written: now, or once the hold that wrote them has committed
        (woken earlier, it would find nothing yet and wait for its next poll)."""
        if holding is not None:
            holding.outbox = True
        else:
            self.on_outbox()

    def _held(self, session_id: str) -> _Holding | None:
        """The lock this task holds on the session's row, if it does."""
        holding = self._holding.get(session_id)
        if holding is not None and holding.task is asyncio.current_task():
            return holding
        return None

    def check_lease(self, session_id: str) -> None:
        """`LeaseLost` when this task is a session worker whose lease is no longer valid by this node's clock
        (called before anything that cannot be fenced, like running a tool)."""
        if self.cluster is None:
            return
        fence = current_fence.get()
        if fence is not None and not self.cluster.valid(Lease(session_id, fence)):
            raise LeaseLost(f"session {session_id}'s lease (epoch {fence.epoch}) expired")

    # events ------------------------------------------------------------------------------------------------
    def new_event(self, event: BaseModel, *, only_set: bool = True) -> NewEvent:
        """Serialize a wire event once; the store keeps these exact bytes for every later list and replay.

        Only the fields that were set are written (an optional field left out stays out, rather than `null`),
        plus the envelope every event has."""
        if only_set:
            event.model_fields_set.update(("id", "type", "processed_at"))
        body = event.model_dump_json(exclude_unset=only_set, by_alias=True)
        if len(body) > self.max_event_bytes:
            raise PayloadTooLarge(
                f"event of {len(body)} bytes exceeds the limit of {self.max_event_bytes} bytes",
                limit=self.max_event_bytes,
            )
        processed: datetime | None = getattr(event, "processed_at", None)
        return NewEvent(
            id=getattr(event, "id"),  # noqa: B009 - every wire event has an id
            type=getattr(event, "type"),  # noqa: B009
            processed_at=rfc3339(processed) if processed is not None else None,
            body=body,
        )

    # sessions ----------------------------------------------------------------------------------------------
    async def load(self, workspace: str | None, session_id: str) -> LoadedSession:
        """The session as last committed, for a writer holding its lock (`workspace=None` looks across
        workspaces: workers and recovery)."""
        if self.cluster is not None:
            return await self._load_shared(workspace, session_id)
        cached = self._cache.get(session_id)
        if cached is not None:
            if workspace is not None and cached.row.workspace != workspace:
                raise NotFound(f"session {session_id!r} not found", resource="session")
            self._cache.move_to_end(session_id)
            return cached
        row = await self.store.get_session(workspace, session_id)
        if row is None:
            raise NotFound(f"session {session_id!r} not found", resource="session")
        cached = self._cache.get(session_id)  # loaded meanwhile by someone else: theirs may be newer
        if cached is not None:
            return cached
        loaded = LoadedSession(
            row=row,
            document=wire.Session.model_validate_json(row.body),
            internal=SessionInternal.model_validate_json(row.internal),
        )
        self._keep(loaded)
        return loaded

    async def _load_shared(self, workspace: str | None, session_id: str) -> LoadedSession:
        """With a cluster: the row this task locked, else the row as stored."""
        holding = self._held(session_id)
        if holding is None:
            row = await self.store.get_session(workspace, session_id)
            if row is None:
                raise NotFound(f"session {session_id!r} not found", resource="session")
            return _loaded(row)
        if holding.loaded is None:
            row = holding.held.row
            if row is None:
                raise NotFound(f"session {session_id!r} not found", resource="session")
            fence = current_fence.get()
            if fence is not None and holding.held.fence != fence:
                raise LeaseLost(f"session {session_id}'s lease moved on (this worker's epoch is {fence.epoch})")
            holding.loaded = _loaded(row)
        if workspace is not None and holding.loaded.row.workspace != workspace:
            raise NotFound(f"session {session_id!r} not found", resource="session")
        return holding.loaded

    async def read(self, workspace: str | None, session_id: str) -> LoadedSession:
        """The session for a reader: a commit in flight (its events may already be on a stream) settles first."""
        if self.cluster is not None:  # a commit's events reach streams only once it is committed
            return await self._load_shared(workspace, session_id)
        lock = self.locks.lock(session_id)
        if lock.locked():
            async with lock:
                pass
        return await self.load(workspace, session_id)

    async def insert(self, row: SessionRow, events: Sequence[NewEvent] = ()) -> list[StoredEvent]:
        """Store a new session with its first events; wake a worker if it was created with work to do."""
        hooks: tuple[OutboxEvent, ...] = ()
        if self.webhook_audience(row.workspace):
            created = outbox_event("session.created", row.id, row.workspace, at=row.created_at)
            hooks = (created, *session_webhooks(row.workspace, row.id, events))  # committed with the row
        stored = await self.store.insert_session(row, events, webhooks=hooks)
        if hooks:
            self.on_outbox()
        self._remember_inputs(events)
        if row.wants_worker and self.waker is not None:
            self.waker(row.id, False)
        return stored

    async def commit(self, loaded: LoadedSession, change: Change) -> list[StoredEvent]:
        """Commit `change` (compare-and-set on the loaded revision) and update `loaded` to match the store."""
        row = loaded.row
        interrupt_before = loaded.internal.interrupt_requested
        events = [e if isinstance(e, NewEvent) else self.new_event(e) for e in change.events]
        internal = change.internal if change.internal is not None else loaded.internal
        stored_change = _stored_change(row, internal, change)
        hooks: tuple[OutboxEvent, ...] = ()
        if self.webhook_audience(row.workspace):
            hooks = session_webhooks(row.workspace, row.id, events)
            if change.archived_at is not None and row.archived_at is None:
                hooks += (outbox_event("session.archived", row.id, row.workspace, at=change.archived_at),)
        written = stored_change
        if hooks:  # their outbox rows commit in this transaction (`_webhook_events.py`)
            unchanged = SessionChange(wants_worker=row.wants_worker, updated_at=row.updated_at)
            written = replace(stored_change or unchanged, webhooks=hooks)
        processed = (change.processed, rfc3339(change.processed_at or wire.utcnow())) if change.processed else None
        holding = self._held(row.id) if self.cluster is not None else None
        if holding is not None:
            write = holding.held.commit_session(
                expected_revision=row.revision,
                change=written,
                events=events,
                idempotency=change.idempotency,
                processed=processed,
                fence=current_fence.get(),
            )
        elif self.cluster is not None:
            write = self.store.commit_session(
                row.id,
                expected_revision=row.revision,
                change=written,
                events=events,
                idempotency=change.idempotency,
                processed=processed,
                fence=current_fence.get(),
            )
        else:
            write = self.store.commit_session(
                row.id,
                expected_revision=row.revision,
                change=written,
                events=events,
                idempotency=change.idempotency,
                processed=processed,
            )
        cancelled, (revision, stored) = await _settled(write)
        _metrics.events_appended(len(stored))
        if hooks:
            self._outbox_written(holding)
        usage = row.usage
        if change.usage is not None:
            usage = TokenCounts(*(a + b for a, b in zip(usage, change.usage, strict=True)))
        loaded.row = replace(
            row,
            status=change.status or row.status,
            archived_at=change.archived_at or row.archived_at,
            revision=revision,
            last_seq=stored[-1].seq if stored else row.last_seq,
            wants_worker=bool(stored_change.wants_worker) if stored_change is not None else row.wants_worker,
            updated_at=stored_change.updated_at if stored_change is not None else row.updated_at,
            usage=usage,
        )
        if change.document is not None:
            loaded.document = change.document
        loaded.internal = internal
        loaded._view = None
        if self.cluster is None:
            self._keep(loaded)
        self._remember_inputs(events)
        if stored_change is not None and stored_change.wants_worker and self.waker is not None:
            interrupt = internal.interrupt_requested and not interrupt_before
            if holding is not None:
                holding.wakes.append(interrupt)  # once the hold has committed
            else:
                self.waker(row.id, interrupt)
        if cancelled:
            raise asyncio.CancelledError
        return stored

    def _remember_inputs(self, events: Sequence[NewEvent]) -> None:
        for event in events:
            if event.type in INPUT_TYPES:
                self._inputs[event.id] = event.body
                while len(self._inputs) > self._cache_size:
                    self._inputs.popitem(last=False)

    async def delete(self, workspace: str, session_id: str) -> bool:
        """Delete the session and its log, for a writer holding its lock, with its `session.deleted` webhook
        event in the same transaction; False if there is no such session."""
        hooks: tuple[OutboxEvent, ...] = ()
        if self.webhook_audience(workspace):
            hooks = (outbox_event("session.deleted", session_id, workspace),)
        holding = self._held(session_id) if self.cluster is not None else None
        if holding is not None:
            deleted = await holding.held.delete_session(workspace, webhooks=hooks)
        else:
            deleted = await self.store.delete_session(workspace, session_id, webhooks=hooks)
        self.forget(session_id)
        if deleted and hooks:
            self._outbox_written(holding)
        return deleted

    async def apply(self, session_id: str, build: Callable[[LoadedSession], Change]) -> list[StoredEvent]:
        """Commit a change built from the session's current state, under its lock; `on_status` hears of a status
        it changed once the lock is released."""
        async with self.lock(session_id):
            loaded = await self.load(None, session_id)
            before = loaded.status
            stored = await self.commit(loaded, build(loaded))
        await self.status_changed(before, loaded)
        return stored

    async def status_changed(self, before: str, loaded: LoadedSession) -> None:
        """Tell `on_status` that a commit moved `loaded` from `before` (called outside the session's lock)."""
        if self.on_status is not None and loaded.status != before:
            await self.on_status(before, loaded)


def _loaded(row: SessionRow) -> LoadedSession:
    return LoadedSession(
        row=row,
        document=wire.Session.model_validate_json(row.body),
        internal=SessionInternal.model_validate_json(row.internal),
    )


def _stored_change(row: SessionRow, internal: SessionInternal, change: Change) -> SessionChange | None:
    """What `change` writes to the session row (None: only events): status, `updated_at` and usage as columns,
    the document only when it changed, and the flag recovery looks for."""
    touches_row = (
        change.status is not None
        or change.internal is not None
        or change.document is not None
        or change.history is not None
        or change.usage is not None
        or change.archived_at is not None
    )
    if not touches_row:
        return None
    updated_at = row.updated_at
    if change.document is not None:
        updated_at = rfc3339(change.document.updated_at)  # the time the service stamped on it
    elif change.status is not None or change.usage is not None:
        updated_at = rfc3339(wire.utcnow())
    archived = (change.archived_at or row.archived_at) is not None
    return SessionChange(
        body=change.document.model_dump_json(by_alias=True) if change.document is not None else None,
        status=change.status,
        internal=change.internal.model_dump_json() if change.internal is not None else None,
        archived_at=change.archived_at,
        wants_worker=wants_worker(change.status or row.status, archived, internal),
        checkpoint=change.history,
        updated_at=updated_at,
        usage=change.usage,
    )


async def _settled(write: Coroutine[Any, Any, T]) -> tuple[bool, T]:
    """Await a store write to its end even if the caller is cancelled meanwhile (memory must not fall behind the
    store): whether a cancellation arrived, and the write's result. A failed write raises its error, or the
    cancellation when one arrived (a failed commit changed nothing)."""
    task = asyncio.ensure_future(write)
    cancelled = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            cancelled = True  # the write goes on: settle it, then let the cancellation through
    error = task.exception()
    if error is not None:
        if cancelled:
            raise asyncio.CancelledError
        raise error
    return cancelled, task.result()


def _everyone(workspace: str) -> bool:
    return True


def _nothing() -> None:
    return None
