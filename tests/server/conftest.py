"""A real `loophost serve` subprocess over real HTTP, shared by the server tests, and official SDK clients.

One server per database backend for the whole test session (starting one costs the agent core's import time):
the tests that use `server` (and `tool_server`) run once against a server on SQLite and once against a server on
PostgreSQL (`SERVER_BACKENDS`; the PostgreSQL server is tests/_postgres.py's). Tests isolate by creating their own
resources. Two keys in two workspaces: `KEY_A` (workspace `ws_a`) and `KEY_B` (`ws_b`).
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

from .._postgres import PostgresServer

KEY_A = "test-key-a"
KEY_B = "test-key-b"
HEARTBEAT = 0.5
VAULT_KEY = "u2sd0Bq2sFhJ8pN0XTu9D3G1Qkzv2b5cQwS1mQ9QJqg"
"""The vault key of the test servers on PostgreSQL (base64url of 32 bytes)."""
SERVER_BACKENDS = ("sqlite", "postgres")


@dataclass
class ServerProcess:
    url: str
    process: subprocess.Popen[str]
    database: Path
    """The SQLite file; for a server on PostgreSQL a path in its scratch directory."""
    database_url: str | None = None
    """The PostgreSQL database the server runs on, if it does."""


def start_server(
    database: Path,
    *,
    keys: str = f"{KEY_A}:ws_a,{KEY_B}:ws_b",
    heartbeat: float = HEARTBEAT,
    command: list[str] | None = None,
    database_url: str | None = None,
) -> ServerProcess:
    """`loophost serve` (or `command`, which must print the same `loophost listening on URL` line), on the SQLite
    file `database`, or on the PostgreSQL database `database_url` when given."""
    env = {**os.environ, "LOOPHOST_API_KEYS": keys, "PYTHONPATH": os.pathsep.join(sys.path)}
    on_postgres = database_url is not None or "LOOPHOST_DATABASE_URL" in os.environ
    if on_postgres or any(arg.startswith(("postgresql://", "postgres://")) for arg in command or ()):
        env.setdefault("LOOPHOST_VAULT_KEY", VAULT_KEY)  # a node on PostgreSQL needs one, the same on every node
    serve = [sys.executable, "-c", "from loophost.cli import main; main()", "serve", "--port", "0"]
    process = subprocess.Popen(
        command or [*serve, "--database", database_url or str(database), "--heartbeat", str(heartbeat)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=Path(__file__).parents[2],
    )
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("loophost listening on "):
            return ServerProcess(line.split()[-1].strip(), process, database, database_url)
    process.wait(timeout=10)
    raise RuntimeError(f"the server did not start (exit {process.returncode})")


def stop_server(server: ServerProcess) -> None:
    server.process.send_signal(signal.SIGTERM)
    try:
        server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.process.kill()
        raise


def backend_database(request: pytest.FixtureRequest) -> str | None:
    """For a fixture parametrized by SERVER_BACKENDS: None on SQLite, else a fresh PostgreSQL database's URL."""
    if request.param == "sqlite":
        return None
    postgres: PostgresServer = request.getfixturevalue("postgres_server")
    return postgres.create_database("server")


@pytest.fixture(scope="session", params=SERVER_BACKENDS)
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    where = tmp_path_factory.mktemp(f"server-{request.param}")
    proc = start_server(where / "server.db", database_url=backend_database(request))
    yield proc
    stop_server(proc)


def start_tool_server(where: Path, *, database_url: str | None = None) -> ServerProcess:
    """A server whose runtime has a recording test double as its built-in `bash` (see _tool_server.py)."""
    database = database_url or str(where / "server.db")
    command = [sys.executable, "-m", "tests.server._tool_server", database, str(where / "bash.log")]
    return start_server(where / "server.db", command=command, database_url=database_url)


@pytest.fixture(scope="session", params=SERVER_BACKENDS)
def tool_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_tool_server(
        tmp_path_factory.mktemp(f"tool-server-{request.param}"), database_url=backend_database(request)
    )
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
