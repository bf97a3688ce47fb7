"""A real `loophost serve` subprocess over real HTTP, shared by the server tests, and official SDK clients.

One server for the whole test session (starting one costs the agent core's import time); tests isolate by
creating their own resources. Two keys in two workspaces: `KEY_A` (workspace `ws_a`) and `KEY_B` (`ws_b`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import anthropic
import pytest

KEY_A = "test-key-a"
KEY_B = "test-key-b"
HEARTBEAT = 0.5


@dataclass
class ServerProcess:
    url: str
    process: subprocess.Popen[str]
    database: Path


def start_server(
    database: Path,
    *,
    keys: str = f"{KEY_A}:ws_a,{KEY_B}:ws_b",
    heartbeat: float = HEARTBEAT,
    command: list[str] | None = None,
) -> ServerProcess:
    """`loophost serve` (or `command`, which must print the same `loophost listening on URL` line)."""
    env = {**os.environ, "LOOPHOST_API_KEYS": keys, "PYTHONPATH": os.pathsep.join(sys.path)}
    serve = [sys.executable, "-c", "from loophost.cli import main; main()", "serve", "--port", "0"]
    process = subprocess.Popen(
        command or [*serve, "--database", str(database), "--heartbeat", str(heartbeat)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=Path(__file__).parents[2],
    )
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("loophost listening on "):
            return ServerProcess(line.split()[-1].strip(), process, database)
    process.wait(timeout=10)
    raise RuntimeError(f"the server did not start (exit {process.returncode})")


def stop_server(server: ServerProcess) -> None:
    server.process.send_signal(signal.SIGTERM)
    try:
        server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.process.kill()
        raise


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_server(tmp_path_factory.mktemp("server") / "server.db")
    yield proc
    stop_server(proc)


def start_tool_server(where: Path) -> ServerProcess:
    """A server whose runtime has a recording test double as its built-in `bash` (see _tool_server.py)."""
    command = [sys.executable, "-m", "tests.server._tool_server", str(where / "server.db"), str(where / "bash.log")]
    return start_server(where / "server.db", command=command)


@pytest.fixture(scope="session")
def tool_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_tool_server(tmp_path_factory.mktemp("tool-server"))
    yield proc
    stop_server(proc)


def bash_executions(server: ServerProcess) -> list[str]:
    """`<tool_use_id> <command>` per execution of the tool server's `bash`."""
    log = server.database.parent / "bash.log"
    return log.read_text().splitlines() if log.exists() else []


@pytest.fixture
def tool_client(tool_server: ServerProcess) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=tool_server.url, api_key=KEY_A, max_retries=0) as c:
        yield c


@pytest.fixture
def client(server: ServerProcess) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=server.url, api_key=KEY_A, max_retries=0) as c:
        yield c


@pytest.fixture
def other_client(server: ServerProcess) -> Iterator[anthropic.Anthropic]:
    """A key of another workspace."""
    with anthropic.Anthropic(base_url=server.url, api_key=KEY_B, max_retries=0) as c:
        yield c


@pytest.fixture
async def async_client(server: ServerProcess) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with anthropic.AsyncAnthropic(base_url=server.url, api_key=KEY_A, max_retries=0) as c:
        yield c
