"""The built-in `agent_toolset_20260401` tools, sandboxed per session: bash, read, write, edit, glob, grep,
web_fetch and web_search (see docs/toolset.md).

`Toolset` owns everything the tools keep per session (workspace directories, the persistent shell, the egress
proxy) and every background task and process behind them; `Runtime(toolset=...)` registers its tools through the
`BuiltinTool` seam and closes it with the runtime. Permission policies (`always_ask` for untrusted agents) are
applied by the agent loop before any tool here runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from ... import wire
from .._ids import new_id
from ..engine._tools import BuiltinTool, ToolContext, ToolOutput
from ._bash import DEFAULT_TIMEOUT_MS, MAX_OUTPUT_CHARS, BashTool, Shell, ShellLaunch
from ._confine import OUTPUTS, UPLOADS, WORKSPACE, Confined, ToolError
from ._egress import EgressProxy, HostPolicy
from ._files_tools import file_tools
from ._inject import Secret, SecretSource, placeholder
from ._memory_mount import MemoryMount, load_index, materialize, memory_mounts, sync_mount
from ._memory_mount import scan as scan_memory
from ._outputs import sync_outputs
from ._sandbox import (
    FORWARDER_PORT,
    SANDBOX_BUNDLE,
    Limits,
    SandboxSpec,
    find_bwrap,
    pids_cgroup,
    remove_cgroup,
    shell_command,
    write_identity,
)
from ._skills_mount import SKILLS_ROOT, unpack_skills
from ._tls import CA_ENV_NAMES, EgressCA
from ._web import SearchBackend, SearchResult, SearxngBackend, WebFetchTool, WebRules, WebSearchTool
from ._workspace import SessionDirs, Workspaces, place_mount

__all__ = [
    "DEFAULT_TIMEOUT_MS",
    "HostPolicy",
    "Limits",
    "SearchBackend",
    "SearchResult",
    "SearxngBackend",
    "ToolHost",
    "Toolset",
    "find_bwrap",
]

log = logging.getLogger("loophost.toolset")


class EnvironmentSecretView(Protocol):
    """An `environment_variable` credential (`runtime._vaults.EnvironmentSecret`)."""

    @property
    def name(self) -> str: ...
    @property
    def value(self) -> str: ...
    @property
    def allowed_hosts(self) -> tuple[str, ...] | None: ...
    @property
    def header(self) -> bool: ...
    @property
    def body(self) -> bool: ...


class SecretVaults(Protocol):
    """Where the sandbox's `environment_variable` credentials come from (`Runtime.vaults`)."""

    async def environment_secrets(
        self, workspace: str, vault_ids: Sequence[str]
    ) -> Sequence[EnvironmentSecretView]: ...


class MemoryHost(Protocol):
    """Where the sandbox's memory mounts come from and go to (`Runtime.memory`)."""

    async def snapshot(self, workspace: str, store_id: str) -> list[tuple[str, str]]: ...
    async def session_write(self, workspace: str, store_id: str, path: str, content: str, session_id: str) -> None: ...
    async def session_delete(self, workspace: str, store_id: str, path: str, session_id: str) -> None: ...


class SkillsHost(Protocol):
    """Where the session agent's skills come from (`Runtime.skills`)."""

    async def session_skills(self, workspace: str, session: wire.Session) -> Sequence[tuple[Any, bytes]]: ...


class ToolHost(Protocol):
    """What the toolset needs of the runtime (`Runtime` is one)."""

    @property
    def vaults(self) -> SecretVaults: ...

    @property
    def memory(self) -> MemoryHost: ...

    @property
    def skills(self) -> SkillsHost: ...

    async def get_session(self, workspace: str, session_id: str) -> wire.Session: ...

    async def get_environment(self, workspace: str, env_id: str) -> wire.Environment: ...

    async def file_content(self, workspace: str, file_id: str) -> Any: ...

    async def save_output_file(
        self, workspace: str, session_id: str, filename: str, content: bytes, mime_type: str | None = None
    ) -> wire.FileMetadata: ...

    async def delete_file(self, workspace: str, file_id: str) -> wire.Deleted: ...


