"""The agent loop end to end through the runtime API, with the scripted model."""

from __future__ import annotations

import asyncio
import json

import pytest
from pydantic import ValidationError

from loophost import wire
from loophost.runtime import Conflict, InvalidRequest, Runtime

from ..conftest import WS
from ._driver import (
    confirmation,
    custom_result,
    final_text,
    last_seq,
    message,
    of_type,
    turn,
    types,
    wait_for,
)
from .conftest import ASK_BASH, LOOKUP, TOOLSET, CountingTool, session_with


async def test_echo_turn(loop_rt: Runtime) -> None:
    sid = await session_with(loop_rt)
    events = await turn(loop_rt, sid, message("hello there"))
    assert types(events) == [
        "user.message",
        "session.status_running",
        "span.model_request_start",
        "agent.message",
        "span.model_request_end",
        "session.status_idle",
    ]
    assert final_text(events) == "echo: hello there"
    assert events[-1]["stop_reason"] == {"type": "end_turn"}
    (end,) = of_type(events, "span.model_request_end")
    assert end["model_request_start_id"] == of_type(events, "span.model_request_start")[0]["id"]
    assert end["model_usage"]["input_tokens"] > 0 and end["model_usage"]["output_tokens"] > 0
    logged = (await loop_rt.list_events(WS, sid, types=["user.message"])).data
    assert json.loads(logged[0].body)["processed_at"] is not None
    usage = (await loop_rt.get_session(WS, sid)).usage
    assert usage.input_tokens and usage.output_tokens
    second = await turn(loop_rt, sid, message("again"))
    assert final_text(second) == "echo: again"
    assert (await loop_rt.get_session(WS, sid)).usage.input_tokens > usage.input_tokens  # accumulates


async def test_two_parallel_custom_tools_answered_one_at_a_time(loop_rt: Runtime) -> None:
    sid = await session_with(loop_rt, tools=[LOOKUP])
    events = await turn(loop_rt, sid, message('call lookup {"q": 1}\ncall lookup {"q": 2}'))
    uses = of_type(events, "agent.custom_tool_use")
    assert [u["input"] for u in uses] == [{"q": 1}, {"q": 2}]
    first, second = (u["id"] for u in uses)
    assert events[-1]["stop_reason"] == {"type": "requires_action", "event_ids": [first, second]}
    assert (await loop_rt.get_session(WS, sid)).status == "idle"

    with pytest.raises(InvalidRequest) as info:
        await loop_rt.send_events(WS, sid, [custom_result("sevt_unknown", "x")])
    assert first in info.value.message and second in info.value.message

    partial = await turn(loop_rt, sid, custom_result(second, "two"))
    assert partial[0]["type"] == "user.custom_tool_result" and partial[0]["processed_at"] is not None
    assert partial[-1]["stop_reason"] == {"type": "requires_action", "event_ids": [first]}
    # the same answer again (a retry) is applied once; a different one for an answered id is refused
    await loop_rt.send_events(WS, sid, [custom_result(second, "two")])
    with pytest.raises(InvalidRequest):
        await loop_rt.send_events(WS, sid, [custom_result(second, "changed")])

    done = await turn(loop_rt, sid, custom_result(first, "one"))
    assert "session.status_running" in types(done)
    assert final_text(done) == "lookup: one\nlookup: two"
    assert done[-1]["stop_reason"] == {"type": "end_turn"}


async def test_custom_tool_error_reaches_the_model(loop_rt: Runtime) -> None:
    sid = await session_with(loop_rt, tools=[LOOKUP])
    events = await turn(loop_rt, sid, message("call lookup {}"))
    (use,) = of_type(events, "agent.custom_tool_use")
    done = await turn(loop_rt, sid, custom_result(use["id"], "not found", is_error=True))
    assert final_text(done) == "lookup failed: not found"


async def test_confirmation_allow_runs_the_tool_once(loop_rt: Runtime, bash: CountingTool) -> None:
    sid = await session_with(loop_rt, tools=[ASK_BASH])
    events = await turn(loop_rt, sid, message('call bash {"command": "ls"}'))
    (use,) = of_type(events, "agent.tool_use")
    assert use["evaluated_permission"] == "ask" and use["evaluation"] == {"type": "always_ask"}
    assert events[-1]["stop_reason"] == {"type": "requires_action", "event_ids": [use["id"]]}
    assert bash.executions == []
    with pytest.raises(ValidationError, match="deny_message"):  # refused by the wire model, before the runtime
        confirmation(use["id"], "allow", deny_message="no")
    done = await turn(loop_rt, sid, confirmation(use["id"], "allow"))
    (result,) = of_type(done, "agent.tool_result")
    assert result["tool_use_id"] == use["id"] and result["is_error"] is False
    assert final_text(done) == "bash: ran ls"
    assert bash.executions == [use["id"]]


