"""Memory stores: named stores of text documents at paths, and the immutable version every change adds.

`Runtime.memory` (`MemoryStores`) serves the API (stores, memories, versions) and the sessions a store is attached
to (`session_write`, `session_delete`, `snapshot`, used by the sandbox's memory mounts, `toolset/_memory_mount.py`).

Promises, each checked by tests/runtime/test_memory.py or tests/server/test_memory_stores.py:
- every change of a memory (create, modify, rename, delete) adds exactly one version, in the same commit, with the
  actor who made it; a change that changes nothing (same content and path) adds none;
- a change is compare-and-set on the memory's current version: a `content_sha256` precondition checked against
  a read that went stale is checked again, never applied to content it was not checked against;
- paths are unique among a store's live memories: taking an occupied path is a 409 `memory_path_conflict_error`
  naming the occupant (`conflicting_memory_id`); a failed precondition is a 409 `memory_precondition_failed_error`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from .. import wire
from ._clock import now, rfc3339
from ._core import RuntimeConfig
from ._cursors import check_limit, cut_page, decode, encode, keyset
from ._errors import Conflict, InvalidRequest, NotFound
from ._ids import new_id
from ._webhook_events import outbox_event
from .store import Store
from .store._memory import MemoryRow, MemoryStoreRow, MemoryVersionRow, PathTaken, VersionQuery
from .store._memory_sql import prefix_upper

_MAX_LIST = 100
_MAX_FULL = 20
_ATTEMPTS = 8


class MemoryPathConflict(Conflict):
    """The path is another live memory's (HTTP 409 `memory_path_conflict_error`)."""

    error_type = "memory_path_conflict_error"
    default_code = "memory_path_conflict"


class MemoryPreconditionFailed(Conflict):
    """The memory's content is not the one the caller expected (HTTP 409 `memory_precondition_failed_error`)."""

    error_type = "memory_precondition_failed_error"
    default_code = "memory_precondition_failed"


def sha256(content: str) -> str:
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


def _actor_json(actor: wire.Actor) -> str:
    return actor.model_dump_json()


def _check_view(view: str | None, default: wire.MemoryView) -> bool:
    """True for `full`."""
    chosen = view or default
    if chosen not in ("basic", "full"):
        raise InvalidRequest("view must be 'basic' or 'full'", code="invalid_view")
    return chosen == "full"


