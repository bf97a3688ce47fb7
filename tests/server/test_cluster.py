"""Several `loophost` nodes on one PostgreSQL database, as real processes (tests/server/_cluster.py): any node serves
any request, a stream on one node carries what another writes, a dead owner's sessions are finished by the other
node with nothing lost and no tool run twice, and a paused owner that resumes past its lease writes nothing."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from .._postgres import PostgresServer
from ._cluster import (
    KEY,
    Cluster,
    NodeZygote,
    crash_trial,
    create_session,
    events,
    executions,
    finished,
    message,
    owned_by,
    send,
    status,
    until,
)

TTL = 1.0
TRIALS = 30


@pytest.fixture(scope="module")
def zygote() -> Iterator[NodeZygote]:
    z = NodeZygote()
    yield z
    z.close()


@pytest.fixture
def cluster(zygote: NodeZygote, postgres_server: PostgresServer, tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(zygote, postgres_server.create_database("cluster"), tmp_path, lease_ttl=TTL)
    started = len(zygote.nodes)
    yield c
    for node in zygote.nodes[started:]:
        node.terminate()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as client:
        yield client


async def test_a_stream_on_one_node_carries_the_turns_another_node_runs(
    cluster: Cluster, http: httpx.AsyncClient
) -> None:
    """Create on A, stream on B; A runs the turn; a message and an interrupt sent on B reach A (the interrupt cuts
    A's long model request short, then A takes the queued message)."""
    a, b = cluster.start("a"), cluster.start("b")
    sid = await create_session(http, a)
    async with anthropic.AsyncAnthropic(base_url=b.url, api_key=KEY, max_retries=0) as on_b:
        stream = await on_b.beta.sessions.events.stream(sid)
        async with stream:
            (first,) = await send(http, a, sid, message('sleep 60000\ncall bash {"command": "one"}'))
            await until(lambda: owned_by(cluster, sid, a), "A drives the session")
            (second,) = await send(http, b, sid, message('call bash {"command": "two"}'))  # queued behind A's turn
            (interrupt,) = await send(http, b, sid, {"type": "user.interrupt"})
            streamed: list[Any] = []
            async with asyncio.timeout(30):  # without the wake-up A would sleep out its minute
                async for event in stream:
                    streamed.append(event)
                    if event.type == "agent.message":
                        break
                async for event in stream:
                    streamed.append(event)
                    if event.type == "session.status_idle":
                        break
    log = await events(http, a, sid)
    assert [e.id for e in streamed] == [e["id"] for e in log]  # every event A and B wrote, in order, once
    assert [first, second, interrupt] == [e["id"] for e in log if e["type"].startswith("user.")]
    assert [e.content[0].text for e in streamed if e.type == "agent.message"] == ["bash: ran two"]
    assert [(node, command) for node, _, command in executions(cluster.executions)] == [("a", "two")]
    assert await status(http, b, sid) == "idle"


@pytest.fixture(scope="module")
def trial_cluster(
    zygote: NodeZygote, postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    """Two live nodes for every trial: each trial kills one, and a new node replaces it."""
    c = Cluster(zygote, postgres_server.create_database("trials"), tmp_path_factory.mktemp("trials"), lease_ttl=TTL)
    started = len(zygote.nodes)
    c.live = [c.start(), c.start()]
    yield c
    for node in zygote.nodes[started:]:
        node.terminate()


@pytest.mark.parametrize("trial", range(TRIALS))
async def test_sigkill_of_the_owner_loses_nothing_and_runs_no_tool_twice(
    trial_cluster: Cluster, http: httpx.AsyncClient, trial: int
) -> None:
    """SIGKILL the owner at a random point of a tool-using turn (mid model request, mid tool); the other node
    finishes the session: every acknowledged event is in the log, no tool ran twice, every call has a result, and
    TTL + 2 s after the kill the session is finished or has a live owner."""
    cluster = trial_cluster
    result = await crash_trial(cluster, http, random.Random(trial))
    assert result.lost == [], "an acknowledged event was lost"
    assert result.duplicated == [], "a tool ran twice"
    assert result.unanswered == [], "a tool call has no result"
    assert result.unowned == [], "an active session had no live owner TTL + 2 s after the kill"
    assert result.ended == "end_turn"


async def test_a_paused_owner_resumed_past_its_lease_writes_nothing(cluster: Cluster, http: httpx.AsyncClient) -> None:
    """SIGSTOP the owner mid model request for longer than its lease; the other node finishes the turn; SIGCONT:
    the paused node's model request completes, and its commit is fenced out (no event, no tool run)."""
    a, b = cluster.start("a"), cluster.start("b")
    sid = await create_session(http, a)
    await send(http, a, sid, message('sleep 1500\ncall bash {"command": "after the pause"}'))
    await until(lambda: owned_by(cluster, sid, a), "A drives the session")
    await asyncio.sleep(0.3)  # A is in its model request
    a.stop()
    try:
        await until(lambda: owned_by(cluster, sid, b), "B takes the session over", timeout=30)
        await until(lambda: finished(http, b, sid), "B finishes the turn", timeout=30)
        before = await events(http, b, sid)
        ran_before = executions(cluster.executions)
    finally:
        a.cont()
    await asyncio.sleep(2.5)  # A's request ends (it slept 1.5 s of model time), its commit is refused
    assert await events(http, b, sid) == before
    assert executions(cluster.executions) == ran_before
    assert [node for node, _, _ in ran_before] == ["b"]
    assert len([e for e in before if e["type"] == "agent.message"]) == 1
    # A is well again: it serves the session like any node
    (more,) = await send(http, a, sid, message("hello after the pause"))
    await until(lambda: finished(http, a, sid), "the next turn ends")
    assert more in [e["id"] for e in await events(http, b, sid)]
