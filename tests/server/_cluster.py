"""Several `loophost` server nodes on one PostgreSQL database, as real processes, for the cluster tests and benchmarks.

Starting a server costs the agent core's import time (seconds), and a crash trial kills a node each time; so a
*zygote* process imports everything once and forks each node from it: a node is a real process (its own event
loop, pool, lease keeper thread and uvicorn server) that dies by a real SIGKILL, and a new one is up in a fraction
of a second. A node's built-in `bash` is a test double (`ClusterBash`) that appends `<node> <tool_use_id>
<command>` to a shared executions file (O_APPEND: a line survives the kill of its writer) before it runs, so a
test sees every execution on every node; `sleep:MS` in the command makes it take that long.

Used by tests/server/test_cluster.py and the `cluster.*` benchmarks.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg

KEY = "cluster-key"
WS = "ws_cluster"
HEADERS = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
TOOLS = [{"type": "agent_toolset_20260401"}]


class ClusterBash:
    """`bash` for the cluster trials: logs each execution before running it, then takes as long as it is told."""

    name = "bash"
    description = "Runs a command (cluster-test double)."
    input_schema: dict[str, Any] = {"type": "object", "properties": {"command": {"type": "string"}}}

    def __init__(self, path: str, node: str) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._node = node

    async def run(self, ctx: Any, tool_input: dict[str, Any]) -> Any:
        from loophost.runtime import ToolOutput

        command = str(tool_input.get("command"))
        os.write(self._fd, f"{self._node} {ctx.tool_use_id} {command}\n".encode())
        if command.startswith("sleep:"):
            await asyncio.sleep(int(command.split()[0].removeprefix("sleep:")) / 1000)
        return ToolOutput(f"ran {command}")


async def _serve_node(database: str, executions: str, lease_ttl: float, name: str) -> None:
    import uvicorn

    from loophost.cli._serve import _Server
    from loophost.runtime import Runtime, RuntimeConfig
    from loophost.server import ApiKeys, ServerSettings, create_app

    runtime = Runtime.from_url(
        database, config=RuntimeConfig(lease_ttl=lease_ttl), builtin_tools={"bash": ClusterBash(executions, name)}
    )
    assert runtime.store.cluster is not None
    print(f"node-id {runtime.store.cluster.node_id}", flush=True)
    app = create_app(runtime, keys=ApiKeys.parse(f"{KEY}:{WS}"), settings=ServerSettings(0.5, console=False))
    await _Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"), app).serve()


def zygote_main() -> None:
    """Import the agent core, then read `node DATABASE EXECUTIONS TTL NAME` lines: fork a node for each and report
    `pid N`; the node itself prints `loophost listening on URL`. Children are reaped by the kernel (SIGCHLD
    ignored): the parent kills them by pid."""
    import threading

    import uvicorn  # noqa: F401 - what every node imports, imported once here

    from loophost._aio import run
    from loophost.cli import _serve  # noqa: F401
    from loophost.runtime.engine._workers import _load_engine
    from loophost.runtime.store import _postgres  # noqa: F401
    from loophost.server import create_app  # noqa: F401

    _load_engine()
    assert threading.active_count() == 1, "fork only from a single-threaded zygote"
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    print("ready", flush=True)
    for line in sys.stdin:
        command, database, executions, ttl, name = line.split()
        assert command == "node"
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            _die_with_parent()
            try:
                run(_serve_node(database, executions, float(ttl), name))
            finally:
                os._exit(0)
        print(f"pid {pid}", flush=True)


def _die_with_parent() -> None:
    """A node gets SIGTERM when its zygote ends (a test run that dies leaves no server behind)."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGTERM)


@dataclass
class Node:
    name: str
    pid: int
    url: str
    node_id: str
    """Its cluster node id (`sessions.lease_owner` of the sessions it drives)."""
    stopped: bool = False

    def kill(self) -> None:
        os.kill(self.pid, signal.SIGKILL)

    def stop(self) -> None:
        self.stopped = True
        os.kill(self.pid, signal.SIGSTOP)

    def cont(self) -> None:
        self.stopped = False
        os.kill(self.pid, signal.SIGCONT)

    def terminate(self) -> None:
        try:
            if self.stopped:
                self.cont()
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


