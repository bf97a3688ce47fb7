"""What every part of the runtime shares: the store, the bus, the config, and session load/commit helpers."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from .. import wire
from ._bus import EventBus
from ._clock import rfc3339
from ._errors import NotFound, PayloadTooLarge
from ._ids import new_id
from .store import CheckpointWrite, IdempotencyRecord, NewEvent, SessionChange, SessionRow, Store, StoredEvent


@dataclass(frozen=True, slots=True)
class RuntimeConfig:
    """Operator settings. Limits protect the log from events that would bloat every later replay."""

    max_event_bytes: int = 4 * 1024 * 1024
    max_file_bytes: int = 64 * 1024 * 1024
    enforce_downloadable: bool = False
    """Claude's Files API refuses to download uploads (`downloadable: false`); a self-hosted owner may read what
    it uploaded, so loophost serves them unless this is set."""
    default_page_size: int = 20
    max_page_size: int = 1000
    event_page_size: int = 1000


class PendingAction(BaseModel):
    """A tool use the session is blocked on (requires_action), and what has been answered so far."""

    kind: str  # "custom" | "confirmation" | "tool_result"
    tool_use_id: str
    name: str
    input_hash: str = ""
    answer: dict[str, Any] | None = None


class LedgerEntry(BaseModel):
    """A built-in tool call of the current turn: started (in doubt after a crash) or done with its result."""

    done: bool = False
    text: str = ""
    is_error: bool = False


class TurnState(BaseModel):
    """What the worker must know to continue or close the turn in progress, after a crash too."""

    input_id: str | None = None
    prompt_sent: bool = False
    """Whether the input's prompt reached a checkpoint (with the turn's first model request)."""
    tool_events: dict[str, str] = Field(default_factory=dict)
    """pydantic-ai tool_call_id -> the id of the wire event that announced the call."""
    open_span: str | None = None
    """A span.model_request_start whose end has not been emitted."""
    ledger: dict[str, LedgerEntry] = Field(default_factory=dict)
    attempts: int = 0
    instructions: str | None = None


class SessionInternal(BaseModel):
    """Runtime-owned session state that is not part of the wire object; committed with the session row."""

    queue: list[str] = Field(default_factory=list)
    """Ids of accepted input events (user.message, user.define_outcome) not yet taken by the worker, in order."""
    paused: bool = False
    pending: dict[str, PendingAction] = Field(default_factory=dict)
    """Keyed by the tool-use event id the client answers."""
    interrupt_requested: bool = False
    turn: TurnState | None = None


@dataclass(slots=True)
class LoadedSession:
    row: SessionRow
    session: wire.Session
    internal: SessionInternal


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


def wants_worker(session: wire.Session, internal: SessionInternal) -> bool:
    """Whether the session has work a restarted runtime must pick up (the store indexes this flag)."""
    if session.status == "terminated" or session.archived_at is not None:
        return False
    return session.status in ("running", "rescheduling") or bool(internal.queue) or internal.interrupt_requested


class RuntimeCore:
    """Base of the runtime: owns nothing it did not open (the store is opened and closed by `Runtime`)."""

    def __init__(self, store: Store, *, config: RuntimeConfig | None = None) -> None:
        self.store = store
        self.config = config or RuntimeConfig()
        self.bus = EventBus()
        self.locks = SessionLocks()
        self.live: dict[str, LoadedSession] = {}
        """Sessions a worker is driving: their loaded state is authoritative in this process (every change goes
        through `commit` under the session's lock), so they are not re-read for every step."""

    # events ------------------------------------------------------------------------------------------------
    def new_event(self, event: BaseModel, *, only_set: bool = True) -> NewEvent:
        """Serialize a wire event once; the store keeps these exact bytes for every later list and replay.

        Only the fields that were set are written (an optional field left out stays out, rather than `null`),
        plus the envelope every event has."""
        if only_set:
            event.model_fields_set.update(("id", "type", "processed_at"))
        body = event.model_dump_json(exclude_unset=only_set, by_alias=True)
        if len(body) > self.config.max_event_bytes:
            raise PayloadTooLarge(
                f"event of {len(body)} bytes exceeds the limit of {self.config.max_event_bytes} bytes",
                limit=self.config.max_event_bytes,
            )
        processed: datetime | None = getattr(event, "processed_at", None)
        return NewEvent(
            id=getattr(event, "id"),  # noqa: B009 - every wire event has an id
            type=getattr(event, "type"),  # noqa: B009
            processed_at=rfc3339(processed) if processed is not None else None,
            body=body,
        )

    @staticmethod
    def event_id() -> str:
        return new_id("sevt")

    # sessions ----------------------------------------------------------------------------------------------
    async def load_session(self, workspace: str | None, session_id: str) -> LoadedSession:
        cached = self.live.get(session_id)
        if cached is not None and (workspace is None or cached.row.workspace == workspace):
            return cached
        row = await self.store.get_session(workspace, session_id)
        if row is None:
            raise NotFound(f"session {session_id!r} not found", resource="session")
        return LoadedSession(
            row=row,
            session=wire.Session.model_validate_json(row.body),
            internal=SessionInternal.model_validate_json(row.internal),
        )

    async def commit(
        self,
        loaded: LoadedSession,
        *,
        session: wire.Session | None = None,
        internal: SessionInternal | None = None,
        events: Sequence[NewEvent] = (),
        archived_at: str | None = None,
        idempotency: IdempotencyRecord | None = None,
        processed: tuple[Sequence[str], str] | None = None,
        checkpoint: CheckpointWrite | None = None,
    ) -> list[StoredEvent]:
        """Commit a change of the session row and the events announcing it in one transaction."""
        change = None
        if session is not None or internal is not None or archived_at is not None or checkpoint is not None:
            after_session = session or loaded.session
            after_internal = internal or loaded.internal
            change = SessionChange(
                body=session.model_dump_json(by_alias=True) if session is not None else None,
                status=session.status if session is not None else None,
                internal=internal.model_dump_json() if internal is not None else None,
                archived_at=archived_at,
                wants_worker=wants_worker(after_session, after_internal),
                checkpoint=checkpoint,
            )
        revision, stored = await self.store.commit_session(
            loaded.row.id,
            expected_revision=loaded.row.revision,
            change=change,
            events=events,
            idempotency=idempotency,
            processed=processed,
        )
        if session is not None:
            loaded.session = session
        if internal is not None:
            loaded.internal = internal
        if loaded.row.id in self.live and self.live[loaded.row.id] is not loaded:
            self.live[loaded.row.id] = loaded  # the freshest state wins
        loaded.row = SessionRow(
            workspace=loaded.row.workspace,
            id=loaded.row.id,
            agent_id=loaded.row.agent_id,
            agent_version=loaded.row.agent_version,
            environment_id=loaded.row.environment_id,
            status=loaded.session.status,
            created_at=loaded.row.created_at,
            archived_at=archived_at or loaded.row.archived_at,
            revision=revision,
            last_seq=stored[-1].seq if stored else loaded.row.last_seq,
            body=change.body if change and change.body else loaded.row.body,
            internal=change.internal if change and change.internal else loaded.row.internal,
            wants_worker=change.wants_worker if change and change.wants_worker is not None else loaded.row.wants_worker,
        )
        return stored
