"""The work queue of self-hosted environments through the official SDK (`client.beta.environments.work`) against a
real `loophost serve`: poll, ack, heartbeat, stop, list, retrieve, update, stats; environment keys and sessions
tokens reaching only their own environment and session; and self-hosted sessions parking their built-in tool
calls for a worker's `user.tool_result`."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import httpx2
import pytest

from .conftest import KEY_A, ServerProcess
from .test_events_api import is_idle, message, read_until, uid

WORKER_TOOLS = [{"type": "agent_toolset_20260401", "default_config": {"permission_policy": {"type": "always_allow"}}}]


def raw(server: ServerProcess, credential: str) -> httpx2.Client:
    return httpx2.Client(
        base_url=server.url,
        headers={"Authorization": f"Bearer {credential}", "anthropic-beta": "managed-agents-2026-04-01"},
        timeout=httpx2.Timeout(10.0),
    )


def new_key(server: ServerProcess, environment_id: str) -> str:
    with raw(server, KEY_A) as http:
        answer = http.post(f"/v1/environments/{environment_id}/keys")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["type"] == "environment_key" and body["environment_id"] == environment_id
    assert body["id"].startswith("ekey_")
    key: str = body["key"]
    return key


def worker_client(server: ServerProcess, credential: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.url, api_key=None, auth_token=credential, max_retries=0)


def self_hosted(client: anthropic.Anthropic) -> str:
    env = client.beta.environments.create(name=uid("env"), config={"type": "self_hosted"})
    return env.id


def session_on(client: anthropic.Anthropic, environment_id: str, *, tools: Any = None, metadata: Any = None) -> str:
    agent = client.beta.agents.create(name=uid("agent"), model="scripted", tools=tools or [])
    created = client.beta.sessions.create(agent=agent.id, environment_id=environment_id, metadata=metadata or {})
    return created.id


def sessions_token(secret: str | None) -> str:
    assert secret is not None
    payload = json.loads(base64.urlsafe_b64decode(secret + "=" * (-len(secret) % 4)))
    token: str = payload["sessions_token"]
    return token


@pytest.fixture
def queue(client: anthropic.Anthropic, server: ServerProcess) -> Iterator[tuple[str, anthropic.Anthropic]]:
    """A self-hosted environment and an SDK client holding one of its keys."""
    env_id = self_hosted(client)
    with worker_client(server, new_key(server, env_id)) as worker:
        yield env_id, worker


def test_an_item_goes_through_its_whole_life(client: anthropic.Anthropic, queue: tuple[str, Any]) -> None:
    env_id, worker = queue
    work = worker.beta.environments.work
    sid = session_on(client, env_id, metadata={"team": "a"})
    item = work.poll(env_id, block_ms=500, anthropic_worker_id="w-1")
    assert item is not None
    assert (item.type, item.state, item.data.type, item.data.id) == ("work", "queued", "session", sid)
    assert item.metadata == {"team": "a"} and item.environment_id == env_id
    assert sessions_token(item.secret).startswith("lhs-")
    stats = client.beta.environments.work.stats(env_id)
    assert (stats.depth, stats.pending, stats.workers_polling) == (0, 1, 1)
    assert stats.oldest_queued_at == item.created_at

    acked = work.ack(item.id, environment_id=env_id)
    assert acked.state == "starting" and acked.acknowledged_at is not None and acked.secret is None
    assert work.ack(item.id, environment_id=env_id).state == "starting"  # acknowledged again: the same answer
    first = work.heartbeat(item.id, environment_id=env_id, expected_last_heartbeat="NO_HEARTBEAT")
    assert (first.type, first.state, first.lease_extended) == ("work_heartbeat", "active", True)
    assert first.ttl_seconds > 0 and first.last_heartbeat
    second = work.heartbeat(item.id, environment_id=env_id, expected_last_heartbeat=first.last_heartbeat)
    assert second.last_heartbeat != first.last_heartbeat and second.state == "active"

    with pytest.raises(anthropic.APIStatusError) as refused:  # a stale echo: another worker may hold the lease
        work.heartbeat(item.id, environment_id=env_id, expected_last_heartbeat=first.last_heartbeat)
    assert refused.value.status_code == 412
    details = refused.value.body["error"]["details"]  # type: ignore[index]
    assert details["error_code"] == "heartbeat_precondition_failed"
    assert details["current_state"] == {
        "state": "active",
        "last_heartbeat": second.last_heartbeat,
        "lease_extended": False,
        "ttl_seconds": second.ttl_seconds,
    }

    stopping = client.beta.environments.work.stop(item.id, environment_id=env_id)  # graceful: `{}`
    assert stopping.state == "stopping" and stopping.stop_requested_at is not None
    told = work.heartbeat(item.id, environment_id=env_id, expected_last_heartbeat="anything")  # not compared now
    assert (told.state, told.lease_extended) == ("stopping", False)
    stopped = work.stop(item.id, environment_id=env_id, force=True)
    assert stopped.state == "stopped" and stopped.stopped_at is not None
    with pytest.raises(anthropic.ConflictError):
        work.stop(item.id, environment_id=env_id, force=True)
    with pytest.raises(anthropic.ConflictError):
        work.ack(item.id, environment_id=env_id)

    fetched = client.beta.environments.work.retrieve(item.id, environment_id=env_id)
    assert fetched.state == "stopped" and fetched.secret is None and fetched.started_at is not None
    updated = client.beta.environments.work.update(item.id, environment_id=env_id, metadata={"team": None, "x": "1"})
    assert updated.metadata == {"x": "1"}
    listed = list(work.list(env_id))
    assert [w.id for w in listed] == [item.id] and listed[0].secret is None


def test_poll_waits_answers_null_and_reclaims_what_is_not_acknowledged(
    client: anthropic.Anthropic, queue: tuple[str, Any], server: ServerProcess
) -> None:
    env_id, worker = queue
    work = worker.beta.environments.work
    assert work.poll(env_id) is None
    assert work.poll(env_id, block_ms=50) is None
    with raw(server, worker.auth_token) as http:
        empty = http.get(f"/v1/environments/{env_id}/work/poll", params={"block_ms": 1})
        assert (empty.status_code, empty.content) == (200, b"null")
        for bad in ("0", "1000", "x"):
            refused = http.get(f"/v1/environments/{env_id}/work/poll", params={"block_ms": bad})
            assert refused.status_code == 400 and refused.json()["type"] == "error"
    sid = session_on(client, env_id)
    first = work.poll(env_id, block_ms=999)
    assert first is not None and first.data.id == sid
    assert work.poll(env_id) is None  # handed out: not again before it may be reclaimed
    again = work.poll(env_id, reclaim_older_than_ms=0)
    assert again is not None and again.id == first.id and again.secret != first.secret
    assert work.ack(again.id, environment_id=env_id).state == "starting"
    assert work.poll(env_id, reclaim_older_than_ms=0) is None  # acknowledged: out of the queue


def test_new_input_queues_an_item_when_none_is_live(client: anthropic.Anthropic, queue: tuple[str, Any]) -> None:
    env_id, worker = queue
    work = worker.beta.environments.work
    sid = session_on(client, env_id)
    item = work.poll(env_id, block_ms=500)
    assert item is not None
    client.beta.sessions.events.send(sid, events=[message("hello")])
    assert work.poll(env_id, reclaim_older_than_ms=60_000) is None  # the session has a live item
    work.ack(item.id, environment_id=env_id)
    work.stop(item.id, environment_id=env_id, force=True)
    client.beta.sessions.events.send(sid, events=[message("again")])
    fresh = work.poll(env_id, block_ms=500)
    assert fresh is not None and fresh.id != item.id and fresh.data.id == sid


def test_credentials_reach_only_their_environment_and_session(
    client: anthropic.Anthropic, other_client: anthropic.Anthropic, server: ServerProcess
) -> None:
    env_a, env_b = self_hosted(client), self_hosted(client)
    key_a = new_key(server, env_a)
    sid_a, sid_b = session_on(client, env_a), session_on(client, env_b)
    with worker_client(server, key_a) as stolen:
        item = stolen.beta.environments.work.poll(env_a, block_ms=500)
        assert item is not None
        assert stolen.beta.sessions.retrieve(sid_a).id == sid_a
        assert list(stolen.beta.sessions.events.list(sid_a)) == []
        missing: tuple[Callable[[], object], ...] = (
            lambda: stolen.beta.environments.work.poll(env_b),
            lambda: list(stolen.beta.environments.work.list(env_b)),
            lambda: stolen.beta.sessions.retrieve(sid_b),
            lambda: list(stolen.beta.sessions.events.list(sid_b)),
            lambda: stolen.beta.sessions.events.send(sid_b, events=[message("hi")]),
        )
        for call in missing:
            with pytest.raises(anthropic.NotFoundError):
                call()
        refused: tuple[Callable[[], object], ...] = (
            lambda: stolen.beta.agents.list(),
            lambda: stolen.beta.environments.work.stats(env_a),
            lambda: stolen.beta.environments.work.retrieve(item.id, environment_id=env_a),
            lambda: stolen.beta.sessions.archive(sid_a),
        )
        for call in refused:
            with pytest.raises(anthropic.PermissionDeniedError):
                call()
    with pytest.raises(anthropic.PermissionDeniedError):  # the queue itself takes the environment key
        client.beta.environments.work.poll(env_a)
    with pytest.raises(anthropic.NotFoundError):  # another workspace's environment
        other_client.beta.environments.work.stats(env_a)

    token = sessions_token(item.secret)
    with worker_client(server, token) as scoped:
        with pytest.raises(anthropic.NotFoundError):  # not acknowledged yet: the token holds no session
            scoped.beta.sessions.retrieve(sid_a)
        with worker_client(server, key_a) as keyed:
            keyed.beta.environments.work.ack(item.id, environment_id=env_a)
        beat = scoped.beta.environments.work.heartbeat(
            item.id, environment_id=env_a, expected_last_heartbeat="NO_HEARTBEAT"
        )
        assert beat.state == "active"
        assert scoped.beta.sessions.retrieve(sid_a).id == sid_a
        with pytest.raises(anthropic.NotFoundError):
            scoped.beta.sessions.retrieve(sid_b)
        with pytest.raises(anthropic.PermissionDeniedError):
            scoped.beta.environments.work.poll(env_a)
        assert scoped.beta.environments.work.stop(item.id, environment_id=env_a, force=True).state == "stopped"
        with pytest.raises(anthropic.NotFoundError):  # stopped: the token no longer holds the session
            scoped.beta.sessions.retrieve(sid_a)

    with raw(server, KEY_A) as http:
        keys = http.get(f"/v1/environments/{env_a}/keys").json()["data"]
        assert [k.keys() for k in keys] == [{"type", "id", "environment_id", "created_at"}]
        assert http.delete(f"/v1/environments/{env_a}/keys/{keys[0]['id']}").json()["type"] == (
            "environment_key_deleted"
        )
    with worker_client(server, key_a) as revoked, pytest.raises(anthropic.AuthenticationError):
        revoked.beta.environments.work.poll(env_a)


def test_a_cloud_environment_has_no_queue(client: anthropic.Anthropic, server: ServerProcess) -> None:
    env = client.beta.environments.create(name=uid("env"))
    with raw(server, KEY_A) as http:
        assert http.post(f"/v1/environments/{env.id}/keys").status_code == 400
    with pytest.raises(anthropic.BadRequestError):
        client.beta.environments.work.stats(env.id)


# --- self-hosted sessions: built-in calls wait for a worker ------------------------------------------------------


def test_built_in_calls_park_for_the_worker_and_resume_on_its_results(client: anthropic.Anthropic) -> None:
    env_id = self_hosted(client)
    sid = session_on(client, env_id, tools=WORKER_TOOLS)
    with client.beta.sessions.events.stream(sid, timeout=30) as stream:
        client.beta.sessions.events.send(
            sid, events=[message('call bash {"command": "echo hi"}\ncall read {"file_path": "a.txt"}')]
        )
        first = read_until(stream, lambda e: e.type == "session.status_idle")
        uses = [e for e in first if e.type == "agent.tool_use"]
        assert [u.name for u in uses] == ["bash", "read"]
        assert first[-1].stop_reason.type == "requires_action"
        assert first[-1].stop_reason.event_ids == [u.id for u in uses]
        assert not [e for e in first if e.type == "agent.tool_result"]  # nothing ran on the server

        def result(use_id: str, text: str) -> Any:
            return {"type": "user.tool_result", "tool_use_id": use_id, "content": [{"type": "text", "text": text}]}

        with pytest.raises(anthropic.BadRequestError) as unknown:
            client.beta.sessions.events.send(sid, events=[result("sevt_nope", "x")])
        assert sorted(unknown.value.body["error"]["details"]["pending_event_ids"]) == sorted(u.id for u in uses)  # type: ignore[index]
        client.beta.sessions.events.send(sid, events=[result(uses[0].id, "hi")])
        client.beta.sessions.events.send(sid, events=[result(uses[0].id, "hi")])  # a retry: applied once
        partial = read_until(stream, lambda e: e.type == "session.status_idle")
        assert partial[-1].stop_reason.event_ids == [uses[1].id]
        failed: Any = {**result(uses[1].id, "no such file"), "is_error": True}
        client.beta.sessions.events.send(sid, events=[failed])
        rest = read_until(stream, is_idle("end_turn"))
    replies = [e.content[0].text for e in rest if e.type == "agent.message"]
    assert replies == ["bash: hi\nread failed: no such file"]
    logged = [e.type for e in client.beta.sessions.events.list(sid)]
    assert logged.count("span.model_request_start") == 2  # the repeated result started nothing


def test_an_asking_call_waits_for_the_confirmation_before_its_result(client: anthropic.Anthropic) -> None:
    env_id = self_hosted(client)
    tools = [{"type": "agent_toolset_20260401", "default_config": {"permission_policy": {"type": "always_ask"}}}]
    sid = session_on(client, env_id, tools=tools)
    with client.beta.sessions.events.stream(sid, timeout=30) as stream:
        client.beta.sessions.events.send(
            sid, events=[message('call bash {"command": "rm -rf x"}\ncall bash {"command": "ls"}')]
        )
        first = read_until(stream, lambda e: e.type == "session.status_idle")
        denied, allowed = [e for e in first if e.type == "agent.tool_use"]
        assert denied.evaluated_permission == "ask"
        result: Any = {
            "type": "user.tool_result",
            "tool_use_id": allowed.id,
            "content": [{"type": "text", "text": "f"}],
        }
        with pytest.raises(anthropic.BadRequestError) as early:
            client.beta.sessions.events.send(sid, events=[result])
        assert early.value.body["error"]["details"]["error_code"] == "awaiting_confirmation"  # type: ignore[index]
        confirm: Any = {"type": "user.tool_confirmation", "tool_use_id": allowed.id, "result": "allow"}
        client.beta.sessions.events.send(sid, events=[confirm])
        client.beta.sessions.events.send(sid, events=[confirm])  # the same confirmation again: applied once
        client.beta.sessions.events.send(
            sid, events=[{"type": "user.tool_confirmation", "tool_use_id": denied.id, "result": "deny"}]
        )
        client.beta.sessions.events.send(sid, events=[result])
        rest = read_until(stream, is_idle("end_turn"))
    replies = [e.content[0].text for e in rest if e.type == "agent.message"]
    assert replies == ["bash failed: The user denied this tool call.\nbash: f"]


def test_tool_results_are_refused_outside_self_hosted_sessions(client: anthropic.Anthropic) -> None:
    env = client.beta.environments.create(name=uid("env"))
    sid = session_on(client, env.id)
    with pytest.raises(anthropic.BadRequestError) as refused:
        client.beta.sessions.events.send(
            sid, events=[{"type": "user.tool_result", "tool_use_id": "sevt_x", "content": []}]
        )
    assert refused.value.body["error"]["details"]["error_code"] == "tool_result_not_self_hosted"  # type: ignore[index]
