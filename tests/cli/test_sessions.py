"""`loophost sessions list|show|tail|connect` against a real server; `connect` and `tail` under a pseudo-terminal
(pexpect), as a user types: Enter sends, Esc interrupts, y/n answers a confirmation, a typed line answers a custom
tool, Ctrl-D detaches."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from typing import Any

import anthropic
import pexpect
import pytest
from typer.testing import CliRunner

from loophost.cli import app
from loophost.cli._terminal import Key, parse_keys
from tests.server.conftest import KEY_A, ServerProcess, bash_executions, start_tool_server, stop_server

pytestmark = pytest.mark.timeout(120)

ASKING_BASH = {
    "type": "agent_toolset_20260401",
    "default_config": {"enabled": False},
    "configs": [{"name": "bash", "enabled": True, "permission_policy": {"type": "always_ask"}}],
}


@pytest.fixture(scope="module")
def tool_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_tool_server(tmp_path_factory.mktemp("sessions-cli"))
    yield proc
    stop_server(proc)


@pytest.fixture
def sdk(tool_server: ServerProcess) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=tool_server.url, api_key=KEY_A, max_retries=0) as client:
        yield client


def new_session(sdk: anthropic.Anthropic, name: str, tools: list[Any] | None = None) -> str:
    agent = sdk.beta.agents.create(name=name, model="scripted", tools=tools or [])
    env = sdk.beta.environments.create(name=f"{name}-{time.monotonic_ns()}")
    return sdk.beta.sessions.create(agent=agent.id, environment_id=env.id, title=f"{name} title").id


def say(sdk: anthropic.Anthropic, session_id: str, text: str) -> None:
    sdk.beta.sessions.events.send(
        session_id, events=[{"type": "user.message", "content": [{"type": "text", "text": text}]}]
    )


def wait_idle(sdk: anthropic.Anthropic, session_id: str) -> None:
    deadline = time.monotonic() + 60
    while sdk.beta.sessions.retrieve(session_id).status != "idle":
        assert time.monotonic() < deadline
        time.sleep(0.1)


def spawn(server: ServerProcess, *args: str) -> pexpect.spawn:
    """`loophost ARGS --base-url URL` on a pseudo-terminal, the key from ANTHROPIC_API_KEY (as `loophost run`)."""
    env = {
        **os.environ,
        "ANTHROPIC_API_KEY": KEY_A,
        "PYTHONPATH": os.pathsep.join(sys.path),
        "TERM": "dumb",  # no styles between words: the output reads as the user sees it
        "COLUMNS": "200",
    }
    command = ["-c", "from loophost.cli import main; main()", *args, "--base-url", server.url]
    return pexpect.spawn(sys.executable, command, env=env, encoding="utf-8", timeout=45, dimensions=(50, 200))


def invoke(server: ServerProcess, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        app, [*args, "--base-url", server.url, "--api-key", KEY_A], env={"COLUMNS": "200", "NO_COLOR": "1"}
    )
    return result.exit_code, result.output


def test_connect_replays_then_sends_on_enter_interrupts_on_escape_and_detaches(
    tool_server: ServerProcess, sdk: anthropic.Anthropic
) -> None:
    session_id = new_session(sdk, "connected")
    say(sdk, session_id, "before connecting")
    wait_idle(sdk, session_id)
    child = spawn(tool_server, "sessions", "connect", session_id)
    child.expect("agent echo: before connecting")  # the replay
    child.expect(r"idle \(end_turn\)")
    child.send("typed here\r")
    child.expect("you typed here")
    child.expect("agent echo: typed here")
    child.expect(r"idle \(end_turn\)")
    child.send("sleep 60000\r")
    child.expect("you sleep 60000")
    while sdk.beta.sessions.retrieve(session_id).status != "running":
        time.sleep(0.05)
    child.send("\x1b")  # Esc
    child.expect("interrupt")
    child.expect(r"idle \(end_turn\)")
    child.sendeof()  # Ctrl-D on an empty line detaches
    child.expect("detached")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    types = [e.type for e in sdk.beta.sessions.events.list(session_id)]
    assert types.count("user.message") == 3 and types.count("user.interrupt") == 1
    texts = [b.text for e in sdk.beta.sessions.events.list(session_id) if e.type == "agent.message" for b in e.content]
    assert texts == ["echo: before connecting", "echo: typed here"]  # the slow one was interrupted


def test_connect_asks_allow_or_deny_for_a_pending_confirmation(
    tool_server: ServerProcess, sdk: anthropic.Anthropic
) -> None:
    session_id = new_session(sdk, "confirming", [ASKING_BASH])
    say(sdk, session_id, 'call bash {"command": "echo allowed-here"}')  # parked before connect attaches
    wait_idle(sdk, session_id)
    child = spawn(tool_server, "sessions", "connect", session_id)
    child.expect(r"Allow bash\(\{\"command\": \"echo allowed-here\"\}\)\? \[y/n\]")
    child.send("y")
    child.expect("confirmation: allow")
    child.expect("ran echo allowed-here")
    child.expect("agent bash: ran echo allowed-here")
    child.send('call bash {"command": "echo denied-here"}\r')
    child.expect(r"Allow bash\(\{\"command\": \"echo denied-here\"\}\)\? \[y/n\]")
    child.send("n")
    child.expect("confirmation: deny: The user denied it from the terminal.")
    child.expect(r"idle \(end_turn\)")
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    ran = [line.split(" ", 1)[1] for line in bash_executions(tool_server)]
    assert "echo allowed-here" in ran and "echo denied-here" not in ran


LOOKUP = {"type": "custom", "name": "lookup", "description": "Looks a thing up.", "input_schema": {"type": "object"}}


def test_connect_answers_a_custom_tool_by_hand(tool_server: ServerProcess, sdk: anthropic.Anthropic) -> None:
    session_id = new_session(sdk, "answering", [LOOKUP])
    say(sdk, session_id, 'call lookup {"q": "capital"}\nthen\ncall lookup {"q": "river"}')
    wait_idle(sdk, session_id)
    child = spawn(tool_server, "sessions", "connect", session_id)
    child.expect(r"Result of lookup\(\{\"q\": \"capital\"\}\) \(a leading ! marks an error\): ")
    child.send("Paris\r")
    child.expect(r"Result of lookup\(\{\"q\": \"river\"\}\)")
    child.send("! no such river\r")
    child.expect(r"idle \(end_turn\)")
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    answers = [e.model_dump() for e in sdk.beta.sessions.events.list(session_id) if e.type == "user.custom_tool_result"]
    assert [(a["content"][0]["text"], a["is_error"]) for a in answers] == [("Paris", False), ("no such river", True)]
    texts = [b.text for e in sdk.beta.sessions.events.list(session_id) if e.type == "agent.message" for b in e.content]
    assert texts == ["lookup failed: no such river"]  # the answer to the last step's call


def test_tail_follows_until_the_session_ends(tool_server: ServerProcess, sdk: anthropic.Anthropic) -> None:
    session_id = new_session(sdk, "tailed")
    say(sdk, session_id, "first words")
    wait_idle(sdk, session_id)
    child = spawn(tool_server, "sessions", "tail", session_id)
    child.expect("   1 you first words")  # seq, then the event
    child.expect("agent echo: first words")
    say(sdk, session_id, "live words")
    child.expect("agent echo: live words")
    wait_idle(sdk, session_id)
    sdk.beta.sessions.archive(session_id)  # terminates the session: its stream ends, and tail with it
    child.expect("terminated")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_list_and_show(tool_server: ServerProcess, sdk: anthropic.Anthropic) -> None:
    session_id = new_session(sdk, "shown", [ASKING_BASH])
    say(sdk, session_id, 'call bash {"command": "echo waiting"}')
    wait_idle(sdk, session_id)
    code, out = invoke(tool_server, "sessions", "list", "--limit", "50")
    assert code == 0, out
    row = next(line for line in out.splitlines() if session_id in line)
    assert "idle" in row and "shown v1" in row and "shown title" in row
    code, out = invoke(tool_server, "sessions", "list", "--status", "running")
    assert code == 0 and session_id not in out
    code, out = invoke(tool_server, "sessions", "show", session_id)
    assert code == 0, out
    assert "shown title" in out and "waiting for  bash (sevt_" in out
    code, out = invoke(tool_server, "sessions", "show", session_id, "--json")
    assert code == 0 and f'"id": "{session_id}"' in out
    code, out = invoke(tool_server, "sessions", "show", "sesn_nope")
    assert code == 1 and "404" in out
    result = CliRunner().invoke(app, ["sessions", "list", "--base-url", tool_server.url, "--api-key", "wrong"])
    assert result.exit_code == 1 and "401" in result.output


def test_keys_are_parsed_from_what_the_terminal_sends() -> None:
    assert parse_keys("ab\r") == [Key("char", "a"), Key("char", "b"), Key("enter")]
    assert parse_keys("\x1b") == [Key("escape")]
    assert parse_keys("\x1b[A\x1bOBx") == [Key("char", "x")]  # arrows are dropped whole
    assert parse_keys("a\x7f\x04") == [Key("char", "a"), Key("backspace"), Key("eof")]
