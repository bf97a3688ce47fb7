"""`loophost serve` itself: key generation, graceful shutdown, and a restart that resumes running sessions."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import anthropic
import httpx2
import pytest

from .._postgres import PostgresServer
from .conftest import KEY_A, start_server, stop_server


def _serve_without_keys(database: Path) -> tuple[subprocess.Popen[str], str, str | None]:
    env = {k: v for k, v in os.environ.items() if k != "LOOPHOST_API_KEYS"}
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from loophost.cli import main; main()",
            "serve",
            "--port",
            "0",
            "--database",
            str(database),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    key = None
    for line in process.stdout:
        if line.startswith("generated an API key"):
            key = line.rsplit(" ", 1)[-1].strip()
        if line.startswith("loophost listening on "):
            return process, line.split()[-1], key
    raise AssertionError("the server did not start")


def test_a_generated_key_is_printed_once_and_only_its_hash_is_stored(tmp_path: Path) -> None:
    database = tmp_path / "keys.db"
    process, url, key = _serve_without_keys(database)
    try:
        assert key is not None and key.startswith("lh-")
        assert httpx2.get(f"{url}/v1/agents").status_code == 401
        assert httpx2.get(f"{url}/v1/agents", headers={"x-api-key": key}).status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    assert key.encode() not in database.read_bytes()
    assert not any(key.encode() in p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    process, url, again = _serve_without_keys(database)
    try:
        assert again is None  # printed once: the stored hash is used from now on
        assert httpx2.get(f"{url}/v1/agents", headers={"authorization": f"Bearer {key}"}).status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)


def test_shutdown_closes_streams_and_a_restart_resumes_the_turn(tmp_path: Path) -> None:
    database = tmp_path / "restart.db"
    server = start_server(database)
    client = anthropic.Anthropic(base_url=server.url, api_key="test-key-a", max_retries=0)
    agent = client.beta.agents.create(name="restart", model="scripted")
    env = client.beta.environments.create(name="restart")
    session = client.beta.sessions.create(agent=agent.id, environment_id=env.id)
    seen: list[str] = []
    with client.beta.sessions.events.stream(session.id, timeout=30) as stream:
        client.beta.sessions.events.send(
            session.id, events=[{"type": "user.message", "content": [{"type": "text", "text": "sleep 2500\nslow"}]}]
        )
        for event in stream:
            seen.append(event.type)
            if event.type == "span.model_request_start":
                break
        started = time.monotonic()
        stop_server(server)  # SIGTERM: the open stream must end cleanly, the process exit 0
        for event in stream:
            seen.append(event.type)
    assert server.process.returncode == 0
    assert time.monotonic() - started < 15
    assert "session.status_idle" not in seen  # the turn did not finish; it was cut off by the shutdown
    server = start_server(database)
    try:
        client = anthropic.Anthropic(base_url=server.url, api_key="test-key-a", max_retries=0)
        deadline = time.monotonic() + 30
        while client.beta.sessions.retrieve(session.id).status != "idle" and time.monotonic() < deadline:
            time.sleep(0.1)
        events = list(client.beta.sessions.events.list(session.id))
        texts = [b.text for e in events if e.type == "agent.message" for b in e.content]
        assert texts == ["echo: slow"]  # resumed from the checkpoint after the restart, and answered once
        assert events[-1].type == "session.status_idle"
    finally:
        stop_server(server)


def test_a_postgresql_node_needs_a_vault_key(postgres_server: PostgresServer, tmp_path: Path) -> None:
    """Without LOOPHOST_VAULT_KEY a node on PostgreSQL refuses to start (a generated key would live in one process
    only: secrets written by one node could not be read by another, or after a restart), and says what to do."""
    env = {k: v for k, v in os.environ.items() if k != "LOOPHOST_VAULT_KEY"}
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    url = postgres_server.create_database("needs_key")
    serve = [sys.executable, "-c", "from loophost.cli import main; main()", "serve", "--port", "0", "--database", url]
    done = subprocess.run(serve, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "LOOPHOST_VAULT_KEY" in done.stderr and "loophost vault-key" in done.stderr
    key = subprocess.run(
        [sys.executable, "-c", "from loophost.cli import main; main()", "vault-key"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert key.returncode == 0 and len(base64.urlsafe_b64decode(key.stdout.strip() + "=")) == 32


def test_two_nodes_serve_one_postgresql_database(
    postgres_server: PostgresServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`loophost serve --lease-ttl` twice on one PostgreSQL database (the second configured through
    LOOPHOST_DATABASE_URL): both serve it, and what one creates the other finds and runs."""
    url = postgres_server.create_database("serve")
    first = start_server(tmp_path / "unused.db", database_url=url)
    serve = [sys.executable, "-c", "from loophost.cli import main; main()", "serve", "--port", "0"]
    monkeypatch.setenv("LOOPHOST_DATABASE_URL", url)
    second = start_server(tmp_path / "unused.db", command=[*serve, "--lease-ttl", "2", "--heartbeat", "0.5"])
    try:
        on_first = anthropic.Anthropic(base_url=first.url, api_key=KEY_A, max_retries=0)
        on_second = anthropic.Anthropic(base_url=second.url, api_key=KEY_A, max_retries=0)
        agent = on_first.beta.agents.create(name="shared", model="scripted")
        env = on_first.beta.environments.create(name="shared")
        session = on_first.beta.sessions.create(agent=agent.id, environment_id=env.id)
        with on_second.beta.sessions.events.stream(session.id, timeout=30) as stream:
            on_second.beta.sessions.events.send(
                session.id, events=[{"type": "user.message", "content": [{"type": "text", "text": "hi"}]}]
            )
            for event in stream:
                if event.type == "session.status_idle":
                    break
        listed = on_first.beta.sessions.events.list(session.id)
        texts = [b.text for e in listed if e.type == "agent.message" for b in e.content if b.type == "text"]
        assert texts == ["echo: hi"]
    finally:
        stop_server(second)
        stop_server(first)
