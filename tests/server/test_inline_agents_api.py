"""Inline agents over HTTP with the official SDK (spec-2 §3.1-3.3, `multiagent_20261001.subagents.inline_agents`):
a coordinator on the scripted model defines an agent in its delegation call, `send_to_agent {"agent": {"name":
...}, "message": ...}`; it runs on a child thread whose agent is the SDK's `{type: "inline", ...}`, and a later call
with its name continues that thread. Where inline agents are not allowed, or the name is a roster agent's, the
model gets an error result and no thread is made."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest

from .conftest import KEY_A, ServerProcess
from .test_events_api import is_idle, message, read_until, uid


@pytest.fixture
def strict(server: ServerProcess) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=server.url, api_key=KEY_A, max_retries=0, _strict_response_validation=True) as c:
        yield c


def _send(agent: str | dict[str, Any], text: str) -> str:
    return "call send_to_agent " + json.dumps({"agent": agent, "message": text})


def _session(client: anthropic.Anthropic, multiagent: dict[str, Any]) -> str:
    lead = client.beta.agents.create(name=uid("lead"), model="scripted", multiagent=multiagent)  # type: ignore[arg-type]
    env = client.beta.environments.create(name=uid("env"))
    return client.beta.sessions.create(agent=lead.id, environment_id=env.id).id


def _turn(client: anthropic.Anthropic, sid: str, prompt: str) -> tuple[list[Any], list[str]]:
    """One turn of the coordinator: its events, and the lines of its final message (one per call)."""
    with client.beta.sessions.events.stream(sid, timeout=30) as stream:
        client.beta.sessions.events.send(sid, events=[message(prompt)])
        events = read_until(stream, is_idle("end_turn"))
    (said,) = [e.content[0].text for e in events if e.type == "agent.message"]
    return events, re.split(r"\n(?=(?:list_agents|send_to_agent)[: ])", said)


POET = {"name": "poet", "system": "You write verse.", "description": "writes poems"}


def test_an_inline_agent_is_defined_answers_and_goes_on(strict: anthropic.Anthropic) -> None:
    # the default multiagent config: subagents enabled with inline agents, no predefined agent, no advisor
    sid = _session(strict, {"type": "multiagent_20261001"})
    events, (listed, answer) = _turn(strict, sid, "call list_agents {}\n" + _send(POET, "a haiku"))
    listing = json.loads(listed.removeprefix("list_agents: "))
    assert listing["agents"] == []
    assert listing["inline_agents"]["allowed"] is True
    assert answer == "send_to_agent: echo: a haiku"  # the scripted inline agent answers like any other
    assert "agent.tool_use" not in [e.type for e in events]  # delegations show as thread events only
    (created,) = [e for e in events if e.type == "session.thread_created"]
    assert created.agent_name == "poet"
    (sent,) = [e for e in events if e.type == "agent.thread_message_sent"]
    assert (sent.to_session_thread_id, sent.to_agent_name) == (created.session_thread_id, "poet")
    # the thread: the SDK's inline agent shape (no id or version; the coordinator's model by default; no tools)
    threads = strict.beta.sessions.threads.list(sid).data
    assert [t.parent_thread_id is None for t in threads] == [True, False]
    child = threads[1]
    assert child.id == created.session_thread_id
    agent = child.agent.model_dump(mode="json")
    assert agent["type"] == "inline"
    assert "id" not in agent and "version" not in agent
    assert (agent["name"], agent["model"]["id"], agent["system"]) == ("poet", "scripted", "You write verse.")
    assert agent["description"] == "writes poems"
    assert (agent["tools"], agent["skills"], agent["mcp_servers"]) == ([], [], [])
    assert agent["execution_identity"] == {"type": "service_account"}
    assert strict.beta.sessions.threads.retrieve(child.id, session_id=sid).agent == child.agent
    assert child.usage is not None and (child.usage.input_tokens or 0) > 0
    # a second definition with the same name, then the plain name: both continue the same thread
    again, (answer,) = _turn(strict, sid, _send({"name": "poet"}, "another"))
    assert answer == "send_to_agent: echo: another"
    _, (answer,) = _turn(strict, sid, _send("poet", "a third"))
    assert answer == "send_to_agent: echo: a third"
    assert "session.thread_created" not in [e.type for e in again]
    assert [t.id for t in strict.beta.sessions.threads.list(sid).data] == [threads[0].id, child.id]
    log = list(strict.beta.sessions.threads.events.list(child.id, session_id=sid))
    asked = [getattr(e.content[0], "text", None) for e in log if e.type == "agent.thread_message_received"]
    assert asked == ["a haiku", "another", "a third"]
    # a definition contradicting the thread's is refused; another name is another thread with its own model
    _, (refused,) = _turn(strict, sid, _send({"name": "poet", "system": "You write prose."}, "x"))
    assert refused.startswith("send_to_agent failed: ") and "another definition" in refused
    _, (answer,) = _turn(strict, sid, _send({"name": "critic", "model": "scripted"}, "judge it"))
    assert answer == "send_to_agent: echo: judge it"
    names = [t.agent.name for t in strict.beta.sessions.threads.list(sid).data[1:] if t.agent.type == "inline"]
    assert names == ["poet", "critic"]


@pytest.mark.parametrize(
    ("multiagent", "why"),
    [
        ({"type": "coordinator", "agents": ["WRITER"]}, "coordinator"),
        (
            {
                "type": "multiagent_20261001",
                "subagents": {
                    "type": "enabled",
                    "inline_agents": {"type": "disabled"},
                    "predefined_agents": ["WRITER"],
                },
            },
            "inline agents are disabled",
        ),
        (
            {
                "type": "multiagent_20261001",
                "advisor": {"type": "enabled", "model": "scripted"},
                "subagents": {"type": "disabled"},
            },
            "subagents are disabled",
        ),
    ],
    ids=["coordinator", "inline_disabled", "subagents_disabled"],
)
def test_where_inline_agents_are_not_allowed_a_definition_is_an_error_result(
    strict: anthropic.Anthropic, multiagent: dict[str, Any], why: str
) -> None:
    writer = strict.beta.agents.create(name=uid("writer"), model="scripted")
    body = json.loads(json.dumps(multiagent).replace('"WRITER"', json.dumps(writer.id)))
    sid = _session(strict, body)
    events, (listed, refused) = _turn(strict, sid, "call list_agents {}\n" + _send(POET, "a haiku"))
    inline = json.loads(listed.removeprefix("list_agents: "))["inline_agents"]
    assert inline["allowed"] is False and why in inline["why"]
    assert refused.startswith("send_to_agent failed: You cannot define inline agents here") and why in refused
    assert "session.thread_created" not in [e.type for e in events]
    assert len(strict.beta.sessions.threads.list(sid).data) == 1  # the primary thread only


def test_an_inline_name_of_a_roster_agent_is_an_error_result(strict: anthropic.Anthropic) -> None:
    writer = strict.beta.agents.create(name=uid("writer"), model="scripted")
    sid = _session(
        strict,
        {"type": "multiagent_20261001", "subagents": {"type": "enabled", "predefined_agents": [writer.id]}},
    )
    prompt = "\n".join(
        [
            _send({"name": writer.name}, "clash by name"),
            _send({"name": writer.id}, "clash by id"),
            _send({"name": "poet", "tools": [{"type": "agent_toolset_20260401"}]}, "with tools"),
        ]
    )
    events, said = _turn(strict, sid, prompt)
    assert said[0].startswith("send_to_agent failed: ") and "names an agent of your roster" in said[0]
    assert said[1].startswith("send_to_agent failed: ") and "names an agent of your roster" in said[1]
    assert said[2].startswith("send_to_agent failed: Invalid inline agent") and "tools" in said[2]
    assert "session.thread_created" not in [e.type for e in events]
    assert len(strict.beta.sessions.threads.list(sid).data) == 1
    # the roster agent itself is still reached by its name
    _, (answer,) = _turn(strict, sid, _send(writer.name, "hello"))
    assert answer == "send_to_agent: echo: hello"


def test_under_a_budget_an_inline_model_without_a_list_price_is_an_error_result(strict: anthropic.Anthropic) -> None:
    lead = strict.beta.agents.create(name=uid("lead"), model="scripted", multiagent={"type": "multiagent_20261001"})
    env = strict.beta.environments.create(name=uid("env"))
    budget = {"type": "limit", "max_list_cost": {"amount": "100000", "currency": "USD"}}
    sid = strict.beta.sessions.create(agent=lead.id, environment_id=env.id, budget=budget).id  # type: ignore[arg-type]
    prompt = "\n".join([_send({"name": "pricey", "model": "no-such-priced-model"}, "x"), _send(POET, "a haiku")])
    events, said = _turn(strict, sid, prompt)
    assert said[0].startswith("send_to_agent failed: ") and "no list price" in said[0]
    assert said[1] == "send_to_agent: echo: a haiku"  # (the coordinator's own model, which has a price)
    (created,) = [e for e in events if e.type == "session.thread_created"]
    assert created.agent_name == "poet"


def test_inline_threads_count_in_the_limit_of_25(strict: anthropic.Anthropic) -> None:
    """Definitions in one response count together: the 26th thread is an error result."""
    sid = _session(strict, {"type": "multiagent_20261001"})
    _, said = _turn(strict, sid, "\n".join(_send({"name": f"a{n}"}, f"m{n}") for n in range(26)))
    assert said[:25] == [f"send_to_agent: echo: m{n}" for n in range(25)]
    assert said[25] == "send_to_agent failed: At most 25 threads per session."
    assert len(strict.beta.sessions.threads.list(sid).data) == 26  # the primary thread and 25 children
