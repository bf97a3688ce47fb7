"""The Session loop end to end, on `Local` and on a real loophost server over HTTP (the same tests on both)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel

import loophost
from loophost.client import ToolCallContext

from .conftest import Host

pytestmark = pytest.mark.timeout(60)


@loophost.tool
def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: The first addend.
        b: The second addend.
    """
    return a + b


@loophost.tool
async def shout(text: str) -> str:
    """Upper-case a text."""
    return text.upper()


@loophost.tool
def explode(reason: str) -> str:
    """Always fails."""
    raise RuntimeError(f"boom: {reason}")


async def test_echo(host: Host) -> None:
    result = await loophost.arun(host.provider, model="scripted", prompt="hello there")
    assert result.terminal == "end_turn"
    assert result.stop_reason == {"type": "end_turn"}
    assert result.text == "echo: hello there"
    assert result.turns == 1
    assert result.session_id.startswith("sesn_")
    assert result.usage.input_tokens > 0 and result.usage.output_tokens > 0
    types = [e["type"] for e in result.events]
    assert types[0] == "user.message" and types[-1] == "session.status_idle"
    assert len({e["id"] for e in result.events}) == len(result.events)  # each event once


async def test_custom_tools_run_locally_in_parallel_with_results_in_call_order(host: Host) -> None:
    started: list[str] = []
    both_running = threading.Barrier(2, timeout=10)

    @loophost.tool
    def slow(tag: str) -> str:
        """Waits until its sibling call runs too (proves the calls overlap)."""
        started.append(tag)
        both_running.wait()
        return f"done {tag}"

    prompt = 'call slow {"tag": "first"}\ncall slow {"tag": "second"}\ncall add {"a": 2, "b": 3}'
    result = await loophost.arun(host.provider, model="scripted", handler=[slow, add], prompt=prompt)
    assert result.terminal == "end_turn"
    assert result.text == "slow: done first\nslow: done second\nadd: 5"
    assert [u.name for u in result.tool_uses] == ["slow", "slow", "add"]
    assert sorted(started) == ["first", "second"]
    answers = [e for e in result.events if e["type"] == "user.custom_tool_result"]
    assert [a["custom_tool_use_id"] for a in answers] == [u.id for u in result.tool_uses]
    assert result.turns == 2


async def test_failing_tool_bad_input_and_unknown_tool_become_error_results(host: Host) -> None:
    # the agent declares `ghost`, but this client's handler has no such tool
    handle = await loophost.provision(
        host.provider,
        loophost.AgentSpec(
            name="haunted",
            model="scripted",
            tools=(
                *loophost.client.tools_of([explode, add]),
                loophost.client.ToolSpec("ghost", "Not implemented here.", {"type": "object"}),
            ),
        ),
    )
    prompt = 'call explode {"reason": "x"}\ncall add {"a": "two", "b": 1}\ncall ghost {}'
    result = await loophost.arun(host.provider, agent_id=handle.agent_id, handler=[explode, add], prompt=prompt)
    assert result.terminal == "end_turn"
    lines = result.text.splitlines()
    assert lines[0] == "explode failed: Tool 'explode' raised RuntimeError: boom: x"
    assert lines[1].startswith("add failed: Invalid input for tool 'add': a: Input should be a valid integer")
    assert lines[2].startswith("ghost failed: Unknown tool 'ghost'; this client's tools are: add, explode")
    errors = [e["is_error"] for e in result.events if e["type"] == "user.custom_tool_result"]
    assert errors == [True, True, True]


async def test_handler_forms_class_and_dispatch_callable_with_context(host: Host) -> None:
    class Calculator:
        def __init__(self) -> None:
            self.calls = 0

        def multiply(self, a: int, b: int) -> int:
            """Multiply two integers."""
            self.calls += 1
            return a * b

        async def whoami(self, ctx: ToolCallContext) -> str:
            """Says which session and call this is."""
            return f"{ctx.provider} {ctx.context} {ctx.session_id == ctx.session_id and ctx.tool_use_id != ''}"

    calc = Calculator()
    result = await loophost.arun(
        host.provider,
        model="scripted",
        handler=calc,
        context="ctx-value",
        prompt='call multiply {"a": 6, "b": 7}\ncall whoami {}',
    )
    assert result.text == f"multiply: 42\nwhoami: {host.provider.name} ctx-value True"
    assert calc.calls == 1

    seen: list[tuple[str, dict[str, Any]]] = []

    def dispatch(name: str, tool_input: dict[str, Any], ctx: ToolCallContext) -> str:
        seen.append((name, tool_input))
        return f"handled {name}"

    handle = await loophost.provision(
        host.provider,
        loophost.AgentSpec(
            name="dispatcher",
            model="scripted",
            tools=(loophost.client.ToolSpec("lookup", "Look something up.", {"type": "object"}),),
        ),
    )
    result = await loophost.arun(
        host.provider, agent_id=handle.agent_id, handler=dispatch, prompt='call lookup {"q": 1}'
    )
    assert result.text == "lookup: handled lookup"
    assert seen == [("lookup", {"q": 1})]


