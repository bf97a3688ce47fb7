"""The built-in tools as a worker runs them: loophost's sandboxed `Toolset`, one directory per session under the
worker's `workdir`, on the worker's own machine and network.

The toolset was written for the runtime, which knows sessions, environments and files; the worker knows only
what its host tells it. `LocalToolHost` answers the toolset's questions for the worker: a session has no mounted
files and no vault secrets, its network is the machine's own, and its output files stay on the machine; its memory
stores and skills come from the host's API with the item's sessions token (`_worker_resources.py`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .. import wire
from ..runtime import ToolContext, ToolOutput
from ..runtime.toolset import Toolset
from ._worker_http import WorkerHttp
from ._worker_resources import HttpMemory, HttpSkills, ServedSessions

WORKER_TOOLS = ("bash", "read", "write", "edit", "glob", "grep")

NO_SANDBOX = (
    "loophost worker found no working sandbox (bubblewrap), so it refuses to run built-in tools on this machine. "
    "Install bubblewrap (Debian/Ubuntu: `sudo apt install bubblewrap`; Fedora: `sudo dnf install bubblewrap`), or "
    "point LOOPHOST_BWRAP at a bwrap binary; to run tools without a sandbox on a machine you trust, start the "
    "worker with --unsafe-no-sandbox."
)


class _NoVaults:
    async def environment_secrets(self, workspace: str, vault_ids: Sequence[str]) -> Sequence[Any]:
        return []


class LocalToolHost:
    """What the toolset asks of a runtime, answered for a worker (see the module docstring)."""

    def __init__(self, http: WorkerHttp) -> None:
        self.vaults = _NoVaults()
        self.sessions = ServedSessions()
        self.memory = HttpMemory(http, self.sessions)
        self.skills = HttpSkills(http, self.sessions)

    async def get_session(self, workspace: str, session_id: str) -> wire.Session:
        served = self.sessions.get(session_id)
        if served is not None:  # its memory stores and skills are mounted; its files are not
            return served.session
        agent: dict[str, Any] = {"tools": [], "mcp_servers": []}
        session: dict[str, Any] = {"id": session_id, "resources": [], "vault_ids": []}
        return wire.Session.model_construct(**session, agent=wire.SessionAgent.model_construct(**agent))

    async def get_environment(self, workspace: str, env_id: str) -> wire.Environment:
        environment: dict[str, Any] = {"id": env_id, "config": wire.CloudConfig()}  # unrestricted: the machine's own
        return wire.Environment.model_construct(**environment)

    async def file_content(self, workspace: str, file_id: str) -> Any:
        raise LookupError("a worker mounts no session files")

    async def save_output_file(
        self, workspace: str, session_id: str, filename: str, content: bytes, mime_type: str | None = None
    ) -> wire.FileMetadata:
        kept: dict[str, Any] = {"id": f"local:{session_id}:{filename}"}  # outputs stay on this machine
        return wire.FileMetadata.model_construct(**kept)

    async def delete_file(self, workspace: str, file_id: str) -> wire.Deleted:
        return wire.Deleted(id=file_id, type="file_deleted")


class WorkerTools:
    """The six tools a worker runs, per session; refuses them all when there is no sandbox, unless told not to."""

    def __init__(
        self,
        workdir: Path,
        http: WorkerHttp,
        *,
        unsafe_no_sandbox: bool = False,
        use_bwrap: bool | None = None,
    ) -> None:
        self.toolset = Toolset(workdir, use_bwrap=use_bwrap, unsafe_no_sandbox=unsafe_no_sandbox)
        self.host = LocalToolHost(http)
        self.toolset.bind(self.host)
        self._tools = self.toolset.tools()
        self.refusal = None if self.toolset.sandboxed or unsafe_no_sandbox else NO_SANDBOX

    def owns(self, name: str) -> bool:
        return name in WORKER_TOOLS

    def session_dir(self, session_id: str) -> Path:
        """Where a session's `/workspace` is on this machine."""
        return self.toolset.workspaces.root / session_id / "fs" / "workspace"

    async def run(self, environment_id: str, session_id: str, call: Mapping[str, Any]) -> ToolOutput:
        if self.refusal is not None:
            return ToolOutput(self.refusal, is_error=True)
        tool_input = call.get("input")
        ctx = ToolContext(
            workspace="worker", session_id=session_id, environment_id=environment_id, tool_use_id=str(call["id"])
        )
        try:
            return await self._tools[str(call["name"])].run(
                ctx, dict(tool_input) if isinstance(tool_input, dict) else {}
            )
        except Exception as exc:  # a tool that raises is an error result, never a dead worker
            return ToolOutput(f"{type(exc).__name__}: {exc}", is_error=True)

    def serve(self, session: Mapping[str, Any], credential: str) -> None:
        """Mount `session`'s memory stores and skills (fetched with `credential`) when its tools first run."""
        self.host.sessions.add(session, credential)

    async def close_session(self, session_id: str) -> None:
        await self.toolset.close_session(session_id)
        self.host.sessions.drop(session_id)

    async def close(self) -> None:
        await self.toolset.close()
