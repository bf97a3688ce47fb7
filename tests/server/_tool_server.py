"""A real loophost server process with a test double registered as the built-in `bash` (through the same
`BuiltinTool` seam the [toolset] work plugs real sandboxed tools into), for the confirmation flows over HTTP.

Usage: python -m tests.server._tool_server DATABASE EXECUTIONS_FILE
"""

from __future__ import annotations

import os
import sys
from typing import Any

import uvicorn

from loophost._aio import run
from loophost.cli._serve import _Server
from loophost.runtime import Runtime, ToolContext, ToolOutput
from loophost.server import ApiKeys, ServerSettings, create_app


class RecordingBash:
    """Records each execution's tool-use id in a file, so tests see what ran (and how often)."""

    name = "bash"
    description = "Runs a shell command (test double)."
    input_schema: dict[str, Any] = {"type": "object", "properties": {"command": {"type": "string"}}}

    def __init__(self, path: str) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    async def run(self, ctx: ToolContext, tool_input: dict[str, Any]) -> ToolOutput:
        os.write(self._fd, f"{ctx.tool_use_id} {tool_input.get('command')}\n".encode())
        return ToolOutput(f"ran {tool_input.get('command')}")


async def main(database: str, executions: str) -> None:
    runtime = Runtime.from_url(database, builtin_tools={"bash": RecordingBash(executions)})
    app = create_app(runtime, keys=ApiKeys.parse(os.environ["LOOPHOST_API_KEYS"]), settings=ServerSettings(0.5))
    await _Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"), app).serve()


if __name__ == "__main__":
    run(main(sys.argv[1], sys.argv[2]))