class NodeZygote:
    """Forks server nodes on demand (see the module docstring)."""

    def __init__(self) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        self._proc = subprocess.Popen(
            [sys.executable, "-c", "from tests.server._cluster import zygote_main; zygote_main()"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=Path(__file__).parents[2],
        )
        assert self._proc.stdout is not None
        assert self._proc.stdout.readline().strip() == "ready"
        self.nodes: list[Node] = []

    def start(self, database: str, executions: Path, lease_ttl: float, name: str) -> Node:
        """A node on `database`, listening once this returns."""
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(f"node {database} {executions} {lease_ttl} {name}\n")
        self._proc.stdin.flush()
        pid = int(self._proc.stdout.readline().split()[1])
        node_id = ""
        while True:
            line = self._proc.stdout.readline()
            if not line:
                raise RuntimeError("the zygote ended")
            if line.startswith("node-id "):
                node_id = line.split()[1]
            elif line.startswith("loophost listening on "):
                node = Node(name, pid, line.split()[-1].strip(), node_id)
                self.nodes.append(node)
                return node

    def owner(self, node_id: str | None) -> Node | None:
        return next((n for n in self.nodes if n.node_id == node_id), None)

    def close(self) -> None:
        for node in self.nodes:
            node.terminate()
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        self._proc.wait(timeout=20)


# the API, over plain httpx ----------------------------------------------------------------------------------------
async def create_session(http: httpx.AsyncClient, node: Node, tools: list[dict[str, Any]] | None = None) -> str:
    agent = await _post(http, node, "/v1/agents", {"name": "cluster", "model": "scripted", "tools": tools or TOOLS})
    env = await _post(http, node, "/v1/environments", {"name": f"env-{agent['id']}"})
    session = await _post(http, node, "/v1/sessions", {"agent": agent["id"], "environment_id": env["id"]})
    return str(session["id"])


async def send(http: httpx.AsyncClient, node: Node, session_id: str, *events: dict[str, Any]) -> list[str]:
    """The ids of the echoed events (acknowledged: committed)."""
    body = await _post(http, node, f"/v1/sessions/{session_id}/events", {"events": list(events)})
    return [str(e["id"]) for e in body["data"]]


def message(text: str) -> dict[str, Any]:
    return {"type": "user.message", "content": [{"type": "text", "text": text}]}


async def status(http: httpx.AsyncClient, node: Node, session_id: str) -> str:
    response = await http.get(f"{node.url}/v1/sessions/{session_id}", headers=HEADERS)
    response.raise_for_status()
    return str(response.json()["status"])


async def events(http: httpx.AsyncClient, node: Node, session_id: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    page: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 1000}
        if page:
            params["page"] = page
        response = await http.get(f"{node.url}/v1/sessions/{session_id}/events", headers=HEADERS, params=params)
        response.raise_for_status()
        body = response.json()
        out += body["data"]
        page = body.get("next_page")
        if not page:
            return out


async def _post(http: httpx.AsyncClient, node: Node, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await http.post(f"{node.url}{path}", headers=HEADERS, json=body)
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


# crash trials ---------------------------------------------------------------------------------------------------
class Cluster:
    """Nodes of one database, forked by `zygote`, sharing one executions file; `live` is a crash trial's pair."""

    def __init__(self, zygote: NodeZygote, database: str, where: Path, *, lease_ttl: float = 1.0) -> None:
        self.zygote = zygote
        self.database = database
        self.executions = where / "executions.log"
        self.lease_ttl = lease_ttl
        self.live: list[Node] = []
        self._count = 0

    def start(self, name: str | None = None) -> Node:
        self._count += 1
        return self.zygote.start(self.database, self.executions, self.lease_ttl, name or f"n{self._count}")


async def until(check: Any, what: str, timeout: float = 20.0, *, state: Any = None) -> None:
    """Poll `check()` until it is true; `state()`, if given, says what things looked like on a timeout."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            seen = f": {await state()}" if state is not None else ""
            raise AssertionError(f"timed out waiting until {what}{seen}")
        await asyncio.sleep(0.02)


async def owned_by(cluster: Cluster, session_id: str, node: Node, *, finished_ok: bool = False) -> bool:
    """Whether `node` holds the session's lease (or, with `finished_ok`, nobody needs to: it wants no worker, so
    a lease its dead owner never released does not matter)."""
    async with await psycopg.AsyncConnection.connect(cluster.database, autocommit=True) as conn:
        cur = await conn.execute("SELECT lease_owner, wants_worker FROM sessions WHERE id = %s", (session_id,))
        row = await cur.fetchone()
    assert row is not None
    return row[0] == node.node_id or (finished_ok and not row[1])


@dataclass
class TrialResult:
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    unanswered: list[str] = field(default_factory=list)
    unowned: list[str] = field(default_factory=list)
    ended: str | None = None
    failover: float = 0.0
    """Seconds from the kill until the other node drove the session."""
    interrupted: int = 0
    """Tool calls answered as interrupted (the owner died while they ran)."""
    acked: int = 0


async def crash_trial(cluster: Cluster, http: httpx.AsyncClient, rng: random.Random) -> TrialResult:
    """One trial on the cluster's two live nodes; the killed one is replaced by a new node before this returns."""
    first, second = cluster.live
    entry = first if rng.random() < 0.5 else second
    sid = await create_session(http, entry)
    text = (
        'sleep 50\ncall bash {"command": "sleep:250 first"}\ncall bash {"command": "second"}\n'
        'then\ncall bash {"command": "sleep:150 third"}\nthen\ndone'
    )
    acked = await send(http, entry, sid, message(text))
    await until(lambda: owned(cluster, sid), "someone drives the session")
    owner = cluster.zygote.owner(await lease_owner(cluster.database, sid))
    assert owner in cluster.live
    other = second if owner is first else first
    acked += await send(http, other, sid, message("queued behind the turn"))
    await asyncio.sleep(rng.uniform(0.0, 0.7))
    owner.kill()
    loop = asyncio.get_running_loop()
    killed = loop.time()
    replacement = asyncio.create_task(asyncio.to_thread(cluster.start))  # while the other node takes over
    result = TrialResult()
    await until(
        lambda: owned_by(cluster, sid, other, finished_ok=True),
        f"the other node ({other.node_id}) takes over from {owner.node_id}",
        timeout=30,
        state=lambda: session_state(cluster.database, sid),
    )
    result.failover = loop.time() - killed
    try:
        await until(
            lambda: finished(http, other, sid), "", timeout=max(0.0, killed + cluster.lease_ttl + 2 - loop.time())
        )
    except AssertionError:
        result.unowned = await unowned_active(cluster.database, [sid])
        await until(lambda: finished(http, other, sid), "the other node finishes the session", timeout=30)
    cluster.live = [other, await replacement]
    log = await events(http, other, sid)
    logged = {e["id"] for e in log}
    result.lost = [x for x in acked if x not in logged]
    ran = [use for _, use, _ in executions(cluster.executions) if use in logged]
    result.duplicated = sorted({use for use in ran if ran.count(use) > 1})
    answered = {e["tool_use_id"] for e in log if e["type"] == "agent.tool_result"}
    result.unanswered = [e["id"] for e in log if e["type"] == "agent.tool_use" and e["id"] not in answered]
    result.ended = log[-1]["stop_reason"]["type"] if log[-1]["type"] == "session.status_idle" else None
    result.interrupted = len([e for e in log if e["type"] == "agent.tool_result" and e.get("is_error")])
    result.acked = len(acked)
    return result


async def owned(cluster: Cluster, session_id: str) -> bool:
    return await lease_owner(cluster.database, session_id) is not None


async def finished(http: httpx.AsyncClient, node: Node, session_id: str) -> bool:
    if await status(http, node, session_id) != "idle":
        return False
    log = await events(http, node, session_id)
    messages = [e for e in log if e["type"] == "user.message"]
    return all(e["processed_at"] is not None for e in messages) and log[-1]["type"] == "session.status_idle"


# the database, read directly --------------------------------------------------------------------------------------
async def lease_owner(database: str, session_id: str) -> str | None:
    async with await psycopg.AsyncConnection.connect(database, autocommit=True) as conn:
        cur = await conn.execute("SELECT lease_owner FROM sessions WHERE id = %s", (session_id,))
        row = await cur.fetchone()
        return None if row is None or row[0] is None else str(row[0])


async def session_state(database: str, session_id: str) -> dict[str, Any]:
    async with await psycopg.AsyncConnection.connect(database, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT status, wants_worker, lease_owner, lease_epoch, lease_expires_at - now(), last_seq, internal"
            " FROM sessions WHERE id = %s",
            (session_id,),
        )
        row = await cur.fetchone()
    assert row is not None
    keys = ("status", "wants_worker", "lease_owner", "lease_epoch", "expires_in", "last_seq", "internal")
    return dict(zip(keys, row, strict=True))


async def unowned_active(database: str, session_ids: list[str]) -> list[str]:
    """Sessions `running`/`rescheduling` with no live lease (owner none or expired), by the database's clock."""
    async with await psycopg.AsyncConnection.connect(database, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT id FROM sessions WHERE id = ANY(%s) AND status IN ('running', 'rescheduling')"
            " AND (lease_owner IS NULL OR lease_expires_at < now())",
            (session_ids,),
        )
        return [str(r[0]) for r in await cur.fetchall()]


def executions(path: Path) -> list[tuple[str, str, str]]:
    """(node, tool_use_id, command) per execution, on every node."""
    lines = path.read_text().splitlines() if path.exists() else []
    return [(parts[0], parts[1], " ".join(parts[2:])) for parts in (line.split() for line in lines)]
