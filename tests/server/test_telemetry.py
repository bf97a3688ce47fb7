"""Spans of the server and the turn engine, recorded by the OpenTelemetry SDK's in-memory exporter: the span tree of
an official-SDK turn with a built-in and a custom tool, the client's `traceparent` as the parent, and a turn resumed
after its server was killed linking to the old trace."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anthropic
import uvicorn
from opentelemetry.propagate import inject
from opentelemetry.sdk.trace import ReadableSpan

from loophost.runtime import Runtime, ToolContext, ToolOutput
from loophost.server import ApiKeys, ServerSettings, create_app

from .._otel import Recorded, recording_spans
from .conftest import KEY_A, start_server

KEY = "telemetry-key"
WORKSPACE = "ws_t"
LOOKUP = {"type": "custom", "name": "lookup", "description": "Looks a thing up.", "input_schema": {"type": "object"}}


class Bash:
    """A built-in `bash` through the `BuiltinTool` seam (the sandboxed one needs bubblewrap)."""

    name = "bash"
    description = "Runs a shell command (test double)."
    input_schema: dict[str, Any] = {"type": "object", "properties": {"command": {"type": "string"}}}

    async def run(self, ctx: ToolContext, tool_input: dict[str, Any]) -> ToolOutput:
        return ToolOutput(f"ran {tool_input.get('command')}")


@asynccontextmanager
async def serving(runtime: Runtime) -> AsyncIterator[str]:
    app = create_app(runtime, keys=ApiKeys.parse(f"{KEY}:{WORKSPACE}"), settings=ServerSettings(0.5))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(20):
        while not server.started:
            assert not task.done(), "the in-process server did not start"
            await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        app.state.closing.set()
        server.should_exit = True
        async with asyncio.timeout(20):
            await task


async def until(check: Callable[[], Any], timeout: float = 20.0) -> Any:
    async with asyncio.timeout(timeout):
        while not (value := check()):
            await asyncio.sleep(0.02)
    return value


async def read_until(stream: Any, stop: Callable[[Any], bool]) -> list[Any]:
    got = []
    async with asyncio.timeout(20):
        async for event in stream:
            got.append(event)
            if stop(event):
                return got
    raise AssertionError(f"the stream ended before the awaited event: {[e.type for e in got]}")


def idle(kind: str) -> Callable[[Any], bool]:
    return lambda e: e.type == "session.status_idle" and e.stop_reason.type == kind


def traceparent(recorded: Recorded) -> dict[str, str]:
    headers: dict[str, str] = {}
    inject(headers)
    assert "traceparent" in headers
    return headers


def descends(span: ReadableSpan, ancestor: Any, recorded: Recorded) -> bool:
    by_id = {s.context.span_id: s for s in recorded.spans()}
    while span.parent is not None:
        if span.parent.span_id == ancestor.context.span_id:
            return True
        span = by_id[span.parent.span_id]
    return False


def child_of(span: ReadableSpan, parent: ReadableSpan) -> bool:
    return span.parent is not None and span.parent.span_id == parent.context.span_id


async def test_one_sdk_turn_with_a_builtin_and_a_custom_tool_gives_the_genai_span_tree(tmp_path: Path) -> None:
    with recording_spans() as recorded:
        runtime = Runtime.from_url(tmp_path / "t.db", builtin_tools={"bash": Bash()})
        async with (
            serving(runtime) as url,
            anthropic.AsyncAnthropic(base_url=url, api_key=KEY, max_retries=0) as client,
        ):
            env = await client.beta.environments.create(name="env")
            agent = await client.beta.agents.create(
                name="helper",
                model="scripted",
                tools=[{"type": "agent_toolset_20260401"}, LOOKUP],  # type: ignore[list-item]
            )
            session = await client.beta.sessions.create(agent=agent.id, environment_id=env.id)
            with recorded.tracer.start_as_current_span("client run") as run:
                stream = await client.beta.sessions.events.stream(session.id, timeout=30)
                async with stream:
                    prompt = 'call bash {"command": "ls"}\ncall lookup {"q": "x"}'
                    await client.beta.sessions.events.send(
                        session.id,
                        events=[{"type": "user.message", "content": [{"type": "text", "text": prompt}]}],
                        extra_headers=traceparent(recorded),
                    )
                    parked = await read_until(stream, idle("requires_action"))
                    (use,) = [e for e in parked if e.type == "agent.custom_tool_use"]
                    await client.beta.sessions.events.send(
                        session.id,
                        events=[
                            {
                                "type": "user.custom_tool_result",
                                "custom_tool_use_id": use.id,
                                "content": [{"type": "text", "text": "found"}],
                            }
                        ],
                        extra_headers=traceparent(recorded),
                    )
                    await read_until(stream, idle("end_turn"))
            turns = await until(lambda: len(recorded.named("invoke_agent")) == 2 and recorded.named("invoke_agent"))
    trace_id = run.get_span_context().trace_id
    posts = [s for s in recorded.named("POST /v1/sessions/{session_id}/events")]
    assert len(posts) == 2
    # the official SDK sends its own span's context (its span is the child of the client's run)
    assert all(descends(p, run, recorded) and p.kind.name == "SERVER" for p in posts)
    assert all(p.attributes["http.response.status_code"] == 200 for p in posts)
    first, second = sorted(turns, key=lambda s: s.start_time or 0)
    # each run of the turn is the child of the request that made the session run, and links to it
    assert child_of(first, posts[0]) and child_of(second, posts[1])
    assert [link.context.span_id for link in first.links] == [posts[0].context.span_id]
    assert {s.context.trace_id for s in [*posts, *turns]} == {trace_id}
    for turn in turns:
        assert turn.name == "invoke_agent helper"
        assert turn.attributes["gen_ai.operation.name"] == "invoke_agent"
        assert turn.attributes["gen_ai.agent.name"] == "helper"
        assert turn.attributes["gen_ai.agent.id"] == agent.id
        assert turn.attributes["gen_ai.conversation.id"] == session.id
    chats = recorded.named("chat ")
    assert [c.name for c in chats] == ["chat scripted", "chat scripted"]
    assert child_of(chats[0], first) and child_of(chats[1], second)
    for chat in chats:
        assert chat.attributes["gen_ai.request.model"] == "scripted"
        assert chat.attributes["gen_ai.usage.input_tokens"] > 0
        assert chat.attributes["gen_ai.usage.output_tokens"] > 0
        assert "gen_ai.input.messages" not in chat.attributes  # contents only when the operator opts in
    tools = {s.attributes["gen_ai.tool.name"]: s for s in recorded.named("execute_tool ")}
    assert set(tools) == {"bash", "lookup"}
    assert child_of(tools["bash"], first) and child_of(tools["lookup"], second)
    assert tools["bash"].attributes["gen_ai.tool.type"] == "extension"
    assert tools["bash"].attributes["loophost.tool.kind"] == "builtin"
    assert tools["lookup"].attributes["gen_ai.tool.type"] == "function"
    assert tools["lookup"].attributes["loophost.tool.kind"] == "custom"
    assert tools["lookup"].attributes["gen_ai.tool.call.id"].startswith("call_")
    # the custom tool's span lasts from its announcement to the client's answer
    assert tools["lookup"].start_time < posts[1].start_time <= tools["lookup"].end_time + 1_000_000
    assert all("gen_ai.tool.call.arguments" not in s.attributes for s in tools.values())


async def test_contents_are_recorded_only_when_the_operator_opts_in(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    with recording_spans() as recorded:
        runtime = Runtime.from_url(tmp_path / "c.db", builtin_tools={"bash": Bash()})
        async with (
            serving(runtime) as url,
            anthropic.AsyncAnthropic(base_url=url, api_key=KEY, max_retries=0) as client,
        ):
            env = await client.beta.environments.create(name="env")
            agent = await client.beta.agents.create(
                name="a", model="scripted", tools=[{"type": "agent_toolset_20260401"}]
            )
            session = await client.beta.sessions.create(agent=agent.id, environment_id=env.id)
            await client.beta.sessions.events.send(
                session.id,
                events=[
                    {"type": "user.message", "content": [{"type": "text", "text": 'call bash {"command": "pwd"}'}]}
                ],
            )
            chats = await until(lambda: len(recorded.named("chat ")) == 2 and recorded.named("chat "))
    assert "call bash" in chats[0].attributes["gen_ai.input.messages"]
    assert "bash: ran pwd" in chats[1].attributes["gen_ai.output.messages"]
    (tool,) = recorded.named("execute_tool bash")
    assert '"pwd"' in tool.attributes["gen_ai.tool.call.arguments"]
    assert tool.attributes["gen_ai.tool.call.result"] == "ran pwd"


async def test_a_turn_resumed_after_its_server_was_killed_links_to_the_old_trace(tmp_path: Path) -> None:
    """The first server has no SDK configured: it still stores the caller's trace context with the turn."""
    database = tmp_path / "crash.db"
    server = start_server(database)
    try:
        with anthropic.Anthropic(base_url=server.url, api_key=KEY_A, max_retries=0) as client:
            env = client.beta.environments.create(name="env")
            agent = client.beta.agents.create(name="slow", model="scripted")
            session = client.beta.sessions.create(agent=agent.id, environment_id=env.id)
            old_trace = "0af7651916cd43dd8448eb211c80319c"
            client.beta.sessions.events.send(
                session.id,
                events=[{"type": "user.message", "content": [{"type": "text", "text": "sleep 1500\nhello"}]}],
                extra_headers={"traceparent": f"00-{old_trace}-b7ad6b7169203331-01"},
            )
        await asyncio.sleep(0.3)  # the turn is running (its model request sleeps)
    finally:
        os.kill(server.process.pid, signal.SIGKILL)
        server.process.wait(timeout=10)
    with recording_spans() as recorded:
        runtime = Runtime.from_url(database)
        await runtime.open()
        try:

            async def idle_now() -> bool:
                return (await runtime.read_session("ws_a", session.id)).status == "idle"

            async with asyncio.timeout(20):
                while not await idle_now():
                    await asyncio.sleep(0.05)
            (turn,) = await until(lambda: recorded.named("invoke_agent"))
        finally:
            await runtime.close()
    assert turn.context.trace_id != int(old_trace, 16)  # a new trace ...
    assert turn.parent is None
    assert [(link.context.trace_id, link.context.span_id) for link in turn.links] == [
        (int(old_trace, 16), 0xB7AD6B7169203331)  # ... linked to the one that started the turn
    ]
    (chat,) = recorded.named("chat ")
    assert child_of(chat, turn)


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


async def test_the_client_library_propagates_its_context_so_run_turns_and_tools_are_one_trace(tmp_path: Path) -> None:
    import loophost

    with recording_spans() as recorded:
        runtime = Runtime.from_url(tmp_path / "client.db")
        async with serving(runtime) as url:
            result = await loophost.arun(
                loophost.ClaudeManagedAgents(api_key=KEY, base_url=url),
                model="scripted",
                handler=[add],
                prompt='call add {"a": 1, "b": 2}',
            )
            await until(lambda: len(recorded.named("invoke_agent")) == 2)
    assert result.text == "add: 3"
    (run,) = recorded.named("loophost.run")
    spans = [*recorded.named("invoke_agent"), *recorded.named("chat "), *recorded.named("execute_tool ")]
    spans += [*recorded.named("loophost.tool"), *recorded.named("POST /v1/sessions/{session_id}/events")]
    assert {s.context.trace_id for s in spans} == {run.context.trace_id}
    assert all(descends(s, run, recorded) for s in spans)
    (custom,) = recorded.named("execute_tool add")
    assert custom.attributes["loophost.tool.kind"] == "custom"