async def test_confirmation_allow_and_deny_through_the_confirm_hook(
    host: Host, ask_bash_agent: Callable[[Host], loophost.AgentSpec]
) -> None:
    handle = await loophost.provision(host.provider, ask_bash_agent(host))
    asked: list[tuple[str, dict[str, Any]]] = []

    def confirm(name: str, tool_input: dict[str, Any], context: Any) -> bool | str:
        asked.append((name, tool_input))
        return True if tool_input["command"] == "echo yes" else "not this one"

    before = len(host.executions())
    allowed = await loophost.arun(
        host.provider, agent_id=handle.agent_id, confirm=confirm, prompt='call bash {"command": "echo yes"}'
    )
    assert allowed.terminal == "end_turn"
    assert allowed.text == "bash: ran echo yes"
    denied = await loophost.arun(
        host.provider, agent_id=handle.agent_id, confirm=confirm, prompt='call bash {"command": "rm -rf /"}'
    )
    assert denied.terminal == "end_turn"
    assert "not this one" in denied.text
    assert asked == [("bash", {"command": "echo yes"}), ("bash", {"command": "rm -rf /"})]
    ran = host.executions()[before:]
    assert len(ran) == 1 and ran[0].endswith(" echo yes")  # allowed ran once, denied never
    confirmations = [e for e in denied.events if e["type"] == "user.tool_confirmation"]
    assert confirmations[0]["result"] == "deny" and confirmations[0]["deny_message"] == "not this one"
    assert [u.name for u in denied.server_tool_uses] == ["bash"]

    # without a hook: denied, and the agent is told why
    unhooked = await loophost.arun(host.provider, agent_id=handle.agent_id, prompt='call bash {"command": "ls"}')
    assert "no confirm hook" in unhooked.text
    assert len(host.executions()) == before + 1


class Forecast(BaseModel):
    city: str
    temperature: int


async def test_structured_output_with_one_invalid_attempt(host: Host) -> None:
    prompt = (
        'call final_result {"city": "Paris", "temperature": "warm"}\n'
        "then\n"
        'call final_result {"city": "Paris", "temperature": 21}'
    )
    result = await loophost.arun(host.provider, model="scripted", output_type=Forecast, prompt=prompt)
    assert result.output == Forecast(city="Paris", temperature=21)
    results = [e for e in result.events if e["type"] == "user.custom_tool_result"]
    assert [r["is_error"] for r in results] == [True, False]
    assert "temperature: Input should be a valid integer" in results[0]["content"][0]["text"]


async def test_structured_output_reprompts_then_fails_with_a_typed_error(host: Host) -> None:
    with pytest.raises(loophost.OutputValidationError, match="without a valid final_result call") as caught:
        await loophost.arun(
            host.provider, model="scripted", output_type=Forecast, max_output_retries=1, prompt="just chat"
        )
    assert caught.value.session_id


async def test_max_turns(host: Host) -> None:
    prompt = 'call add {"a": 1, "b": 1}\nthen\ncall add {"a": 2, "b": 2}\nthen\ncall add {"a": 3, "b": 3}'
    with pytest.raises(loophost.MaxTurnsExceeded, match="max_turns=2") as caught:
        await loophost.arun(host.provider, model="scripted", handler=[add], prompt=prompt, max_turns=2)
    assert caught.value.session_id
    result = await loophost.arun(host.provider, model="scripted", handler=[add], prompt=prompt, max_turns=4)
    assert result.turns == 4 and result.text == "add: 6"


async def test_token_limit_and_turn_guard(host: Host) -> None:
    with pytest.raises(loophost.TokenLimitExceeded, match="max_output_tokens=1"):
        await loophost.arun(host.provider, model="scripted", prompt="many words in this prompt", max_output_tokens=1)

    def guard(info: loophost.GuardInfo) -> str | None:
        return "enough" if info.turns >= 1 and info.last.terminal == "requires_action" else None

    with pytest.raises(loophost.RunHalted) as halted:
        await loophost.arun(
            host.provider, model="scripted", handler=[add], prompt='call add {"a": 1, "b": 2}', turn_guard=guard
        )
    assert halted.value.reason == "enough"


async def test_timeout_leaves_the_session_alive_and_says_so(host: Host) -> None:
    with pytest.raises(loophost.SessionTimeout) as caught:
        await loophost.arun(host.provider, model="scripted", prompt="sleep 3000\nslow", timeout=1.0)
    session_id = caught.value.session_id
    assert session_id and session_id in str(caught.value) and "still alive" in str(caught.value)
    # the session finished on the host anyway; attaching to it reports where it stands
    await asyncio.sleep(2.5)
    resumed = await loophost.arun(host.provider, session_id=session_id, prompt="and now?")
    assert resumed.session_id == session_id
    assert resumed.text == "echo: and now?"