@dataclass(slots=True)
class _Session:
    workspace: str
    dirs: SessionDirs
    policy: HostPolicy
    self_hosted: bool
    vault_ids: tuple[str, ...] = ()
    placeholders: dict[str, str] = field(default_factory=dict)
    """`environment_variable` credential name -> the placeholder the sandbox sees (kept for the session's life)."""
    mounts: tuple[str, ...] = ()
    memory: tuple[MemoryMount, ...] = ()
    """The session's memory stores, bound at /mnt/memory/<slug> (`_memory_mount.py`)."""
    skills: bool = False
    """Whether the agent's skills are unpacked at /mnt/skills (`_skills_mount.py`)."""
    shell: Shell | None = None
    proxy: EgressProxy | None = None
    cgroup: Path | None = None
    used: float = field(default_factory=time.monotonic)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    outputs_lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def _networking(env: wire.Environment | None, session: wire.Session) -> tuple[HostPolicy, bool]:
    """(host policy, self_hosted) of an environment; a missing environment fails closed (no hosts)."""
    if env is None:
        return HostPolicy.limited(()), False
    config = env.config
    if isinstance(config, wire.SelfHostedConfig):
        return HostPolicy.limited(()), True
    net = config.networking
    if isinstance(net, wire.NetworkingLimited):
        mcp = [s.url for s in session.agent.mcp_servers] if net.allow_mcp_servers else []
        return HostPolicy.limited(net.allowed_hosts, package_managers=net.allow_package_managers, mcp_urls=mcp), False
    return HostPolicy.unrestricted(), False


