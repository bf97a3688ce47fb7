"""Sessions and their threads over HTTP through the official SDK (spec §4, §9; checklist 19-25, 42, 47).

Agents use the built-in `scripted` model: a session started with the message `sleep 3000` stays `running` for
three seconds, long enough to check what a running session refuses.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import anthropic
import httpx2
import pytest
from anthropic.types.beta import BetaEnvironment, BetaManagedAgentsAgent, BetaManagedAgentsSession
from fastapi import FastAPI

from loophost.server.routes import sessions

from .conftest import KEY_A, ServerProcess


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def make_agent(client: anthropic.Anthropic, **kwargs: Any) -> BetaManagedAgentsAgent:
    return client.beta.agents.create(name=unique("sess-agent"), model="scripted", **kwargs)


def make_env(client: anthropic.Anthropic) -> BetaEnvironment:
    return client.beta.environments.create(name=unique("sess-env"))


def wait_for_status(client: anthropic.Anthropic, session_id: str, status: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while client.beta.sessions.retrieve(session_id).status != status:
        assert time.monotonic() < deadline, f"session {session_id} never became {status}"
        time.sleep(0.05)


def running_session(
    client: anthropic.Anthropic, agent: BetaManagedAgentsAgent, env: BetaEnvironment
) -> BetaManagedAgentsSession:
    session = client.beta.sessions.create(
        agent=agent.id,
        environment_id=env.id,
        initial_events=[{"type": "user.message", "content": [{"type": "text", "text": "sleep 3000"}]}],
    )
    wait_for_status(client, session.id, "running")
    return session


# --- create (19-21) --------------------------------------------------------------------------------------


def test_create_pins_latest_and_starts_idle(client: anthropic.Anthropic) -> None:
    agent = make_agent(client, system="v1")
    agent = client.beta.agents.update(agent.id, system="v2")
    env = make_env(client)
    session = client.beta.sessions.create(agent=agent.id, environment_id=env.id, title="t0", metadata={"m": "1"})
    assert session.type == "session"
    assert session.id.startswith("sesn_")
    assert session.status == "idle"
    assert session.agent.id == agent.id
    assert session.agent.version == 2
    assert session.agent.system == "v2"
    assert session.agent.model.id == "scripted"
    assert session.environment_id == env.id
    assert session.usage is not None
    assert session.resources == []
    assert session.vault_ids == []
    assert session.archived_at is None
    assert session.title == "t0"
    assert session.metadata == {"m": "1"}
    assert client.beta.sessions.retrieve(session.id) == session


def test_create_pins_an_explicit_version(client: anthropic.Anthropic) -> None:
    agent = make_agent(client, system="one")
    env = make_env(client)
    session = client.beta.sessions.create(agent={"type": "agent", "id": agent.id, "version": 1}, environment_id=env.id)
    client.beta.agents.update(agent.id, system="two")
    fetched = client.beta.sessions.retrieve(session.id)
    assert fetched.agent.version == 1
    assert fetched.agent.system == "one"
    later = client.beta.sessions.create(agent={"type": "agent", "id": agent.id}, environment_id=env.id)
    assert later.agent.version == 2
    with pytest.raises(anthropic.NotFoundError):
        client.beta.sessions.create(agent={"type": "agent", "id": agent.id, "version": 9}, environment_id=env.id)


def test_create_with_overrides_leaves_the_agent_alone(client: anthropic.Anthropic) -> None:
    agent = make_agent(client, system="stored")
    env = make_env(client)
    session = client.beta.sessions.create(
        agent={
            "type": "agent_with_overrides",
            "id": agent.id,
            "system": "S",
            "tools": [{"type": "agent_toolset_20260401"}],
        },
        environment_id=env.id,
    )
    assert session.agent.system == "S"
    assert [t.type for t in session.agent.tools] == ["agent_toolset_20260401"]
    stored = client.beta.agents.retrieve(agent.id)
    assert stored.system == "stored"
    assert stored.tools == []
    assert stored.version == 1


def test_create_rejects_unknown_references(client: anthropic.Anthropic) -> None:
    agent = make_agent(client)
    env = make_env(client)
    with pytest.raises(anthropic.NotFoundError):
        client.beta.sessions.create(agent="agent_nope", environment_id=env.id)
    with pytest.raises(anthropic.NotFoundError):
        client.beta.sessions.create(agent=agent.id, environment_id="env_nope")
    with pytest.raises(anthropic.BadRequestError) as info:
        client.beta.sessions.create(agent={"type": "robot", "id": agent.id}, environment_id=env.id)  # type: ignore[typeddict-item]
    assert info.value.body["type"] == "error"  # type: ignore[index]
    assert info.value.request_id is not None


# --- update (22, 47) -------------------------------------------------------------------------------------


def test_update_title_and_metadata(client: anthropic.Anthropic) -> None:
    env = make_env(client)
    session = client.beta.sessions.create(agent=make_agent(client).id, environment_id=env.id, metadata={"old": "1"})
    updated = client.beta.sessions.update(session.id, title="t", metadata={"x": "1", "old": None})
    assert updated.title == "t"
    assert updated.metadata == {"x": "1"}
    fetched = client.beta.sessions.retrieve(session.id)
    assert fetched.title == "t"
    assert fetched.metadata == {"x": "1"}
    assert fetched.updated_at > session.updated_at
    kept = client.beta.sessions.update(session.id, metadata={"y": "2"})
    assert kept.title == "t"  # omitted: preserved
    assert kept.metadata == {"x": "1", "y": "2"}


def test_update_emits_session_updated_event(client: anthropic.Anthropic) -> None:
    env = make_env(client)
    session = client.beta.sessions.create(agent=make_agent(client).id, environment_id=env.id)
    client.beta.sessions.update(session.id, title="t", metadata={"x": "1"})
    events = list(client.beta.sessions.events.list(session.id))
    updates = [e for e in events if e.type == "session.updated"]
    assert len(updates) == 1
    assert updates[0].title == "t"  # type: ignore[union-attr]


def test_update_rejects_vault_ids_and_empty_bodies(client: anthropic.Anthropic, server: ServerProcess) -> None:
    env = make_env(client)
    session = client.beta.sessions.create(agent=make_agent(client).id, environment_id=env.id)
    with pytest.raises(anthropic.BadRequestError) as info:
        client.beta.sessions.update(session.id, vault_ids=["vlt_1"])
    assert info.value.body["type"] == "error"  # type: ignore[index]
    assert info.value.error_code == "vault_ids_immutable"
    with pytest.raises(anthropic.BadRequestError):
        client.beta.sessions.update(session.id)
    headers = {"authorization": f"Bearer {KEY_A}", "content-type": "application/json"}
    with httpx2.Client(base_url=server.url, headers=headers) as http:
        for body in (b"", b"{oops", b'{"title": 5}', b'{"status": "idle"}', b'{"agent": {"system": "x"}}'):
            response = http.post(f"/v1/sessions/{session.id}", content=body)
            assert response.status_code == 400, (body, response.text)
            assert response.json()["type"] == "error"
    assert client.beta.sessions.retrieve(session.id).title is None


def test_update_agent_tools_is_session_local(client: anthropic.Anthropic) -> None:
    agent = make_agent(client)
    env = make_env(client)
    session = client.beta.sessions.create(agent=agent.id, environment_id=env.id)
    updated = client.beta.sessions.update(
        session.id,
        agent={
            "tools": [
                {"type": "agent_toolset_20260401"},
                {
                    "type": "custom",
                    "name": "lookup",
                    "description": "Look a thing up",
                    "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}},
                },
            ]
        },
    )
    assert [t.type for t in updated.agent.tools] == ["agent_toolset_20260401", "custom"]
    assert client.beta.sessions.retrieve(session.id).agent.tools == updated.agent.tools
    assert client.beta.agents.retrieve(agent.id).tools == []
    assert client.beta.agents.retrieve(agent.id).version == 1


# --- list (23) -------------------------------------------------------------------------------------------


def test_list_filters_and_orders(client: anthropic.Anthropic) -> None:
    agent = make_agent(client)
    env = make_env(client)
    first = client.beta.sessions.create(agent=agent.id, environment_id=env.id)
    second = client.beta.sessions.create(agent=agent.id, environment_id=env.id)
    archived = client.beta.sessions.create(agent=agent.id, environment_id=env.id)
    client.beta.sessions.archive(archived.id)

    idle = client.beta.sessions.list(agent_id=agent.id, statuses=["idle"], order="asc", include_archived=True)
    assert [s.id for s in idle.data] == [first.id, second.id]
    raw = client.beta.sessions.with_raw_response.list(agent_id=agent.id, statuses=["idle"]).http_response
    assert "statuses%5B%5D=idle" in str(raw.request.url)
    assert {"data", "next_page", "prev_page"} <= set(raw.json())

    newest_first = [s.id for s in client.beta.sessions.list(agent_id=agent.id)]
    assert newest_first == [second.id, first.id]  # archived ones are hidden by default
    with_archived = [s.id for s in client.beta.sessions.list(agent_id=agent.id, include_archived=True, order="asc")]
    assert with_archived == [first.id, second.id, archived.id]
    terminated = client.beta.sessions.list(agent_id=agent.id, statuses=["terminated"], include_archived=True)
    assert [s.id for s in terminated] == [archived.id]
    both = client.beta.sessions.list(
        agent_id=agent.id, statuses=["idle", "terminated"], include_archived=True, order="asc"
    )
    assert [s.id for s in both] == [first.id, second.id, archived.id]

    window = client.beta.sessions.list(
        agent_id=agent.id, created_at_gt=first.created_at, created_at_lte=second.created_at
    )
    assert [s.id for s in window] == [second.id]
    assert [s.id for s in client.beta.sessions.list(agent_id=agent.id, created_at_lt=second.created_at)] == [first.id]

    client.beta.agents.update(agent.id, system="v2")
    on_v2 = client.beta.sessions.create(agent=agent.id, environment_id=env.id)
    assert [s.id for s in client.beta.sessions.list(agent_id=agent.id, agent_version=2)] == [on_v2.id]
    assert on_v2.id not in {s.id for s in client.beta.sessions.list(agent_id=agent.id, agent_version=1)}
    assert list(client.beta.sessions.list(agent_id=agent.id, deployment_id="dep_1")) == []


def test_list_paginates_both_ways(client: anthropic.Anthropic) -> None:
    agent = make_agent(client)
    env = make_env(client)
    ids = [client.beta.sessions.create(agent=agent.id, environment_id=env.id).id for _ in range(3)]
    page = client.beta.sessions.list(agent_id=agent.id, limit=1, order="asc")
    assert [s.id for s in page.data] == ids[:1]
    assert page.next_page
    assert page.prev_page is None
    assert [s.id for s in client.beta.sessions.list(agent_id=agent.id, limit=1, order="asc")] == ids
    second = client.beta.sessions.list(agent_id=agent.id, limit=1, order="asc", page=page.next_page)
    assert [s.id for s in second.data] == ids[1:2]
    assert second.prev_page
    back = client.beta.sessions.list(agent_id=agent.id, limit=1, order="asc", page=second.prev_page)
    assert [s.id for s in back.data] == ids[:1]
    with pytest.raises(anthropic.BadRequestError) as info:
        client.beta.sessions.list(agent_id=agent.id, limit=1, order="desc", page=page.next_page)
    assert info.value.error_code == "cursor_order_mismatch"


def test_list_rejects_bad_queries(client: anthropic.Anthropic, server: ServerProcess) -> None:
    with httpx2.Client(base_url=server.url, headers={"authorization": f"Bearer {KEY_A}"}) as http:
        for query in (
            "statuses[]=sleeping",
            "order=sideways",
            "limit=0",
            "limit=x",
            "page=nonsense",
            "agent_version=latest",
            f"agent_version={10**30}",
            "include_archived=perhaps",
            "created_at[gt]=tomorrow",
        ):
            response = http.get(f"/v1/sessions?{query}")
            assert response.status_code == 400, (query, response.text)
            assert response.json()["type"] == "error"
            assert response.json()["error"]["type"] == "invalid_request_error"


def test_create_with_an_absurd_agent_version_is_4xx(client: anthropic.Anthropic) -> None:
    agent = make_agent(client)
    env = make_env(client)
    with pytest.raises(anthropic.APIStatusError) as info:
        client.beta.sessions.create(agent={"type": "agent", "id": agent.id, "version": 10**30}, environment_id=env.id)
    assert 400 <= info.value.status_code < 500


# --- archive and delete (24-25) --------------------------------------------------------------------------


def test_delete_then_not_found(client: anthropic.Anthropic) -> None:
    agent = make_agent(client)
    env = make_env(client)
    session = client.beta.sessions.create(agent=agent.id, environment_id=env.id)
    deleted = client.beta.sessions.delete(session.id)
    assert deleted.type == "session_deleted"
    assert deleted.id == session.id
    with pytest.raises(anthropic.NotFoundError) as info:
        client.beta.sessions.retrieve(session.id)
    assert info.value.body["type"] == "error"  # type: ignore[index]
    with pytest.raises(anthropic.NotFoundError):
        client.beta.sessions.delete(session.id)
    # the agent and environment survive
    assert client.beta.agents.retrieve(agent.id).id == agent.id
    assert client.beta.environments.retrieve(env.id).id == env.id


def test_running_session_refuses_delete_archive_and_agent_update(client: anthropic.Anthropic) -> None:
    agent = make_agent(client)
    env = make_env(client)
    session = running_session(client, agent, env)
    with pytest.raises(anthropic.ConflictError) as info:
        client.beta.sessions.delete(session.id)
    assert info.value.response.headers["x-should-retry"] == "false"
    with pytest.raises(anthropic.ConflictError):
        client.beta.sessions.archive(session.id)
    with pytest.raises(anthropic.ConflictError):
        client.beta.sessions.update(session.id, agent={"tools": []})
    wait_for_status(client, session.id, "idle")
    assert client.beta.sessions.archive(session.id).archived_at is not None
    assert client.beta.sessions.delete(session.id).type == "session_deleted"


def test_archive_makes_the_session_read_only(client: anthropic.Anthropic) -> None:
    env = make_env(client)
    session = client.beta.sessions.create(agent=make_agent(client).id, environment_id=env.id)
    archived = client.beta.sessions.archive(session.id)
    assert archived.archived_at is not None
    assert archived.status == "terminated"
    fetched = client.beta.sessions.retrieve(session.id)
    assert fetched.archived_at == archived.archived_at
    with pytest.raises(anthropic.ConflictError):
        client.beta.sessions.archive(session.id)
    with pytest.raises(anthropic.ConflictError):
        client.beta.sessions.update(session.id, title="late")
    with pytest.raises(anthropic.APIStatusError) as info:
        client.beta.sessions.events.send(
            session.id, events=[{"type": "user.message", "content": [{"type": "text", "text": "hi"}]}]
        )
    assert info.value.status_code == 409
    assert info.value.body["type"] == "error"  # type: ignore[index]


def test_archive_and_delete_accept_no_body_and_empty_object(client: anthropic.Anthropic, server: ServerProcess) -> None:
    agent = make_agent(client)
    env = make_env(client)
    with httpx2.Client(base_url=server.url, headers={"authorization": f"Bearer {KEY_A}"}) as http:
        for body in (None, b"{}"):
            session = client.beta.sessions.create(agent=agent.id, environment_id=env.id)
            headers = {"content-type": "application/json"} if body else {}
            response = http.post(f"/v1/sessions/{session.id}/archive", content=body, headers=headers)
            assert response.status_code == 200, response.text
            assert response.json()["archived_at"] is not None
            response = http.delete(f"/v1/sessions/{session.id}")
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("application/json")
            assert response.json() == {"id": session.id, "type": "session_deleted"}


# --- threads (42) ----------------------------------------------------------------------------------------


def test_single_agent_session_has_one_primary_thread(client: anthropic.Anthropic) -> None:
    env = make_env(client)
    session = client.beta.sessions.create(agent=make_agent(client, system="sys").id, environment_id=env.id)
    threads = client.beta.sessions.threads.list(session.id)
    assert len(threads.data) == 1
    assert not threads.next_page
    thread = threads.data[0]
    assert thread.type == "session_thread"
    assert thread.id.startswith("sthr_")
    assert thread.parent_thread_id is None
    assert thread.session_id == session.id
    assert thread.status == session.status
    assert thread.agent.type == "agent"
    assert thread.agent.id == session.agent.id  # type: ignore[union-attr]
    assert thread.agent.system == "sys"  # type: ignore[union-attr]
    assert thread.created_at == session.created_at
    assert thread.archived_at is None
    assert client.beta.sessions.threads.retrieve(thread.id, session_id=session.id) == thread
    assert [t.id for t in client.beta.sessions.threads.list(session.id, statuses=["idle"])] == [thread.id]
    assert list(client.beta.sessions.threads.list(session.id, statuses=["running"])) == []
    with pytest.raises(anthropic.NotFoundError):
        client.beta.sessions.threads.retrieve("sthr_other", session_id=session.id)


def test_thread_follows_the_session(client: anthropic.Anthropic) -> None:
    agent = make_agent(client)
    env = make_env(client)
    session = running_session(client, agent, env)
    (thread,) = client.beta.sessions.threads.list(session.id, statuses=["running"])
    assert thread.status == "running"
    wait_for_status(client, session.id, "idle")
    archived = client.beta.sessions.archive(session.id)
    thread = client.beta.sessions.threads.retrieve(thread.id, session_id=session.id)
    assert thread.status == "terminated"
    assert thread.archived_at == archived.archived_at
    assert thread.updated_at == archived.updated_at


def test_thread_events_list(client: anthropic.Anthropic) -> None:
    env = make_env(client)
    session = client.beta.sessions.create(agent=make_agent(client).id, environment_id=env.id)
    client.beta.sessions.update(session.id, title="t")
    (thread,) = client.beta.sessions.threads.list(session.id)
    events = list(client.beta.sessions.threads.events.list(thread.id, session_id=session.id))
    assert "session.updated" in [e.type for e in events]


def test_primary_thread_cannot_be_archived(client: anthropic.Anthropic) -> None:
    env = make_env(client)
    session = client.beta.sessions.create(agent=make_agent(client).id, environment_id=env.id)
    (thread,) = client.beta.sessions.threads.list(session.id)
    with pytest.raises(anthropic.BadRequestError) as info:
        client.beta.sessions.threads.archive(thread.id, session_id=session.id)
    assert info.value.error_code == "primary_thread"
    assert info.value.body["type"] == "error"  # type: ignore[index]
    with pytest.raises(anthropic.NotFoundError):
        client.beta.sessions.threads.archive("sthr_other", session_id=session.id)
    assert client.beta.sessions.retrieve(session.id).archived_at is None


def test_threads_list_rejects_bad_queries(client: anthropic.Anthropic, server: ServerProcess) -> None:
    env = make_env(client)
    session = client.beta.sessions.create(agent=make_agent(client).id, environment_id=env.id)
    with httpx2.Client(base_url=server.url, headers={"authorization": f"Bearer {KEY_A}"}) as http:
        for query in ("limit=0", "limit=1001", "limit=many", "page=page_abc", "statuses[]=napping"):
            response = http.get(f"/v1/sessions/{session.id}/threads?{query}")
            assert response.status_code == 400, (query, response.text)
            assert response.json()["type"] == "error"
        assert http.get(f"/v1/sessions/{session.id}/threads?limit=1").json()["data"][0]["parent_thread_id"] is None


# --- tenancy and the async client ------------------------------------------------------------------------


def test_other_workspace_sees_nothing(client: anthropic.Anthropic, other_client: anthropic.Anthropic) -> None:
    agent = make_agent(client)
    env = make_env(client)
    session = client.beta.sessions.create(agent=agent.id, environment_id=env.id)
    (thread,) = client.beta.sessions.threads.list(session.id)
    attempts = [
        lambda: other_client.beta.sessions.retrieve(session.id),
        lambda: other_client.beta.sessions.update(session.id, title="hijack"),
        lambda: other_client.beta.sessions.archive(session.id),
        lambda: other_client.beta.sessions.delete(session.id),
        lambda: other_client.beta.sessions.threads.list(session.id),
        lambda: other_client.beta.sessions.threads.retrieve(thread.id, session_id=session.id),
        lambda: other_client.beta.sessions.threads.archive(thread.id, session_id=session.id),
        # their session cannot use our agent or environment either
        lambda: other_client.beta.sessions.create(agent=agent.id, environment_id=env.id),
    ]
    for attempt in attempts:
        with pytest.raises(anthropic.NotFoundError) as info:
            attempt()
        assert info.value.body["type"] == "error"  # type: ignore[index]
    assert session.id not in {s.id for s in other_client.beta.sessions.list(include_archived=True)}
    assert client.beta.sessions.retrieve(session.id).title is None


async def test_async_client_round_trip(async_client: anthropic.AsyncAnthropic) -> None:
    async with async_client:
        agent = await async_client.beta.agents.create(name=unique("async-sess"), model="scripted")
        env = await async_client.beta.environments.create(name=unique("async-env"))
        session = await async_client.beta.sessions.create(agent=agent.id, environment_id=env.id)
        assert session.status == "idle"
        updated = await async_client.beta.sessions.update(session.id, title="async")
        assert updated.title == "async"
        listed = [s.id async for s in async_client.beta.sessions.list(agent_id=agent.id, limit=1)]
        assert listed == [session.id]
        threads = await async_client.beta.sessions.threads.list(session.id)
        assert [t.parent_thread_id for t in threads.data] == [None]
        deleted = await async_client.beta.sessions.delete(session.id)
        assert deleted.type == "session_deleted"
        with pytest.raises(anthropic.NotFoundError):
            await async_client.beta.sessions.retrieve(session.id)


def test_openapi_describes_session_routes() -> None:
    app = FastAPI()
    app.include_router(sessions.router)
    spec = app.openapi()
    listing = spec["paths"]["/v1/sessions"]["get"]
    names = {p["name"] for p in listing["parameters"]}
    assert {"statuses[]", "created_at[gt]", "created_at[lte]", "order", "agent_version", "page"} <= names
    assert "BidirectionalPage" in listing["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    thread = spec["paths"]["/v1/sessions/{session_id}/threads/{thread_id}"]["get"]
    assert thread["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/SessionThread")
    delete = spec["paths"]["/v1/sessions/{session_id}"]["delete"]
    assert delete["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/Deleted")
    assert "409" in delete["responses"]
