"""Memory stores and skills for the sessions a worker serves, over the host's HTTP API with the item's sessions
token, as the official SDK's worker does (`lib/tools/_memories.py`, `lib/tools/_skills.py`).

The worker's `Toolset` mounts them exactly as the runtime's does (`runtime/toolset/_memory_mount.py`,
`_skills_mount.py`): these classes are what it asks for a session's memories and skills, and where it writes what
the agent changed, before the tool's result is posted. A write is a create, or (the path is taken) an update of the
memory there; the host records it as a version by the session (`session_actor`).
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .. import wire
from ._worker_http import WorkerHttp, WorkerHttpError


@dataclass(frozen=True, slots=True)
class ServedSession:
    """A session the worker holds: its document as the host answered it, and the credential to call with."""

    session: wire.Session
    credential: str


class ServedSessions:
    """The sessions the worker is serving now (registered when it starts serving one, dropped when it is done)."""

    def __init__(self) -> None:
        self._served: dict[str, ServedSession] = {}

    def add(self, document: Mapping[str, Any], credential: str) -> None:
        try:
            session = wire.Session.model_validate(document)
        except ValueError:  # a shape this worker does not know: serve it without mounts
            return
        self._served[session.id] = ServedSession(session, credential)

    def drop(self, session_id: str) -> None:
        self._served.pop(session_id, None)

    def get(self, session_id: str) -> ServedSession | None:
        return self._served.get(session_id)

    def with_store(self, store_id: str) -> ServedSession | None:
        for served in self._served.values():
            if any(
                isinstance(r, wire.MemoryStoreResource) and r.memory_store_id == store_id
                for r in served.session.resources
            ):
                return served
        return None


class HttpMemory:
    """`MemoryHost` over HTTP (see the module docstring)."""

    def __init__(self, http: WorkerHttp, sessions: ServedSessions) -> None:
        self._http = http
        self._sessions = sessions

    def _credential(self, store_id: str, session_id: str | None = None) -> str:
        served = self._sessions.get(session_id) if session_id else self._sessions.with_store(store_id)
        if served is None:
            raise LookupError(f"no session served here has memory store {store_id!r}")
        return served.credential

    async def snapshot(self, workspace: str, store_id: str) -> list[tuple[str, str]]:
        credential = self._credential(store_id)
        found: list[tuple[str, str]] = []
        page: str | None = None
        while True:
            params: dict[str, Any] = {"view": "full", "limit": 20, **({"page": page} if page else {})}
            data = await self._http.call("GET", f"/v1/memory_stores/{store_id}/memories", credential, params=params)
            for item in data.get("data") or []:
                if item.get("type") == "memory":
                    found.append((str(item["path"]), str(item.get("content") or "")))
            page = data.get("next_page")
            if not page:
                return found

    async def _find(self, store_id: str, path: str, credential: str) -> str | None:
        """The id of the memory at `path` (listing its directory), or None."""
        prefix = posixpath.dirname(path).rstrip("/") + "/"
        page: str | None = None
        while True:
            params: dict[str, Any] = {
                "path_prefix": prefix,
                "depth": 1,
                "limit": 100,
                **({"page": page} if page else {}),
            }
            data = await self._http.call("GET", f"/v1/memory_stores/{store_id}/memories", credential, params=params)
            for item in data.get("data") or []:
                if item.get("type") == "memory" and item.get("path") == path:
                    return str(item["id"])
            page = data.get("next_page")
            if not page:
                return None

    async def session_write(self, workspace: str, store_id: str, path: str, content: str, session_id: str) -> None:
        credential = self._credential(store_id, session_id)
        memories = f"/v1/memory_stores/{store_id}/memories"
        try:
            await self._http.call("POST", memories, credential, body={"path": path, "content": content})
            return
        except WorkerHttpError as exc:
            if exc.status != 409:
                raise
            memory_id = _conflicting_id(exc.body) or await self._find(store_id, path, credential)
        if memory_id is None:
            raise WorkerHttpError(409, f"the memory at {path!r} changed meanwhile")
        await self._http.call("POST", f"{memories}/{memory_id}", credential, body={"content": content})

    async def session_delete(self, workspace: str, store_id: str, path: str, session_id: str) -> None:
        credential = self._credential(store_id, session_id)
        memory_id = await self._find(store_id, path, credential)
        if memory_id is None:
            return  # already gone
        try:
            await self._http.call("DELETE", f"/v1/memory_stores/{store_id}/memories/{memory_id}", credential)
        except WorkerHttpError as exc:
            if exc.status != 404:
                raise


class HttpSkills:
    """`SkillsHost` over HTTP: each custom skill of the session's agent, resolved (`latest`) and downloaded."""

    def __init__(self, http: WorkerHttp, sessions: ServedSessions) -> None:
        self._http = http
        self._sessions = sessions

    async def session_skills(self, workspace: str, session: wire.Session) -> Sequence[tuple[Any, bytes]]:
        served = self._sessions.get(session.id)
        if served is None:
            return []
        found: list[tuple[Any, bytes]] = []
        for ref in session.agent.skills:
            if ref.type != "custom":
                continue
            try:
                data = await self._http.call(
                    "GET", f"/v1/skills/{ref.skill_id}/versions/{ref.version}", served.credential
                )
                version = wire.SkillVersion.model_validate(data)
                archive = await self._http.download(
                    f"/v1/skills/{ref.skill_id}/versions/{version.id}/content", served.credential
                )
            except (WorkerHttpError, ValueError):
                continue  # a skill that cannot be fetched is left out; the others are mounted
            found.append((version, archive))
        return found


def _conflicting_id(body: Any) -> str | None:
    error = body.get("error") if isinstance(body, dict) else None
    details = error.get("details") if isinstance(error, dict) else None
    for where in (details, error):
        if isinstance(where, dict) and isinstance(where.get("conflicting_memory_id"), str):
            return str(where["conflicting_memory_id"])
    return None