async def test_confirmation_deny_runs_nothing(loop_rt: Runtime, bash: CountingTool) -> None:
    sid = await session_with(loop_rt, tools=[ASK_BASH])
    events = await turn(loop_rt, sid, message('call bash {"command": "rm -rf /"}'))
    (use,) = of_type(events, "agent.tool_use")
    done = await turn(loop_rt, sid, confirmation(use["id"], "deny", deny_message="not on my machine"))
    assert bash.executions == []
    assert final_text(done) == "bash failed: not on my machine"
    assert done[-1]["stop_reason"] == {"type": "end_turn"}


async def test_allowed_tool_runs_and_a_raising_tool_is_an_error_result(loop_rt: Runtime, bash: CountingTool) -> None:
    sid = await session_with(loop_rt, tools=[TOOLSET])
    events = await turn(loop_rt, sid, message('call bash {"command": "raise"}'))
    (use,) = of_type(events, "agent.tool_use")
    assert use["evaluated_permission"] == "allow"
    (result,) = of_type(events, "agent.tool_result")
    assert result["is_error"] is True and "blew up" in result["content"][0]["text"]
    assert final_text(events).startswith("bash failed: RuntimeError: the tool blew up")
    assert events[-1]["stop_reason"] == {"type": "end_turn"}
    assert len(bash.executions) == 1


async def test_unknown_tool_is_denied_and_the_model_told(loop_rt: Runtime) -> None:
    sid = await session_with(loop_rt, tools=[TOOLSET])
    events = await turn(loop_rt, sid, message("call nope {}"))
    (use,) = of_type(events, "agent.tool_use")
    assert use["evaluated_permission"] == "deny" and "evaluation" not in use
    assert final_text(events).startswith("nope failed:")


async def test_interrupt_during_a_long_model_request(loop_rt: Runtime) -> None:
    sid = await session_with(loop_rt)
    after = await last_seq(loop_rt, sid)
    await loop_rt.send_events(WS, sid, [message("sleep 10000\nslow")])
    await wait_for(loop_rt, sid, after, stop=["span.model_request_start"])
    await loop_rt.interrupt(WS, sid)
    events = await wait_for(loop_rt, sid, after)
    assert "user.interrupt" in types(events)
    assert of_type(events, "agent.message") == []
    assert len(of_type(events, "span.model_request_end")) == 1  # the open span is closed
    assert events[-1]["stop_reason"] == {"type": "end_turn"}
    assert (await loop_rt.get_session(WS, sid)).status == "idle"
    assert final_text(await turn(loop_rt, sid, message("next"))) == "echo: next"  # usable afterwards


async def test_interrupt_while_parked_closes_the_pending_call(loop_rt: Runtime) -> None:
    sid = await session_with(loop_rt, tools=[LOOKUP])
    events = await turn(loop_rt, sid, message("call lookup {}"))
    (use,) = of_type(events, "agent.custom_tool_use")
    closed = await turn(loop_rt, sid, wire.UserInterruptParams(type="user.interrupt"))
    assert closed[-1]["stop_reason"] == {"type": "end_turn"}
    assert (await loop_rt.status(WS, sid)).pending_event_ids == ()
    with pytest.raises(InvalidRequest):
        await loop_rt.send_events(WS, sid, [custom_result(use["id"], "late")])
    assert final_text(await turn(loop_rt, sid, message("after"))) == "echo: after"


async def test_messages_queued_while_running_are_processed_in_order(loop_rt: Runtime) -> None:
    sid = await session_with(loop_rt)
    after = await last_seq(loop_rt, sid)
    first = await loop_rt.send_events(WS, sid, [message("sleep 200\nfirst")])
    second = await loop_rt.send_events(WS, sid, [message("second")])
    events = await wait_for(loop_rt, sid, after, count=2)
    assert [final_text([m]) for m in of_type(events, "agent.message")] == ["echo: first", "echo: second"]
    logged = {e.id: json.loads(e.body) for e in (await loop_rt.list_events(WS, sid)).data}
    assert logged[first[0].id]["processed_at"] <= logged[second[0].id]["processed_at"]


async def test_transient_failures_reschedule_then_succeed(loop_rt: Runtime) -> None:
    sid = await session_with(loop_rt)
    events = await turn(loop_rt, sid, message("fail transient 2\nhello"))
    errors = of_type(events, "session.error")
    assert [e["error"]["retry_status"]["type"] for e in errors] == ["retrying", "retrying"]
    assert errors[0]["error"]["type"] == "model_overloaded_error"
    assert types(events).count("session.status_rescheduled") == 2
    assert types(events).count("session.status_running") == 3
    assert final_text(events) == "echo: hello"
    assert events[-1]["stop_reason"] == {"type": "end_turn"}


