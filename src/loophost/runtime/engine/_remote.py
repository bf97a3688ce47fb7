"""Built-in tools that run on a self-hosted environment's worker, not in the runtime.

On a session whose environment is `self_hosted` (decided when the session is created), the agent's enabled
bash, read, write, edit, glob and grep calls are one more kind in the split of `_calls.py`: the turn parks on
them (`requires_action`), a worker polling the environment's work queue runs them on its own machine and
answers with `user.tool_result`. web_fetch and web_search still run in the runtime. The model is offered these
tools whether or not the runtime has a sandboxed toolset of its own: the definitions below describe them as any
worker runs them (the official SDK's `beta_agent_toolset_20260401` or `loophost worker`), with paths relative
to the worker's working directory.
"""

from __future__ import annotations

from typing import Any

from ... import wire
from ._tools import ToolContext, ToolOutput, ToolPolicy, permission_of

WORKER_TOOL_NAMES = ("bash", "read", "write", "edit", "glob", "grep")

_PATH = {"type": "string", "description": "Path of the file (relative paths are under the working directory)."}


def _schema(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required}


class RemoteTool:
    """A tool's definition for the model; it never runs here (the worker runs it)."""

    def __init__(self, name: str, description: str, input_schema: dict[str, Any]) -> None:
        self.name = name
        self.description = description
        self.input_schema = input_schema

    async def run(self, ctx: ToolContext, tool_input: dict[str, Any]) -> ToolOutput:
        return ToolOutput(f"{self.name} runs on the environment's worker, not in the runtime", is_error=True)


REMOTE_TOOLS: dict[str, RemoteTool] = {
    tool.name: tool
    for tool in (
        RemoteTool(
            "bash",
            "Run a command in a persistent bash shell on the environment's machine, in the session's working "
            "directory (the working directory and environment persist between calls). `restart: true` starts a "
            "fresh shell.",
            {
                "type": "object",
                "properties": {
                    "command": {"type": "string", "description": "The command to run (omit only with restart)."},
                    "restart": {"type": "boolean", "description": "Kill the shell and start a fresh one."},
                    "timeout_ms": {"type": "integer", "description": "Time limit of this command in ms."},
                },
            },
        ),
        RemoteTool(
            "read",
            "Read a text file with line numbers (or list a directory). `view_range: [start, end]` selects lines "
            "(1-based, inclusive).",
            _schema({"file_path": _PATH, "view_range": {"type": "array", "items": {"type": "integer"}}}, ["file_path"]),
        ),
        RemoteTool(
            "write",
            "Create or overwrite a file (parent directories are created).",
            _schema({"file_path": _PATH, "content": {"type": "string"}}, ["file_path", "content"]),
        ),
        RemoteTool(
            "edit",
            "Replace old_string with new_string in a file. old_string must occur exactly once unless replace_all.",
            _schema(
                {
                    "file_path": _PATH,
                    "old_string": {"type": "string"},
                    "new_string": {"type": "string"},
                    "replace_all": {"type": "boolean"},
                },
                ["file_path", "old_string", "new_string"],
            ),
        ),
        RemoteTool(
            "glob",
            "List files matching a glob pattern (`**` matches any number of directories) under `path` (default: the "
            "working directory).",
            _schema({"pattern": {"type": "string"}, "path": _PATH}, ["pattern"]),
        ),
        RemoteTool(
            "grep",
            "Search file contents with a regular expression under `path` (a file or directory, default: the working "
            "directory).",
            _schema({"pattern": {"type": "string"}, "path": _PATH}, ["pattern"]),
        ),
    )
}


def worker_policies(agent: wire.SessionAgent) -> dict[str, ToolPolicy]:
    """The agent's enabled toolset tools that a worker runs, with their permission (spec §6.1)."""
    policies: dict[str, ToolPolicy] = {}
    for tool in agent.tools:
        if not isinstance(tool, wire.AgentToolset):
            continue
        for config in tool.configs:
            remote = REMOTE_TOOLS.get(config.name)
            if remote is not None and config.enabled:
                permission, evaluation = permission_of(config.permission_policy)
                policies[config.name] = ToolPolicy(remote, permission, evaluation)
    return policies
