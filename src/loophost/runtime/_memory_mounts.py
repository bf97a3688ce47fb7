"""Memory stores attached to a session: the `memory_store` resources made at session creation, and the note about
them that goes into the agent's system prompt.

A resource snapshots the store's name and description when it is attached, and says where the store is mounted
(`/mnt/memory/<slug of the name>`; a second store whose name gives the same slug gets `-2`, `-3`, ...). The
sandbox mounts it there (`toolset/_memory_mount.py`) and what the agent writes under it becomes memory versions.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from datetime import datetime

from .. import wire
from ._errors import Conflict, InvalidRequest, NotFound
from ._ids import new_id
from .store import Store


async def prepare_memory_stores(
    store: Store,
    workspace: str,
    params: Sequence[wire.MemoryStoreResourceParams],
    ts: datetime,
    taken: set[str],
) -> list[wire.MemoryStoreResource]:
    """The resources for `params` (nothing is written): at most 8 stores, each once, each existing (404) and not
    archived (409). `taken` (mount paths in use) gains theirs."""
    if len(params) > wire.MAX_MEMORY_STORES_PER_SESSION:
        raise InvalidRequest(
            f"a session holds at most {wire.MAX_MEMORY_STORES_PER_SESSION} memory stores", code="too_many_memory_stores"
        )
    seen: set[str] = set()
    resources: list[wire.MemoryStoreResource] = []
    for param in params:
        if param.memory_store_id in seen:
            raise InvalidRequest(
                f"memory store {param.memory_store_id!r} is attached twice", code="duplicate_memory_store"
            )
        seen.add(param.memory_store_id)
        row = await store.memory.get_memory_store(workspace, param.memory_store_id)
        if row is None:
            raise NotFound(f"memory store {param.memory_store_id!r} not found", resource="memory_store")
        if row.archived_at is not None:
            raise Conflict(f"memory store {param.memory_store_id!r} is archived", code="archived")
        found = wire.MemoryStore.model_validate_json(row.body)
        slug = wire.mount_slug(found.name)
        mount = posixpath.join(wire.MEMORY_MOUNT_ROOT, slug)
        n = 1
        while mount in taken:
            n += 1
            mount = posixpath.join(wire.MEMORY_MOUNT_ROOT, f"{slug}-{n}")
        taken.add(mount)
        resources.append(
            wire.MemoryStoreResource(
                id=new_id("sesrsc"),
                memory_store_id=found.id,
                access=param.access or "read_write",
                name=found.name,
                description=found.description,
                instructions=param.instructions,
                mount_path=mount,
            )
        )
    return resources


def memory_resources(session: wire.Session) -> list[wire.MemoryStoreResource]:
    return [r for r in session.resources if isinstance(r, wire.MemoryStoreResource) and r.mount_path]


def memory_note(session: wire.Session) -> str | None:
    """The system prompt's section about the session's memory stores (None when it has none)."""
    stores = memory_resources(session)
    if not stores:
        return None
    lines = [
        "# Memory",
        "Memory stores are mounted as directories. Files you write there are kept after this session ends and "
        "are seen by later sessions that attach the same store; read them before starting, and keep them short "
        "and up to date. Use the file tools or bash on these paths:",
    ]
    for store in stores:
        access = "read-only" if store.access == "read_only" else "read-write"
        line = f"- {store.mount_path} ({access}): {store.name}"
        if store.description:
            line += f". {store.description}"
        lines.append(line)
        if store.instructions:
            lines.append(f"  Instructions: {store.instructions}")
    return "\n".join(lines)
