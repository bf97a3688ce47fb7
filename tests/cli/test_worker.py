"""`loophost worker` and `loophost environments key` as real processes against a real `loophost serve`: a
self-hosted session writes, edits, greps and runs bash in the worker's directory (not the server's); a worker
SIGKILLed mid-tool loses its lease, a second worker takes the item over, and the tool is reported interrupted,
not run again; Ctrl-C stops a worker gracefully; and the official SDK's `EnvironmentWorker` serves the same
sessions.

The machine has no working bubblewrap, so the workers run with --unsafe-no-sandbox (the refusal without it is
tested too)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anthropic
import pytest

from tests.server.conftest import KEY_A, ServerProcess, start_server, stop_server
from tests.server.test_events_api import is_idle, message, read_until, uid

TOOLS = [{"type": "agent_toolset_20260401", "default_config": {"permission_policy": {"type": "always_allow"}}}]
CLI = [sys.executable, "-c", "from loophost.cli import main; main()"]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "ANTHROPIC_API_KEY": KEY_A}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server whose work leases last 2 s, so a dead worker's item comes back quickly."""
    where = tmp_path_factory.mktemp("worker-server")
    os.environ["LOOPHOST_WORK_LEASE_SECONDS"] = "2"
    try:
        serve = [*CLI, "serve", "--port", "0", "--database", str(where / "db.sqlite")]
        proc = start_server(where / "db.sqlite", command=[*serve, "--workspaces", str(where / "server-ws")])
    finally:
        del os.environ["LOOPHOST_WORK_LEASE_SECONDS"]
    yield proc
    stop_server(proc)


@pytest.fixture
def client(server: ServerProcess) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=server.url, api_key=KEY_A, max_retries=0) as c:
        yield c


def environment_with_key(client: anthropic.Anthropic, server: ServerProcess) -> tuple[str, str]:
    """A self-hosted environment and a key minted by `loophost environments key`."""
    env = client.beta.environments.create(name=uid("env"), config={"type": "self_hosted"})
    minted = subprocess.run(
        [*CLI, "environments", "key", env.id, "--base-url", server.url],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=60,
        check=True,
    )
    key = minted.stdout.strip()
    assert key.startswith("lhe-") and len(minted.stdout.splitlines()) == 1
    return env.id, key