async def test_exhausted_retries_end_the_turn(loop_rt: Runtime) -> None:
    sid = await session_with(loop_rt)
    events = await turn(loop_rt, sid, message("fail transient 50\nhello"))
    assert events[-1]["stop_reason"] == {"type": "retries_exhausted"}
    assert of_type(events, "session.error")[-1]["error"]["retry_status"]["type"] == "exhausted"
    assert final_text(await turn(loop_rt, sid, message("later"))) == "echo: later"


async def test_a_fatal_model_error_terminates_the_session(loop_rt: Runtime) -> None:
    sid = await session_with(loop_rt)
    events = await turn(loop_rt, sid, message("fail fatal\nhello"))
    assert types(events)[-2:] == ["session.error", "session.status_terminated"]
    assert of_type(events, "session.error")[0]["error"]["retry_status"]["type"] == "terminal"
    assert (await loop_rt.get_session(WS, sid)).status == "terminated"
    with pytest.raises(Conflict):
        await loop_rt.send_events(WS, sid, [message("anyone?")])


async def test_pause_holds_input_until_resume(loop_rt: Runtime) -> None:
    sid = await session_with(loop_rt)
    await loop_rt.pause(WS, sid)
    after = await last_seq(loop_rt, sid)
    await loop_rt.send_events(WS, sid, [message("held")])
    await asyncio.sleep(0.2)
    state = await loop_rt.status(WS, sid)
    assert state.queued == 1 and state.status == "idle"
    await loop_rt.resume(WS, sid)
    events = await wait_for(loop_rt, sid, after)
    assert final_text(events) == "echo: held"


async def test_system_message_joins_the_turn_instructions(loop_rt: Runtime) -> None:
    sid = await session_with(loop_rt)
    system = wire.SystemMessageParams.model_validate(
        {"type": "system.message", "content": [{"type": "text", "text": "be brief"}]}
    )
    events = await turn(loop_rt, sid, message("hi"), system)
    assert final_text(events) == "echo: hi"
    logged = (await loop_rt.list_events(WS, sid, types=["system.message"])).data
    assert json.loads(logged[0].body)["processed_at"] is not None


async def test_previews_stream_deltas_before_the_message(loop_rt: Runtime) -> None:
    sid = await session_with(loop_rt)
    after = await last_seq(loop_rt, sid)
    seen: list[dict[str, object]] = []

    async def watch() -> None:
        async for item in loop_rt.stream_events(WS, sid, after_seq=after, previews=True):
            seen.append(json.loads(item.body))
            if item.type == "session.status_idle":
                return

    task = asyncio.create_task(watch())
    await asyncio.sleep(0.05)
    await loop_rt.send_events(WS, sid, [message("one two three four")])
    await asyncio.wait_for(task, 10)
    kinds = types(seen)  # type: ignore[arg-type]
    start = kinds.index("event_start")
    assert kinds.index("span.model_request_start") < start < kinds.index("agent.message")
    message_event = of_type(seen, "agent.message")[0]  # type: ignore[arg-type]
    assert seen[start]["event"] == {"type": "agent.message", "id": message_event["id"]}
    deltas = "".join(d["delta"]["content"]["text"] for d in of_type(seen, "event_delta"))  # type: ignore
    assert len(of_type(seen, "event_delta")) >= 2  # type: ignore[arg-type]
    assert final_text([message_event]).startswith(deltas)
    logged = {e.type for e in (await loop_rt.list_events(WS, sid)).data}
    assert "event_start" not in logged and "event_delta" not in logged


async def test_concurrent_senders_are_all_accepted_and_processed_in_log_order(loop_rt: Runtime) -> None:
    sid = await session_with(loop_rt)
    after = await last_seq(loop_rt, sid)
    echoes = await asyncio.gather(*(loop_rt.send_events(WS, sid, [message(f"client {i}")]) for i in range(12)))
    events = await wait_for(loop_rt, sid, after, count=12, timeout=30)
    sent_order = [e["content"][0]["text"] for e in of_type(events, "user.message")]
    answered = [final_text([m]) for m in of_type(events, "agent.message")]
    assert sorted(sent_order) == sorted(f"client {i}" for i in range(12))
    assert answered == [f"echo: {text}" for text in sent_order]  # one turn each, in the order they were logged
    assert len({e[0].id for e in echoes}) == 12
