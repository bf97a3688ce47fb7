"""`ScriptedModel` driven through a real pydantic-ai `Agent`, streamed and not."""

from __future__ import annotations

import asyncio
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel
from pydantic_ai import (
    Agent,
    DeferredToolRequests,
    DeferredToolResults,
    ExternalToolset,
    ModelHTTPError,
    ModelMessagesTypeAdapter,
    ModelRetry,
    PartDeltaEvent,
    TextPartDelta,
    ToolDefinition,
    ToolDenied,
)
from pydantic_ai.direct import model_request
from pydantic_ai.exceptions import RunCancelled, ToolFailed
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    RetryPromptPart,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.models import ModelRequestParameters

from loophost.runtime.models import (
    ScriptedModel,
    is_transient_model_error,
    model_error_type,
    resolve_model,
    scripted_model,
)


def _agent(model: ScriptedModel | None = None, **kwargs: Any) -> Agent[None, Any]:
    agent: Agent[None, Any] = Agent(model or ScriptedModel(), **kwargs)

    @agent.tool_plain
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    @agent.tool_plain
    async def slow_echo(text: str, delay_ms: int = 0) -> str:
        """Echo after a delay, so parallel calls finish out of order."""
        await asyncio.sleep(delay_ms / 1000)
        return text

    @agent.tool_plain
    def retry_me() -> str:
        raise ModelRetry("bad input, try again")

    @agent.tool_plain
    def broken() -> str:
        raise ToolFailed("disk full")

    @agent.tool_plain
    def lookup(city: str) -> dict[str, Any]:
        return {"city": city, "temp": 21}

    return agent


def _responses(messages: list[ModelMessage]) -> list[ModelResponse]:
    return [m for m in messages if isinstance(m, ModelResponse)]


def _tool_calls(messages: list[ModelMessage]) -> list[ToolCallPart]:
    return [p for r in _responses(messages) for p in r.parts if isinstance(p, ToolCallPart)]


async def _text_deltas(agent: Agent[None, Any], prompt: str) -> tuple[list[str], Any]:
    deltas: list[str] = []
    async with agent.iter(prompt) as run:
        async for node in run:
            if Agent.is_model_request_node(node):
                async with node.stream(run.ctx) as stream:
                    async for event in stream:
                        if isinstance(event, PartDeltaEvent) and isinstance(event.delta, TextPartDelta):
                            deltas.append(event.delta.content_delta)
    assert run.result is not None
    return deltas, run.result


async def test_echo_text() -> None:
    result = await _agent().run("hello world")
    assert result.output == "echo: hello world"
    response = _responses(result.all_messages())[-1]
    assert response.model_name == "scripted"
    assert response.provider_name == "loophost"
    assert response.finish_reason == "stop"


async def test_echo_keeps_text_lines_and_drops_directives() -> None:
    result = await _agent().run("first line\nsleep 1\nsecond line\n")
    assert result.output == "echo: first line\nsecond line"


async def test_empty_message_is_echoed_gracefully() -> None:
    result = await _agent().run("")
    assert result.output == "echo: "
    assert result.usage.output_tokens >= 1
    assert result.usage.input_tokens >= 1


async def test_streamed_echo_comes_in_several_deltas() -> None:
    deltas, result = await _text_deltas(_agent(), "one two three four")
    assert result.output == "echo: one two three four"
    assert len(deltas) >= 2
    assert "".join(deltas).endswith("one two three four")


async def test_run_stream_events_stream_deltas_and_result() -> None:
    kinds: list[str] = []
    async with _agent().run_stream_events("alpha beta gamma") as events:
        async for event in events:
            kinds.append(type(event).__name__)
    assert kinds.count("PartDeltaEvent") >= 2
    assert kinds[-1] == "AgentRunResultEvent"


async def test_stream_text_deltas() -> None:
    async with _agent().run_stream("red green blue") as stream:
        deltas = [d async for d in stream.stream_text(delta=True, debounce_by=None)]
    assert len(deltas) >= 2
    assert "".join(deltas) == "echo: red green blue"


async def test_one_call_runs_the_tool_and_answers_with_its_result() -> None:
    result = await _agent().run('call add {"a": 2, "b": 3}')
    assert result.output == "add: 5"
    calls = _tool_calls(result.all_messages())
    assert [(c.tool_name, c.args) for c in calls] == [("add", {"a": 2, "b": 3})]


async def test_streamed_call_round_trip() -> None:
    deltas, result = await _text_deltas(_agent(), 'call add {"a": 20, "b": 22}')
    assert result.output == "add: 42"
    assert "".join(deltas).endswith("42")