class Toolset:
    """The sandboxed built-in tools of a runtime, with workspaces under `root`.

    `use_bwrap`: None uses bwrap when it is found and works (`LOOPHOST_BWRAP`, else PATH), True requires it,
    False forces the weaker fallback. Secure by default: with no working bwrap the tools refuse to run (each call
    is an error result, with a `session.error` saying why and how to install bubblewrap) unless the operator
    opts out with `unsafe_no_sandbox=True` (`loophost serve --unsafe-no-sandbox`), which runs them in the weaker
    fallback. `search_backend`: the operator's web search; without one web_search says it is unavailable. Idle
    shells are closed after `idle_timeout` seconds (their files stay).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        use_bwrap: bool | None = None,
        bwrap: str | None = None,
        limits: Limits | None = None,
        search_backend: SearchBackend | None = None,
        search_unavailable_reason: str | None = None,
        idle_timeout: float = 1800.0,
        output_limit: int = MAX_OUTPUT_CHARS,
        max_output_file_bytes: int = 64 * 1024 * 1024,
        unsafe_no_sandbox: bool = False,
    ) -> None:
        self.workspaces = Workspaces(Path(root).absolute())
        self.limits = limits or Limits()
        self.bwrap = None if use_bwrap is False else find_bwrap(bwrap)
        if use_bwrap is True and self.bwrap is None:
            raise RuntimeError("bwrap was required but is not available or cannot create a sandbox here")
        self.refusal = None if self.bwrap is not None or unsafe_no_sandbox or use_bwrap is False else NO_SANDBOX
        """Why the tools refuse to run (no working sandbox and no opt-out), or None."""
        if self.refusal is not None:
            log.warning("built-in tools are refused: %s", NO_SANDBOX)
        elif self.bwrap is None:
            log.warning(
                "tools run WITHOUT bubblewrap: the fallback sandbox does not hide the host filesystem, processes "
                "or network (see docs/toolset.md); install bwrap or set LOOPHOST_BWRAP"
            )
        self.idle_timeout = idle_timeout
        self.output_limit = output_limit
        self.max_output_file_bytes = max_output_file_bytes
        self._host: ToolHost | None = None
        self._sessions: dict[str, _Session] = {}
        self._setup_locks: dict[str, asyncio.Lock] = {}
        self._reaper: asyncio.Task[None] | None = None
        self._socket_dir: str | None = None
        self._ca: EgressCA | None = None
        self._ca_lock = asyncio.Lock()
        self._warned_pids = False
        self.web_search = WebSearchTool(self, search_backend, search_unavailable_reason)
        tools: list[BuiltinTool] = [BashTool(self), *file_tools(self), WebFetchTool(self), self.web_search]
        self._tools: dict[str, BuiltinTool] = {tool.name: tool for tool in tools}

    @property
    def sandboxed(self) -> bool:
        """Whether tools run under bubblewrap (else the documented fallback)."""
        return self.bwrap is not None

    def bind(self, host: ToolHost) -> None:
        self._host = host

    def tools(self) -> dict[str, BuiltinTool]:
        if self.refusal is not None:
            return {name: _Refused(tool, self.refusal) for name, tool in self._tools.items()}
        tools = self._tools.items()
        return {name: _MemorySynced(tool, self) if name in WRITING_TOOLS else tool for name, tool in tools}

    @property
    def unavailable(self) -> dict[str, str]:
        """Tools that resolve but cannot work here, with the reason (the agent is told the same)."""
        reason = self.web_search.unavailable_reason
        return {"web_search": reason} if reason else {}

    # sessions ------------------------------------------------------------------------------------------------
    def _need_host(self) -> ToolHost:
        if self._host is None:
            raise ToolError("the toolset is not bound to a runtime")
        return self._host

    async def _session(self, ctx: ToolContext) -> _Session:
        """The session's state, set up on first use: directories, networking snapshot, file mounts."""
        host = self._need_host()
        lock = self._setup_locks.setdefault(ctx.session_id, asyncio.Lock())
        async with lock:
            session = await host.get_session(ctx.workspace, ctx.session_id)
            state = self._sessions.get(ctx.session_id)
            if state is None:
                dirs = await asyncio.to_thread(self.workspaces.ensure, ctx.session_id)
                try:
                    env: wire.Environment | None = await host.get_environment(ctx.workspace, ctx.environment_id)
                except Exception:
                    env = None
                policy, self_hosted = _networking(env, session)
                snapshot = dirs.load_json("networking.json")
                if snapshot is not None:  # environment changes apply to new sessions only
                    policy = HostPolicy(None if snapshot["entries"] is None else tuple(map(tuple, snapshot["entries"])))
                    self_hosted = bool(snapshot["self_hosted"])
                else:
                    dirs.save_json("networking.json", {"entries": policy.entries, "self_hosted": self_hosted})
                write_identity(dirs.private)
                state = self._sessions[ctx.session_id] = _Session(
                    ctx.workspace,
                    dirs,
                    policy,
                    self_hosted,
                    vault_ids=tuple(session.vault_ids),
                    placeholders=dict(dirs.load_json("placeholders.json") or {}),
                    memory=() if self_hosted else memory_mounts(session),
                )
                await self._mount_memory(state)
                if session.agent.skills and not self_hosted:
                    found = await host.skills.session_skills(ctx.workspace, session)
                    pairs = [(version.name, archive) for version, archive in found]
                    state.skills = bool(await asyncio.to_thread(unpack_skills, dirs, pairs))
            state.used = time.monotonic()
            await self._place_mounts(state, session)
            return state

    async def _place_mounts(self, state: _Session, session: wire.Session) -> None:
        host = self._need_host()
        mounts = []
        for resource in session.resources:
            if not isinstance(resource, wire.FileResource) or not resource.mount_path:
                continue
            path = Confined(state.dirs.fs).normalize(resource.mount_path)
            mounts.append(path)
            if path in state.mounts:
                continue
            try:
                content = (await host.file_content(state.workspace, resource.file_id)).content
                await asyncio.to_thread(place_mount, state.dirs, path, content)
            except Exception as exc:  # a deleted or expired file: the mount stays empty, the session goes on
                log.warning("session %s: cannot mount %s at %s: %s", session.id, resource.file_id, path, exc)
        state.mounts = tuple(mounts)

    async def _mount_memory(self, state: _Session) -> None:
        """Copy each attached store into its directory, the first time the session's sandbox is set up."""
        host = self._need_host()
        for mount in state.memory:
            if await asyncio.to_thread(load_index, state.dirs, mount) is not None:
                continue  # the session's own view since then (and what it changed, synced or not)
            memories = await host.memory.snapshot(state.workspace, mount.store_id)
            await asyncio.to_thread(materialize, state.dirs, mount, memories)

    async def confined(self, ctx: ToolContext) -> Confined:
        state = await self._sandbox_session(ctx)
        return Confined(
            state.dirs.fs,
            owner=state.dirs.owner,
            mounts=state.mounts,
            readable=[m.sandbox_path for m in state.memory if m.read_only] + ([SKILLS_ROOT] if state.skills else []),
            writable=[m.sandbox_path for m in state.memory if not m.read_only],
        )

    async def _sandbox_session(self, ctx: ToolContext) -> _Session:
        state = await self._session(ctx)
        if state.self_hosted:
            raise ToolError(
                "this session's environment is self_hosted: its sandbox tools run on the environment's own "
                "workers, not in this runtime"
            )
        return state

    # bash --------------------------------------------------------------------------------------------------
    async def run_bash(self, ctx: ToolContext, command: str | None, restart: bool, timeout_ms: int) -> ToolOutput:
        try:
            state = await self._sandbox_session(ctx)
        except ToolError as exc:
            return ToolOutput(str(exc), is_error=True)
        notes: list[str] = []
        try:
            async with state.lock:
                if restart and state.shell is not None:
                    await self._stop_shell(state)
                if command is None:
                    return ToolOutput("The shell was restarted.")
                if state.shell is not None and not state.shell.alive:
                    await self._stop_shell(state)
                    notes.append("[the previous shell had exited; this command ran in a new shell]")
                if state.shell is None:
                    state.shell = await self._start_shell(state)
                shell = state.shell
                status, text = await shell.run(command, timeout_ms / 1000)
                is_error = False
                if status is not None:
                    await shell.reap_strays()
                    if status != 0:
                        notes.append(f"[exit status {status}]")
                elif not shell.alive:
                    await self._stop_shell(state)
                    notes.append("[the shell exited; the next command starts a new shell]")
                else:  # the rest of the command line must not go on running unseen: a fresh shell
                    is_error = True
                    await self._stop_shell(state)
                    notes.append(
                        f"[timed out after {timeout_ms} ms: the command was killed and the shell restarted "
                        "(working directory and variables are reset)]"
                    )
        except asyncio.CancelledError:  # interrupted: nothing the call started may survive it
            await asyncio.shield(self._stop_shell(state))
            raise
        except (OSError, RuntimeError) as exc:
            return ToolOutput(f"bash failed: {exc}", is_error=True)
        finally:
            state.used = time.monotonic()
            await self.sync_outputs(ctx)
        return ToolOutput("\n".join([text.rstrip("\n"), *notes]).strip("\n"), is_error=is_error)

    async def _start_shell(self, state: _Session) -> Shell:
        dirs = state.dirs
        sandboxed = self.bwrap is not None
        env = {
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "LANG": "C.UTF-8",
            "TERM": "dumb",
            "PAGER": "cat",
            "GIT_PAGER": "cat",
        }
        paths = {"WORKSPACE": WORKSPACE, "SESSION_UPLOADS": UPLOADS, "SESSION_OUTPUTS": OUTPUTS, "TMPDIR": "/tmp"}
        if not sandboxed:  # the fallback sees host paths
            paths = {key: str(dirs.host(value)) for key, value in paths.items()}
        env.update(paths, HOME=paths["WORKSPACE"])
        secrets = await self._placeholders(state, env)
        socket_path: Path | None = None
        ca = await self._egress_ca() if secrets is not None else None
        if ca is not None:  # HTTPS to a credential's hosts is intercepted: the sandbox trusts the egress CA
            bundle = SANDBOX_BUNDLE if sandboxed else str(ca.bundle_path)
            env.update(dict.fromkeys(CA_ENV_NAMES, bundle))
        if not state.policy.is_unrestricted or secrets is not None:
            if state.proxy is None:
                state.proxy = EgressProxy(state.policy)
                if sandboxed and not state.policy.is_unrestricted:
                    if self._socket_dir is None:  # unix socket paths are short: keep them out of deep workspaces
                        self._socket_dir = tempfile.mkdtemp(prefix="loophost-egress-")
                    await state.proxy.start_unix(Path(self._socket_dir) / f"{dirs.base.name}.sock")
                else:  # the fallback, or unrestricted networking (the host's loopback is the sandbox's)
                    await state.proxy.start_tcp()
            state.proxy.secrets, state.proxy.ca = secrets, ca
            socket_path = state.proxy.socket_path
            port = FORWARDER_PORT if socket_path is not None else state.proxy.port
            proxy_url = f"http://127.0.0.1:{port}"
            for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
                env[name] = proxy_url
        spec = SandboxSpec(
            fs=dirs.fs,
            private=dirs.private,
            mounts=state.mounts,
            host_network=state.policy.is_unrestricted,
            egress_socket=socket_path,
            directories=tuple((m.sandbox_path, m.read_only) for m in state.memory)
            + (((SKILLS_ROOT, True),) if state.skills else ()),
            ca_bundle=ca.bundle_path if ca is not None else None,
        )
        if state.cgroup is None:
            state.cgroup = pids_cgroup(dirs.base.name, self.limits.processes)
            if state.cgroup is None and not self._warned_pids:
                self._warned_pids = True
                log.warning("no pids cgroup available: the per-session process limit is not enforced")
        launch = ShellLaunch(
            argv=shell_command(spec, self.bwrap),
            env=env,
            cwd=str(dirs.host(WORKSPACE)),
            limits=self.limits,
            cgroup=state.cgroup,
            args_fd=sandboxed,
        )
        shell = Shell(launch, output_limit=self.output_limit)
        await shell.start()
        self._ensure_reaper()
        return shell

    async def _egress_ca(self) -> EgressCA:
        """The runtime's egress CA (`_tls.py`), loaded or created beside the workspaces on first use."""
        async with self._ca_lock:
            if self._ca is None:
                try:
                    self._ca = await asyncio.to_thread(EgressCA.load_or_create, self.workspaces.root)
                except (OSError, ValueError) as exc:  # unreadable or damaged: the shell does not start
                    raise RuntimeError(f"the egress CA cannot be loaded: {exc}") from exc
            return self._ca

    async def _placeholders(self, state: _Session, env: dict[str, str]) -> SecretSource | None:
        """Put a placeholder in `env` for each `environment_variable` credential of the session's vaults, and
        return what the egress proxy substitutes them with (None: the session has none). The sandbox's own
        variables (PATH, HOME, the proxy's, the CA bundle's) keep their values."""
        host = self._need_host()
        if not state.vault_ids:
            return None
        current = await host.vaults.environment_secrets(state.workspace, state.vault_ids)
        for secret in current:
            if secret.name in env or secret.name in CA_ENV_NAMES or secret.name.lower().endswith("_proxy"):
                log.warning("environment_variable credential %s is not set: the sandbox defines it", secret.name)
                continue
            env[secret.name] = state.placeholders.setdefault(secret.name, placeholder())
        if not state.placeholders:
            return None
        state.dirs.save_json("placeholders.json", state.placeholders)
        vault_ids, workspace, placeholders = state.vault_ids, state.workspace, state.placeholders

        async def source() -> list[Secret]:
            found = await host.vaults.environment_secrets(workspace, vault_ids)
            return [
                Secret(
                    placeholders[s.name],
                    s.value,
                    HostPolicy.unrestricted() if s.allowed_hosts is None else HostPolicy.limited(s.allowed_hosts),
                    s.header,
                    s.body,
                )
                for s in found
                if s.name in placeholders
            ]

        return source

    async def _stop_shell(self, state: _Session) -> None:
        shell, state.shell = state.shell, None
        if shell is not None:
            await shell.close()

    # outputs and web rules -----------------------------------------------------------------------------------
    async def sync_outputs(self, ctx: ToolContext) -> None:
        """Turn what the session has under /mnt/session/outputs into session-scoped files (never raises)."""
        state = self._sessions.get(ctx.session_id)
        host = self._host
        if state is None or host is None:
            return

        async def save(rel: str, content: bytes) -> str:
            meta = await host.save_output_file(state.workspace, ctx.session_id, rel.rsplit("/", 1)[-1], content)
            return meta.id

        async def delete(file_id: str) -> None:
            await host.delete_file(state.workspace, file_id)

        async with state.outputs_lock:
            try:
                await sync_outputs(state.dirs, save, delete, self.max_output_file_bytes)
            except Exception:
                log.exception("session %s: syncing outputs failed", ctx.session_id)

    async def sync_memory(self, session_id: str) -> list[str]:
        """Write what the session changed in its read-write memory mounts to the stores, as versions by its
        session; notes about files that could not be saved. Raises when a store cannot be written (the next call
        tries again: nothing is marked synced that was not)."""
        state = self._sessions.get(session_id)
        if state is None or self._host is None or not state.memory:
            return []
        async with state.outputs_lock:
            return await self._sync_mounts(state.workspace, session_id, state.dirs, state.memory)

    async def _sync_mounts(
        self, workspace: str, session_id: str, dirs: SessionDirs, mounts: Sequence[MemoryMount]
    ) -> list[str]:
        host = self._need_host()
        notes: list[str] = []
        for mount in mounts:

            async def write(path: str, content: str, mount: MemoryMount = mount) -> None:
                await host.memory.session_write(workspace, mount.store_id, path, content, session_id)

            async def remove(path: str, mount: MemoryMount = mount) -> None:
                await host.memory.session_delete(workspace, mount.store_id, path, session_id)

            async def files(mount: MemoryMount = mount) -> tuple[dict[str, bytes], list[str]]:
                return await asyncio.to_thread(scan_memory, dirs, mount)

            notes += await sync_mount(dirs, mount, write, remove, files)
        return notes

    def memory_sessions(self) -> list[str]:
        """The sessions whose workspace here holds a memory index: those that mounted a memory store, whose
        mounts may hold writes the stores lack (blocking: call it in a thread)."""
        root = self.workspaces.root
        if not root.is_dir():
            return []
        return sorted({index.parents[2].name for index in root.glob("*/private/memory/*.json")})

    async def sync_memory_after_restart(self, workspace: str, session: wire.Session) -> None:
        """What the session wrote to its read-write memory mounts that the stores lack, synced now: a call
        interrupted by a crash of the runtime wrote it but never got its result committed, so neither that
        call's sync nor the session's idle sync ran. Called on startup before sessions resume (the runtime's
        `open`); a failure is logged, and the session's next sync tries again."""
        if session.id in self._sessions or not await asyncio.to_thread(self.workspaces.exists, session.id):
            return
        mounts = memory_mounts(session)
        if not mounts:
            return
        dirs = await asyncio.to_thread(self.workspaces.ensure, session.id)
        try:
            await self._sync_mounts(workspace, session.id, dirs, mounts)
        except Exception:  # retried at the session's next sync; nothing is marked synced that was not
            log.exception("session %s: syncing memory after a restart failed", session.id)

    def _tool_config(self, session: wire.Session, name: str) -> wire.AgentToolConfig | None:
        for tool in session.agent.tools:
            if isinstance(tool, wire.AgentToolset):
                for config in tool.configs:
                    if config.name == name:
                        return config
        return None

    async def web_rules(self, ctx: ToolContext, name: str) -> WebRules:
        state = await self._session(ctx)
        session = await self._need_host().get_session(ctx.workspace, ctx.session_id)
        config = self._tool_config(session, name)
        allowed = tuple(config.allowed_domains) if config and config.allowed_domains else None
        blocked = tuple(config.blocked_domains) if config and config.blocked_domains else None
        max_chars = config.max_content_tokens * 4 if config and config.max_content_tokens else 100_000
        return WebRules(state.policy, allowed, blocked, max_chars)

    async def user_location(self, ctx: ToolContext) -> dict[str, Any] | None:
        session = await self._need_host().get_session(ctx.workspace, ctx.session_id)
        config = self._tool_config(session, "web_search")
        if config is None or config.user_location is None:
            return None
        return config.user_location.model_dump(exclude_none=True)

    # lifecycle ---------------------------------------------------------------------------------------------
    async def close_session(self, session_id: str) -> None:
        """Kill the session's processes and stop its proxy (archive, idle); its files stay, and what its processes
        last wrote to its memory mounts is synced."""
        state = self._sessions.get(session_id)
        if state is None:
            self._setup_locks.pop(session_id, None)
            return
        await self._stop_shell(state)
        await self._sync_quietly(session_id)
        self._sessions.pop(session_id, None)
        self._setup_locks.pop(session_id, None)
        if state.proxy is not None:
            await state.proxy.close()
            if state.proxy.socket_path is not None:
                with contextlib.suppress(OSError):
                    state.proxy.socket_path.unlink()
        await asyncio.to_thread(remove_cgroup, state.cgroup)

    async def remove_session(self, session_id: str) -> None:
        """Session deleted: kill its processes and delete its workspace (its output files stay in Files)."""
        await self.close_session(session_id)
        await asyncio.to_thread(self.workspaces.remove, session_id)

    def _ensure_reaper(self) -> None:
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.create_task(self._reap_idle(), name="loophost-toolset-idle")

    async def _reap_idle(self) -> None:
        """Close shells nobody used for `idle_timeout` (a terminated or abandoned session's processes too), and
        sync the memory mounts of sessions in use (every `MEMORY_SYNC_SECONDS`, as the official worker does): what
        an interrupted call wrote without returning a result."""
        while True:
            await asyncio.sleep(min(MEMORY_SYNC_SECONDS, self.idle_timeout))
            now = time.monotonic()
            for session_id, state in list(self._sessions.items()):
                if state.shell is not None and now - state.used > self.idle_timeout and not state.lock.locked():
                    await self.close_session(session_id)
                elif state.memory and now - state.used <= self.idle_timeout and not state.lock.locked():
                    await self._sync_quietly(session_id)  # also what an interrupted call left unsynced

    async def sync_memory_quietly(self, session_id: str) -> None:
        """`sync_memory` when the session has memory mounts here (at idle); a failure is logged and retried."""
        state = self._sessions.get(session_id)
        if state is not None and state.memory and not state.lock.locked():
            await self._sync_quietly(session_id)

    async def _sync_quietly(self, session_id: str) -> None:
        try:
            await self.sync_memory(session_id)
        except Exception:  # retried at the next sync; nothing is marked synced that was not
            log.exception("session %s: syncing memory failed", session_id)

    async def close(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            await asyncio.gather(self._reaper, return_exceptions=True)
            self._reaper = None
        for session_id in list(self._sessions):
            await self.close_session(session_id)
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = None


NO_SANDBOX = (
    "no working sandbox (bubblewrap) was found, so the server refuses to run built-in tools. Install bubblewrap "
    "(Debian/Ubuntu: `sudo apt install bubblewrap`; Fedora: `sudo dnf install bubblewrap`) or point "
    "LOOPHOST_BWRAP at a bwrap binary; to run tools without a sandbox on a machine you trust, start the server with "
    "--unsafe-no-sandbox."
)


MEMORY_SYNC_SECONDS = 15.0
"""How often the memory mounts of sessions in use are synced between tool calls."""
WRITING_TOOLS = ("bash", "write", "edit")
"""The tools after which memory mounts are synced."""


class _MemorySynced:
    """A tool that can write, followed by the sync of the session's memory mounts before its result is returned
    (so the result the model sees, once committed, never announces a write the store lacks)."""

    def __init__(self, tool: BuiltinTool, toolset: Toolset) -> None:
        self.name = tool.name
        self.description = tool.description
        self.input_schema = tool.input_schema
        self._tool = tool
        self._toolset = toolset

    async def run(self, ctx: ToolContext, tool_input: dict[str, Any]) -> ToolOutput:
        output = await self._tool.run(ctx, tool_input)
        try:
            notes = await self._toolset.sync_memory(ctx.session_id)
        except Exception as exc:
            log.exception("session %s: syncing memory failed", ctx.session_id)
            note = f"[memory: saving to the memory store failed ({exc}); it is retried after the next call]"
            return replace(output, text=f"{output.text}\n{note}".strip("\n"), is_error=True)
        if notes:
            return replace(output, text="\n".join([output.text, *(f"[memory: {n}]" for n in notes)]).strip("\n"))
        return output


class _Refused:
    """A built-in tool that refuses to run (no sandbox): an error result, and a `session.error` saying why."""

    def __init__(self, tool: BuiltinTool, reason: str) -> None:
        self.name = tool.name
        self.description = tool.description
        self.input_schema = tool.input_schema
        self._reason = reason

    async def run(self, ctx: ToolContext, tool_input: dict[str, Any]) -> ToolOutput:
        error = wire.SessionErrorEvent.model_validate(
            {
                "id": new_id("sevt"),
                "type": "session.error",
                "processed_at": wire.utcnow(),
                "error": {"type": "unknown_error", "message": self._reason, "retry_status": {"type": "exhausted"}},
            }
        )
        return ToolOutput(f"{self.name} did not run: {self._reason}", is_error=True, events=(error,))
