"""The credentials of self-hosted workers: environment keys and work items' sessions tokens (spec part 2 §1.4).

They are not API keys. An environment key reaches its environment's work queue and the sessions of that
environment; a sessions token reaches its own work item (heartbeat, stop) and, while the item is held, its own
session, and the memory stores and skills of that session (what the official worker syncs and downloads).
`WorkerCredentials` (pure ASGI, in front of every route) authenticates such a credential once per request
and decides, from the method and path, whether it may make the request: another environment's or session's id is
a 404, an endpoint these credentials may not call a 403. The decision is handed down in a context variable, which
`caller_workspace` (`_deps.py`) reads, so every route, including the one served outside FastAPI, authenticates the
same way; the work routes read the caller itself (`worker_caller`).
"""

from __future__ import annotations

import re
from contextvars import ContextVar
from dataclasses import dataclass

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from .. import wire
from ..runtime import Caller, NotFound, Runtime
from ..runtime._work import ENVIRONMENT_KEY_PREFIX, SESSIONS_TOKEN_PREFIX
from ._errors import ApiError

_WORK = re.compile(r"/v1/environments/([^/]+)/work(?:/([^/]+)(?:/([a-z]+))?)?")
_SESSION = re.compile(r"/v1/sessions/([^/]+)(/events|/events/stream|/threads(?:/[^/]+(?:/events|/stream)?)?)?")
_MEMORY = re.compile(r"/v1/memory_stores/([^/]+)/(memories|memory_versions)(?:/[^/]+)?")
_SKILL = re.compile(r"/v1/skills/([^/]+)/versions/[^/]+(?:/content)?")
_KEY_ONLY = {("GET", "poll"), ("POST", "ack"), ("GET", "list")}  # (method, action) an environment key alone may call
_ITEM_ACTIONS = {("POST", "heartbeat"), ("POST", "stop")}


@dataclass(frozen=True, slots=True)
class Grant:
    """What `WorkerCredentials` decided for the credential of the request in flight."""

    credential: str
    caller: Caller
    refusal: ApiError | None = None


GRANT: ContextVar[Grant | None] = ContextVar("loophost_worker_grant", default=None)


def bearer(headers: Headers) -> str:
    """The credential of a request: `Authorization: Bearer <it>`, else `x-api-key`."""
    scheme, _, credentials = headers.get("authorization", "").partition(" ")
    key = credentials.strip() if scheme.lower() == "bearer" else ""
    return key or headers.get("x-api-key", "")


def granted(credential: str) -> Grant | None:
    """The decision for `credential` in the request in flight (None: it is not a worker's credential)."""
    grant = GRANT.get()
    return grant if grant is not None and grant.credential == credential else None


class WorkerCredentials:
    """ASGI: decides what a worker's credential may do (see the module docstring); any other request passes
    through untouched, after one prefix check."""

    def __init__(self, app: ASGIApp, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        credential = bearer(Headers(scope=scope))
        if not credential.startswith((ENVIRONMENT_KEY_PREFIX, SESSIONS_TOKEN_PREFIX)):
            await self.app(scope, receive, send)
            return
        caller = await self.runtime.work.authenticate(credential)
        if caller is None:
            await self.app(scope, receive, send)  # an API key that looks like one, or an unknown credential: 401
            return
        refusal = await self._refusal(caller, scope["method"], scope["path"])
        token = GRANT.set(Grant(credential, caller, refusal))
        try:
            await self.app(scope, receive, send)
        finally:
            GRANT.reset(token)

    async def _refusal(self, caller: Caller, method: str, path: str) -> ApiError | None:
        if match := _WORK.fullmatch(path):
            environment_id, work_id, action = match[1], match[2], match[3]
            if work_id is None:
                action = "list"
            elif work_id in ("poll", "stats") and action is None:
                work_id, action = None, work_id
            if (method, action) in _KEY_ONLY:
                if caller.kind != "environment_key":
                    return _forbidden("this endpoint takes the environment key")
                return None if caller.environment_id == environment_id else _not_found("environment", environment_id)
            if (method, action) in _ITEM_ACTIONS and work_id is not None:
                if caller.may_use_item(environment_id, work_id):
                    return None
                if caller.environment_id != environment_id:
                    return _not_found("environment", environment_id)
                return _not_found("work", work_id)
            return _forbidden("this endpoint takes an API key, not a worker's credential")
        if (match := _SESSION.fullmatch(path)) and (method == "GET" or (method, match[2]) == ("POST", "/events")):
            session_id = match[1]
            try:
                session = await self.runtime.get_session(caller.workspace, session_id)
            except NotFound:
                return _not_found("session", session_id)
            if caller.may_use_session(session.environment_id, session_id):
                return None
            return _not_found("session", session_id)
        if (match := _MEMORY.fullmatch(path)) or (match := _SKILL.fullmatch(path)):
            return await self._resource_refusal(caller, method, match[0].startswith("/v1/skills/"), match[1])
        return _forbidden("a worker's credential may call only its work queue and its sessions")

    async def _resource_refusal(self, caller: Caller, method: str, skill: bool, resource_id: str) -> ApiError | None:
        """A sessions token reaches the memory stores attached to its session (memories and versions; writes
        only where the attachment is `read_write`) and its session agent's skills (read), as the official worker
        needs them; an environment key reaches neither."""
        if caller.kind != "sessions_token" or caller.session_id is None or not caller.holds_session:
            return _forbidden("memory stores and skills take an API key or the sessions token of a held session")
        try:
            session = await self.runtime.get_session(caller.workspace, caller.session_id)
        except NotFound:
            return _not_found("session", caller.session_id)
        if skill:
            if method == "GET" and any(s.skill_id == resource_id for s in session.agent.skills):
                return None
            return _not_found("skill", resource_id)
        for resource in session.resources:
            if isinstance(resource, wire.MemoryStoreResource) and resource.memory_store_id == resource_id:
                if method != "GET" and resource.access == "read_only":
                    return _forbidden(f"memory store {resource_id!r} is attached read-only")
                return None
        return _not_found("memory store", resource_id)


def _forbidden(message: str) -> ApiError:
    return ApiError(403, message, code="permission_denied")


def _not_found(kind: str, resource_id: str) -> ApiError:
    return ApiError(404, f"{kind} {resource_id!r} not found", code="not_found")
