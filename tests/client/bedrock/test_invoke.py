"""`BedrockAgentCore` connections against the loopback harness: open_session -> turn -> normalize -> resume."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loophost.client._errors import ConnectionLost, HostError
from loophost.client._provider import Connection, OpenRequest, Provider
from loophost.client._results import Confirmation, ToolResult, ToolSpec, TurnInput
from loophost.client.providers import _bedrock_wire as wire
from loophost.client.providers._bedrock import AgentCoreConnection, BedrockAgentCore
from tests.client.bedrock._fake_harness import (
    ACCESS_KEY,
    HARNESS_ARN,
    REGION,
    SECRET_KEY,
    Drop,
    Fail,
    FakeHarness,
    Stream,
    Turn,
    exception,
    final_turn,
    tool_turn,
)
from tests.client.bedrock.conftest import Sleeps, make_provider

WEATHER = ToolSpec(
    "get_weather", "The weather in a city.", {"type": "object", "properties": {"city": {"type": "string"}}}
)
MODEL = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
TEMP = '{"tempC": 21}'
INLINE = "tool_use"
SESSION_HEADER = "x-amzn-bedrock-agentcore-runtime-session-id"
LOOKUP = ToolSpec("lookup", "Look something up.", {"type": "object", "properties": {"q": {"type": "string"}}})


async def play(conn: AgentCoreConnection, turn_input: TurnInput | None) -> list[Mapping[str, Any]]:
    return [event async for event in conn.turn(turn_input)]


async def open_conn(provider: BedrockAgentCore, **kwargs: Any) -> AgentCoreConnection:
    return await provider.open_session(OpenRequest(tools=(WEATHER, LOOKUP), **kwargs))


async def test_a_tool_round_trip_echoes_the_assistant_turn(fake: FakeHarness, provider: BedrockAgentCore) -> None:
    assert isinstance(provider, Provider)
    fake.push(Stream(tool_turn()), Stream(final_turn("It is ", "sunny.")))
    conn = await open_conn(provider, system="Be brief.", model=MODEL)
    assert isinstance(conn, Connection) and not conn.resumed and not conn.reconnectable
    first = conn.normalize(await play(conn, TurnInput(text="Weather in Paris?")))
    assert (first.terminal, first.stop_reason, first.text) == ("requires_action", "tool_use", "Let me check.")
    [use] = first.tool_uses
    assert (use.id, use.name, dict(use.input)) == ("tooluse_abc123", "get_weather", {"city": "Paris"})
    resume = TurnInput(tool_uses=first.tool_uses, tool_results=(ToolResult(use.id, TEMP),))
    second = conn.normalize(await play(conn, resume))
    assert (second.terminal, second.text) == ("end_turn", "It is sunny.")
    assert second.usage is not None and (second.usage.input_tokens, second.usage.cache_read_input_tokens) == (20, 3)

    kickoff, answer = fake.invokes()
    assert kickoff.body["messages"] == [{"role": "user", "content": [{"text": "Weather in Paris?"}]}]
    assert answer.body["messages"] == [
        {
            "role": "assistant",
            "content": [
                {"text": "Let me check."},
                {"toolUse": {"toolUseId": use.id, "name": "get_weather", "input": {"city": "Paris"}, "type": INLINE}},
            ],
        },
        {
            "role": "user",
            "content": [{"toolResult": {"toolUseId": use.id, "content": [{"text": TEMP}], "status": "success"}}],
        },
    ]
    for request in (kickoff, answer):  # overrides are per call: sent again on the resume
        assert [t["name"] for t in request.body["tools"]] == ["get_weather", "lookup"]
        assert request.body["tools"][0]["config"]["inlineFunction"]["inputSchema"] == dict(WEATHER.input_schema)
        assert request.body["systemPrompt"] == [{"text": "Be brief."}]
        assert request.body["model"] == {"bedrockModelConfig": {"modelId": MODEL}}
        assert request.headers["x-amzn-bedrock-agentcore-runtime-session-id"] == conn.session_id
        assert request.query == {"harnessArn": HARNESS_ARN}
        assert request.signed_headers == ["content-type", "host", "x-amz-date", SESSION_HEADER]
    await conn.close()


async def test_an_error_result_and_a_text_in_the_same_resume(fake: FakeHarness, provider: BedrockAgentCore) -> None:
    fake.push(Stream(tool_turn()), Stream(final_turn("sorry")))
    conn = await open_conn(provider)
    first = conn.normalize(await play(conn, TurnInput(text="go")))
    results = (ToolResult(first.tool_uses[0].id, "tool error: down", is_error=True),)
    await play(conn, TurnInput(text="Also: be quick.", tool_uses=first.tool_uses, tool_results=results))
    user = fake.invokes()[1].body["messages"][1]["content"]
    assert user[0]["toolResult"]["status"] == "error" and user[1] == {"text": "Also: be quick."}


async def test_an_index_reused_for_two_tool_ids(fake: FakeHarness, provider: BedrockAgentCore) -> None:
    turn = Turn().start().tool(0, "tool_a", "lookup", '{"q": "a"}').tool(0, "tool_b", "lookup", '{"q":', ' "b"}')
    fake.push(Stream(turn.stop("tool_use").metadata().frames), Stream(final_turn("both")))
    conn = await open_conn(provider)
    first = conn.normalize(await play(conn, TurnInput(text="two lookups")))
    assert [(u.id, dict(u.input)) for u in first.tool_uses] == [("tool_a", {"q": "a"}), ("tool_b", {"q": "b"})]
    results = tuple(ToolResult(u.id, f"result {u.id}") for u in first.tool_uses)
    second = conn.normalize(await play(conn, TurnInput(tool_uses=first.tool_uses, tool_results=results)))
    assert second.text == "both"  # the fake rejects duplicate or unmatched ids with a 400
    echoed = [b["toolUse"]["toolUseId"] for b in fake.invokes()[1].body["messages"][0]["content"]]
    assert echoed == ["tool_a", "tool_b"]


async def test_server_tools_run_on_the_harness_and_are_only_recorded(
    fake: FakeHarness, provider: BedrockAgentCore
) -> None:
    turn = Turn().start().text(0, "Searching.").tool(1, "srv_1", "web_search", '{"q": "x"}', kind="server_tool_use")
    turn.stop("tool_use").start("user").result(0, "srv_1", "3 hits").stop("tool_result")
    turn.start().text(0, "Found ", "3.").stop("end_turn").metadata()
    fake.push(Stream(turn.frames))
    conn = await open_conn(provider)
    result = conn.normalize(await play(conn, TurnInput(text="search")))
    assert (result.terminal, result.text, result.tool_uses) == ("end_turn", "Found 3.", ())
    assert [(u.id, u.name) for u in result.server_tool_uses] == [("srv_1", "web_search")]
    assert len(fake.invokes()) == 1


async def test_unknown_events_are_kept_raw_and_text_streams(fake: FakeHarness, provider: BedrockAgentCore) -> None:
    turn = Turn().start().add("hookEvent", {"hookEventId": "h1", "name": "audit", "type": "before_invocation"})
    turn.text(0, "a", "b").add("futureEvent", {"x": [1]}).stop("end_turn")
    fake.push(Stream(turn.frames, splits=range(0, 2000, 7)))
    conn = await open_conn(provider)
    events = await play(conn, TurnInput(text="hi"))
    assert [e["type"] for e in events] == [f.name for f in turn.frames]
    assert [conn.text_delta(e) for e in events if conn.text_delta(e)] == ["a", "b"]
    result = conn.normalize(events)
    assert result.text == "ab" and {"type": "futureEvent", "futureEvent": {"x": [1]}} in result.events


async def test_events_arrive_while_the_stream_is_still_open(fake: FakeHarness, provider: BedrockAgentCore) -> None:
    gate = threading.Event()
    fake.push(Stream(final_turn("x"), hold=gate))
    conn = await open_conn(provider)
    stream = conn.turn(TurnInput(text="hi"))
    first = await anext(stream)  # the server holds the rest of the body until the gate opens
    assert first["type"] == "messageStart" and not gate.is_set()
    gate.set()
    assert [e async for e in stream][-1]["type"] == "metadata"


async def test_a_mid_stream_exception_is_raised_typed_and_never_retried(
    fake: FakeHarness, provider: BedrockAgentCore, sleeps: Sleeps
) -> None:
    frames = [*Turn().start().text(0, "partial").frames, exception("validationException", "Input is too long")]
    fake.push(Stream(frames))
    conn = await open_conn(provider)
    seen: list[Mapping[str, Any]] = []

    async def consume() -> None:
        async for event in conn.turn(TurnInput(text="big")):
            seen.append(event)

    with pytest.raises(wire.ContextOverflowError) as caught:
        await consume()
    assert caught.value.session_id == conn.session_id and not caught.value.retryable
    assert [e["type"] for e in seen] == ["messageStart", "contentBlockDelta", "contentBlockStop"]
    assert len(fake.invokes()) == 1 and sleeps.delays == []


@pytest.mark.parametrize("end", ["clean", "drop", "corrupt"])
async def test_a_cut_stream_is_replayed_then_succeeds(
    fake: FakeHarness, provider: BedrockAgentCore, sleeps: Sleeps, end: str
) -> None:
    cut = Turn().start().text(0, "lost ", "text").frames
    if end == "corrupt":
        fake.push(Stream(final_turn("lost"), corrupt=2))
    else:
        fake.push(Stream(cut, end=end, cut_at=sum(len(f.encode()) for f in cut) - 3))
    fake.push(Stream(final_turn("kept")))
    conn = await open_conn(provider)
    events = await play(conn, TurnInput(text="hi"))
    markers = [e for e in events if e["type"] == wire.RETRY_EVENT]
    assert len(markers) == 1 and markers[0]["attempt"] == 1
    result = conn.normalize(events)
    assert (result.terminal, result.text) == ("end_turn", "kept")
    assert len(fake.invokes()) == 2 and len(sleeps.delays) == 1
    assert fake.invokes()[0].body == fake.invokes()[1].body


async def test_a_stream_that_never_stops_is_an_error_after_bounded_retries(
    fake: FakeHarness, provider: BedrockAgentCore
) -> None:
    for _ in range(3):
        fake.push(Stream(Turn().start().text(0, "no stop").frames))
    conn = await open_conn(provider)
    with pytest.raises(wire.TruncatedStreamError, match="3 times") as caught:
        await play(conn, TurnInput(text="hi"))
    assert isinstance(caught.value, ConnectionLost) and caught.value.delivered is True
    assert len(fake.invokes()) == 3


async def test_an_idle_stream_times_out_and_is_replayed(fake: FakeHarness, sleeps: Sleeps) -> None:
    fake.push(Stream(final_turn("slow"), pause=1.0), Stream(final_turn("fast")))
    async with make_provider(fake, sleeps, idle_timeout=0.3, stream_retries=1) as provider:
        conn = await open_conn(provider)
        assert conn.normalize(await play(conn, TurnInput(text="hi"))).text == "fast"


async def test_max_iterations_exceeded_terminates_with_the_partial_text(
    fake: FakeHarness, provider: BedrockAgentCore
) -> None:
    fake.push(Stream(final_turn("Half ", "way", stop="max_iterations_exceeded")))
    conn = await open_conn(provider)
    result = conn.normalize(await play(conn, TurnInput(text="loop")))
    assert (result.terminal, result.stop_reason, result.text) == ("terminated", "max_iterations_exceeded", "Half way")


async def test_throttling_then_success(fake: FakeHarness, provider: BedrockAgentCore, sleeps: Sleeps) -> None:
    fake.push(Fail(429, "ThrottlingException", "Rate exceeded"), Fail(503, "ServiceUnavailableException"), Drop())
    fake.push(Stream(final_turn("finally")))
    async with make_provider(fake, sleeps, max_attempts=4, backoff=1.0, max_backoff=3.0) as patient:
        conn = await open_conn(patient)
        assert conn.normalize(await play(conn, TurnInput(text="hi"))).text == "finally"
    assert len(fake.invokes()) == 4
    assert len(sleeps.delays) == 3 and all(0.5 <= d <= 3.0 for d in sleeps.delays) and sleeps.delays[2] >= 1.5


async def test_throttling_exhausted(fake: FakeHarness, provider: BedrockAgentCore, sleeps: Sleeps) -> None:
    fake.push(*[Fail(429, "ThrottlingException", "Rate exceeded")] * 3)
    conn = await open_conn(provider)
    with pytest.raises(wire.ThrottlingError, match="Rate exceeded") as caught:
        await play(conn, TurnInput(text="hi"))
    error = caught.value
    assert (error.status, error.error_type, error.retryable, error.session_id) == (
        429,
        "ThrottlingException",
        True,
        conn.session_id,
    )
    assert len(fake.invokes()) == 3 and len(sleeps.delays) == 2


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (Fail(403, "AccessDeniedException", "not allowed"), wire.AccessDeniedError),
        (Fail(404, "ResourceNotFoundException", "no harness"), wire.ResourceNotFoundError),
        (Fail(424, "RuntimeClientError", "runtime"), wire.RuntimeClientError),
    ],
)
async def test_client_errors_are_typed_and_not_retried(
    fake: FakeHarness, provider: BedrockAgentCore, reply: Fail, error: type[HostError]
) -> None:
    fake.push(reply)
    conn = await open_conn(provider)
    with pytest.raises(error) as caught:
        await play(conn, TurnInput(text="hi"))
    assert caught.value.status == reply.status and not caught.value.retryable and len(fake.invokes()) == 1


async def test_a_wrong_secret_is_rejected_by_signature(fake: FakeHarness, sleeps: Sleeps) -> None:
    async with make_provider(fake, sleeps, credentials={"access_key": ACCESS_KEY, "secret_key": "wrong"}) as bad:
        conn = await open_conn(bad)
        with pytest.raises(wire.AuthenticationError, match="signature") as caught:
            await play(conn, TurnInput(text="hi"))
    assert (caught.value.status, caught.value.error_type) == (403, "InvalidSignatureException")
    assert len(fake.invokes()) == 1 and fake.script == type(fake.script)()


async def test_temporary_credentials_sign_the_security_token(sleeps: Sleeps) -> None:
    with FakeHarness(token="session-token-123") as fake:
        fake.push(Stream(final_turn("ok")))
        async with make_provider(fake, sleeps) as provider:
            conn = await open_conn(provider)
            assert conn.normalize(await play(conn, TurnInput(text="hi"))).text == "ok"
        assert "x-amz-security-token" in fake.invokes()[0].signed_headers


async def test_default_credential_chain(fake: FakeHarness, sleeps: Sleeps, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    fake.push(Stream(final_turn("from env")))
    async with make_provider(fake, sleeps, credentials=None) as provider:
        conn = await open_conn(provider)
        assert conn.normalize(await play(conn, TurnInput(text="hi"))).text == "from env"


async def test_qualifier_and_user_id(fake: FakeHarness, sleeps: Sleeps) -> None:
    async with make_provider(fake, sleeps, qualifier="prod_v2") as provider:
        conn = await provider.open_session(OpenRequest(options={"runtime_user_id": "user-7", "max_iterations": 4}))
        await play(conn, TurnInput(text="hi"))
    request = fake.invokes()[0]
    assert request.query == {"harnessArn": HARNESS_ARN, "qualifier": "prod_v2"}
    assert request.headers["x-amzn-bedrock-agentcore-runtime-user-id"] == "user-7"
    assert "x-amzn-bedrock-agentcore-runtime-user-id" in request.signed_headers
    assert request.body["maxIterations"] == 4 and "tools" not in request.body


async def test_session_ids(fake: FakeHarness, provider: BedrockAgentCore) -> None:
    given_id = "resumed-session-0123456789abcdef0123456789"
    conn = await provider.open_session(OpenRequest(session_id=given_id))
    assert conn.resumed and conn.session_id == given_id
    await play(conn, TurnInput(text="again"))
    assert fake.invokes()[0].headers["x-amzn-bedrock-agentcore-runtime-session-id"] == given_id
    for bad in ("short", "x" * 101, "bad id with spaces but long enough to pass 33"):
        with pytest.raises(ValueError, match="session id"):
            await provider.open_session(OpenRequest(session_id=bad))
    fresh = await provider.open_session(OpenRequest())
    assert not fresh.resumed and len(fresh.session_id) == 36 and fresh.session_id != given_id


async def test_a_resumed_session_answers_tool_uses_it_did_not_see(
    fake: FakeHarness, provider: BedrockAgentCore
) -> None:
    fake.push(Stream(tool_turn()), Stream(final_turn("answered")))
    conn = await open_conn(provider)
    first = conn.normalize(await play(conn, TurnInput(text="go")))
    other = await provider.open_session(OpenRequest(session_id=conn.session_id, tools=(WEATHER,)))
    assert await other.recover(set()) == type(await other.recover(set()))()
    results = (ToolResult(first.tool_uses[0].id, "21C"),)
    result = other.normalize(await play(other, TurnInput(tool_uses=first.tool_uses, tool_results=results)))
    assert result.text == "answered"
    with pytest.raises(ConnectionLost):
        await other.recover(set())


async def test_the_fake_holds_the_resume_contract(fake: FakeHarness, provider: BedrockAgentCore) -> None:
    fake.push(Stream(tool_turn()))
    conn = await open_conn(provider)
    first = conn.normalize(await play(conn, TurnInput(text="go")))
    wrong = first.tool_uses[0].__class__("tooluse_other", "get_weather", {})
    with pytest.raises(wire.ValidationError, match="pending"):
        await play(conn, TurnInput(tool_uses=(wrong,), tool_results=(ToolResult("tooluse_other", "x"),)))


async def test_confirmations_and_empty_inputs_are_refused(fake: FakeHarness, provider: BedrockAgentCore) -> None:
    conn = await open_conn(provider)
    with pytest.raises(HostError, match="confirmation"):
        await play(conn, TurnInput(confirmations=(Confirmation("t1", allow=True),)))
    with pytest.raises(HostError, match="nothing to send"):
        await play(conn, None)
    assert fake.invokes() == []


async def test_provider_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="region"):
        BedrockAgentCore(region="eu-west-1", harness_arn=HARNESS_ARN)
    with pytest.raises(ValueError, match="harness ARN"):
        BedrockAgentCore(region=REGION, harness_arn="arn:aws:bedrock:us-west-2:1:agent/x")
    provider = BedrockAgentCore(harness_arn=HARNESS_ARN)
    assert provider.region == REGION
    assert provider.cache_scope() == f"bedrock:{REGION}:https://bedrock-agentcore.{REGION}.amazonaws.com"
    with pytest.raises(ValueError, match="harness_arn"):
        await BedrockAgentCore(region=REGION).open_session(OpenRequest())


def test_botocore_is_optional_and_never_imported_by_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    code = "import loophost, loophost.client, loophost.client.providers._bedrock, sys; print('botocore' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
    for name in [m for m in sys.modules if m == "botocore" or m.startswith("botocore.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "botocore", None)
    with pytest.raises(ImportError, match=r"pip install 'loophost\[bedrock\]'"):
        BedrockAgentCore(region=REGION)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.integers(min_value=1, max_value=600), max_size=25))
def test_any_chunking_over_http_gives_the_same_turn(fake: FakeHarness, sleeps: Sleeps, splits: list[int]) -> None:
    frames = tool_turn("tooluse_split", "lookup", "Splitting.")

    async def scenario() -> list[Mapping[str, Any]]:
        fake.push(Stream(frames, splits=splits))
        async with make_provider(fake, sleeps) as provider:
            conn = await open_conn(provider)
            return await play(conn, TurnInput(text="go"))

    events = asyncio.run(scenario())
    assert [e["type"] for e in events] == [f.name for f in frames]
    result = wire.turn_result(events)
    assert result.text == "Splitting." and [dict(u.input) for u in result.tool_uses] == [{"city": "Paris"}]
