"""`loophost worker` with memory stores and skills, as real processes against a real `loophost serve`: the worker
mounts a self-hosted session's memory store and its agent's skill in its own sandbox, what the agent writes
there reaches the store (a version by the session, through the sessions token) before the result is posted,
and the environment key alone cannot reach the store; and the official SDK's `EnvironmentWorker` syncs a loophost
memory store with the same calls as against the hosted API."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx2
import pytest

from tests.server.conftest import KEY_A, ServerProcess, start_server, stop_server
from tests.server.test_events_api import uid
from tests.server.test_toolset_sdk import need_bwrap

from .test_worker import CLI, TOOLS, environment_with_key, finish, start_worker, turn, wait_for


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    where = tmp_path_factory.mktemp("worker-memory-server")
    serve = [*CLI, "serve", "--port", "0", "--database", str(where / "db.sqlite")]
    proc = start_server(where / "db.sqlite", command=[*serve, "--workspaces", str(where / "server-ws")])
    yield proc
    stop_server(proc)


@pytest.fixture
def client(server: ServerProcess) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=server.url, api_key=KEY_A, max_retries=0) as c:
        yield c


SKILL_MD = b"---\nname: shout\ndescription: Shouts a word\n---\nRun shout.sh WORD\n"


def test_the_worker_syncs_memory_and_runs_skills(
    client: anthropic.Anthropic, server: ServerProcess, tmp_path: Path
) -> None:
    need_bwrap()
    env_id, key = environment_with_key(client, server)
    store = client.beta.memory_stores.create(name="Worker Notes")
    client.beta.memory_stores.memories.create(store.id, path="/seed.md", content="planted by the API")
    skill = client.beta.skills.create(
        files=[
            ("shout/SKILL.md", SKILL_MD, "text/markdown"),
            ("shout/shout.sh", b'echo "$1" | tr a-z A-Z\n', "text/x-sh"),
        ]
    )
    agent = client.beta.agents.create(
        name=uid("agent"),
        model="scripted",
        tools=TOOLS,  # type: ignore[arg-type]
        skills=[{"type": "custom", "skill_id": skill.id}],
    )
    sid = client.beta.sessions.create(
        agent=agent.id,
        environment_id=env_id,
        resources=[{"type": "memory_store", "memory_store_id": store.id}],
    ).id
    worker = start_worker(server, env_id, key, tmp_path / "worker")
    try:
        results = turn(
            client,
            sid,
            ("read", {"file_path": "/mnt/memory/worker-notes/seed.md"}),
            ("write", {"file_path": "/mnt/memory/worker-notes/learned.md", "content": "the user likes tea"}),
            ("bash", {"command": "bash /mnt/skills/shout/shout.sh hello"}),
        )
        # acknowledged by the posted results: the memory is in the store, written by the session
        memory = {m.path: m for m in client.beta.memory_stores.memories.list(store.id, view="full")}
        versions = list(client.beta.memory_stores.memory_versions.list(store.id, session_id=sid))
        with httpx2.Client(base_url=server.url) as raw:  # the environment key does not reach memory stores
            refused = raw.get(
                f"/v1/memory_stores/{store.id}/memories", headers={"authorization": f"Bearer {key}"}
            ).status_code
    finally:
        finish(worker)
    assert "planted by the API" in results[0], results
    assert not results[1].startswith("write failed"), results
    assert results[2] == "bash: HELLO", results
    learned = memory["/learned.md"]
    assert learned.type == "memory" and learned.content == "the user likes tea"
    assert [v.operation for v in versions] == ["created"]
    assert versions[0].created_by is not None and versions[0].created_by.type == "session_actor"
    assert refused == 403


def test_the_official_sdk_worker_syncs_a_loophost_memory_store(
    client: anthropic.Anthropic, server: ServerProcess, tmp_path: Path
) -> None:
    """The SDK's `EnvironmentWorker` (no sandbox: it works at the store's `mount_path` on this machine) downloads
    the store and writes back what the agent wrote, with the sessions token, as it does against the hosted API."""
    env_id, key = environment_with_key(client, server)
    name = uid("sdk-worker-memory")
    store = client.beta.memory_stores.create(name=name)
    client.beta.memory_stores.memories.create(store.id, path="/seed.md", content="seeded")
    agent = client.beta.agents.create(name=uid("agent"), model="scripted", tools=TOOLS)  # type: ignore[arg-type]
    session = client.beta.sessions.create(
        agent=agent.id, environment_id=env_id, resources=[{"type": "memory_store", "memory_store_id": store.id}]
    )
    mount = Path(session.resources[0].mount_path or "")
    done = threading.Event()
    outcome: list[BaseException] = []

    async def serve() -> None:
        async with anthropic.AsyncAnthropic(base_url=server.url, api_key=KEY_A, max_retries=0) as sdk:
            worker = sdk.beta.environments.work.worker(
                environment_id=env_id, environment_key=key, workdir=tmp_path, max_idle=1.0
            )
            running = asyncio.create_task(worker.run())
            while not done.is_set() and not running.done():
                await asyncio.sleep(0.05)
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)

    def run_worker() -> None:
        try:
            asyncio.run(serve())
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run_worker, daemon=True)
    thread.start()
    try:
        results = turn(
            client,
            session.id,
            ("read", {"file_path": str(mount / "seed.md")}),
            ("write", {"file_path": str(mount / "learned.md"), "content": "from the sdk worker"}),
            timeout=60,
        )
        with anthropic.Anthropic(base_url=server.url, api_key=None, auth_token=key, max_retries=0) as keyed:
            wait_for(lambda: [w.state for w in keyed.beta.environments.work.list(env_id)] == ["stopped"], timeout=60)
        done.set()
        thread.join(timeout=30)
    finally:
        done.set()
        shutil.rmtree(mount, ignore_errors=True)
        with contextlib.suppress(OSError):  # /mnt/memory, when no one else uses it
            mount.parent.rmdir()
    assert not outcome, outcome
    assert "seeded" in results[0], results
    learned = [m for m in client.beta.memory_stores.memories.list(store.id, view="full") if m.path == "/learned.md"]
    assert len(learned) == 1 and learned[0].type == "memory" and learned[0].content == "from the sdk worker"
    (version,) = list(
        client.beta.memory_stores.memory_versions.list(store.id, operation="created", session_id=session.id)
    )
    assert version.created_by is not None and version.created_by.type == "session_actor"
