"""MCP toolsets with vault credentials, end to end: the official SDK drives a real `loophost serve`, whose sessions
connect to real MCP servers (the `mcp` SDK's FastMCP on loopback, bearer auth). Lists and calls tools with
always_allow, asks and is confirmed or denied, survives a bad token and a server that is down, and never shows a
secret (the sweep at the end)."""

from __future__ import annotations

import secrets as random
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest

from ._mcp_server import McpTestServer
from ._sweep import LoggedServer, Recorder, assert_no_secret, start_logged_server
from .test_events_api import is_idle, message, read_until, uid

TOKEN = f"mcp-token-{random.token_hex(12)}"
OTHER_TOKEN = f"mcp-other-{random.token_hex(12)}"
WRONG = f"mcp-wrong-{random.token_hex(12)}"


@pytest.fixture(scope="module")
def calc() -> Iterator[McpTestServer]:
    server = McpTestServer("calc", {TOKEN}).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def second() -> Iterator[McpTestServer]:
    server = McpTestServer("second", {OTHER_TOKEN}).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def loophost(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoggedServer]:
    server = start_logged_server(tmp_path_factory.mktemp("mcp-loophost"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def client(loophost: LoggedServer, recorder: Recorder) -> Iterator[anthropic.Anthropic]:
    with recorder.client(loophost.url) as c:
        yield c


def vault_for(client: anthropic.Anthropic, *servers: tuple[str, str]) -> str:
    """A vault holding a static bearer credential per (url, token)."""
    vault = client.beta.vaults.create(display_name=uid("vault"))
    for url, token in servers:
        client.beta.vaults.credentials.create(
            vault.id, auth={"type": "static_bearer", "mcp_server_url": url, "token": token}
        )
    return vault.id


def mcp_session(
    client: anthropic.Anthropic,
    servers: list[tuple[str, str]],
    vault_id: str | None,
    *,
    policy: str | None = None,
    configs: list[dict[str, Any]] | None = None,
) -> str:
    toolsets: list[dict[str, Any]] = []
    for name, _ in servers:
        toolset: dict[str, Any] = {"type": "mcp_toolset", "mcp_server_name": name}
        if policy is not None:
            toolset["default_config"] = {"permission_policy": {"type": policy}}
        if configs is not None:
            toolset["configs"] = configs
        toolsets.append(toolset)
    agent = client.beta.agents.create(
        name=uid("agent"),
        model="scripted",
        mcp_servers=[{"type": "url", "name": name, "url": url} for name, url in servers],
        tools=toolsets,  # type: ignore[arg-type]
    )
    env = client.beta.environments.create(name=uid("env"))
    return client.beta.sessions.create(
        agent=agent.id, environment_id=env.id, vault_ids=[vault_id] if vault_id else []
    ).id


def turn(client: anthropic.Anthropic, session_id: str, text: str, *, until: str = "end_turn") -> list[Any]:
    with client.beta.sessions.events.stream(session_id, timeout=60) as stream:
        client.beta.sessions.events.send(session_id, events=[message(text)])
        return read_until(stream, is_idle(until), timeout=60)


def reply(events: list[Any]) -> str:
    return "\n".join(b.text for e in events if e.type == "agent.message" for b in e.content)


def of(events: list[Any], kind: str) -> list[Any]:
    return [e for e in events if e.type == kind]


def test_lists_and_calls_with_always_allow(client: anthropic.Anthropic, calc: McpTestServer) -> None:
    vault = vault_for(client, (calc.url, TOKEN))
    session = mcp_session(
        client, [("calc", calc.url)], vault, policy="always_allow", configs=[{"name": "hidden", "enabled": False}]
    )
    before = len(calc.calls)
    events = turn(client, session, 'call add {"a": 2, "b": 3}')
    (use,) = of(events, "agent.mcp_tool_use")
    assert (use.name, use.mcp_server_name, use.input) == ("add", "calc", {"a": 2, "b": 3})
    assert use.evaluated_permission == "allow"
    assert use.evaluation is not None and use.evaluation.type == "always_allow"
    (result,) = of(events, "agent.mcp_tool_result")
    assert result.mcp_tool_use_id == use.id
    assert result.is_error is False
    assert [b.text for b in result.content] == ["5"]
    assert reply(events) == "add: 5"
    assert calc.calls[before:] == [("add", {"a": 2, "b": 3})]
    # the listed tools are what the model is offered; a disabled one is not among them
    events = turn(client, session, 'call hidden {"text": "x"}')
    assert not of(events, "agent.mcp_tool_result")
    assert "Available tools: add, echo." in reply(events)
    assert len(calc.calls) == before + 1
    # the connection is reused by the next turn
    events = turn(client, session, 'call echo {"text": "again"}')
    assert reply(events) == "echo: calc says again"


def test_always_ask_is_confirmed(client: anthropic.Anthropic, calc: McpTestServer) -> None:
    session = mcp_session(client, [("calc", calc.url)], vault_for(client, (calc.url, TOKEN)))
    before = len(calc.calls)
    events = turn(client, session, 'call add {"a": 20, "b": 22}', until="requires_action")
    (use,) = of(events, "agent.mcp_tool_use")
    assert use.evaluated_permission == "ask"
    assert use.evaluation is not None and use.evaluation.type == "always_ask"
    assert events[-1].stop_reason.event_ids == [use.id]
    assert len(calc.calls) == before
    with client.beta.sessions.events.stream(session, timeout=60) as stream:
        client.beta.sessions.events.send(
            session, events=[{"type": "user.tool_confirmation", "tool_use_id": use.id, "result": "allow"}]
        )
        events = read_until(stream, is_idle("end_turn"), timeout=60)
    (result,) = of(events, "agent.mcp_tool_result")
    assert (result.mcp_tool_use_id, [b.text for b in result.content]) == (use.id, ["42"])
    assert reply(events) == "add: 42"
    assert calc.calls[before:] == [("add", {"a": 20, "b": 22})]


def test_always_ask_is_denied(client: anthropic.Anthropic, calc: McpTestServer) -> None:
    session = mcp_session(client, [("calc", calc.url)], vault_for(client, (calc.url, TOKEN)))
    before = len(calc.calls)
    events = turn(client, session, 'call echo {"text": "no"}', until="requires_action")
    (use,) = of(events, "agent.mcp_tool_use")
    with client.beta.sessions.events.stream(session, timeout=60) as stream:
        client.beta.sessions.events.send(
            session,
            events=[
                {"type": "user.tool_confirmation", "tool_use_id": use.id, "result": "deny", "deny_message": "not now"}
            ],
        )
        events = read_until(stream, is_idle("end_turn"), timeout=60)
    (result,) = of(events, "agent.mcp_tool_result")
    assert result.is_error is True
    assert [b.text for b in result.content] == ["not now"]
    assert reply(events) == "echo failed: not now"
    assert len(calc.calls) == before


def test_bad_token_is_an_auth_error_and_the_session_goes_on(client: anthropic.Anthropic, calc: McpTestServer) -> None:
    session = mcp_session(client, [("calc", calc.url)], vault_for(client, (calc.url, WRONG)), policy="always_allow")
    before = len(calc.calls)
    events = turn(client, session, 'call add {"a": 1, "b": 1}')
    (error,) = of(events, "session.error")
    assert error.error.type == "mcp_authentication_failed_error"
    assert error.error.mcp_server_name == "calc"  # type: ignore[attr-defined]
    assert "401" in error.error.message
    assert "add failed: Unknown tool name" in reply(events)
    assert len(calc.calls) == before
    events = turn(client, session, "still there?")
    assert reply(events) == "echo: still there?"
    assert client.beta.sessions.retrieve(session).status == "idle"


def test_no_credential_connects_without_one(client: anthropic.Anthropic, calc: McpTestServer) -> None:
    session = mcp_session(client, [("calc", calc.url)], None, policy="always_allow")
    events = turn(client, session, 'call add {"a": 1, "b": 1}')
    assert of(events, "session.error")[0].error.type == "mcp_authentication_failed_error"


def test_server_down_then_up(client: anthropic.Anthropic) -> None:
    flaky = McpTestServer("flaky", {TOKEN}).start()
    url = flaky.url
    flaky.stop()
    try:
        session = mcp_session(client, [("flaky", url)], vault_for(client, (url, TOKEN)), policy="always_allow")
        events = turn(client, session, 'call echo {"text": "hi"}')
        (error,) = of(events, "session.error")
        assert error.error.type == "mcp_connection_failed_error"
        assert error.error.mcp_server_name == "flaky"  # type: ignore[attr-defined]
        assert "echo failed: Unknown tool name" in reply(events)
        flaky.start()
        events = turn(client, session, 'call echo {"text": "hi"}')
        assert not of(events, "session.error")
        assert reply(events) == "echo: flaky says hi"
    finally:
        flaky.stop()


def test_two_servers_sharing_a_tool_name(
    client: anthropic.Anthropic, calc: McpTestServer, second: McpTestServer
) -> None:
    vault = vault_for(client, (calc.url, TOKEN), (second.url, OTHER_TOKEN))
    session = mcp_session(client, [("calc", calc.url), ("second", second.url)], vault, policy="always_allow")
    script = 'call calc.echo {"text": "a"}\ncall second.echo {"text": "b"}\ncall second.add {"a": 1, "b": 2}'
    events = turn(client, session, script)
    uses = of(events, "agent.mcp_tool_use")
    assert [(u.mcp_server_name, u.name) for u in uses] == [("calc", "echo"), ("second", "echo"), ("second", "add")]
    results = {r.mcp_tool_use_id: r.content[0].text for r in of(events, "agent.mcp_tool_result")}
    assert [results[u.id] for u in uses] == ["calc says a", "second says b", "3"]
    assert reply(events).splitlines() == ["calc__echo: calc says a", "second__echo: second says b", "second__add: 3"]


def test_zz_secret_sweep(loophost: LoggedServer, recorder: Recorder) -> None:
    assert_no_secret([TOKEN, OTHER_TOKEN, WRONG], server=loophost, recorder=recorder)