async def test_non_string_result_is_compact_json() -> None:
    result = await _agent().run('call lookup {"city": "Oslo"}')
    assert result.output == 'lookup: {"city":"Oslo","temp":21}'


async def test_parallel_calls_have_distinct_ids_and_answer_in_call_order() -> None:
    prompt = (
        'call slow_echo {"text": "first", "delay_ms": 60}\n'
        'call slow_echo {"text": "second", "delay_ms": 0}\n'
        'call add {"a": 1, "b": 1}'
    )
    result = await _agent().run(prompt)
    assert result.output == "slow_echo: first\nslow_echo: second\nadd: 2"
    responses = _responses(result.all_messages())
    first = responses[0]
    calls = [p for p in first.parts if isinstance(p, ToolCallPart)]
    assert len(calls) == 3  # all in one response: parallel
    assert first.finish_reason == "tool_call"
    assert len({c.tool_call_id for c in calls}) == 3


async def test_tool_call_ids_are_unique_across_the_conversation() -> None:
    agent = _agent()
    first = await agent.run('call add {"a": 1, "b": 2}\ncall add {"a": 3, "b": 4}')
    second = await agent.run('call add {"a": 5, "b": 6}', message_history=first.all_messages())
    assert second.output == "add: 11"
    ids = [c.tool_call_id for c in _tool_calls(second.all_messages())]
    assert len(ids) == 3
    assert len(set(ids)) == 3


async def test_calls_are_made_once_then_answered() -> None:
    result = await _agent().run('call add {"a": 1, "b": 2}')
    responses = _responses(result.all_messages())
    assert len(responses) == 2
    assert all(isinstance(p, TextPart) for p in responses[1].parts)


async def test_model_retry_is_a_failed_result() -> None:
    result = await _agent().run("call retry_me {}")
    assert result.output == "retry_me failed: bad input, try again"


async def test_tool_failed_is_a_failed_result() -> None:
    result = await _agent().run('call broken {}\ncall add {"a": 1, "b": 1}')
    assert result.output == "broken failed: disk full\nadd: 2"


async def test_unknown_tool_and_bad_json_are_failed_results() -> None:
    result = await _agent().run("call nope {}\ncall add not-json")
    lines = result.output.splitlines()
    assert lines[0].startswith("nope failed: Unknown tool name: 'nope'")
    assert lines[1].startswith("add failed: ")


async def test_deferred_external_tool_resumes_with_the_result() -> None:
    deploy = ToolDefinition(
        name="deploy",
        parameters_json_schema={"type": "object", "properties": {"version": {"type": "string"}}},
    )
    agent: Agent[None, Any] = Agent(
        ScriptedModel(), toolsets=[ExternalToolset([deploy])], output_type=[str, DeferredToolRequests]
    )
    first = await agent.run('call deploy {"version": "2.1"}')
    assert isinstance(first.output, DeferredToolRequests)
    [call] = first.output.calls
    assert (call.tool_name, call.args) == ("deploy", {"version": "2.1"})

    second = await agent.run(
        message_history=first.all_messages(),
        deferred_tool_results=DeferredToolResults(calls={call.tool_call_id: "v2.1 deployed"}),
    )
    assert second.output == "deploy: v2.1 deployed"


async def test_deferred_results_answer_in_call_order_with_failures() -> None:
    tools = [
        ToolDefinition(name="ask", parameters_json_schema={"type": "object", "properties": {}}),
        ToolDefinition(name="fetch", parameters_json_schema={"type": "object", "properties": {}}),
    ]
    agent: Agent[None, Any] = Agent(
        ScriptedModel(), toolsets=[ExternalToolset(tools)], output_type=[str, DeferredToolRequests]
    )
    first = await agent.run("call ask {}\ncall fetch {}")
    assert isinstance(first.output, DeferredToolRequests)
    ask, fetch = first.output.calls
    results = DeferredToolResults(calls={fetch.tool_call_id: ToolFailed("404"), ask.tool_call_id: {"answer": 42}})
    second = await agent.run(message_history=first.all_messages(), deferred_tool_results=results)
    assert second.output == 'ask: {"answer":42}\nfetch failed: 404'


