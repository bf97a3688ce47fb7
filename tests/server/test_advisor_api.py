"""The multiagent advisor over HTTP with the official SDK (spec-2 §3.1-3.3): a coordinator on the scripted model
consults it with `send_to_agent {"agent": "advisor", ...}`; the advisor runs on a child thread whose agent is
`{type: "advisor", model}`, answers the question, keeps its history across consultations, and its usage counts in
the session's."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import anthropic
import pytest

from .conftest import KEY_A, ServerProcess
from .test_events_api import is_idle, message, read_until, uid


@pytest.fixture
def strict(server: ServerProcess) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=server.url, api_key=KEY_A, max_retries=0, _strict_response_validation=True) as c:
        yield c


def _consult(question: str) -> str:
    return "call send_to_agent " + json.dumps({"agent": "advisor", "message": question})


BUDGET = {"type": "limit", "max_list_cost": {"amount": "100000", "currency": "USD"}}


@pytest.mark.parametrize(
    "multiagent",
    [
        {"type": "coordinator", "agents": [{"type": "advisor", "model": "scripted"}]},
        {"type": "multiagent_20261001", "advisor": {"type": "enabled", "model": "scripted"}, "subagents": None},
    ],
    ids=["coordinator", "multiagent_20261001"],
)
def test_the_primary_thread_consults_its_advisor(strict: anthropic.Anthropic, multiagent: dict[str, Any]) -> None:
    lead = strict.beta.agents.create(name=uid("lead"), model="scripted", multiagent=multiagent)  # type: ignore[arg-type]
    env = strict.beta.environments.create(name=uid("env"))
    sid = strict.beta.sessions.create(agent=lead.id, environment_id=env.id, budget=BUDGET).id  # type: ignore[arg-type]
    with strict.beta.sessions.events.stream(sid, timeout=30) as stream:
        strict.beta.sessions.events.send(sid, events=[message("call list_agents {}\n" + _consult("which tide?"))])
        first = read_until(stream, is_idle("end_turn"))
        strict.beta.sessions.events.send(sid, events=[message(_consult("and after that?"))])
        second = read_until(stream, is_idle("end_turn"))
    # the roster the model sees: the advisor, named `advisor`, with its model
    (said,) = [e.content[0].text for e in first if e.type == "agent.message"]
    roster_text, answer = said.split("\nsend_to_agent: ")
    roster = json.loads(roster_text.removeprefix("list_agents: "))["agents"]
    assert [(a["name"], a["model"]) for a in roster] == [("advisor", "scripted")]
    # its answer comes back to the coordinator (the scripted advisor echoes the question)
    assert answer == "echo: which tide?"
    assert [e.content[0].text for e in second if e.type == "agent.message"] == ["send_to_agent: echo: and after that?"]
    types = [e.type for e in first]
    assert "agent.tool_use" not in types  # consultations show as thread events only
    (created,) = [e for e in first if e.type == "session.thread_created"]
    assert created.agent_name == "advisor"
    assert "session.thread_created" not in [e.type for e in second]  # the same thread goes on
    # the thread: `{type: advisor, model}` on the wire, its own log holding both questions
    threads = strict.beta.sessions.threads.list(sid).data
    assert [t.parent_thread_id is None for t in threads] == [True, False]
    advisor = threads[1]
    assert advisor.id == created.session_thread_id
    assert advisor.agent.model_dump(mode="json") == {"type": "advisor", "model": "scripted"}
    assert strict.beta.sessions.threads.retrieve(advisor.id, session_id=sid).agent == advisor.agent
    log = list(strict.beta.sessions.threads.events.list(advisor.id, session_id=sid))
    asked = [getattr(e.content[0], "text", None) for e in log if e.type == "agent.thread_message_received"]
    assert asked == ["which tide?", "and after that?"]
    assert not [e for e in log if e.type in ("agent.tool_use", "agent.custom_tool_use")]  # it has no tools
    # its usage: its own on the thread, and in the session's list cost (the primary's own plus its threads')
    assert (
        advisor.usage is not None and (advisor.usage.input_tokens or 0) > 0 and (advisor.usage.output_tokens or 0) > 0
    )
    primary = threads[0]
    assert primary.usage is not None and primary.usage.list_cost is not None
    assert advisor.usage.list_cost is not None and Decimal(advisor.usage.list_cost.amount) > 0
    total = strict.beta.sessions.retrieve(sid).usage.list_cost
    assert total is not None
    assert Decimal(total.amount) == Decimal(primary.usage.list_cost.amount) + Decimal(advisor.usage.list_cost.amount)
