"""Memory stores attached to sessions, through the official SDK against a real `loophost serve` with the real
sandboxed toolset: what one session writes (write tool, bash) becomes memory versions by that session, a later
session reads it at its mount, a read-only attachment refuses writes, and an acknowledged write survives SIGKILL.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import pytest

from .conftest import KEY_A, SERVER_BACKENDS, ServerProcess, backend_database, start_server, stop_server
from .test_events_api import is_idle, message, read_until, uid
from .test_toolset_sdk import call, need_bwrap, text


def serve_command(database: str, workspaces: Path) -> list[str]:
    serve = [sys.executable, "-c", "from loophost.cli import main; main()", "serve", "--port", "0"]
    return [*serve, "--database", database, "--workspaces", str(workspaces), "--heartbeat", "1"]


@pytest.fixture(scope="module", params=SERVER_BACKENDS)
def memory_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    where = tmp_path_factory.mktemp(f"memory-server-{request.param}")
    database = backend_database(request) or str(where / "db.sqlite")
    proc = start_server(where / "db.sqlite", command=serve_command(database, where / "ws"))
    yield proc
    stop_server(proc)


@pytest.fixture
def sdk(memory_server: ServerProcess) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=memory_server.url, api_key=KEY_A, max_retries=0) as c:
        yield c


def session_with(client: anthropic.Anthropic, *resources: dict[str, Any]) -> Any:
    env = client.beta.environments.create(name=uid("env"), config={"type": "cloud"})
    agent = client.beta.agents.create(
        name=uid("agent"),
        model="scripted",
        tools=[{"type": "agent_toolset_20260401"}],
    )
    return client.beta.sessions.create(agent=agent.id, environment_id=env.id, resources=list(resources))  # type: ignore[arg-type]


def test_one_session_writes_a_memory_and_the_next_reads_it(sdk: anthropic.Anthropic) -> None:
    need_bwrap()
    name = uid("User Prefs")
    store = sdk.beta.memory_stores.create(name=name, description="what the user likes")
    writer = session_with(sdk, {"type": "memory_store", "memory_store_id": store.id, "instructions": "keep it tidy"})
    (resource,) = writer.resources
    mount = f"/mnt/memory/{name.lower().replace(' ', '-').replace('_', '-')}"
    assert resource.type == "memory_store" and resource.mount_path == mount and resource.access == "read_write"
    assert resource.name == name and resource.description == "what the user likes"

    (wrote,) = call(sdk, writer.id, ("write", {"file_path": f"{mount}/food.md", "content": "likes pizza"}))
    assert not wrote.is_error, text(wrote)
    # the tool result is out: the memory is in the store, written by the session
    (memory,) = list(sdk.beta.memory_stores.memories.list(store.id))
    assert memory.path == "/food.md"
    (version,) = list(sdk.beta.memory_stores.memory_versions.list(store.id, session_id=writer.id))
    assert version.operation == "created" and version.created_by is not None
    assert version.created_by.type == "session_actor" and version.created_by.session_id == writer.id

    (ran,) = call(
        sdk, writer.id, ("bash", {"command": f"mkdir -p {mount}/drinks && printf tea > {mount}/drinks/tea.md"})
    )
    assert not ran.is_error, text(ran)
    paths = sorted(m.path for m in sdk.beta.memory_stores.memories.list(store.id))
    assert paths == ["/drinks/tea.md", "/food.md"]
    call(sdk, writer.id, ("bash", {"command": f"rm {mount}/drinks/tea.md && echo 'likes sushi' > {mount}/food.md"}))
    operations = [v.operation for v in sdk.beta.memory_stores.memory_versions.list(store.id, session_id=writer.id)]
    assert sorted(operations) == ["created", "created", "deleted", "modified"]

    reader = session_with(sdk, {"type": "memory_store", "memory_store_id": store.id})
    (read,) = call(sdk, reader.id, ("read", {"file_path": f"{mount}/food.md"}))
    assert "likes sushi" in text(read) and not read.is_error
    (listed,) = call(sdk, reader.id, ("bash", {"command": f"ls -R {mount}"}))
    assert "tea.md" not in text(listed)
    attached = {s.id for s in sdk.beta.sessions.list(memory_store_id=store.id)}
    assert attached == {writer.id, reader.id}


def test_a_read_only_attachment_refuses_writes(sdk: anthropic.Anthropic) -> None:
    need_bwrap()
    store = sdk.beta.memory_stores.create(name=uid("ro"))
    sdk.beta.memory_stores.memories.create(store.id, path="/fact.md", content="the sky is blue")
    session = session_with(sdk, {"type": "memory_store", "memory_store_id": store.id, "access": "read_only"})
    mount = session.resources[0].mount_path
    wrote, edited, ran, read = call(
        sdk,
        session.id,
        ("write", {"file_path": f"{mount}/new.md", "content": "x"}),
        ("edit", {"file_path": f"{mount}/fact.md", "old_string": "blue", "new_string": "green"}),
        ("bash", {"command": f"echo green > {mount}/fact.md; touch {mount}/other.md"}),
        ("read", {"file_path": f"{mount}/fact.md"}),
    )
    assert wrote.is_error and edited.is_error, (text(wrote), text(edited))
    assert "Read-only file system" in text(ran)
    assert "the sky is blue" in text(read)
    (memory,) = list(sdk.beta.memory_stores.memories.list(store.id, view="full"))
    assert memory.type == "memory" and memory.content == "the sky is blue"
    assert [v.operation for v in sdk.beta.memory_stores.memory_versions.list(store.id)] == ["created"]


def test_attachment_rules(sdk: anthropic.Anthropic) -> None:
    stores = [sdk.beta.memory_stores.create(name="same name") for _ in range(9)]
    two = session_with(sdk, *({"type": "memory_store", "memory_store_id": s.id} for s in stores[:2]))
    assert [r.mount_path for r in two.resources] == ["/mnt/memory/same-name", "/mnt/memory/same-name-2"]
    with pytest.raises(anthropic.BadRequestError):  # at most 8
        session_with(sdk, *({"type": "memory_store", "memory_store_id": s.id} for s in stores))
    with pytest.raises(anthropic.NotFoundError):
        session_with(sdk, {"type": "memory_store", "memory_store_id": "memstore_nope"})
    sdk.beta.memory_stores.archive(stores[0].id)
    with pytest.raises(anthropic.ConflictError):
        session_with(sdk, {"type": "memory_store", "memory_store_id": stores[0].id})
    body = {"type": "memory_store", "memory_store_id": stores[1].id}
    with pytest.raises(anthropic.BadRequestError):  # create time only
        sdk.post(f"/v1/sessions/{two.id}/resources", body=body, cast_to=object)


def test_an_acknowledged_memory_write_survives_sigkill(tmp_path: Path) -> None:
    need_bwrap()
    database = str(tmp_path / "db.sqlite")
    proc = start_server(tmp_path / "db.sqlite", command=serve_command(database, tmp_path / "ws"))
    try:
        with anthropic.Anthropic(base_url=proc.url, api_key=KEY_A, max_retries=0) as client:
            store = client.beta.memory_stores.create(name="crash")
            session = session_with(client, {"type": "memory_store", "memory_store_id": store.id})
            (wrote,) = call(
                client, session.id, ("write", {"file_path": "/mnt/memory/crash/kept.md", "content": "durable"})
            )
            assert not wrote.is_error
    finally:
        os.kill(proc.process.pid, signal.SIGKILL)
        proc.process.wait(timeout=10)
    again = start_server(tmp_path / "db.sqlite", command=serve_command(database, tmp_path / "ws"))
    try:
        with anthropic.Anthropic(base_url=again.url, api_key=KEY_A, max_retries=0) as client:
            (version,) = list(client.beta.memory_stores.memory_versions.list(store.id, view="full"))
            assert version.content == "durable" and version.path == "/kept.md"
            assert version.created_by is not None and version.created_by.type == "session_actor"
    finally:
        stop_server(again)


def test_what_an_interrupted_call_wrote_is_synced_at_idle(
    sdk: anthropic.Anthropic, memory_server: ServerProcess
) -> None:
    """No tool result acknowledged it, but the session went idle: the write reaches the store then."""
    need_bwrap()
    store = sdk.beta.memory_stores.create(name=uid("interrupted"))
    session = session_with(sdk, {"type": "memory_store", "memory_store_id": store.id})
    mount = session.resources[0].mount_path
    written = memory_server.database.parent / "ws" / session.id / "fs" / mount.lstrip("/") / "partial.md"
    command = json.dumps({"command": f"echo partial > {mount}/partial.md; sleep 60"})
    with sdk.beta.sessions.events.stream(session.id, timeout=60) as stream:
        sdk.beta.sessions.events.send(session.id, events=[message(f"call bash {command}")])
        deadline = time.monotonic() + 30
        while not written.exists():
            assert time.monotonic() < deadline, "the command never wrote its file"
            time.sleep(0.1)
        sdk.beta.sessions.events.send(session.id, events=[{"type": "user.interrupt"}])
        read_until(stream, is_idle("end_turn"), timeout=60)
    deadline = time.monotonic() + 30
    while not list(sdk.beta.memory_stores.memories.list(store.id)):
        assert time.monotonic() < deadline, "the interrupted call's write never reached the store"
        time.sleep(0.2)
    (version,) = list(sdk.beta.memory_stores.memory_versions.list(store.id, view="full"))
    assert version.content == "partial\n" and version.created_by is not None
    assert version.created_by.type == "session_actor" and version.created_by.session_id == session.id
