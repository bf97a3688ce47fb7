"""The storage contract of memory stores: stores, their memories (one row per live path) and the immutable
versions every change of a memory adds.

`Store.memory` is a `MemoryStorage` (one object per role, beside the session store). Promises every backend keeps,
checked by tests/runtime/store/test_contract_memory.py:
- a change of a memory and the version that records it commit together, or neither does;
- a change is compare-and-set on the memory's current version id: one made from a stale read writes nothing;
- a path is unique among a store's live memories: a write that would take an occupied path raises `PathTaken`;
- deleting a store deletes its memories, their versions and its session attachments;
- memories list in byte order of their paths (`COLLATE "C"` on PostgreSQL, BINARY on SQLite), so a page cursor
  is a path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ._webhooks import OutboxEvent


class PathTaken(Exception):
    """A memory write hit the unique path of another live memory of the store."""


@dataclass(frozen=True, slots=True)
class MemoryStoreRow:
    workspace: str
    id: str
    created_at: str
    archived_at: str | None
    body: str
    """The wire `memory_store` JSON."""


@dataclass(frozen=True, slots=True)
class MemoryRow:
    workspace: str
    id: str
    store_id: str
    path: str
    content: str | None
    """None when read without content."""
    content_sha256: str
    content_size_bytes: int
    version_id: str
    created_at: str
    updated_at: str


@dataclass(frozen=True, slots=True)
class MemoryVersionRow:
    workspace: str
    id: str
    store_id: str
    memory_id: str
    operation: str
    created_at: str
    path: str | None
    content: str | None
    content_sha256: str | None
    content_size_bytes: int | None
    created_by: str | None
    """The wire actor JSON."""
    session_id: str | None
    """The session of a `session_actor` (a column for the `session_id` filter)."""
    api_key_id: str | None
    redacted_at: str | None = None
    redacted_by: str | None = None


@dataclass(frozen=True, slots=True)
class VersionQuery:
    """Newest first by (created_at, id), strictly before `before`."""

    limit: int
    before: tuple[str, str] | None = None
    memory_id: str | None = None
    operation: str | None = None
    session_id: str | None = None
    api_key_id: str | None = None
    created_gte: str | None = None
    created_lte: str | None = None
    with_content: bool = False


class MemoryStorage(Protocol):
    # stores
    async def put_memory_store(self, row: MemoryStoreRow, *, webhooks: Sequence[OutboxEvent] = ()) -> None:
        """Insert or replace (with the outbox rows of `webhooks`, in the same transaction)."""
        ...

    async def get_memory_store(self, workspace: str, store_id: str) -> MemoryStoreRow | None: ...
    async def list_memory_stores(
        self,
        workspace: str,
        *,
        after: tuple[str, str] | None,
        limit: int,
        include_archived: bool,
        created_gte: str | None,
        created_lte: str | None,
    ) -> list[MemoryStoreRow]:
        """Oldest first by (created_at, id), strictly after `after`."""
        ...

    async def delete_memory_store(self, workspace: str, store_id: str, *, webhooks: Sequence[OutboxEvent] = ()) -> bool:
        """Cascades to memories, versions and attachments; `webhooks` are written only when it existed."""
        ...

    # memories
    async def get_memory(
        self, workspace: str, store_id: str, memory_id: str, *, with_content: bool
    ) -> MemoryRow | None: ...
    async def memory_at(self, workspace: str, store_id: str, path: str) -> MemoryRow | None:
        """The live memory at `path` (without content)."""
        ...

    async def list_memories(
        self,
        workspace: str,
        store_id: str,
        *,
        prefix: str,
        after: str | None,
        at_or_after: str | None,
        limit: int,
        with_content: bool,
    ) -> list[MemoryRow]:
        """Paths starting with `prefix` in byte order, strictly after `after` and at or after `at_or_after`."""
        ...

    async def insert_memory(self, row: MemoryRow, version: MemoryVersionRow) -> None:
        """`PathTaken` when a live memory of the store has the path."""
        ...

    async def replace_memory(self, row: MemoryRow, version: MemoryVersionRow, *, expected_version_id: str) -> bool:
        """Replace the memory if its current version is `expected_version_id` (False otherwise), and add the
        version; `PathTaken` when the new path is another memory's."""
        ...

    async def delete_memory(
        self, workspace: str, store_id: str, memory_id: str, version: MemoryVersionRow, *, expected_version_id: str
    ) -> bool:
        """Delete the memory if its current version is `expected_version_id`, and add the `deleted` version."""
        ...

    # versions
    async def get_memory_version(
        self, workspace: str, store_id: str, version_id: str, *, with_content: bool
    ) -> MemoryVersionRow | None: ...
    async def list_memory_versions(
        self, workspace: str, store_id: str, query: VersionQuery
    ) -> list[MemoryVersionRow]: ...
    async def redact_memory_version(
        self, workspace: str, store_id: str, version_id: str, *, redacted_at: str, redacted_by: str
    ) -> bool:
        """Clear content, hash, size and path; keep the actor and times. False when there is no such version."""
        ...

    # session attachments (for `sessions.list(memory_store_id=)`)
    async def attach_memory_stores(self, workspace: str, session_id: str, store_ids: list[str]) -> None: ...
