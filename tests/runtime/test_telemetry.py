"""Spans of the turn engine recorded by the OpenTelemetry SDK's in-memory exporter, for what the server-level tests
(`tests/server/test_telemetry.py`) do not reach: a coordinator's delegation, and a failed model request (its
`chat` span is made after the fact, in one go)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan

from loophost import wire
from loophost.runtime import Runtime

from .._otel import Recorded, recording_spans
from .conftest import WS, user_message


async def _settled(rt: Runtime, session_id: str, done: str) -> list[dict[str, object]]:
    for _ in range(2000):
        events = [json.loads(e.body) for e in (await rt.list_events(WS, session_id)).data]
        idle = [e for e in events if e["type"] == "session.status_idle"]
        if idle and idle[-1]["stop_reason"]["type"] == done:
            return events
        await asyncio.sleep(0.01)
    raise AssertionError(f"session {session_id} never went idle with {done}")


async def _spans(recorded: Recorded, name: str, count: int) -> list[ReadableSpan]:
    for _ in range(2000):
        found = recorded.named(name)
        if len(found) >= count:
            return sorted(found, key=lambda s: s.start_time or 0)
        await asyncio.sleep(0.01)
    raise AssertionError(f"fewer than {count} spans {name!r}: {[s.name for s in recorded.spans()]}")


def _attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def _child_of(span: ReadableSpan, parent: ReadableSpan) -> bool:
    return span.parent is not None and span.parent.span_id == parent.context.span_id


async def test_a_delegation_is_an_invoke_agent_span_under_the_coordinators_turn_and_over_the_threads_turn(
    tmp_path: Path,
) -> None:
    with recording_spans() as recorded:
        async with Runtime.from_url(tmp_path / "rt.db") as rt:
            researcher = await rt.create_agent(
                WS, wire.AgentCreateParams.model_validate({"name": "researcher", "model": "scripted"})
            )
            lead = await rt.create_agent(
                WS,
                wire.AgentCreateParams.model_validate(
                    {
                        "name": "lead",
                        "model": "scripted",
                        "multiagent": {"type": "coordinator", "agents": [researcher.id]},
                    }
                ),
            )
            env = await rt.create_environment(WS, wire.EnvironmentCreateParams(name="env"))
            session = await rt.start_session(WS, wire.SessionCreateParams(agent=lead.id, environment_id=env.id))
            call = json.dumps({"agent": "researcher", "message": "find it"})
            with recorded.tracer.start_as_current_span("client") as client:
                await rt.send_events(
                    WS, session.id, [user_message(f"call list_agents {{}}\ncall send_to_agent {call}")]
                )
            await _settled(rt, session.id, "end_turn")
            (thread,) = (await rt.list_threads(WS, session.id))[1:]
            coordinator = await _spans(recorded, "invoke_agent lead", 2)
            invoked = await _spans(recorded, "invoke_agent researcher", 2)
    (delegation,) = [s for s in invoked if _attrs(s).get("loophost.tool.kind") == "delegation"]
    (child_turn,) = [s for s in invoked if s is not delegation]
    # the coordinator's first run delegated: its span is the delegation's parent
    assert coordinator[0].parent is not None and coordinator[0].parent.span_id == client.get_span_context().span_id
    assert _child_of(delegation, coordinator[0])
    assert _attrs(delegation)["gen_ai.operation.name"] == "invoke_agent"
    assert _attrs(delegation)["gen_ai.agent.name"] == "researcher"
    assert _attrs(delegation)["gen_ai.agent.id"] == researcher.id
    assert _attrs(delegation)["loophost.thread.id"] == thread.id
    assert _attrs(delegation)["gen_ai.tool.name"] == "send_to_agent"
    assert str(_attrs(delegation)["gen_ai.tool.call.id"]).startswith("call_")
    assert "error.type" not in _attrs(delegation)
    # the thread's turn runs under the delegation, and links to it (the stored `traceparent`, for a restart)
    assert _child_of(child_turn, delegation)
    assert _attrs(child_turn)["gen_ai.conversation.id"] == thread.id
    assert _attrs(child_turn)["loophost.thread.id"] == thread.id
    assert [link.context.span_id for link in child_turn.links] == [delegation.context.span_id]
    (thread_chat,) = [s for s in recorded.named("chat ") if _child_of(s, child_turn)]
    assert _attrs(thread_chat)["gen_ai.usage.output_tokens"] > 0
    # `list_agents` is a delegation tool call too (answered again, so traced again, by each run resolving its response)
    listed = recorded.named("execute_tool list_agents")
    assert listed and _child_of(listed[0], coordinator[0])
    assert all(_attrs(s)["loophost.tool.kind"] == "delegation" for s in listed)
    everything = [coordinator[0], *invoked, thread_chat, listed[0]]
    assert {s.context.trace_id for s in everything} == {client.get_span_context().trace_id}
    # the coordinator's run woken by the thread's answer (no request made it run) links to the request's trace
    assert [link.context.span_id for link in coordinator[1].links] == [client.get_span_context().span_id]


async def test_a_failed_model_request_and_its_retry_are_chat_spans_made_when_each_ended(tmp_path: Path) -> None:
    with recording_spans() as recorded:
        async with Runtime.from_url(tmp_path / "rt.db") as rt:
            agent = await rt.create_agent(WS, wire.AgentCreateParams(name="flaky", model="scripted"))
            env = await rt.create_environment(WS, wire.EnvironmentCreateParams(name="env"))
            session = await rt.start_session(WS, wire.SessionCreateParams(agent=agent.id, environment_id=env.id))
            await rt.send_events(WS, session.id, [user_message("fail transient 1\nhello")])
            await _settled(rt, session.id, "end_turn")
            first, second = await _spans(recorded, "invoke_agent flaky", 2)  # a transient failure: run again
    failed, retried = sorted(recorded.named("chat "), key=lambda s: s.start_time or 0)
    assert _child_of(failed, first) and _child_of(retried, second)
    assert failed.status.status_code.name == "ERROR" and _attrs(failed)["error.type"]
    assert [e.name for e in failed.events] == ["exception"]
    assert "gen_ai.usage.input_tokens" not in _attrs(failed)
    assert [(e.name, dict(e.attributes or {})) for e in retried.events] == [
        ("gen_ai.request.retry", {"loophost.retry.attempt": 1})
    ]
    assert "error.type" not in _attrs(retried) and _attrs(retried)["gen_ai.usage.output_tokens"] > 0
    # made after the fact, each still covers its own request, within its run
    assert first.start_time <= failed.start_time < failed.end_time <= first.end_time  # type: ignore[operator]
    assert second.start_time <= retried.start_time < retried.end_time <= second.end_time  # type: ignore[operator]
