"""The session workers' side of a cluster (several nodes on one PostgreSQL database): a worker drives a session only
while this node holds the session's lease.

- A worker's task first claims the lease. When another live node holds it, the worker tells that node (a wake-up
  through the database, with the interrupt if there is one) and ends: the owner drives the session.
- While it drives, the task's writes carry the lease (`current_fence`): once the lease moved on they write nothing
  (`LeaseLost`), and the worker drops the session. A lease the keeper finds lost cancels the worker at once.
- When the worker has nothing left to do it releases the lease, so any node may claim the session right away;
  a wake-up that arrived meanwhile makes it claim again.
- A sweeper claims, every TTL/3, the sessions that want a worker and have no live owner: a dead node's sessions
  (failover), a wake-up that was lost, and on start what `recover` finds on SQLite.
- The database being unreachable is not a failure of the turn: the worker waits and tries again while its lease
  is valid; when the lease lapses another node (or this one, later) resumes from the committed position.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Collection

from .._errors import Unavailable
from .._writer import current_fence
from ..store import Cluster, Lease

log = logging.getLogger("loophost.runtime")

SWEEP_BATCH = 100


class SessionLeases:
    """Claims, releases and sweeps for the workers of one node; owns the sweeper task."""

    def __init__(
        self,
        cluster: Cluster,
        *,
        wake: Callable[[str, bool], None],
        busy: Callable[[], Collection[str]],
        cancel: Callable[[str], None],
    ) -> None:
        """`wake(session, interrupt)` starts or nudges a local worker; `busy()` names the sessions with one;
        `cancel(session)` stops the local worker of a session whose lease was lost."""
        self.cluster = cluster
        self._wake = wake
        self._busy = busy
        self._cancel = cancel
        self._held: dict[str, Lease] = {}
        self._interrupts: set[str] = set()
        self._lost: set[str] = set()
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self) -> int:
        """Start keeping leases and sweeping; the sessions the first sweep found."""
        await self.cluster.start(self._lease_lost)
        found = await self.sweep()
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="loophost-sweeper")
        return found

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)

    def interrupt_for_owner(self, session_id: str) -> None:
        """An interrupt arrived while no local worker runs: the owner elsewhere must hear of it."""
        self._interrupts.add(session_id)

    async def supervise(
        self, session_id: str, drive: Callable[[Lease], Awaitable[None]], wakes: Callable[[], int]
    ) -> None:
        """Claim, drive while the lease holds, release; again if a wake-up arrived meanwhile."""
        while True:
            interrupt = session_id in self._interrupts
            self._interrupts.discard(session_id)
            try:
                claimed = await self.cluster.claim(session_id)
                if isinstance(claimed, str):  # another node drives it: tell it
                    await self.cluster.wake_owner(claimed, session_id, interrupt)
            except Unavailable as exc:
                log.warning("cannot claim session %s now (a sweep will): %s", session_id, exc)
                return
            if not isinstance(claimed, Lease):
                return
            self._held[session_id] = claimed
            token = current_fence.set(claimed.fence)
            try:
                await drive(claimed)
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if session_id not in self._lost or current is None:
                    raise
                current.uncancel()  # the lease was lost: stop driving, and nothing else
                log.warning("session %s: lease lost (epoch %s); stopped driving it", session_id, claimed.fence.epoch)
            finally:
                current_fence.reset(token)
                lost = session_id in self._lost
                self._lost.discard(session_id)
                del self._held[session_id]
                seen = wakes()
                await self._release(claimed)
            if lost or wakes() == seen:
                return

    async def _release(self, lease: Lease) -> None:
        try:
            await asyncio.wait_for(self.cluster.release(lease), timeout=max(1.0, self.cluster.ttl))
        except (Unavailable, TimeoutError) as exc:  # it expires by itself
            log.warning("could not release the lease of session %s: %s", lease.session_id, exc)

    def held(self) -> int:
        return len(self._held)

    def lease_valid(self, lease: Lease) -> bool:
        return self.cluster.valid(lease)

    def _lease_lost(self, lease: Lease) -> None:
        if self._held.get(lease.session_id) == lease:
            self._lost.add(lease.session_id)
            self._cancel(lease.session_id)

    async def sweep(self) -> int:
        """Wake a local worker for each session that wants one and has no live owner (each worker claims)."""
        found = await self.cluster.sweep(SWEEP_BATCH, list(self._busy()))
        for session_id in found:
            self._wake(session_id, False)
        return len(found)

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.cluster.ttl / 3)
            with contextlib.suppress(Unavailable):
                await self.sweep()
