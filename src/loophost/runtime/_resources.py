"""Session resources (spec §4.1-4.2): files and repositories mounted into a session's container, and memory stores
(attached at creation only; `_memory_mounts.py`).

Where they live: the session document's `resources` list is the truth for what a session has (so
`sessions.retrieve` and `resources.list` always agree), and every change of it goes through the session commit
under the session's lock. Each resource also has a row in the store's `session_resources` table, which keeps
what must never be on the wire: a github_repository's authorization token. The row is written before the
document that shows the resource and removed after the document that drops it, so a crash between the two leaves
at most an orphan row that no read path ever shows (and `delete_session` removes the rows with the session).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from .. import wire
from ._clock import now, rfc3339
from ._core import RuntimeCore
from ._cursors import check_limit, decode, encode, keyset
from ._errors import Conflict, InvalidRequest, NotFound
from ._ids import new_id
from ._memory_mounts import prepare_memory_stores
from ._writer import Change
from .store import Store
from .store._records import SessionResourceRow

FILE_MOUNT_ROOT = "/mnt/session/uploads"
REPO_MOUNT_ROOT = "/workspace"
MAX_RESOURCES = 1000
"""Resources per session (the list endpoint's largest page), so one session document stays bounded."""

Resource = wire.FileResource | wire.GitHubRepositoryResource | wire.MemoryStoreResource
AttachedResource = wire.FileResource | wire.GitHubRepositoryResource
"""What `resources.add` attaches (memory stores attach at session creation only), so what add and update return."""
ResourceParams = wire.FileResourceParams | wire.GitHubRepositoryResourceParams | wire.MemoryStoreResourceParams

_REPO_NAME = re.compile(r"^[A-Za-z0-9._-]+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class PreparedResource:
    """A validated resource about to be attached: its wire object and the store row carrying its secret."""

    resource: Resource
    row: SessionResourceRow


def repository_name(url: str) -> str:
    """`https://github.com/owner/repo(.git)` -> `repo`; 400 for anything that is not a repository URL."""
    parts = urlsplit(url.strip())
    segments = [s for s in parts.path.split("/") if s]
    name = segments[-1].removesuffix(".git") if segments else ""
    if parts.scheme not in ("https", "http") or not parts.hostname or len(segments) < 2 or not _REPO_NAME.match(name):
        raise InvalidRequest(
            f"{url!r} is not a repository URL like https://github.com/owner/repo", code="invalid_repository_url"
        )
    return name


def check_mount_path(path: str) -> str:
    """An absolute container path without `..` or control characters (a mount never escapes its target)."""
    if not path.startswith("/") or _CONTROL.search(path) or len(path) > 4096 or ".." in path.split("/"):
        raise InvalidRequest(f"mount_path {path!r} must be an absolute path without '..'", code="invalid_mount_path")
    return path


def _mount_key(path: str) -> str:
    return posixpath.normpath(path)


async def prepare_resources(
    store: Store,
    workspace: str,
    session_id: str,
    params: Sequence[ResourceParams],
    ts: datetime,
    *,
    existing: Sequence[Resource] = (),
) -> list[PreparedResource]:
    """Validate resources to attach to a session; nothing is written. Files and memory stores must exist in the
    workspace (404; an archived store is a 409); mount paths must be distinct within the session (400)."""
    if len(existing) + len(params) > MAX_RESOURCES:
        raise InvalidRequest(f"a session holds at most {MAX_RESOURCES} resources", code="too_many_resources")
    taken = {_mount_key(r.mount_path) for r in existing if r.mount_path}
    stamp = rfc3339(ts)
    prepared: list[PreparedResource] = []
    memory_params = [p for p in params if isinstance(p, wire.MemoryStoreResourceParams)]
    for memory in await prepare_memory_stores(store, workspace, memory_params, ts, taken):
        prepared.append(PreparedResource(memory, _resource_row(session_id, memory, stamp, None)))
    for param in params:
        resource: AttachedResource
        secret: str | None = None
        if isinstance(param, wire.MemoryStoreResourceParams):
            continue
        if isinstance(param, wire.FileResourceParams):
            row = await store.get_file(workspace, param.file_id)
            if row is None:
                raise NotFound(f"file {param.file_id!r} not found", resource="file")
            if row.expires_at is not None and row.expires_at <= stamp:
                raise NotFound(f"file {param.file_id!r} expired at {row.expires_at}", code="file_expired")
            resource = wire.FileResource(
                id=new_id("sesrsc"),
                file_id=param.file_id,
                mount_path=check_mount_path(param.mount_path or f"{FILE_MOUNT_ROOT}/{param.file_id}"),
                created_at=ts,
                updated_at=ts,
            )
        else:
            name = repository_name(param.url)
            resource = wire.GitHubRepositoryResource(
                id=new_id("sesrsc"),
                url=param.url,
                mount_path=check_mount_path(param.mount_path or f"{REPO_MOUNT_ROOT}/{name}"),
                checkout=param.checkout,
                created_at=ts,
                updated_at=ts,
            )
            secret = param.authorization_token
        key = _mount_key(resource.mount_path)
        if key in taken:
            raise InvalidRequest(
                f"mount_path {resource.mount_path!r} is already used by another resource of the session",
                code="duplicate_mount_path",
            )
        taken.add(key)
        prepared.append(PreparedResource(resource, _resource_row(session_id, resource, stamp, secret)))
    return prepared


def _resource_row(session_id: str, resource: Resource, stamp: str, secret: str | None) -> SessionResourceRow:
    return SessionResourceRow(
        session_id=session_id,
        id=resource.id or "",
        type=resource.type,
        created_at=stamp,
        body=resource.model_dump_json(by_alias=True),
        secret=secret,
    )


def _position(resource: Resource) -> tuple[str, str]:
    created = getattr(resource, "created_at", None)
    return (rfc3339(created) if isinstance(created, datetime) else "", resource.id or "")


class ResourcesMixin(RuntimeCore):
    """The `sessions.resources.*` calls; every change updates the session document under the session's lock."""

    async def add_session_resource(self, workspace: str, session_id: str, params: ResourceParams) -> AttachedResource:
        if isinstance(params, wire.MemoryStoreResourceParams):
            raise InvalidRequest(
                "memory stores are attached when a session is created, not added later", code="memory_store_at_create"
            )
        async with self.writer.lock(session_id):
            loaded = await self.load_session(workspace, session_id)
            current = loaded.session
            _check_writable(current)
            ts = now()
            (prepared,) = await prepare_resources(
                self.store, workspace, session_id, [params], ts, existing=current.resources
            )
            assert not isinstance(prepared.resource, wire.MemoryStoreResource)
            await self.store.put_session_resource(prepared.row)
            resources = [*current.resources, prepared.resource]
            updated = current.model_copy(update={"resources": resources, "updated_at": ts})
            try:
                await self.commit(loaded, Change(document=updated))
            except BaseException:
                await self.store.delete_session_resource(session_id, prepared.row.id)
                raise
            return prepared.resource

    async def list_session_resources(
        self, workspace: str, session_id: str, *, limit: int | None = None, page: str | None = None
    ) -> wire.CursorPage[Resource]:
        """In attachment order; every resource when `limit` is omitted (as the SDK documents)."""
        resources = sorted((await self.read_session(workspace, session_id)).session.resources, key=_position)
        size = check_limit(limit, default=max(len(resources), 1), maximum=max(MAX_RESOURCES, len(resources)))
        after = keyset(decode(page, descending=False))
        if after is not None:
            resources = [r for r in resources if _position(r) > after]
        data = resources[:size]
        more = len(resources) > size
        next_page = encode(list(_position(data[-1])), descending=False) if more and data else None
        return wire.CursorPage[Resource](data=data, next_page=next_page)

    async def get_session_resource(self, workspace: str, session_id: str, resource_id: str) -> Resource:
        session = (await self.read_session(workspace, session_id)).session
        return _find(session, resource_id)

    async def update_session_resource(
        self, workspace: str, session_id: str, resource_id: str, params: wire.ResourceUpdateParams
    ) -> AttachedResource:
        """Rotate a github_repository's token (the only update the API has); the token is never returned."""
        async with self.writer.lock(session_id):
            loaded = await self.load_session(workspace, session_id)
            current = loaded.session
            resource = _find(current, resource_id)
            _check_writable(current)
            if not isinstance(resource, wire.GitHubRepositoryResource):
                raise InvalidRequest(
                    f"only github_repository resources can be updated; {resource_id!r} is a {resource.type}",
                    code="resource_not_updatable",
                )
            ts = now()
            changed = resource.model_copy(update={"updated_at": ts})
            row = await self.store.get_session_resource(session_id, resource_id)
            await self.store.put_session_resource(
                SessionResourceRow(
                    session_id=session_id,
                    id=resource_id,
                    type=changed.type,
                    created_at=row.created_at if row is not None else _position(resource)[0],
                    body=changed.model_dump_json(by_alias=True),
                    secret=params.authorization_token,
                )
            )
            resources = [changed if r.id == resource_id else r for r in current.resources]
            await self.commit(
                loaded, Change(document=current.model_copy(update={"resources": resources, "updated_at": ts}))
            )
            return changed

    async def delete_session_resource(self, workspace: str, session_id: str, resource_id: str) -> wire.Deleted:
        """Detach a resource; a detached file stays in the Files API."""
        async with self.writer.lock(session_id):
            loaded = await self.load_session(workspace, session_id)
            current = loaded.session
            _find(current, resource_id)
            _check_writable(current)
            resources = [r for r in current.resources if r.id != resource_id]
            await self.commit(
                loaded, Change(document=current.model_copy(update={"resources": resources, "updated_at": now()}))
            )
            await self.store.delete_session_resource(session_id, resource_id)
        return wire.Deleted(id=resource_id, type="session_resource_deleted")

    async def resource_secret(self, workspace: str, session_id: str, resource_id: str) -> str | None:
        """The credential a resource was attached with (a repository token), for whatever mounts it.
        Never part of any wire object."""
        session = (await self.read_session(workspace, session_id)).session
        _find(session, resource_id)
        row = await self.store.get_session_resource(session_id, resource_id)
        return row.secret if row is not None else None


def _find(session: wire.Session, resource_id: str) -> Resource:
    for resource in session.resources:
        if resource.id == resource_id:
            return resource
    raise NotFound(f"resource {resource_id!r} not found in session {session.id!r}", resource="session_resource")


def _check_writable(session: wire.Session) -> None:
    if session.archived_at is not None:
        raise Conflict(f"session {session.id!r} is archived and read-only", code="archived")
