"""The one Session loop (`loophost.client.arun`) driving the Bedrock provider against the loopback harness."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import loophost.client as client
from loophost.client.providers._bedrock import BedrockAgentCore
from tests.client.bedrock._fake_harness import (
    ACCESS_KEY,
    HARNESS_ARN,
    SECRET_KEY,
    FakeHarness,
    Stream,
    Turn,
    final_turn,
    tool_turn,
)

CALLS: list[str] = []


@client.tool
def get_weather(city: str) -> str:
    """The weather in a city.

    Args:
        city: The city name.
    """
    CALLS.append(city)
    if city == "Atlantis":
        raise RuntimeError("no such city")
    return f"21C in {city}"


def answer(body: dict[str, Any]) -> Stream:
    """The harness's second turn: it repeats what the tool returned, as a model would."""
    [result] = [b["toolResult"] for b in body["messages"][1]["content"]]
    text = f"{result['status']}: {result['content'][0]['text']}"
    return Stream(final_turn(text))


async def test_arun_runs_the_local_tool_and_resumes(fake: FakeHarness, provider: BedrockAgentCore) -> None:
    CALLS.clear()
    fake.push(Stream(tool_turn()), answer)
    result = await client.arun(provider, handler=[get_weather], prompt="Weather in Paris?")
    assert (result.terminal, result.stop_reason, result.text) == ("end_turn", "end_turn", "success: 21C in Paris")
    assert CALLS == ["Paris"] and [u.id for u in result.tool_uses] == ["tooluse_abc123"]
    assert result.turns == 2 and result.usage.input_tokens == 30 and result.usage.cache_read_input_tokens == 3
    assert len(result.session_id) == 36 and len(result.events) == len(tool_turn()) + len(final_turn("x"))
    assert result.events[0] == {"type": "messageStart", "messageStart": {"role": "assistant"}}
    invokes = fake.invokes()
    assert [i.body["tools"][0]["name"] for i in invokes] == ["get_weather", "get_weather"]
    assert {i.headers["x-amzn-bedrock-agentcore-runtime-session-id"] for i in invokes} == {result.session_id}


async def test_a_failing_tool_is_an_error_result_and_server_tools_are_reported(
    fake: FakeHarness, provider: BedrockAgentCore
) -> None:
    turn = Turn().start().tool(0, "srv_1", "web_search", "{}", kind="server_tool_use").stop("tool_use")
    turn.start("user").result(0, "srv_1", "hits").stop("tool_result")
    turn.start().tool(0, "tooluse_x", "get_weather", '{"city": "Atlantis"}').stop("tool_use").metadata()
    fake.push(Stream(turn.frames), answer)
    result = await client.arun(provider, handler=[get_weather], prompt="Weather in Atlantis?")
    assert result.ok and result.text.startswith("error: ") and "no such city" in result.text
    assert [u.id for u in result.server_tool_uses] == ["srv_1"]


async def test_a_resumed_session_sends_the_prompt(fake: FakeHarness, provider: BedrockAgentCore) -> None:
    session_id = "earlier-session-0123456789abcdef0123456789"
    fake.push(Stream(final_turn("welcome back")))
    result = await client.arun(provider, prompt="Where were we?", session_id=session_id)
    assert (result.session_id, result.text) == (session_id, "welcome back")
    assert fake.invokes()[0].body["messages"] == [{"role": "user", "content": [{"text": "Where were we?"}]}]


async def test_limits_are_terminated_runs(fake: FakeHarness, provider: BedrockAgentCore) -> None:
    fake.push(Stream(final_turn("Partial", stop="max_iterations_exceeded")))
    result = await client.arun(provider, prompt="Go on forever", max_iterations=3, timeout_seconds=60)
    assert (result.terminal, result.stop_reason, result.text) == ("terminated", "max_iterations_exceeded", "Partial")
    body = fake.invokes()[0].body
    assert (body["maxIterations"], body["timeoutSeconds"]) == (3, 60)


def test_the_example_runs_against_the_fake(fake: FakeHarness) -> None:
    fake.push(Stream(tool_turn()), answer)
    env = {
        **os.environ,
        "HARNESS_ARN": HARNESS_ARN,
        "AWS_ENDPOINT_URL": fake.url,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "PYTHONPATH": os.pathsep.join(sys.path),
    }
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_BEDROCK_AGENTCORE"):
        env.pop(name, None)
    example = Path(__file__).parents[3] / "examples" / "bedrock_agentcore.py"
    done = subprocess.run([sys.executable, str(example), "Weather", "in", "Lyon?"], env=env, capture_output=True)
    assert done.returncode == 0, done.stderr.decode()
    out = done.stdout.decode()
    assert "Let me check.success: Sunny and 21°C in Paris." in out and "[end_turn: end_turn; 2 invokes" in out
    assert fake.invokes()[0].body["messages"][0]["content"] == [{"text": "Weather in Lyon?"}]
