"""Hosts for the client tests: `Local` (the runtime in-process) and a real loophost server over HTTP.

Both runtimes register the recording `bash` double of tests/server/_tool_server.py as a built-in tool, so
confirmation flows run on both; `executions()` reads what it ran.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import loophost
from loophost.client import Provider
from tests.server._tool_server import RecordingBash
from tests.server.conftest import KEY_A, ServerProcess, start_tool_server, stop_server


@dataclass
class Host:
    name: str
    provider: Provider
    log: Path

    def executions(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []


@pytest.fixture(scope="session")
def client_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_tool_server(tmp_path_factory.mktemp("client-server"))
    yield proc
    stop_server(proc)


@pytest.fixture(params=["local", "server"])
async def host(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Host]:
    if request.param == "local":
        log = tmp_path / "bash.log"
        local = loophost.Local(tmp_path / "local.db", builtin_tools={"bash": RecordingBash(str(log))})
        async with local:
            yield Host("local", local, log)
    else:
        server: ServerProcess = request.getfixturevalue("client_server")
        claude = loophost.ClaudeManagedAgents(api_key=KEY_A, base_url=server.url)
        async with claude:
            yield Host("server", claude, server.database.parent / "bash.log")


@pytest.fixture
def ask_bash_agent() -> Callable[[Host], loophost.AgentSpec]:
    """A spec whose built-in bash always asks for confirmation."""

    def spec(host: Host) -> loophost.AgentSpec:
        return loophost.AgentSpec(
            name="asker",
            model="scripted",
            host_tools=(
                {
                    "type": "agent_toolset_20260401",
                    "default_config": {"enabled": False},
                    "configs": [{"name": "bash", "enabled": True, "permission_policy": {"type": "always_ask"}}],
                },
            ),
        )

    return spec