async def test_denied_approval_is_a_failed_result() -> None:
    agent: Agent[None, Any] = Agent(ScriptedModel(), output_type=[str, DeferredToolRequests])

    @agent.tool_plain(requires_approval=True)
    def rm(path: str) -> str:
        return f"removed {path}"

    first = await agent.run('call rm {"path": "/tmp/x"}')
    assert isinstance(first.output, DeferredToolRequests)
    [approval] = first.output.approvals
    denied = await agent.run(
        message_history=first.all_messages(),
        deferred_tool_results=DeferredToolResults(approvals={approval.tool_call_id: ToolDenied("not allowed")}),
    )
    assert denied.output == "rm failed: not allowed"

    approved = await agent.run(
        message_history=first.all_messages(),
        deferred_tool_results=DeferredToolResults(approvals={approval.tool_call_id: True}),
    )
    assert approved.output == "rm: removed /tmp/x"


async def test_legacy_retry_prompt_part_is_a_failed_result() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        retry = RetryPromptPart("try again", tool_name="x", tool_call_id="c1")
    messages: list[ModelMessage] = [
        ModelRequest(parts=[UserPromptPart("call x {}")]),
        ModelResponse(parts=[ToolCallPart("x", {}, tool_call_id="c1")]),
        ModelRequest(parts=[retry]),
    ]
    response = await ScriptedModel().request(messages, None, ModelRequestParameters())
    assert response.parts == [TextPart("x failed: try again")]


async def test_failed_tool_return_outcome_is_a_failed_result() -> None:
    messages: list[ModelMessage] = [
        ModelRequest(parts=[UserPromptPart("call x {}\ncall y {}")]),
        ModelResponse(parts=[ToolCallPart("x", {}, tool_call_id="c1"), ToolCallPart("y", {}, tool_call_id="c2")]),
        ModelRequest(
            parts=[
                ToolReturnPart("y", "fine", tool_call_id="c2"),
                ToolReturnPart("x", "interrupted", tool_call_id="c1", outcome="interrupted"),
            ]
        ),
    ]
    response = await ScriptedModel().request(messages, None, ModelRequestParameters())
    assert response.parts == [TextPart("x failed: interrupted\ny: fine")]


async def test_sleep_waits() -> None:
    started = time.monotonic()
    result = await _agent().run("sleep 50\nhi")
    assert time.monotonic() - started >= 0.05
    assert result.output == "echo: hi"


async def test_sleep_is_cancellable_by_task_cancel() -> None:
    task = asyncio.create_task(_agent().run("sleep 5000\nhi"))
    await asyncio.sleep(0.05)
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 1


async def _run_and_cancel(agent: Agent[None, Any], prompt: str, after_s: float) -> None:
    async with agent.iter(prompt) as run:

        async def cancel_soon() -> None:
            await asyncio.sleep(after_s)
            run.cancel()

        canceller = asyncio.create_task(cancel_soon())
        try:
            async for _ in run:
                pass
        finally:
            await canceller


async def test_sleep_is_cancellable_by_run_cancel() -> None:
    started = time.monotonic()
    with pytest.raises(RunCancelled) as caught:
        await _run_and_cancel(_agent(), "sleep 5000\nhi", 0.05)
    assert time.monotonic() - started < 1
    messages = caught.value.all_messages()
    assert isinstance(messages[0], ModelRequest)


def _prompt(
    text: str, *, session: str | None = None, input_id: str | None = None, at: datetime | None = None
) -> list[ModelMessage]:
    """A history of one user message (built `at` a time, or now); with `session`, tagged as the runtime does."""
    metadata = None if session is None else {"loophost": {"session_id": session, "input_id": input_id}}
    part = UserPromptPart(text) if at is None else UserPromptPart(text, timestamp=at)
    return [ModelRequest(parts=[part], metadata=metadata)]


_T0 = datetime(2026, 1, 1, tzinfo=UTC)


async def _fails(model: ScriptedModel, history: list[ModelMessage]) -> int | None:
    """The status of the error one direct model request raises, or `None` when it is answered."""
    try:
        await model_request(model, history)
    except ModelHTTPError as error:
        return error.status_code
    return None


async def test_fail_transient_fails_n_times_then_succeeds() -> None:
    agent = _agent()
    history = _prompt("fail transient 2\nhello")
    for _ in range(2):
        with pytest.raises(ModelHTTPError) as caught:
            await agent.run(message_history=history)
        assert caught.value.status_code == 529
        assert is_transient_model_error(caught.value)
        assert model_error_type(caught.value) == "model_overloaded_error"
    result = await agent.run(message_history=history)
    assert result.output == "echo: hello"


