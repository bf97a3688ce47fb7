"""The secret sweep: a `loophost serve` whose log output goes to a file, an official SDK client that keeps every
response body, and the check that none of them (nor the database files) holds a secret that was written."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import anthropic
import httpx2

from .conftest import HEARTBEAT, KEY_A, KEY_B


@dataclass
class LoggedServer:
    url: str
    process: subprocess.Popen[bytes]
    database: Path
    log: Path

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise


def start_logged_server(where: Path, *, env: dict[str, str] | None = None) -> LoggedServer:
    """`loophost serve` with stdout and stderr in `where/server.log` (debug logging of loophost on)."""
    database = where / "server.db"
    log = where / "server.log"
    environ = {
        **os.environ,
        "LOOPHOST_API_KEYS": f"{KEY_A}:ws_a,{KEY_B}:ws_b",
        "PYTHONPATH": os.pathsep.join(sys.path),
        **(env or {}),
    }
    code = "import logging; logging.basicConfig(level=logging.DEBUG); from loophost.cli import main; main()"
    command = [sys.executable, "-c", code, "serve", "--port", "0", "--database", str(database)]
    command += ["--heartbeat", str(HEARTBEAT)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=environ, cwd=Path(__file__).parents[2]
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for line in log.read_text(errors="replace").splitlines():
            if line.startswith("loophost listening on "):
                return LoggedServer(line.split()[-1].strip(), process, database, log)
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"the server did not start:\n{log.read_text(errors='replace')}")


@dataclass
class Recorder:
    """Every response body an SDK client received."""

    bodies: list[bytes] = field(default_factory=list)

    def client(self, url: str, key: str = KEY_A) -> anthropic.Anthropic:
        def keep(response: httpx2.Response) -> None:
            if response.headers.get("content-type", "").startswith("text/event-stream"):
                return  # a live stream: its events are in the database, which the sweep reads
            response.read()
            self.bodies.append(response.content)

        http = httpx2.Client(event_hooks={"response": [keep]})
        return anthropic.Anthropic(base_url=url, api_key=key, max_retries=0, http_client=http)


def assert_no_secret(secrets: Iterable[str], *, server: LoggedServer, recorder: Recorder) -> None:
    """None of `secrets` in the database files, the server's log output or any response body."""
    places: dict[str, bytes] = {}
    for path in server.database.parent.glob(server.database.name + "*"):
        if path.is_file() and not path.name.endswith(".vault-key"):
            places[path.name] = path.read_bytes()
    places["server log"] = server.log.read_bytes()
    places["responses"] = b"\n".join(recorder.bodies)
    assert recorder.bodies, "no response was recorded"
    for secret in secrets:
        assert len(secret) >= 12, "a secret must be distinctive enough to grep for"
        for where, content in places.items():
            assert secret.encode() not in content, f"a secret was found in {where}"
