"""MCP toolsets: each session's MCP servers, connected through the official `mcp` client (Streamable HTTP).

Ownership. The `mcp` client's transport is an anyio task group that must be entered and left by one task, so each
(session, server) connection is held open by one task of its own (`McpConnection._hold`), owned by `McpSessions`,
which closes it at the session's archive or delete, after `idle_timeout` without a call, and when the runtime
closes. A call is a job handed to that task; if the connection dies, every job still waiting fails at once.

Credentials never enter the sandbox: the bearer token (the credential matched by URL in the session's vaults)
rides on this client's own HTTP requests. No log line or error message here holds a token.

Refresh. The token rides on every request through `VaultAuth` (an `httpx.Auth`): when the server answers 401 or
403 to any request (at connect, or a `tools/call` in the middle of a session), an `mcp_oauth` credential with a
refresh token is refreshed through the vault (one exchange for every session and node, compare-and-set) and that
request is sent once more with the new token. A server that refused the request never ran it, so the retry
cannot repeat a tool's side effects. A token the vault knows to be expired is refreshed before it is used.

Failures. A server that cannot be reached, or refuses the credential, is reported once per turn as a
`session.error` (`mcp_connection_failed_error` / `mcp_authentication_failed_error`), and the turn goes on without
its tools; the next turn tries again. A call whose request is refused (the refresh failed) ends the connection:
the call gets an error result and the `session.error` is committed with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from ... import wire
from . import _outbound as out
from ._config import AgentLoopConfig
from ._tools import ToolContext, ToolOutput, ToolPolicy, permission_of

if TYPE_CHECKING:
    from mcp import ClientSession
    from mcp.types import CallToolResult

log = logging.getLogger("loophost.runtime.mcp")

FailureKind = Literal["mcp_connection_failed_error", "mcp_authentication_failed_error"]
_NAME = re.compile(r"[^A-Za-z0-9_-]")


class McpToken(Protocol):
    """A matched credential, as the vault hands it out (its repr shows no token)."""

    @property
    def token(self) -> str: ...
    @property
    def refreshable(self) -> bool: ...
    @property
    def expired(self) -> bool: ...
    @property
    def refresh_failed(self) -> bool: ...


class McpCredentials(Protocol):
    """Where connections get their bearer tokens: `Runtime.vaults`."""

    async def mcp_credential(self, workspace: str, vault_ids: Sequence[str], url: str) -> Any: ...
    async def refresh_mcp_credential(self, stale: Any) -> Any: ...


class VaultAuth:
    """`Authorization: Bearer` from a vault credential on every request of one connection, refreshed on a 401 or
    403 and the request sent once more (see the module docstring). An `httpx.Auth` (built by `auth_for`, since
    `httpx` is imported lazily)."""

    def __init__(self, credential: McpToken, vault: McpCredentials | None) -> None:
        self.credential = credential
        self._vault = vault if credential.refreshable else None
        self._lock = asyncio.Lock()
        self.refresh_failed = credential.refresh_failed

    async def fresh(self, used: McpToken) -> McpToken | None:
        """A token newer than `used`: one a concurrent request of this connection already got, or a refresh."""
        if self._vault is None:
            return None
        async with self._lock:
            if self.credential is not used:
                return self.credential
            fresh: McpToken | None = await self._vault.refresh_mcp_credential(used)
            if fresh is None or fresh.token == used.token:
                self.refresh_failed = True
                return None
            self.refresh_failed = False
            self.credential = fresh
            return fresh


def auth_for(state: VaultAuth) -> Any:
    """The `httpx.Auth` driving `state` (httpx is the `mcp` SDK's HTTP client)."""
    import httpx

    class _Flow(httpx.Auth):
        async def async_auth_flow(self, request: httpx.Request) -> Any:
            used = state.credential
            if used.expired:
                used = await state.fresh(used) or used
            request.headers["Authorization"] = f"Bearer {used.token}"
            response = yield request
            if response.status_code in (401, 403):
                fresh = await state.fresh(used)
                if fresh is not None:
                    request.headers["Authorization"] = f"Bearer {fresh.token}"
                    yield request

    return _Flow()


class McpFailure(Exception):
    """A server that could not be used; `str()` is the message shown in the `session.error` (no secret)."""

    def __init__(self, kind: FailureKind, server_name: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.server_name = server_name
        self.message = message


@dataclass(frozen=True, slots=True)
class McpToolInfo:
    name: str
    description: str
    input_schema: dict[str, Any]


@dataclass(slots=True)
class _Job:
    name: str
    arguments: dict[str, Any]
    future: asyncio.Future[CallToolResult]


def _status_of(exc: BaseException) -> int | None:
    """The HTTP status of the first HTTP error inside `exc` (an exception group from the transport), if any."""
    import httpx

    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            status = _status_of(inner)
            if status is not None:
                return status
    if exc.__cause__ is not None and exc.__cause__ is not exc:
        return _status_of(exc.__cause__)
    return None


def _describe(exc: BaseException) -> str:
    """A short, secret-free description of a connection failure (the exception's type, or the HTTP status)."""
    status = _status_of(exc)
    if status is not None:
        return f"HTTP {status}"
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return type(exc).__name__


def output_of(result: CallToolResult) -> ToolOutput:
    """An MCP tool result as the model and the `agent.mcp_tool_result` see it (text; other blocks named)."""
    parts: list[str] = []
    for block in result.content:
        kind = getattr(block, "type", "")
        if kind == "text":
            parts.append(str(getattr(block, "text", "")))
        elif kind == "resource":
            resource = getattr(block, "resource", None)
            parts.append(str(getattr(resource, "text", "") or f"[resource {getattr(resource, 'uri', '')}]"))
        else:
            parts.append(f"[{kind} {getattr(block, 'mimeType', '')}]".replace(" ]", "]"))
    if not parts and result.structuredContent is not None:
        parts.append(json.dumps(result.structuredContent))
    return ToolOutput("\n".join(parts), is_error=bool(result.isError))


class McpConnection:
    """One MCP server of one session, held open by its own task (see the module docstring)."""

    def __init__(self, server: wire.McpServer, auth: VaultAuth | None, *, call_timeout: float) -> None:
        self.server = server
        self.auth = auth
        self._call_timeout = call_timeout
        self._jobs: asyncio.Queue[_Job | None] = asyncio.Queue()
        self._ready: asyncio.Future[list[McpToolInfo]] = asyncio.get_running_loop().create_future()
        self._waiting: set[asyncio.Future[CallToolResult]] = set()
        self._task: asyncio.Task[None] | None = None
        self.failure: BaseException | None = None
        self.tools: list[McpToolInfo] = []
        self.last_used = time.monotonic()
        self.busy = 0

    @property
    def alive(self) -> bool:
        return self._task is not None and not self._task.done()

    async def open(self, timeout: float) -> list[McpToolInfo]:
        """Connect, initialize and list the tools; `McpFailure` when that does not work."""
        self._task = asyncio.create_task(self._hold(), name=f"loophost-mcp-{self.server.name}")
        try:
            return await asyncio.wait_for(asyncio.shield(self._ready), timeout)
        except TimeoutError as exc:
            await self.close()
            raise McpFailure(
                "mcp_connection_failed_error",
                self.server.name,
                f"MCP server {self.server.name!r} did not answer within {timeout:g} s",
            ) from exc
        except Exception as exc:
            await self.close()
            refused = self.refused(exc)
            if refused is not None:
                raise refused from None
            raise McpFailure(
                "mcp_connection_failed_error",
                self.server.name,
                f"could not connect to MCP server {self.server.name!r} ({_describe(exc)})",
            ) from None

    def refused(self, exc: BaseException) -> McpFailure | None:
        """The authentication failure `exc` is (a 401 or 403 from the server), if it is one."""
        status = _status_of(exc)
        if status not in (401, 403):
            return None
        message = f"MCP server {self.server.name!r} refused the credential (HTTP {status})"
        if self.auth is not None and self.auth.refresh_failed:
            message += "; the credential could not be refreshed"
        return McpFailure("mcp_authentication_failed_error", self.server.name, message)

    async def _hold(self) -> None:
        import anyio
        import httpx
        from mcp import ClientSession
        from mcp.client.streamable_http import streamable_http_client

        auth = auth_for(self.auth) if self.auth is not None else None
        try:
            async with contextlib.AsyncExitStack() as stack:
                http = await stack.enter_async_context(
                    httpx.AsyncClient(auth=auth, timeout=httpx.Timeout(30.0, read=self._call_timeout))
                )
                read, write, _ = await stack.enter_async_context(
                    streamable_http_client(self.server.url, http_client=http)
                )
                session = await stack.enter_async_context(ClientSession(read, write))
                await session.initialize()
                self._ready.set_result(await _list_tools(session))
                async with anyio.create_task_group() as group:
                    while (job := await self._jobs.get()) is not None:
                        group.start_soon(self._serve, session, job)
                    group.cancel_scope.cancel()
        except BaseException as exc:
            self.failure = exc
            if not self._ready.done():
                self._ready.set_exception(exc if isinstance(exc, Exception) else ConnectionError("closed"))
            if isinstance(exc, asyncio.CancelledError):
                raise
        finally:
            ended = self.refused(self.failure) if self.failure is not None else None
            for future in self._waiting:
                if not future.done():
                    future.set_exception(
                        ended or ConnectionError(f"the connection to MCP server {self.server.name!r} ended")
                    )

    async def _serve(self, session: ClientSession, job: _Job) -> None:
        from datetime import timedelta

        try:
            result = await session.call_tool(
                job.name, job.arguments, read_timeout_seconds=timedelta(seconds=self._call_timeout)
            )
        except Exception as exc:
            if not job.future.done():
                job.future.set_exception(exc)
        else:
            if not job.future.done():
                job.future.set_result(result)

    async def call(self, name: str, arguments: dict[str, Any]) -> ToolOutput:
        if not self.alive:
            raise ConnectionError(f"MCP server {self.server.name!r} is not connected")
        future: asyncio.Future[CallToolResult] = asyncio.get_running_loop().create_future()
        self._waiting.add(future)
        self.busy += 1
        try:
            self._jobs.put_nowait(_Job(name, arguments, future))
            result = await future
        finally:
            self.busy -= 1
            self._waiting.discard(future)
            self.last_used = time.monotonic()
        return output_of(result)

    async def close(self) -> None:
        """Ask the holding task to leave the connection (the client ends its MCP session), then wait for it."""
        task = self._task
        if task is None or task.done():
            return
        self._jobs.put_nowait(None)
        try:
            await asyncio.wait_for(asyncio.shield(task), 5.0)
        except (TimeoutError, Exception):
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def _list_tools(session: ClientSession) -> list[McpToolInfo]:
    tools: list[McpToolInfo] = []
    cursor: str | None = None
    while True:
        page = await session.list_tools(cursor=cursor) if cursor else await session.list_tools()
        tools += [McpToolInfo(t.name, t.description or "", dict(t.inputSchema)) for t in page.tools]
        cursor = page.nextCursor
        if not cursor:
            return tools


@dataclass(slots=True)
class McpTool:
    """An MCP server's tool behind the `BuiltinTool` seam: `name` is what the model calls it (the tool's own
    name, or `SERVER__TOOL` when that name is taken), `tool_name` its name on its server."""

    name: str
    description: str
    input_schema: dict[str, Any]
    server_name: str
    tool_name: str
    connection: McpConnection = field(repr=False)

    @property
    def metadata(self) -> dict[str, Any]:
        """Carried on the tool's definition, so the scripted model can resolve `call SERVER.TOOL`."""
        return {"loophost_mcp": {"server": self.server_name, "tool": self.tool_name}}

    async def run(self, ctx: ToolContext, tool_input: dict[str, Any]) -> ToolOutput:
        try:
            return await self.connection.call(self.tool_name, tool_input)
        except McpFailure as failure:  # refused mid-session: an error result, and the session error with it
            error = out.mcp_error(failure.kind, failure.server_name, failure.message)
            return ToolOutput(failure.message, is_error=True, events=(error,))


@dataclass(slots=True)
class _SessionServers:
    connections: dict[str, McpConnection] = field(default_factory=dict)
    failed: dict[str, str | None] = field(default_factory=dict)
    """Server name -> the turn (input id) in which it failed: not tried again until the next turn."""


class McpSessions:
    """Every session's MCP connections in this process (see the module docstring)."""

    def __init__(self, credentials: McpCredentials | None, config: AgentLoopConfig) -> None:
        self._credentials = credentials
        self._config = config
        self._sessions: dict[str, _SessionServers] = {}
        self._reaper: asyncio.Task[None] | None = None
        self._closed = False

    def connected(self, session_id: str) -> int:
        servers = self._sessions.get(session_id)
        return sum(c.alive for c in servers.connections.values()) if servers else 0

    async def tools_for(
        self,
        *,
        workspace: str,
        session_id: str,
        agent: wire.SessionAgent,
        vault_ids: Sequence[str],
        turn: str | None,
        taken: set[str],
    ) -> tuple[dict[str, ToolPolicy], list[McpFailure]]:
        """The session's MCP tools as the agent's toolsets configure them, keyed by the name the model sees
        (`taken`: names of the session's other tools), and the failures to report (once per turn)."""
        toolsets = {t.mcp_server_name: t for t in agent.tools if isinstance(t, wire.McpToolset)}
        servers = self._sessions.setdefault(session_id, _SessionServers())
        failures: list[McpFailure] = []
        listed: list[tuple[wire.McpServer, McpConnection, list[McpToolInfo]]] = []
        for server in agent.mcp_servers:
            if server.name not in toolsets:
                continue
            connection = servers.connections.get(server.name)
            if connection is not None and (not connection.alive or connection.server.url != server.url):
                await connection.close()
                servers.connections.pop(server.name, None)
                connection = None
            if connection is None:
                if server.name in servers.failed and servers.failed[server.name] == turn:
                    continue
                try:
                    connection, tools = await self._connect(workspace, server, vault_ids)
                except McpFailure as failure:
                    servers.failed[server.name] = turn
                    failures.append(failure)
                    continue
                servers.failed.pop(server.name, None)
                servers.connections[server.name] = connection
                self._start_reaper()
            else:
                tools = connection.tools
            listed.append((server, connection, tools))
        return _policies(listed, toolsets, taken), failures

    async def _connect(
        self, workspace: str, server: wire.McpServer, vault_ids: Sequence[str]
    ) -> tuple[McpConnection, list[McpToolInfo]]:
        credential = None
        if self._credentials is not None and vault_ids:
            try:
                credential = await self._credentials.mcp_credential(workspace, vault_ids, server.url)
            except Exception as exc:
                raise McpFailure(
                    "mcp_authentication_failed_error",
                    server.name,
                    f"the credential for MCP server {server.name!r} could not be read ({type(exc).__name__})",
                ) from None
        return await self._open(server, credential)

    async def _open(self, server: wire.McpServer, credential: Any) -> tuple[McpConnection, list[McpToolInfo]]:
        auth = VaultAuth(credential, self._credentials) if credential is not None else None
        connection = McpConnection(server, auth, call_timeout=self._config.mcp_call_timeout)
        tools = await connection.open(self._config.mcp_connect_timeout)
        connection.tools = tools
        return connection, tools

    async def close_session(self, session_id: str) -> None:
        servers = self._sessions.pop(session_id, None)
        if servers is not None:
            await asyncio.gather(*(c.close() for c in servers.connections.values()))

    async def close(self) -> None:
        self._closed = True
        if self._reaper is not None:
            self._reaper.cancel()
            await asyncio.gather(self._reaper, return_exceptions=True)
        for session_id in list(self._sessions):
            await self.close_session(session_id)

    def _start_reaper(self) -> None:
        if self._reaper is None and not self._closed:
            self._reaper = asyncio.create_task(self._reap(), name="loophost-mcp-reaper")

    async def _reap(self) -> None:
        """Close connections unused for `idle_timeout` seconds (not while a call is in flight)."""
        idle = self._config.mcp_idle_timeout
        while True:
            await asyncio.sleep(max(min(idle / 4, 30.0), 0.05))
            cutoff = time.monotonic() - idle
            for session_id, servers in list(self._sessions.items()):
                for name, connection in list(servers.connections.items()):
                    if connection.busy == 0 and connection.last_used < cutoff:
                        servers.connections.pop(name, None)
                        await connection.close()
                if not servers.connections and not servers.failed:
                    self._sessions.pop(session_id, None)


def _policies(
    listed: Sequence[tuple[wire.McpServer, McpConnection, list[McpToolInfo]]],
    toolsets: Mapping[str, wire.McpToolset],
    taken: set[str],
) -> dict[str, ToolPolicy]:
    counts: dict[str, int] = {}
    for _, _, tools in listed:
        for info in tools:
            counts[info.name] = counts.get(info.name, 0) + 1
    policies: dict[str, ToolPolicy] = {}
    for server, connection, tools in listed:
        toolset = toolsets[server.name]
        configs = {c.name: c for c in toolset.configs}
        for info in tools:
            config = configs.get(info.name)
            enabled = config.enabled if config is not None else toolset.default_config.enabled
            if not enabled:
                continue
            policy = config.permission_policy if config is not None else toolset.default_config.permission_policy
            name = info.name
            if counts[name] > 1 or name in taken or _NAME.search(name) or len(name) > 128:
                name = _NAME.sub("_", f"{server.name}__{info.name}")[:128]
            tool = McpTool(name, info.description, info.input_schema, server.name, info.name, connection)
            permission, evaluation = permission_of(policy)
            policies[name] = ToolPolicy(tool, permission, evaluation)
    return policies