async def test_on_event_sees_every_event_once_in_order(host: Host) -> None:
    seen: list[str] = []
    result = await loophost.arun(
        host.provider,
        model="scripted",
        handler=[add],
        prompt='call add {"a": 1, "b": 2}',
        on_event=lambda e: seen.append(e["id"]),
    )
    assert seen == [e["id"] for e in result.events]


async def test_live_session_follow_ups(host: Host) -> None:
    delivered: list[loophost.SessionResult] = []
    async with loophost.start(
        host.provider, model="scripted", handler=[add, shout], prompt="first", on_result=delivered.append
    ) as live:
        first = await live.next_result()
        assert first.text == "echo: first"
        await live.message('call shout {"text": "second"}')
        await live.message("third")
        texts = []
        async for result in live:
            texts.append(result.text)
            if len(texts) == 2:
                break
        assert texts == ["shout: SECOND", "echo: third"]
        session_id = live.session_id
    assert [r.text for r in delivered] == ["echo: first", "shout: SECOND", "echo: third"]
    assert {r.session_id for r in delivered} == {session_id}
    assert delivered[1].turns == 2 and delivered[2].turns == 1  # each request counts its own turns


async def test_resume_an_existing_session_with_a_pending_tool(host: Host) -> None:
    """A client that went away while a tool call waited: the next client attaches and finishes it."""
    ran: list[str] = []

    @loophost.tool
    def record(tag: str) -> str:
        """Records a tag."""
        ran.append(tag)
        return f"recorded {tag}"

    async with loophost.client.Session(host.provider, model="scripted", handler=[record]) as first:
        conn = first.connection
        events = [e async for e in conn.turn(loophost.client.TurnInput(text='call record {"tag": "a"}'))]
        assert conn.normalize(events).terminal == "requires_action"
        session_id = conn.session_id
    assert ran == []
    result = await loophost.arun(host.provider, session_id=session_id, handler=[record], prompt="after")
    assert ran == ["a"]
    assert result.text == "echo: after"


def test_sync_run_facade(tmp_path: Any) -> None:
    started = time.monotonic()
    result = loophost.run(loophost.Local(tmp_path / "sync.db"), model="scripted", prompt="sync hello")
    assert result.text == "echo: sync hello"
    assert time.monotonic() - started < 30


async def test_sync_run_inside_a_loop_is_a_clear_error() -> None:
    with pytest.raises(loophost.ClientError, match="arun"):
        loophost.run(loophost.Local(), model="scripted", prompt="x")


async def test_text_streams_in_fragments_as_it_is_written(host: Host) -> None:
    fragments: list[str] = []
    result = await loophost.arun(
        host.provider, model="scripted", prompt="several words stream here", on_text_delta=fragments.append
    )
    assert "".join(fragments) == result.text == "echo: several words stream here"
    assert len(fragments) > 1  # previews of the message, before the message itself


async def test_opentelemetry_spans_for_the_run_each_turn_and_each_tool(host: Host) -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace._TRACER_PROVIDER_SET_ONCE._done = False  # tests only: let this test install its own SDK provider
    trace.set_tracer_provider(provider)
    try:
        result = await loophost.arun(
            host.provider,
            model="scripted",
            handler=[add, explode],
            prompt='call add {"a": 1, "b": 2}\ncall explode {"reason": "r"}',
        )
    finally:
        trace._TRACER_PROVIDER_SET_ONCE._done = False
        trace._TRACER_PROVIDER = None
    spans = {s.name: [] for s in exporter.get_finished_spans()}
    for s in exporter.get_finished_spans():
        spans[s.name].append(s)
    (run_span,) = spans["loophost.run"]
    assert run_span.attributes["loophost.session_id"] == result.session_id
    assert run_span.attributes["loophost.terminal"] == "end_turn"
    assert [s.attributes["loophost.terminal"] for s in spans["loophost.turn"]] == ["requires_action", "end_turn"]
    tools = {s.attributes["gen_ai.tool.name"]: s.attributes["loophost.tool.is_error"] for s in spans["loophost.tool"]}
    assert tools == {"add": False, "explode": True}
    assert all(s.parent is not None and s.parent.span_id == run_span.context.span_id for s in spans["loophost.turn"])


async def test_a_handler_class_hooks_run_on_its_instance(host: Host) -> None:
    class Watcher:
        seen: list[str] = []

        def add(self, a: int, b: int) -> int:
            """Add two integers."""
            return a + b

        def on_event(self, event: dict[str, Any]) -> None:
            self.seen.append(event["type"])

    result = await loophost.arun(host.provider, model="scripted", handler=Watcher, prompt='call add {"a": 1, "b": 1}')
    assert result.text == "add: 2"
    assert Watcher.seen == [e["type"] for e in result.events]
