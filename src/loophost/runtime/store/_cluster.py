"""What a store shared by several nodes offers the runtime: session leases with fencing, a cross-node session lock,
and wake-ups (`Cluster`). Only the PostgreSQL store has one; on SQLite one process owns the file and `cluster` is None.

Promises a `Cluster` keeps (tests/runtime/store/test_cluster.py):
- a lease is held by one node at a time: `claim` takes a session only when nobody holds it or its holder's lease
  expired, and every claim moves the session's epoch on, so a `Fence` (owner, epoch) names one tenure exactly;
- a commit carrying a fence writes nothing unless the session's lease is still that fence (`LeaseLost`), checked on
  the row itself after any wait for its lock, so a node that was paused past its lease cannot write when it resumes;
- `hold(session)` is a transaction that locked the session's row: every node's writers of that session queue on it,
  so a read-modify-write runs once, never against a stale row;
- notices (`notices()`) are wake-ups only: a session id and a seq; readers always read the log.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Literal, Protocol

from ._records import IdempotencyRecord, NewEvent, SessionChange, SessionRow, StoredEvent
from ._webhooks import OutboxEvent


@dataclass(frozen=True, slots=True)
class Fence:
    """One tenure of a session's lease: the node that holds it and the claim's epoch."""

    owner: str
    epoch: int


@dataclass(frozen=True, slots=True)
class Lease:
    session_id: str
    fence: Fence


@dataclass(frozen=True, slots=True)
class Notice:
    """A wake-up from the database. `events`: the session's log grew to `seq` (read it); `deleted`: the session was
    deleted (`seq`: its `session.deleted` event's); `wake`: this node holds the session's lease and another node
    wrote work for it; `reconnected`: notices may have been missed (catch up)."""

    kind: Literal["events", "deleted", "wake", "reconnected"]
    session_id: str = ""
    seq: int = 0
    interrupt: bool = False


class HeldSession(Protocol):
    """A session's row locked by this node's transaction (see `Cluster.hold`). `commit_session` commits at once
    (it ends the transaction: one commit per hold) and its commit listeners hear it then; a deletion commits when
    the hold ends without an error."""

    @property
    def row(self) -> SessionRow | None:
        """The row as locked (None: no such session)."""
        ...

    @property
    def fence(self) -> Fence | None:
        """The session's lease as locked (None: nobody holds it)."""
        ...

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
        """`Store.commit_session` inside the hold."""
        ...

    async def delete_session(self, workspace: str, *, webhooks: Sequence[OutboxEvent] = ()) -> bool:
        """`Store.delete_session` inside the hold."""
        ...


class Cluster(Protocol):
    node_id: str
    """Random per process: a node is one process's tenure, so a restarted node never takes an old lease for its own."""
    ttl: float
    """Seconds a lease lasts without renewal."""

    async def start(self, on_lost: Callable[[Lease], None]) -> None:
        """Start renewing the leases this node holds (on a thread of its own, which a busy event loop cannot starve);
        `on_lost` is called on the event loop for a lease found lost (moved on, or not renewed in time)."""
        ...

    async def close(self) -> None: ...

    async def claim(self, session_id: str) -> Lease | str | None:
        """Take the session's lease: the lease, or the node id of the live holder, or None (no such session)."""
        ...

    async def sweep(self, limit: int, busy: Sequence[str]) -> list[str]:
        """Sessions that want a worker and have no live owner (expired or none), but for those in `busy` (which
        this node drives already); claiming them is the caller's."""
        ...

    async def release(self, lease: Lease) -> None:
        """Give the lease up (if it is still this tenure's), so another node may claim the session at once."""
        ...

    def valid(self, lease: Lease) -> bool:
        """Whether this node may still act on the lease: renewed within its TTL by this node's clock, and not lost."""
        ...

    async def wake_owner(self, owner: str, session_id: str, interrupt: bool) -> None:
        """Tell the node `owner` that the session has work (it holds the lease)."""
        ...

    def notices(self) -> AsyncGenerator[Notice, None]:
        """Notices for this node, forever: reconnects (yielding `reconnected`) when the connection drops."""
        ...

    def hold(self, session_id: str) -> AbstractAsyncContextManager[HeldSession]:
        """A transaction that locked the session's row (`SELECT ... FOR UPDATE`), until its commit (or, for a
        deletion, the end of the block, also after a cancellation once it wrote); rolled back if nothing committed."""
        ...
