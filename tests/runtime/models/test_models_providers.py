"""Real pydantic-ai provider models, routed by `resolve_model`, against loopback fakes of the APIs."""

from __future__ import annotations

import json
import os
import socket
from typing import Any

import pytest
from pydantic_ai import Agent, ModelHTTPError, PartDeltaEvent, TextPartDelta
from pydantic_ai.exceptions import ModelConnectionError
from pydantic_ai.models import Model
from pydantic_ai.settings import ModelSettings

from loophost.runtime.models import (
    ModelsConfig,
    OpenAICompatibleEndpoint,
    is_transient_model_error,
    model_error_type,
    resolve_model,
)

from ._fake_anthropic import FakeAnthropic
from ._fake_http_server import error_reply, text_reply, tool_call_reply
from ._fake_openai import FakeOpenAI

pytestmark = pytest.mark.filterwarnings("ignore:The model .* is deprecated:DeprecationWarning")

SMALL = ModelSettings(max_tokens=256)
"""Small enough that the Anthropic SDK sends a plain (non-streamed) request when not asked to stream."""


def _weather_agent(model: Model) -> Agent[None, str]:
    agent: Agent[None, str] = Agent(model, instructions="You report the weather.")

    @agent.tool_plain
    def weather(city: str) -> str:
        """Current weather of a city."""
        return f"sunny in {city}"

    return agent


async def _streamed_text(agent: Agent[None, str], prompt: str) -> tuple[str, list[str], Any]:
    deltas: list[str] = []
    async with agent.iter(prompt) as run:
        async for node in run:
            if Agent.is_model_request_node(node):
                async with node.stream(run.ctx) as stream:
                    async for event in stream:
                        if isinstance(event, PartDeltaEvent) and isinstance(event.delta, TextPartDelta):
                            deltas.append(event.delta.content_delta)
    assert run.result is not None
    return run.result.output, deltas, run.result.usage


# --- Anthropic Messages API ---------------------------------------------------------------------


