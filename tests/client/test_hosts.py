"""One handler, one prompt, three hosts: Local, a loophost server over HTTP, and the Bedrock AgentCore harness
(the loopback fake). The SessionResult fields that do not depend on the host agree."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import BaseModel

import loophost
from loophost.client import Provider
from tests.client.bedrock._fake_harness import FakeHarness, Stream, Turn
from tests.client.bedrock.conftest import Sleeps, make_provider
from tests.server.conftest import KEY_A, ServerProcess

pytestmark = pytest.mark.timeout(60)

CALL = re.compile(r"^call\s+(\S+)\s+(.*)$")


@loophost.tool
def lookup(city: str) -> str:
    """The weather in a city.

    Args:
        city: The city name.
    """
    if city == "Atlantis":
        raise LookupError("no such city")
    return f"21C in {city}"


def scripted_harness(body: dict[str, Any]) -> Stream:
    """The harness's model, playing the scripted model's rules: `call NAME {json}` lines call tools in
    parallel; tool results are answered `NAME: <text>` / `NAME failed: <text>`; anything else is echoed."""
    last = body["messages"][-1]["content"]
    results = [b["toolResult"] for b in last if "toolResult" in b]
    if results:
        calls = {
            b["toolUse"]["toolUseId"]: b["toolUse"]["name"] for b in body["messages"][-2]["content"] if "toolUse" in b
        }
        lines = [
            f"{calls[r['toolUseId']]}{'' if r['status'] == 'success' else ' failed'}: {r['content'][0]['text']}"
            for r in results
        ]
        return Stream(Turn().start().text(0, "\n".join(lines)).stop("end_turn").metadata().frames)
    text = "\n".join(b["text"] for b in last if "text" in b)
    calls = [match.groups() for line in text.splitlines() if (match := CALL.match(line.strip()))]
    if not calls:
        return Stream(Turn().start().text(0, f"echo: {text}").stop("end_turn").metadata().frames)
    turn = Turn().start()
    for index, (name, raw_input) in enumerate(calls):
        turn.tool(index, f"tooluse_{index:032d}", name, raw_input)
    return Stream(turn.stop("tool_use").metadata().frames)


@pytest.fixture(params=["local", "server", "bedrock"])
async def any_host(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[tuple[Provider, dict[str, Any]]]:
    if request.param == "local":
        async with loophost.Local(tmp_path / "local.db") as local:
            yield local, {"model": "scripted"}
    elif request.param == "server":
        server: ServerProcess = request.getfixturevalue("client_server")
        async with loophost.ClaudeManagedAgents(api_key=KEY_A, base_url=server.url) as claude:
            yield claude, {"model": "scripted"}
    else:
        with FakeHarness() as fake:
            for _ in range(10):
                fake.push(scripted_harness)
            async with make_provider(fake, Sleeps()) as bedrock:
                yield bedrock, {}


class Forecast(BaseModel):
    city: str
    temperature: int


async def test_structured_output_on_every_host(any_host: tuple[Provider, dict[str, Any]]) -> None:
    provider, options = any_host
    prompt = 'call final_result {"city": "Paris", "temperature": 21}'
    result = await loophost.arun(provider, output_type=Forecast, prompt=prompt, **options)
    assert result.output == Forecast(city="Paris", temperature=21)
    assert (result.terminal, result.text, result.turns) == ("end_turn", "final_result: Result recorded.", 2)


@pytest.mark.parametrize(
    "prompt",
    [
        "hello hosts",
        'call lookup {"city": "Paris"}\ncall lookup {"city": "Atlantis"}',
    ],
)
async def test_same_handler_and_prompt_give_the_same_result_on_every_host(
    any_host: tuple[Provider, dict[str, Any]], prompt: str
) -> None:
    provider, options = any_host
    result = await loophost.arun(provider, handler=[lookup], prompt=prompt, **options)
    if prompt.startswith("call"):
        assert result.terminal == "end_turn"
        assert result.text == "lookup: 21C in Paris\nlookup failed: Tool 'lookup' raised LookupError: no such city"
        assert [(u.name, json.dumps(dict(u.input))) for u in result.tool_uses] == [
            ("lookup", '{"city": "Paris"}'),
            ("lookup", '{"city": "Atlantis"}'),
        ]
        assert result.turns == 2
    else:
        assert (result.terminal, result.text, result.tool_uses, result.turns) == (
            "end_turn",
            "echo: hello hosts",
            [],
            1,
        )
    assert result.usage.input_tokens > 0 and result.events
