"""Sessions through the runtime API: snapshots, updates, archive, delete, pause, lists, tenancy."""

from __future__ import annotations

import pytest

from loophost import wire
from loophost.runtime import Conflict, InvalidRequest, NotFound, Runtime

from .conftest import WS, make_session, user_message


async def test_a_new_session_is_idle_with_an_agent_snapshot(rt: Runtime) -> None:
    agent = await rt.create_agent(WS, wire.AgentCreateParams(name="a", model="scripted", system="v1"))
    env = await rt.create_environment(WS, wire.EnvironmentCreateParams(name="e"))
    pinned = await rt.start_session(
        WS,
        wire.SessionCreateParams.model_validate(
            {"agent": {"type": "agent", "id": agent.id, "version": 1}, "environment_id": env.id}
        ),
    )
    await rt.update_agent(WS, agent.id, wire.AgentUpdateParams(system="v2"))
    latest = await rt.start_session(WS, wire.SessionCreateParams(agent=agent.id, environment_id=env.id))
    overridden = await rt.start_session(
        WS,
        wire.SessionCreateParams.model_validate(
            {
                "agent": {"type": "agent_with_overrides", "id": agent.id, "system": "S"},
                "environment_id": env.id,
            }
        ),
    )
    assert pinned.status == "idle" and pinned.resources == [] and pinned.vault_ids == []
    assert (pinned.agent.version, pinned.agent.system) == (1, "v1")
    assert (latest.agent.version, latest.agent.system) == (2, "v2")
    assert overridden.agent.system == "S"
    assert (await rt.get_agent(WS, agent.id)).system == "v2"
    assert (await rt.list_events(WS, pinned.id)).data == []  # no status event on create


async def test_archived_agent_or_environment_cannot_start_sessions(rt: Runtime) -> None:
    agent = await rt.create_agent(WS, wire.AgentCreateParams(name="a", model="scripted"))
    env = await rt.create_environment(WS, wire.EnvironmentCreateParams(name="e"))
    await rt.archive_agent(WS, agent.id)
    with pytest.raises(Conflict):
        await rt.start_session(WS, wire.SessionCreateParams(agent=agent.id, environment_id=env.id))
    with pytest.raises(NotFound):
        await rt.start_session(WS, wire.SessionCreateParams(agent="agent_nope", environment_id=env.id))


async def test_update_announces_only_changed_fields(rt: Runtime) -> None:
    session = await make_session(rt)
    updated = await rt.update_session(
        WS, session.id, wire.SessionUpdateParams.model_validate({"title": "t", "metadata": {"x": "1"}})
    )
    assert (updated.title, updated.metadata) == ("t", {"x": "1"})
    assert (await rt.get_session(WS, session.id)).title == "t"
    (event,) = (await rt.list_events(WS, session.id, types=["session.updated"])).data
    parsed = wire.parse_event(event.body)
    assert isinstance(parsed, wire.SessionUpdatedEvent)
    assert parsed.title == "t" and parsed.metadata == {"x": "1"} and "budget" not in parsed.model_fields_set
    with pytest.raises(InvalidRequest):
        await rt.update_session(WS, session.id, wire.SessionUpdateParams.model_validate({"vault_ids": []}))
    with pytest.raises(InvalidRequest):
        await rt.update_session(WS, session.id, wire.SessionUpdateParams())


async def test_session_agent_update_is_session_local(rt: Runtime) -> None:
    session = await make_session(rt)
    tools = [{"type": "custom", "name": "lookup", "description": "d", "input_schema": {"type": "object"}}]
    updated = await rt.update_session(
        WS, session.id, wire.SessionUpdateParams.model_validate({"agent": {"tools": tools}})
    )
    assert [t.name for t in updated.agent.tools if isinstance(t, wire.CustomTool)] == ["lookup"]
    assert (await rt.get_agent(WS, session.agent.id)).tools == []


async def test_archive_terminates_and_refuses_events(rt: Runtime) -> None:
    session = await make_session(rt)
    archived = await rt.archive_session(WS, session.id)
    assert archived.archived_at is not None and archived.status == "terminated"
    with pytest.raises(Conflict):
        await rt.send_events(WS, session.id, [user_message("hi")])
    with pytest.raises(Conflict):
        await rt.archive_session(WS, session.id)
    types = [e.type for e in (await rt.list_events(WS, session.id)).data]
    assert types == ["session.status_terminated"]


async def test_delete_removes_the_session_and_ends_streams(rt: Runtime) -> None:
    session = await make_session(rt)
    seen: list[str] = []

    async def watch() -> None:
        async for event in rt.stream_events(WS, session.id, after_seq=0):
            seen.append(event.type)

    import asyncio

    task = asyncio.create_task(watch())
    await asyncio.sleep(0.05)
    deleted = await rt.delete_session(WS, session.id)
    assert (deleted.id, deleted.type) == (session.id, "session_deleted")
    await asyncio.wait_for(task, 5)
    assert seen[-1] == "session.deleted"
    with pytest.raises(NotFound):
        await rt.get_session(WS, session.id)


async def test_list_filters_orders_and_pages_both_ways(rt: Runtime) -> None:
    sessions = [await make_session(rt) for _ in range(3)]
    await rt.archive_session(WS, sessions[0].id)
    page = await rt.list_sessions(WS)
    assert [s.id for s in page.data] == [sessions[2].id, sessions[1].id]
    asc = await rt.list_sessions(WS, order="asc", statuses=["idle"], include_archived=True)
    assert [s.id for s in asc.data] == [sessions[1].id, sessions[2].id]
    first = await rt.list_sessions(WS, limit=1, include_archived=True)
    assert first.next_page and first.prev_page is None
    second = await rt.list_sessions(WS, limit=1, include_archived=True, page=first.next_page)
    assert [s.id for s in second.data] == [sessions[1].id]
    assert second.prev_page
    back = await rt.list_sessions(WS, limit=1, include_archived=True, page=second.prev_page)
    assert [s.id for s in back.data] == [sessions[2].id]
    with pytest.raises(InvalidRequest):
        await rt.list_sessions(WS, limit=1, include_archived=True, order="asc", page=first.next_page)


async def test_pause_is_persisted_and_resume_clears_it(rt: Runtime) -> None:
    session = await make_session(rt)
    state = await rt.pause(WS, session.id)
    assert state.paused
    assert (await rt.status(WS, session.id)).paused
    assert not (await rt.resume(WS, session.id)).paused


async def test_another_workspace_sees_nothing(rt: Runtime) -> None:
    session = await make_session(rt)
    other = "ws_other"
    for call in (
        rt.get_session(other, session.id),
        rt.get_agent(other, session.agent.id),
        rt.get_environment(other, session.environment_id),
        rt.list_events(other, session.id),
        rt.send_events(other, session.id, [user_message("x")]),
        rt.archive_session(other, session.id),
        rt.delete_session(other, session.id),
        rt.pause(other, session.id),
    ):
        with pytest.raises(NotFound):
            await call
    with pytest.raises(NotFound):
        async for _ in rt.stream_events(other, session.id, after_seq=0):
            pass
    assert (await rt.list_sessions(other)).data == []
    assert (await rt.list_agents(other)).data == []
