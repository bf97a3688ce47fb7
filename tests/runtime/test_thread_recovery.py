"""A child thread's cross-posted call is never left waiting when the process died between recording the client's
answer on the coordinator and forwarding it to the thread (`_threads.forward_recorded_answers`)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

from loophost import wire
from loophost.runtime import Runtime
from loophost.runtime._writer import Change, LoadedSession

from .conftest import WS, user_message

LOOKUP = {"type": "custom", "name": "lookup", "description": "look up", "input_schema": {"type": "object"}}


async def _settled(rt: Runtime, session_id: str, done: str) -> list[dict[str, object]]:
    """The session's log once it went idle with stop reason `done`."""
    for _ in range(1000):
        page = await rt.list_events(WS, session_id)
        events = [json.loads(e.body) for e in page.data]
        idle = [e for e in events if e["type"] == "session.status_idle"]
        if idle and idle[-1]["stop_reason"]["type"] == done:
            return events
        await asyncio.sleep(0.01)
    raise AssertionError(f"session {session_id} never went idle with {done}")


def _answered(copy_id: str) -> Callable[[LoadedSession], Change]:
    """The coordinator's commit of the client's answer (`EventsMixin._send_events`) without the forward after it:
    the copy answered, the session running again."""

    def change(current: LoadedSession) -> Change:
        action = current.internal.pending[copy_id]
        answer = {"custom_tool_use_id": copy_id, "content": [{"type": "text", "text": "ok"}]}
        pending = {**current.internal.pending, copy_id: action.model_copy(update={"answer": answer})}
        return Change(status="running", internal=current.internal.model_copy(update={"pending": pending}))

    return change


async def test_an_answer_recorded_but_not_forwarded_reaches_the_thread_after_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "rt.db"
    async with Runtime.from_url(path) as rt:
        researcher = await rt.create_agent(
            WS, wire.AgentCreateParams.model_validate({"name": "researcher", "model": "scripted", "tools": [LOOKUP]})
        )
        lead = await rt.create_agent(
            WS,
            wire.AgentCreateParams.model_validate(
                {"name": "lead", "model": "scripted", "multiagent": {"type": "coordinator", "agents": [researcher.id]}}
            ),
        )
        env = await rt.create_environment(WS, wire.EnvironmentCreateParams(name="env"))
        session = await rt.start_session(WS, wire.SessionCreateParams(agent=lead.id, environment_id=env.id))
        delegate = json.dumps({"agent": "researcher", "message": 'call lookup {"q": "x"}'})
        await rt.send_events(WS, session.id, [user_message(f"call send_to_agent {delegate}")])
        events = await _settled(rt, session.id, "requires_action")
        (copy,) = [e for e in events if e["type"] == "agent.custom_tool_use"]
        assert copy["session_thread_id"] is not None
        await rt.writer.apply(session.id, _answered(str(copy["id"])))

    async with Runtime.from_url(path) as rt:  # recovery drives the coordinator, which forwards the answer
        events = await _settled(rt, session.id, "end_turn")
        assert [e["content"] for e in events if e["type"] == "agent.message"][-1] == [
            {"type": "text", "text": "send_to_agent: lookup: ok"}
        ]
        (child,) = (await rt.list_threads(WS, session.id))[1:]
        assert child.status == "idle"