async def test_fail_transient_counts_down_on_resume_from_the_same_history() -> None:
    """A runtime retry re-sends the checkpointed history (ending in the prompt) without a new prompt."""
    agent = _agent()
    history = _prompt('fail transient 1\ncall add {"a": 1, "b": 1}')
    with pytest.raises(ModelHTTPError):
        await agent.run(message_history=history)
    checkpoint = ModelMessagesTypeAdapter.validate_json(ModelMessagesTypeAdapter.dump_json(history))
    result = await agent.run(message_history=checkpoint)
    assert result.output == "add: 2"  # the turn's later requests do not fail again


async def test_fail_transient_streamed() -> None:
    agent = _agent()
    history = _prompt("fail transient 1\nstreamed")
    with pytest.raises(ModelHTTPError) as caught:
        async with agent.run_stream(message_history=history) as stream:
            await stream.get_output()
    assert is_transient_model_error(caught.value)
    async with agent.run_stream(message_history=history) as stream:
        assert await stream.get_output() == "echo: streamed"


async def test_fail_fatal_is_not_transient_and_happens_once() -> None:
    agent = _agent()
    history = _prompt("fail fatal\nhello")
    with pytest.raises(ModelHTTPError) as caught:
        await agent.run(message_history=history)
    assert caught.value.status_code == 400
    assert not is_transient_model_error(caught.value)
    assert model_error_type(caught.value) == "model_request_failed_error"
    result = await agent.run(message_history=history)
    assert result.output == "echo: hello"


async def test_failure_counts_are_per_model_instance() -> None:
    history = _prompt("fail fatal\nx")
    with pytest.raises(ModelHTTPError):
        await _agent(ScriptedModel()).run(message_history=history)
    with pytest.raises(ModelHTTPError):
        await _agent(ScriptedModel()).run(message_history=history)


async def test_resolved_scripted_model_is_shared_so_failures_count_down() -> None:
    assert resolve_model("scripted") is scripted_model()
    history = _prompt("fail transient 1\nshared model test")
    with pytest.raises(ModelHTTPError):
        await Agent(resolve_model("scripted")).run(message_history=history)
    result = await Agent(resolve_model("scripted")).run(message_history=history)
    assert result.output == "echo: shared model test"


async def test_fail_fatal_is_per_session() -> None:
    """Two sessions sending the same text as their first message each get their own failure."""
    model = ScriptedModel()
    a = _prompt("fail fatal\nhello", session="sesn_a", input_id="sevt_1")
    b = _prompt("fail fatal\nhello", session="sesn_b", input_id="sevt_1")
    assert await _fails(model, a) == 400
    assert await _fails(model, b) == 400
    assert await _fails(model, a) is None
    assert await _fails(model, b) is None


async def test_fail_fatal_is_per_message_of_a_session() -> None:
    """The same text sent again in one session is a new message, with its own failure."""
    model = ScriptedModel()
    first = _prompt("fail fatal\nhello", session="sesn_a", input_id="sevt_1")
    assert await _fails(model, first) == 400
    assert await _fails(model, first) is None
    again = _prompt("fail fatal\nhello", session="sesn_a", input_id="sevt_2")
    assert await _fails(model, again) == 400


async def test_retries_of_a_session_input_count_down_even_when_the_request_is_rebuilt() -> None:
    """With the runtime's metadata the count follows (session, input), not the prompt part's timestamp."""
    model = ScriptedModel()
    statuses = [
        await _fails(model, _prompt("fail transient 2\nhello", session="sesn_a", input_id="sevt_1", at=_T0 + delay))
        for delay in (timedelta(0), timedelta(seconds=1), timedelta(seconds=2))
    ]
    assert statuses == [529, 529, None]


async def test_without_metadata_separately_built_histories_each_fail() -> None:
    model = ScriptedModel()
    # built a microsecond apart (explicitly, so the test does not hang on the clock's resolution)
    histories = [_prompt("fail fatal\nhello", at=_T0), _prompt("fail fatal\nhello", at=_T0 + timedelta(microseconds=1))]
    assert [await _fails(model, h) for h in histories] == [400, 400]
    assert [await _fails(model, h) for h in histories] == [None, None]


async def test_fresh_agent_runs_of_the_same_text_each_fail() -> None:
    agent = _agent()
    for _ in range(2):
        with pytest.raises(ModelHTTPError):
            await agent.run("fail fatal\nhello")


async def test_incomplete_metadata_counts_by_the_prompt_part() -> None:
    model = ScriptedModel()
    history = _prompt("fail fatal\nhello", session="sesn_a", at=_T0)
    rebuilt = _prompt("fail fatal\nhello", session="sesn_a", at=_T0 + timedelta(seconds=1))
    assert await _fails(model, history) == 400
    assert await _fails(model, rebuilt) == 400  # no (session, input): a different prompt part, a new count
    assert await _fails(model, history) is None


