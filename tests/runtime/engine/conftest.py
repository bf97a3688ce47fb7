"""Agent-loop fixtures: a runtime with a counting built-in tool and fast retries."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from loophost import wire
from loophost.runtime import AgentLoopConfig, Runtime, ToolContext, ToolOutput

from ..conftest import WS


class CountingTool:
    """A built-in tool registered by the tests: records every execution, can fail or block on demand."""

    description = "Runs a command (test double)."
    input_schema: dict[str, Any] = {"type": "object", "properties": {"command": {"type": "string"}}}

    def __init__(self, name: str = "bash") -> None:
        self.name = name
        self.executions: list[str] = []

    async def run(self, ctx: ToolContext, tool_input: dict[str, Any]) -> ToolOutput:
        self.executions.append(ctx.tool_use_id)
        command = str(tool_input.get("command", ""))
        if command == "raise":
            raise RuntimeError("the tool blew up")
        if command.startswith("sleep "):
            import asyncio

            await asyncio.sleep(float(command.split()[1]))
        return ToolOutput(f"ran {command}")


@pytest.fixture
def bash() -> CountingTool:
    return CountingTool()


@pytest.fixture
async def loop_rt(tmp_path: Path, bash: CountingTool) -> AsyncIterator[Runtime]:
    config = AgentLoopConfig(retry_backoff=0.01, retry_backoff_max=0.02, max_retries=3)
    async with Runtime.from_url(tmp_path / "loop.db", builtin_tools={"bash": bash}, agent_loop=config) as rt:
        yield rt


async def session_with(rt: Runtime, *, tools: list[dict[str, Any]] | None = None, system: str | None = None) -> str:
    agent = await rt.create_agent(
        WS,
        wire.AgentCreateParams.model_validate(
            {"name": "a", "model": "scripted", "tools": tools or [], "system": system}
        ),
    )
    env = await rt.create_environment(WS, wire.EnvironmentCreateParams(name=f"env-{agent.id}"))
    session = await rt.start_session(WS, wire.SessionCreateParams(agent=agent.id, environment_id=env.id))
    return session.id


LOOKUP = {"type": "custom", "name": "lookup", "description": "Looks things up.", "input_schema": {"type": "object"}}
TOOLSET = {"type": "agent_toolset_20260401"}
ASK_BASH = {
    "type": "agent_toolset_20260401",
    "configs": [{"name": "bash", "permission_policy": {"type": "always_ask"}}],
}