def _memory(row: MemoryRow, full: bool) -> wire.Memory:
    return wire.Memory(
        id=row.id,
        memory_store_id=row.store_id,
        memory_version_id=row.version_id,
        path=row.path,
        content_sha256=row.content_sha256,
        content_size_bytes=row.content_size_bytes,
        content=row.content if full else None,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _version(row: MemoryVersionRow, full: bool) -> wire.MemoryVersion:
    data: dict[str, Any] = {
        "id": row.id,
        "memory_id": row.memory_id,
        "memory_store_id": row.store_id,
        "operation": row.operation,
        "created_at": row.created_at,
        "path": row.path,
        "content": row.content if full else None,
        "content_sha256": row.content_sha256,
        "content_size_bytes": row.content_size_bytes,
        "created_by": json.loads(row.created_by) if row.created_by else None,
        "redacted_at": row.redacted_at,
        "redacted_by": json.loads(row.redacted_by) if row.redacted_by else None,
    }
    return wire.MemoryVersion.model_validate(data)


def _store_row(workspace: str, store: wire.MemoryStore) -> MemoryStoreRow:
    return MemoryStoreRow(
        workspace=workspace,
        id=store.id,
        created_at=rfc3339(store.created_at),
        archived_at=rfc3339(store.archived_at) if store.archived_at is not None else None,
        body=store.model_dump_json(by_alias=True),
    )


def _rollup(prefix: str, path: str, depth: int) -> str | None:
    """The `memory_prefix` a memory at `path` is listed as under `depth` (None: listed itself)."""
    if depth <= 0:
        return None
    segments = path[len(prefix) :].split("/")
    if len(segments) <= depth:
        return None
    return prefix + "/".join(segments[:depth]) + "/"


class MemoryStores:
    """The memory service (`Runtime.memory`). Every call takes the caller's workspace first."""

    def __init__(self, store: Store, config: RuntimeConfig) -> None:
        self._store = store
        self._config = config
        self.on_outbox: Callable[[], None] = lambda: None
        """Called after a write that committed webhook outbox rows (the runtime wakes the deliverer)."""

    # stores --------------------------------------------------------------------------------------------------
    async def create_store(self, workspace: str, params: wire.MemoryStoreCreateParams) -> wire.MemoryStore:
        ts = now()
        created = wire.MemoryStore(
            id=new_id("memstore"),
            name=params.name,
            description=params.description or "",
            metadata=dict(params.metadata or {}),
            created_at=ts,
            updated_at=ts,
        )
        hook = outbox_event("memory_store.created", created.id, workspace, at=rfc3339(ts))
        await self._store.memory.put_memory_store(_store_row(workspace, created), webhooks=(hook,))
        self.on_outbox()
        return created

    async def get_store(self, workspace: str, store_id: str) -> wire.MemoryStore:
        row = await self._store.memory.get_memory_store(workspace, store_id)
        if row is None:
            raise NotFound(f"memory store {store_id!r} not found", resource="memory_store")
        return wire.MemoryStore.model_validate_json(row.body)

    async def _writable_store(self, workspace: str, store_id: str) -> wire.MemoryStore:
        found = await self.get_store(workspace, store_id)
        if found.archived_at is not None:
            raise InvalidRequest(f"memory store {store_id!r} is archived and read-only", code="archived")
        return found

    async def update_store(
        self, workspace: str, store_id: str, params: wire.MemoryStoreUpdateParams
    ) -> wire.MemoryStore:
        current = await self._writable_store(workspace, store_id)
        given = params.model_fields_set
        update: dict[str, Any] = {}
        if "name" in given and params.name is not None:
            update["name"] = params.name
        if "description" in given and params.description is not None:
            update["description"] = params.description
        if "metadata" in given:
            try:
                update["metadata"] = wire.patch_metadata(current.metadata, params.metadata or {})
            except ValueError as exc:
                raise InvalidRequest(str(exc), code="invalid_metadata") from exc
        candidate = current.model_copy(update=update)
        if candidate == current:
            return current
        updated = candidate.model_copy(update={"updated_at": now()})
        await self._store.memory.put_memory_store(_store_row(workspace, updated))
        return updated

    async def list_stores(
        self,
        workspace: str,
        *,
        limit: int | None = None,
        page: str | None = None,
        include_archived: bool = False,
        created_at_gte: str | None = None,
        created_at_lte: str | None = None,
    ) -> wire.CursorPage[wire.MemoryStore]:
        size = check_limit(limit, default=self._config.default_page_size, maximum=_MAX_LIST)
        rows = await self._store.memory.list_memory_stores(
            workspace,
            after=keyset(decode(page, descending=False)),
            limit=size + 1,
            include_archived=include_archived,
            created_gte=created_at_gte,
            created_lte=created_at_lte,
        )
        rows, next_page = cut_page(rows, size, descending=False)
        return wire.CursorPage[wire.MemoryStore](
            data=[wire.MemoryStore.model_validate_json(r.body) for r in rows], next_page=next_page
        )

    async def archive_store(self, workspace: str, store_id: str) -> wire.MemoryStore:
        """One-way and idempotent: archiving an archived store returns it unchanged."""
        current = await self.get_store(workspace, store_id)
        if current.archived_at is not None:
            return current
        ts = now()
        archived = current.model_copy(update={"archived_at": ts, "updated_at": ts})
        hook = outbox_event("memory_store.archived", store_id, workspace, at=rfc3339(ts))
        await self._store.memory.put_memory_store(_store_row(workspace, archived), webhooks=(hook,))
        self.on_outbox()
        return archived

    async def delete_store(self, workspace: str, store_id: str) -> wire.Deleted:
        """Deletes its memories and versions too."""
        hook = outbox_event("memory_store.deleted", store_id, workspace)
        if not await self._store.memory.delete_memory_store(workspace, store_id, webhooks=(hook,)):
            raise NotFound(f"memory store {store_id!r} not found", resource="memory_store")
        self.on_outbox()
        return wire.Deleted(id=store_id, type="memory_store_deleted")

    # memories ------------------------------------------------------------------------------------------------
    def _new_version(
        self,
        workspace: str,
        store_id: str,
        memory_id: str,
        operation: wire.MemoryOperation,
        created_at: str,
        actor: wire.Actor,
        row: MemoryRow | None,
    ) -> MemoryVersionRow:
        return MemoryVersionRow(
            workspace=workspace,
            id=new_id("memver"),
            store_id=store_id,
            memory_id=memory_id,
            operation=operation,
            created_at=created_at,
            path=row.path if row is not None else None,
            content=row.content if row is not None else None,
            content_sha256=row.content_sha256 if row is not None else None,
            content_size_bytes=row.content_size_bytes if row is not None else None,
            created_by=_actor_json(actor),
            session_id=actor.session_id if isinstance(actor, wire.SessionActor) else None,
            api_key_id=actor.api_key_id if isinstance(actor, wire.ApiActor) else None,
        )

    async def _conflict(self, workspace: str, store_id: str, path: str) -> MemoryPathConflict:
        occupant = await self._store.memory.memory_at(workspace, store_id, path)
        occupant_id = occupant.id if occupant is not None else None
        return MemoryPathConflict(
            f"a memory already exists at {path!r}", conflicting_memory_id=occupant_id, conflicting_path=path
        )

    async def create_memory(
        self,
        workspace: str,
        store_id: str,
        params: wire.MemoryCreateParams,
        actor: wire.Actor,
        *,
        view: str | None = None,
    ) -> wire.Memory:
        full = _check_view(view, "basic")
        await self._writable_store(workspace, store_id)
        content = params.content or ""
        stamp = rfc3339(now())
        row = MemoryRow(
            workspace=workspace,
            id=new_id("mem"),
            store_id=store_id,
            path=params.path,
            content=content,
            content_sha256=sha256(content),
            content_size_bytes=len(content.encode("utf-8")),
            version_id="",
            created_at=stamp,
            updated_at=stamp,
        )
        version = self._new_version(workspace, store_id, row.id, "created", stamp, actor, row)
        row = _with_version(row, version.id)
        try:
            await self._store.memory.insert_memory(row, version)
        except PathTaken:
            raise await self._conflict(workspace, store_id, params.path) from None
        return _memory(row, full)

    async def _get_row(self, workspace: str, store_id: str, memory_id: str) -> MemoryRow:
        row = await self._store.memory.get_memory(workspace, store_id, memory_id, with_content=True)
        if row is None:
            await self.get_store(workspace, store_id)
            raise NotFound(f"memory {memory_id!r} not found in store {store_id!r}", resource="memory")
        return row

    async def get_memory(
        self, workspace: str, store_id: str, memory_id: str, *, view: str | None = None
    ) -> wire.Memory:
        full = _check_view(view, "full")
        return _memory(await self._get_row(workspace, store_id, memory_id), full)

    async def update_memory(
        self,
        workspace: str,
        store_id: str,
        memory_id: str,
        params: wire.MemoryUpdateParams,
        actor: wire.Actor,
        *,
        view: str | None = None,
    ) -> wire.Memory:
        full = _check_view(view, "basic")
        await self._writable_store(workspace, store_id)
        expected = params.precondition.content_sha256 if params.precondition is not None else None
        if params.precondition is not None and expected is None:
            raise InvalidRequest("precondition.content_sha256 is required", code="invalid_precondition")
        for _ in range(_ATTEMPTS):
            current = await self._get_row(workspace, store_id, memory_id)
            if expected is not None and current.content_sha256 != expected:
                raise MemoryPreconditionFailed(
                    f"memory {memory_id!r} does not have the expected content_sha256",
                    current_content_sha256=current.content_sha256,
                )
            updated = await self._replace(current, params.content, params.path, actor)
            if updated is not None:
                return _memory(updated, full)
        raise Conflict(f"memory {memory_id!r} keeps changing; try again", code="memory_busy")

    async def _replace(
        self, current: MemoryRow, content: str | None, path: str | None, actor: wire.Actor
    ) -> MemoryRow | None:
        """Apply the change to `current` (compare-and-set on its version): the new row, or None when it went
        stale. A change that changes nothing returns `current` and adds no version."""
        new_content = current.content if content is None else content
        assert new_content is not None
        new_path = current.path if path is None else path
        if new_content == current.content and new_path == current.path:
            return current
        stamp = rfc3339(now())
        row = MemoryRow(
            workspace=current.workspace,
            id=current.id,
            store_id=current.store_id,
            path=new_path,
            content=new_content,
            content_sha256=sha256(new_content),
            content_size_bytes=len(new_content.encode("utf-8")),
            version_id="",
            created_at=current.created_at,
            updated_at=stamp,
        )
        version = self._new_version(current.workspace, current.store_id, row.id, "modified", stamp, actor, row)
        row = _with_version(row, version.id)
        try:
            done = await self._store.memory.replace_memory(row, version, expected_version_id=current.version_id)
        except PathTaken:
            raise await self._conflict(current.workspace, current.store_id, new_path) from None
        return row if done else None

    async def delete_memory(
        self,
        workspace: str,
        store_id: str,
        memory_id: str,
        actor: wire.Actor,
        *,
        expected_content_sha256: str | None = None,
    ) -> wire.Deleted:
        """Allowed on an archived store. The memory's versions stay."""
        if expected_content_sha256 is not None:
            _check_sha(expected_content_sha256)
        await self.get_store(workspace, store_id)
        for _ in range(_ATTEMPTS):
            current = await self._get_row(workspace, store_id, memory_id)
            if expected_content_sha256 is not None and current.content_sha256 != expected_content_sha256:
                raise MemoryPreconditionFailed(
                    f"memory {memory_id!r} does not have the expected content_sha256",
                    current_content_sha256=current.content_sha256,
                )
            if await self._delete(current, actor):
                return wire.Deleted(id=memory_id, type="memory_deleted")
        raise Conflict(f"memory {memory_id!r} keeps changing; try again", code="memory_busy")

    async def _delete(self, current: MemoryRow, actor: wire.Actor) -> bool:
        stamp = rfc3339(now())
        version = self._new_version(current.workspace, current.store_id, current.id, "deleted", stamp, actor, None)
        version = _deleted_at(version, current.path)
        return await self._store.memory.delete_memory(
            current.workspace, current.store_id, current.id, version, expected_version_id=current.version_id
        )

    async def list_memories(
        self,
        workspace: str,
        store_id: str,
        *,
        path_prefix: str | None = None,
        depth: int | None = None,
        limit: int | None = None,
        page: str | None = None,
        view: str | None = None,
    ) -> wire.CursorPage[wire.MemoryListItem]:
        """In byte order of path; with `depth` N, memories more than N segments below the prefix are rolled up
        into one `memory_prefix` each (a prefix counts toward the limit like a memory)."""
        full = _check_view(view, "basic")
        size = check_limit(limit, default=self._config.default_page_size, maximum=_MAX_LIST)
        if full:
            size = min(size, _MAX_FULL)
        prefix = path_prefix or "/"
        if (problem := wire.path_prefix_problem(prefix)) is not None:
            raise InvalidRequest(problem, code="invalid_path_prefix")
        if depth is not None and depth < 0:
            raise InvalidRequest("depth must be 0 or more", code="invalid_depth")
        await self.get_store(workspace, store_id)
        after, at_or_after = _memory_cursor(page)
        items: list[wire.Memory | wire.MemoryPrefix] = []
        positions: list[tuple[str, str]] = []
        while len(items) <= size:
            want = size + 1 - len(items)
            rows = await self._store.memory.list_memories(
                workspace,
                store_id,
                prefix=prefix,
                after=after,
                at_or_after=at_or_after,
                limit=want,
                with_content=full,
            )
            for row in rows:
                rolled = _rollup(prefix, row.path, depth or 0)
                if rolled is not None:
                    items.append(wire.MemoryPrefix(path=rolled))
                    after, at_or_after = None, prefix_upper(rolled)
                    positions.append(("at", at_or_after))
                    break
                items.append(_memory(row, full))
                after, at_or_after = row.path, None
                positions.append(("after", row.path))
            else:
                if len(rows) < want:
                    break
        more = len(items) > size
        items = items[:size]
        next_page = encode(list(positions[size - 1]), descending=False) if more else None
        return wire.CursorPage[wire.MemoryListItem](data=items, next_page=next_page)

    # versions ------------------------------------------------------------------------------------------------
    async def list_versions(
        self,
        workspace: str,
        store_id: str,
        *,
        memory_id: str | None = None,
        operation: str | None = None,
        session_id: str | None = None,
        api_key_id: str | None = None,
        service_account_id: str | None = None,
        created_at_gte: str | None = None,
        created_at_lte: str | None = None,
        limit: int | None = None,
        page: str | None = None,
        view: str | None = None,
    ) -> wire.CursorPage[wire.MemoryVersion]:
        """Newest first."""
        full = _check_view(view, "basic")
        size = check_limit(limit, default=self._config.default_page_size, maximum=_MAX_LIST)
        if full:
            size = min(size, _MAX_FULL)
        if operation is not None and operation not in ("created", "modified", "deleted"):
            raise InvalidRequest("operation must be created, modified or deleted", code="invalid_operation")
        await self.get_store(workspace, store_id)
        if service_account_id is not None:  # loophost has no service accounts: nothing was written by one
            return wire.CursorPage[wire.MemoryVersion](data=[], next_page=None)
        rows = await self._store.memory.list_memory_versions(
            workspace,
            store_id,
            VersionQuery(
                limit=size + 1,
                before=keyset(decode(page, descending=True)),
                memory_id=memory_id,
                operation=operation,
                session_id=session_id,
                api_key_id=api_key_id,
                created_gte=created_at_gte,
                created_lte=created_at_lte,
                with_content=full,
            ),
        )
        rows, next_page = cut_page(rows, size, descending=True)
        return wire.CursorPage[wire.MemoryVersion](data=[_version(r, full) for r in rows], next_page=next_page)

    async def get_version(
        self, workspace: str, store_id: str, version_id: str, *, view: str | None = None
    ) -> wire.MemoryVersion:
        full = _check_view(view, "full")
        row = await self._store.memory.get_memory_version(workspace, store_id, version_id, with_content=full)
        if row is None:
            await self.get_store(workspace, store_id)
            raise NotFound(f"memory version {version_id!r} not found", resource="memory_version")
        return _version(row, full)

    async def redact_version(
        self, workspace: str, store_id: str, version_id: str, actor: wire.Actor
    ) -> wire.MemoryVersion:
        """Clears content, hash, size and path; keeps the actor and times. The version a live memory holds now
        cannot be redacted (change or delete the memory first): its content is still the memory's."""
        found = await self.get_version(workspace, store_id, version_id, view="basic")
        if found.redacted_at is not None:
            return found
        live = await self._store.memory.get_memory(workspace, store_id, found.memory_id, with_content=False)
        if live is not None and live.version_id == version_id:
            raise Conflict(
                f"memory version {version_id!r} is the current version of memory {found.memory_id!r}; update or "
                "delete the memory before redacting it",
                code="current_version",
            )
        await self._store.memory.redact_memory_version(
            workspace, store_id, version_id, redacted_at=rfc3339(now()), redacted_by=_actor_json(actor)
        )
        return await self.get_version(workspace, store_id, version_id, view="basic")

    # sessions ------------------------------------------------------------------------------------------------
    async def snapshot(self, workspace: str, store_id: str) -> list[tuple[str, str]]:
        """Every live memory of the store as (path, content), for mounting it in a sandbox."""
        found: list[tuple[str, str]] = []
        after: str | None = None
        while True:
            rows = await self._store.memory.list_memories(
                workspace, store_id, prefix="/", after=after, at_or_after=None, limit=200, with_content=True
            )
            found += [(r.path, r.content or "") for r in rows]
            if len(rows) < 200:
                return found
            after = rows[-1].path

    async def session_write(self, workspace: str, store_id: str, path: str, content: str, session_id: str) -> None:
        """What a session wrote at `path` becomes the memory there (created, or modified unconditionally: the
        agent's file is the newest word), recorded with a `session_actor`. Idempotent: the same content again
        adds no version."""
        actor = wire.SessionActor(session_id=session_id)
        for _ in range(_ATTEMPTS):
            current = await self._store.memory.memory_at(workspace, store_id, path)
            if current is None:
                try:
                    await self.create_memory(
                        workspace, store_id, wire.MemoryCreateParams(path=path, content=content), actor
                    )
                    return
                except MemoryPathConflict:
                    continue  # created meanwhile: modify it
            full = await self._store.memory.get_memory(workspace, store_id, current.id, with_content=True)
            if full is None:
                continue
            if await self._replace(full, content, None, actor) is not None:
                return
        raise Conflict(f"memory at {path!r} keeps changing", code="memory_busy")

    async def session_delete(self, workspace: str, store_id: str, path: str, session_id: str) -> None:
        """The session removed the file at `path`: the memory there is deleted (nothing when there is none)."""
        actor = wire.SessionActor(session_id=session_id)
        for _ in range(_ATTEMPTS):
            current = await self._store.memory.memory_at(workspace, store_id, path)
            if current is None or await self._delete(current, actor):
                return


def _check_sha(value: str) -> None:
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise InvalidRequest(
            "expected_content_sha256 must be 64 lowercase hexadecimal characters", code="invalid_content_sha256"
        )


def _with_version(row: MemoryRow, version_id: str) -> MemoryRow:
    return replace(row, version_id=version_id)


def _deleted_at(version: MemoryVersionRow, path: str) -> MemoryVersionRow:
    """A `deleted` version keeps the path it was deleted at (its content, hash and size are null)."""
    return replace(version, path=path)


def _memory_cursor(page: str | None) -> tuple[str | None, str | None]:
    cursor = decode(page, descending=False)
    if cursor is None:
        return None, None
    position = cursor.position
    if isinstance(position, list) and len(position) == 2 and all(isinstance(x, str) for x in position):
        kind, value = position
        if kind == "after":
            return value, None
        if kind == "at":
            return None, value
    raise InvalidRequest("invalid page cursor", code="invalid_cursor")