async def test_anthropic_text_answer(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.queue(text_reply("Hello from the fake"))
    agent = _weather_agent(resolve_model("claude-sonnet-4-5"))
    result = await agent.run("hi there", model_settings=SMALL)
    assert result.output == "Hello from the fake"
    assert result.usage.input_tokens > 0
    assert result.usage.output_tokens > 0

    [request] = fake_anthropic.requests
    assert request.path == "/v1/messages"
    # anthropic 2.x authenticates with a bearer token; older SDKs sent `x-api-key`
    assert "sk-ant-fake" in (request.headers.get("x-api-key"), request.headers.get("authorization", "")[7:])
    assert "anthropic-version" in request.headers
    assert request.body["model"] == "claude-sonnet-4-5"
    assert request.body["stream"] is False
    assert request.body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hi there"}]}]
    assert "You report the weather." in json.dumps(request.body["system"])
    assert [t["name"] for t in request.body["tools"]] == ["weather"]
    assert request.body["tools"][0]["input_schema"]["properties"]["city"]["type"] == "string"


async def test_anthropic_tool_round_trip(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.queue(
        tool_call_reply("toolu_01", "weather", {"city": "Paris"}),
        text_reply("It is sunny in Paris."),
    )
    agent = _weather_agent(resolve_model("claude-sonnet-4-5"))
    result = await agent.run("weather in Paris?", model_settings=SMALL)
    assert result.output == "It is sunny in Paris."
    assert result.usage.requests == 2
    assert result.usage.tool_calls == 1
    assert result.usage.input_tokens > 0
    assert result.usage.output_tokens > 0

    second = fake_anthropic.requests[1].body
    assert second["messages"][1] == {
        "role": "assistant",
        "content": [{"type": "tool_use", "id": "toolu_01", "name": "weather", "input": {"city": "Paris"}}],
    }
    [tool_result] = second["messages"][2]["content"]
    assert tool_result["type"] == "tool_result"
    assert tool_result["tool_use_id"] == "toolu_01"
    assert tool_result["is_error"] is False
    assert "sunny in Paris" in json.dumps(tool_result["content"])


async def test_anthropic_streamed_text_and_tool_round_trip(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.queue(
        tool_call_reply("toolu_02", "weather", {"city": "Oslo"}, text="Let me check."),
        text_reply("Oslo is sunny today."),
    )
    agent = _weather_agent(resolve_model("claude-sonnet-4-5"))
    output, deltas, usage = await _streamed_text(agent, "weather in Oslo?")
    assert output == "Oslo is sunny today."
    assert len(deltas) >= 2
    assert usage.input_tokens > 0
    assert usage.output_tokens > 0
    assert [r.body["stream"] for r in fake_anthropic.requests] == [True, True]
    tool_use = fake_anthropic.requests[1].body["messages"][1]["content"][-1]
    assert tool_use == {"type": "tool_use", "id": "toolu_02", "name": "weather", "input": {"city": "Oslo"}}


async def test_anthropic_default_request_without_max_tokens(fake_anthropic: FakeAnthropic) -> None:
    """Without a small max_tokens pydantic-ai may stream behind the scenes; either way the run completes."""
    fake_anthropic.queue(text_reply("done"))
    result = await Agent(resolve_model("claude-sonnet-4-5")).run("hi")
    assert result.output == "done"


@pytest.mark.parametrize(
    ("status", "error_type", "transient", "wire_type"),
    [
        (529, "overloaded_error", True, "model_overloaded_error"),
        (429, "rate_limit_error", True, "model_rate_limited_error"),
        (500, "api_error", True, "model_request_failed_error"),
        (400, "invalid_request_error", False, "model_request_failed_error"),
        (401, "authentication_error", False, "model_request_failed_error"),
    ],
)
async def test_anthropic_errors_are_classified(
    fake_anthropic: FakeAnthropic, status: int, error_type: str, transient: bool, wire_type: str
) -> None:
    fake_anthropic.queue(error_reply(status, error_type, "nope"))
    agent = _weather_agent(resolve_model("claude-sonnet-4-5"))
    with pytest.raises(ModelHTTPError) as caught:
        await agent.run("hi", model_settings=SMALL)
    assert caught.value.status_code == status
    assert is_transient_model_error(caught.value) is transient
    assert model_error_type(caught.value) == wire_type
    assert len(fake_anthropic.requests) == 1  # the SDK does not retry on its own (sdk_max_retries=0)


async def test_anthropic_streamed_529_is_transient(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.queue(error_reply(529, "overloaded_error", "Overloaded"))
    agent = _weather_agent(resolve_model("claude-sonnet-4-5"))
    with pytest.raises(ModelHTTPError) as caught:
        await _streamed_text(agent, "hi")
    assert is_transient_model_error(caught.value)


async def test_anthropic_sdk_retries_when_configured(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.queue(error_reply(400, "invalid_request_error", "bad"))
    model = resolve_model("claude-sonnet-4-5", ModelsConfig(sdk_max_retries=None))
    assert model.settings is None
    with pytest.raises(ModelHTTPError):
        await Agent(model).run("hi", model_settings=SMALL)  # 400 is never retried by the SDK


async def test_anthropic_config_base_url_wins_over_env(
    fake_anthropic: FakeAnthropic, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_url = os.environ["ANTHROPIC_BASE_URL"]
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:9")  # nothing listens there
    fake_anthropic.queue(text_reply("configured"))
    model = resolve_model("claude-haiku-4-5", ModelsConfig(anthropic_base_url=real_url))
    result = await Agent(model).run("hi", model_settings=SMALL)
    assert result.output == "configured"
    assert fake_anthropic.requests[0].body["model"] == "claude-haiku-4-5"


# --- OpenAI chat completions --------------------------------------------------------------------


async def test_openai_text_answer(fake_openai: FakeOpenAI) -> None:
    fake_openai.queue(text_reply("Hello from OpenAI fake"))
    agent = _weather_agent(resolve_model("openai:gpt-4o"))
    result = await agent.run("hi there")
    assert result.output == "Hello from OpenAI fake"
    assert result.usage.input_tokens > 0
    assert result.usage.output_tokens > 0

    [request] = fake_openai.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-openai-fake"
    assert request.body["model"] == "gpt-4o"
    assert request.body["stream"] is False
    roles = [m["role"] for m in request.body["messages"]]
    assert roles[-1] == "user"
    assert request.body["messages"][-1]["content"] == "hi there"
    assert "You report the weather." in json.dumps(request.body["messages"][:-1])
    [tool] = request.body["tools"]
    assert tool["type"] == "function"
    assert tool["function"]["name"] == "weather"


async def test_openai_tool_round_trip(fake_openai: FakeOpenAI) -> None:
    fake_openai.queue(tool_call_reply("call_abc", "weather", {"city": "Rome"}), text_reply("Sunny in Rome."))
    agent = _weather_agent(resolve_model("openai:gpt-4o"))
    result = await agent.run("weather in Rome?")
    assert result.output == "Sunny in Rome."
    assert result.usage.tool_calls == 1
    assert result.usage.input_tokens > 0
    assert result.usage.output_tokens > 0

    messages = fake_openai.requests[1].body["messages"]
    assert messages[-2]["role"] == "assistant"
    assert messages[-2]["tool_calls"] == [
        {
            "id": "call_abc",
            "type": "function",
            "function": {"name": "weather", "arguments": '{"city":"Rome"}'},
        }
    ]
    assert messages[-1] == {"role": "tool", "tool_call_id": "call_abc", "content": "sunny in Rome"}


async def test_openai_streamed_text_and_tool_round_trip(fake_openai: FakeOpenAI) -> None:
    fake_openai.queue(tool_call_reply("call_s1", "weather", {"city": "Lima"}), text_reply("Lima is warm and sunny."))
    agent = _weather_agent(resolve_model("openai:gpt-4o"))
    output, deltas, usage = await _streamed_text(agent, "weather in Lima?")
    assert output == "Lima is warm and sunny."
    assert len(deltas) >= 2
    assert usage.input_tokens > 0
    assert usage.output_tokens > 0
    first = fake_openai.requests[0].body
    assert first["stream"] is True
    assert first["stream_options"] == {"include_usage": True}
    assert fake_openai.requests[1].body["messages"][-1]["content"] == "sunny in Lima"


@pytest.mark.parametrize(
    ("status", "error_type", "transient", "wire_type"),
    [
        (529, "overloaded_error", True, "model_overloaded_error"),
        (503, "service_unavailable", True, "model_overloaded_error"),
        (429, "rate_limit_exceeded", True, "model_rate_limited_error"),
        (502, "server_error", True, "model_request_failed_error"),
        (400, "invalid_request_error", False, "model_request_failed_error"),
        (404, "not_found_error", False, "model_request_failed_error"),
    ],
)
async def test_openai_errors_are_classified(
    fake_openai: FakeOpenAI, status: int, error_type: str, transient: bool, wire_type: str
) -> None:
    fake_openai.queue(error_reply(status, error_type, "nope"))
    with pytest.raises(ModelHTTPError) as caught:
        await _weather_agent(resolve_model("openai:gpt-4o")).run("hi")
    assert caught.value.status_code == status
    assert is_transient_model_error(caught.value) is transient
    assert model_error_type(caught.value) == wire_type
    assert len(fake_openai.requests) == 1


# --- Named OpenAI-compatible endpoints ----------------------------------------------------------


async def test_named_endpoint_round_trip(
    fake_openai: FakeOpenAI, openai_server_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")  # never sent to another service
    monkeypatch.delenv("OPENAI_BASE_URL")
    config = ModelsConfig(endpoints={"vllm": OpenAICompatibleEndpoint(base_url=openai_server_url)})
    fake_openai.queue(tool_call_reply("call_v1", "weather", {"city": "Kyiv"}), text_reply("Kyiv: clear skies."))
    agent = _weather_agent(resolve_model("vllm:my-model", config))
    result = await agent.run("weather in Kyiv?")
    assert result.output == "Kyiv: clear skies."
    assert result.usage.input_tokens > 0
    assert result.usage.output_tokens > 0
    assert [r.body["model"] for r in fake_openai.requests] == ["my-model", "my-model"]
    assert fake_openai.requests[1].body["messages"][-1]["tool_call_id"] == "call_v1"
    assert fake_openai.requests[0].headers["authorization"] != "Bearer sk-openai-fake"


async def test_named_endpoint_streams(fake_openai: FakeOpenAI, openai_server_url: str) -> None:
    config = ModelsConfig(endpoints={"ollama": OpenAICompatibleEndpoint(base_url=openai_server_url)})
    fake_openai.queue(text_reply("streamed from the local model"))
    output, deltas, usage = await _streamed_text(_weather_agent(resolve_model("ollama:llama3.2", config)), "hi")
    assert output == "streamed from the local model"
    assert len(deltas) >= 2
    assert usage.output_tokens > 0


async def test_named_endpoint_from_env_with_its_own_key(
    fake_openai: FakeOpenAI, openai_server_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoints = {"openrouter": {"base_url": openai_server_url, "api_key_env": "OPENROUTER_API_KEY"}}
    monkeypatch.setenv("LOOPHOST_OPENAI_ENDPOINTS", json.dumps(endpoints))
    monkeypatch.setenv("OPENROUTER_API_KEY", "sk-or-fake")
    fake_openai.queue(text_reply("routed"))
    result = await Agent(resolve_model("openrouter:anthropic/claude-sonnet-4.5")).run("hi")
    assert result.output == "routed"
    [request] = fake_openai.requests
    assert request.headers["authorization"] == "Bearer sk-or-fake"
    assert request.body["model"] == "anthropic/claude-sonnet-4.5"


async def test_named_endpoint_errors_are_classified(fake_openai: FakeOpenAI, openai_server_url: str) -> None:
    config = ModelsConfig(endpoints={"vllm": OpenAICompatibleEndpoint(base_url=openai_server_url)})
    model = resolve_model("vllm:my-model", config)
    fake_openai.queue(error_reply(529, "overloaded_error", "busy"), error_reply(400, "invalid_request_error", "bad"))
    with pytest.raises(ModelHTTPError) as overloaded:
        await Agent(model).run("hi")
    assert is_transient_model_error(overloaded.value)
    with pytest.raises(ModelHTTPError) as rejected:
        await Agent(model).run("hi")
    assert not is_transient_model_error(rejected.value)


async def test_unreachable_endpoint_is_a_transient_connection_error() -> None:
    with socket.socket() as sock:  # a port nothing listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = ModelsConfig(endpoints={"down": OpenAICompatibleEndpoint(base_url=f"http://127.0.0.1:{port}/v1")})
    with pytest.raises(ModelConnectionError) as caught:
        await Agent(resolve_model("down:any", config)).run("hi")
    assert is_transient_model_error(caught.value)
    assert model_error_type(caught.value) == "model_request_failed_error"