def test_failure_counts_are_thread_safe() -> None:
    model = ScriptedModel()
    history = _prompt("fail transient 5\nhello", session="sesn_a", input_id="sevt_1")
    barrier = threading.Barrier(16)

    def one_request() -> int | None:
        barrier.wait()
        return asyncio.run(_fails(model, history))

    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(lambda _: one_request(), range(16)))
    assert statuses.count(529) == 5
    assert statuses.count(None) == 11


async def test_usage_is_deterministic_word_counts() -> None:
    first = await _agent(instructions="Be brief").run("hello big world")
    second = await _agent(instructions="Be brief").run("hello big world")
    # input: "Be brief" + "hello big world"; output: "echo: hello big world"
    assert (first.usage.input_tokens, first.usage.output_tokens) == (5, 4)
    assert (second.usage.input_tokens, second.usage.output_tokens) == (5, 4)


async def test_usage_of_tool_turn_counts_calls_and_results() -> None:
    first = await _agent().run('call add {"a": 1, "b": 2}')
    second = await _agent().run('call add {"a": 1, "b": 2}')
    responses = _responses(first.all_messages())
    # the call: name "add" + '{"a": 1, "b": 2}' (4 words); the answer "add: 3" (2 words)
    assert [r.usage.output_tokens for r in responses] == [5, 2]
    assert all(r.usage.input_tokens > 0 for r in responses)
    assert first.usage.input_tokens == second.usage.input_tokens
    assert first.usage.output_tokens == second.usage.output_tokens


async def test_streamed_usage_equals_non_streamed_usage() -> None:
    prompt = 'call add {"a": 1, "b": 2}\nsome text'
    plain = await _agent().run(prompt)
    _, streamed = await _text_deltas(_agent(), prompt)
    assert (plain.usage.input_tokens, plain.usage.output_tokens) == (
        streamed.usage.input_tokens,
        streamed.usage.output_tokens,
    )


class City(BaseModel):
    name: str
    population: int


async def test_structured_output_through_output_tool() -> None:
    agent = _agent(output_type=City)
    result = await agent.run('output {"name": "Paris", "population": 2}')
    assert result.output == City(name="Paris", population=2)


async def test_structured_output_after_tool_results() -> None:
    agent = _agent(output_type=City)
    result = await agent.run('call lookup {"city": "Oslo"}\noutput {"name": "Oslo", "population": 1}')
    assert result.output == City(name="Oslo", population=1)
    assert [c.tool_name for c in _tool_calls(result.all_messages())] == ["lookup", "final_result"]


async def test_scalar_structured_output() -> None:
    result = await _agent(output_type=int).run("output 42")
    assert result.output == 42


async def test_output_line_is_text_without_structured_output() -> None:
    result = await _agent().run("output 42")
    assert result.output == "echo: output 42"


async def test_text_or_structured_output() -> None:
    agent = _agent(output_type=[str, City])
    assert await _output(agent, 'output {"name": "Rome", "population": 3}') == City(name="Rome", population=3)
    assert await _output(agent, "just text") == "echo: just text"


async def _output(agent: Agent[None, Any], prompt: str) -> Any:
    return (await agent.run(prompt)).output


async def test_stream_cancel_interrupts_the_response() -> None:
    model = ScriptedModel()
    messages: list[ModelMessage] = [ModelRequest(parts=[UserPromptPart("a b c d e f g h")])]
    async with model.request_stream(messages, None, ModelRequestParameters()) as stream:
        seen = 0
        async for _ in stream:
            seen += 1
            if seen == 2:
                await stream.cancel()
        response = stream.get()
    assert response.state == "interrupted"
    [part] = response.parts
    assert isinstance(part, TextPart)
    assert part.content != "echo: a b c d e f g h"


async def test_stream_completes_with_usage_and_finish_reason() -> None:
    model = ScriptedModel()
    messages: list[ModelMessage] = [ModelRequest(parts=[UserPromptPart('call add {"a": 1}\ncall add {"a": 2}')])]
    async with model.request_stream(messages, None, ModelRequestParameters()) as stream:
        events = [event async for event in stream]
        response = stream.get()
    assert response.state == "complete"
    assert response.finish_reason == "tool_call"
    assert [p.tool_call_id for p in response.parts if isinstance(p, ToolCallPart)] == ["call_1_0", "call_1_1"]
    assert response.usage.input_tokens == 8  # call, add, {"a":, 1} twice
    assert response.usage.output_tokens == 6
    assert events