def start_worker(
    server: ServerProcess, env_id: str, key: str, workdir: Path, *extra: str, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    command = [*CLI, "worker", "--environment", env_id, "--environment-key", key, "--base-url", server.url]
    command += ["--workdir", str(workdir), "--max-idle", "1", *extra]
    return subprocess.Popen(
        command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env or ENV, start_new_session=True
    )


def without_bwrap(scratch: Path) -> dict[str, str]:
    """The workers' environment on a machine without bubblewrap: none configured, and PATH as it is but for any
    `bwrap` on it (a directory that holds one is replaced by a copy of its links without it)."""
    dirs = []
    for index, entry in enumerate(ENV.get("PATH", "").split(os.pathsep)):
        if entry and (Path(entry) / "bwrap").exists():
            shadow = scratch / f"path{index}"
            shadow.mkdir(parents=True)
            for item in Path(entry).iterdir():
                if item.name != "bwrap":
                    (shadow / item.name).symlink_to(item)
            entry = str(shadow)
        dirs.append(entry)
    return {**{k: v for k, v in ENV.items() if k != "LOOPHOST_BWRAP"}, "PATH": os.pathsep.join(dirs)}


def session_on(client: anthropic.Anthropic, env_id: str) -> str:
    agent = client.beta.agents.create(name=uid("agent"), model="scripted", tools=TOOLS)  # type: ignore[arg-type]
    return client.beta.sessions.create(agent=agent.id, environment_id=env_id).id


def turn(client: anthropic.Anthropic, sid: str, *steps: tuple[str, dict[str, Any]], timeout: float = 60) -> list[str]:
    """One message whose tool calls run one after the other (`then`); the results the worker posted, each
    `NAME: text` or `NAME failed: text`."""
    text = "\nthen\n".join(f"call {name} {json.dumps(args)}" for name, args in steps)
    with client.beta.sessions.events.stream(sid, timeout=timeout) as stream:
        client.beta.sessions.events.send(sid, events=[message(text)])
        events = read_until(stream, is_idle("end_turn"), timeout=timeout)
    names = {e.id: e.name for e in events if e.type == "agent.tool_use"}
    return [
        f"{names[e.tool_use_id]}{' failed' if e.is_error else ''}: {''.join(b.text for b in e.content)}"
        for e in events
        if e.type == "user.tool_result"
    ]


def wait_for(condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("timed out")
        time.sleep(0.05)


def finish(worker: subprocess.Popen[str]) -> str:
    """Ctrl-C, as a user would; the worker's terminal output."""
    worker.send_signal(signal.SIGINT)
    _, err = worker.communicate(timeout=30)
    assert worker.returncode == 0, err
    return err


def test_the_tools_run_in_the_workers_directory(
    client: anthropic.Anthropic, server: ServerProcess, tmp_path: Path
) -> None:
    env_id, key = environment_with_key(client, server)
    worker = start_worker(server, env_id, key, tmp_path / "worker", "--unsafe-no-sandbox")
    try:
        sid = session_on(client, env_id)
        results = turn(
            client,
            sid,
            ("write", {"file_path": "notes/todo.txt", "content": "alpha\nbeta\n"}),
            ("edit", {"file_path": "notes/todo.txt", "old_string": "beta", "new_string": "gamma"}),
            ("grep", {"pattern": "gam+a", "path": "notes"}),
            ("bash", {"command": "cat notes/todo.txt && echo from-$USER-shell > made.txt"}),
            ("read", {"file_path": "made.txt"}),
        )
    finally:
        err = finish(worker)
    assert [r.split(":")[0] for r in results] == ["write", "edit", "grep", "bash", "read"], results
    assert "todo.txt:2:gamma" in results[2]
    assert results[3] == "bash: alpha\ngamma" and "from-" in results[4]
    workspace = tmp_path / "worker" / sid / "fs" / "workspace"
    assert (workspace / "notes" / "todo.txt").read_text() == "alpha\ngamma\n"
    assert (workspace / "made.txt").exists()
    assert not list((server.database.parent / "server-ws").glob(f"{sid}/**/todo.txt"))  # nothing on the server
    assert f"serving session {sid}" in err and "stopping: finishing the running tools" in err
    with anthropic.Anthropic(base_url=server.url, api_key=None, auth_token=key, max_retries=0) as keyed:
        states = [w.state for w in keyed.beta.environments.work.list(env_id)]
    assert states == ["stopped"]  # the worker stopped its item when it was told to stop


def test_a_killed_workers_call_is_interrupted_and_its_item_taken_over(
    client: anthropic.Anthropic, server: ServerProcess, tmp_path: Path
) -> None:
    env_id, key = environment_with_key(client, server)
    first = start_worker(server, env_id, key, tmp_path / "first", "--unsafe-no-sandbox")
    sid = session_on(client, env_id)
    command = "touch started; sleep 20; touch finished"
    with client.beta.sessions.events.stream(sid, timeout=60) as stream:
        client.beta.sessions.events.send(sid, events=[message(f"call bash {json.dumps({'command': command})}")])
        started = tmp_path / "first" / sid / "fs" / "workspace" / "started"
        wait_for(started.exists)
        os.killpg(first.pid, signal.SIGKILL)  # the worker and its shell die mid-tool, as a machine would
        first.wait(timeout=10)
        second = start_worker(server, env_id, key, tmp_path / "second", "--unsafe-no-sandbox")
        try:
            events = read_until(stream, is_idle("end_turn"), timeout=60)
            with anthropic.Anthropic(base_url=server.url, api_key=None, auth_token=key, max_retries=0) as keyed:
                (item,) = keyed.beta.environments.work.list(env_id)
                # the first worker's lease ran out: the item was queued again and the second worker acknowledged it
                wait_for(lambda: keyed.beta.environments.work.list(env_id).data[0].state in ("starting", "active"))
        finally:
            err = finish(second)
    results = [e for e in events if e.type == "user.tool_result"]
    assert len(results) == 1 and results[0].is_error
    reply = [e.content[0].text for e in events if e.type == "agent.message"]
    assert reply[0].startswith("bash failed: The worker running this tool call stopped answering")
    assert not (tmp_path / "first" / sid / "fs" / "workspace" / "finished").exists()
    assert not list((tmp_path / "second").rglob("started"))  # not run again
    assert f"serving session {sid}" in err and item.data.id == sid


def test_without_a_sandbox_the_worker_refuses_the_tools(
    client: anthropic.Anthropic, server: ServerProcess, tmp_path: Path
) -> None:
    env_id, key = environment_with_key(client, server)
    # no --unsafe-no-sandbox, on a machine without bubblewrap
    worker = start_worker(server, env_id, key, tmp_path / "worker", env=without_bwrap(tmp_path / "bin"))
    try:
        (result,) = turn(client, session_on(client, env_id), ("bash", {"command": "touch ran"}))
    finally:
        finish(worker)
    assert result.startswith("bash failed: loophost worker found no working sandbox (bubblewrap)")
    assert "--unsafe-no-sandbox" in result and "apt install bubblewrap" in result
    assert not list((tmp_path / "worker").rglob("ran"))


def test_the_official_sdk_worker_serves_a_loophost_session(
    client: anthropic.Anthropic, server: ServerProcess, tmp_path: Path
) -> None:
    env_id, key = environment_with_key(client, server)
    sid = session_on(client, env_id)

    done = threading.Event()

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

    outcome: list[BaseException] = []

    def run_worker() -> None:  # the SDK worker in a loop of its own, while this thread drives the session
        try:
            asyncio.run(serve())
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run_worker, daemon=True)
    thread.start()
    results = turn(
        client,
        sid,
        ("write", {"file_path": "hello.txt", "content": "hi from the sdk\n"}),
        ("edit", {"file_path": "hello.txt", "old_string": "sdk", "new_string": "SDK"}),
        ("bash", {"command": "cat hello.txt"}),
        ("grep", {"pattern": "SDK"}),
        timeout=60,
    )
    with anthropic.Anthropic(base_url=server.url, api_key=None, auth_token=key, max_retries=0) as keyed:
        wait_for(lambda: [w.state for w in keyed.beta.environments.work.list(env_id)] == ["stopped"])
    done.set()  # the SDK worker stopped its item (max_idle after end_turn): it may go
    thread.join(timeout=20)
    assert not outcome, outcome
    assert (tmp_path / "hello.txt").read_text() == "hi from the SDK\n"
    assert [r.split(":")[0] for r in results] == ["write", "edit", "bash", "grep"], results
    assert results[2].startswith("bash: hi from the SDK") and "hello.txt" in results[3]
