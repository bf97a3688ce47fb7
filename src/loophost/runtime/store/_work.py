"""The work queue's storage contract: work items of self-hosted environments, environment keys, and pollers.

`Store.work` is a `WorkStore` (one object per role, beside the session store). Promises every backend keeps,
checked by tests/runtime/store/test_contract_work.py:
- a session has at most one live work item (state other than `stopped`): a second insert is `Conflict`;
- `claim_work` hands a claimable item (queued, never polled or polled before `reclaim_before`) to one caller
  only, oldest first, however many nodes poll at once;
- `update_work` is compare-and-set on `revision`: a change made from a stale read writes nothing;
- keys and sessions tokens are stored as hashes only; a lookup takes the hash.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import NamedTuple, Protocol


@dataclass(frozen=True, slots=True)
class WorkRow:
    """One work item. Timestamps are RFC 3339 strings (UTC, microseconds, `Z`), so their order is their time order.

    `polled_at` is when the item was last handed out by a poll (null: never); `lease_expires_at` is when a
    starting, active or stopping item is considered abandoned unless a heartbeat renews it; `token_hash` is the
    hash of the sessions token of the last poll; `metadata` is the wire JSON object."""

    workspace: str
    id: str
    environment_id: str
    session_id: str
    data_type: str
    state: str
    metadata: str
    created_at: str
    acknowledged_at: str | None = None
    started_at: str | None = None
    latest_heartbeat_at: str | None = None
    stop_requested_at: str | None = None
    stopped_at: str | None = None
    polled_at: str | None = None
    lease_expires_at: str | None = None
    ttl_seconds: int = 0
    token_hash: str | None = None
    revision: int = 1


WORK_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(WorkRow))
WORK_COLUMNS = ", ".join(WORK_FIELDS)
"""The columns of `work_items`, named and ordered as `WorkRow`'s fields (both backends select and insert them so)."""


def work_values(row: WorkRow) -> tuple[object, ...]:
    return tuple(getattr(row, name) for name in WORK_FIELDS)


@dataclass(frozen=True, slots=True)
class EnvironmentKeyRow:
    workspace: str
    id: str
    environment_id: str
    key_hash: str
    created_at: str


class QueueCounts(NamedTuple):
    depth: int
    """Queued items no poll holds (never polled, or polled before `pending_since`)."""
    pending: int
    """Queued items polled since `pending_since` and not acknowledged."""
    oldest_queued_at: str | None


class WorkStore(Protocol):
    # work items
    async def insert_work(self, row: WorkRow) -> None:
        """`Conflict(code="live_work_exists")` when the session already has a live item."""
        ...

    async def get_work(self, workspace: str, work_id: str) -> WorkRow | None: ...
    async def update_work(self, row: WorkRow, *, expected_revision: int) -> bool:
        """Replace the item if its stored revision is `expected_revision`; False otherwise. `row.revision` is the
        new revision."""
        ...

    async def claim_work(
        self, environment_id: str, *, now: str, reclaim_before: str, token_hash: str
    ) -> WorkRow | None:
        """The oldest queued item of the environment that was never polled or was polled before
        `reclaim_before`, marked polled at `now` with the new token; None when there is none."""
        ...

    async def list_work(
        self, workspace: str, environment_id: str, *, after: tuple[str, str] | None, limit: int
    ) -> list[WorkRow]:
        """Oldest first by (created_at, id), strictly after `after`."""
        ...

    async def live_work(self, session_id: str) -> WorkRow | None:
        """The session's item that is not `stopped`, if any."""
        ...

    async def expired_work(self, now: str, *, limit: int) -> list[WorkRow]:
        """Starting, active or stopping items (any environment) whose lease expired before `now`."""
        ...

    async def work_by_token(self, token_hash: str) -> WorkRow | None: ...
    async def queue_counts(self, environment_id: str, *, pending_since: str) -> QueueCounts: ...
    async def note_poll(self, environment_id: str, worker_id: str, at: str) -> None: ...
    async def workers_polling(self, environment_id: str, *, since: str) -> int: ...

    # environment keys
    async def insert_environment_key(self, row: EnvironmentKeyRow) -> None: ...
    async def list_environment_keys(self, workspace: str, environment_id: str) -> list[EnvironmentKeyRow]:
        """Oldest first."""
        ...

    async def delete_environment_key(self, workspace: str, environment_id: str, key_id: str) -> bool: ...
    async def environment_key_by_hash(self, key_hash: str) -> EnvironmentKeyRow | None: ...
