"""Multiagent threads over HTTP with the official SDK (spec-2 §3.2-3.3): a coordinator on the scripted model
delegates with `send_to_agent` to roster agents, each on a child thread of its own, in parallel; a child's custom
tool call is cross-posted on the primary stream and answered there; thread list, retrieve, events, stream,
archive; interrupts of one thread and of all."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest

from .conftest import KEY_A, ServerProcess
from .test_events_api import LOOKUP_TOOL, is_idle, message, read_until, uid


@pytest.fixture
def strict(server: ServerProcess) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=server.url, api_key=KEY_A, max_retries=0, _strict_response_validation=True) as c:
        yield c


def _team(client: anthropic.Anthropic) -> tuple[str, Any, Any]:
    """A coordinator session whose roster is a researcher (with a custom tool) and a writer."""
    researcher = client.beta.agents.create(
        name=uid("researcher"),
        model="scripted",
        description="finds things",
        tools=[LOOKUP_TOOL],  # type: ignore[list-item]
    )
    writer = client.beta.agents.create(name=uid("writer"), model="scripted", description="writes")
    lead = client.beta.agents.create(
        name=uid("lead"), model="scripted", multiagent={"type": "coordinator", "agents": [researcher.id, writer.id]}
    )
    env = client.beta.environments.create(name=uid("env"))
    return client.beta.sessions.create(agent=lead.id, environment_id=env.id).id, researcher, writer


def _send(agent: Any, text: str) -> str:
    return "call send_to_agent " + json.dumps({"agent": agent.name, "message": text})


def test_parallel_delegation_with_a_cross_posted_custom_tool(strict: anthropic.Anthropic) -> None:
    sid, researcher, writer = _team(strict)
    with strict.beta.sessions.events.stream(sid, timeout=30) as stream:
        prompt = "\n".join([_send(researcher, 'call lookup {"q": "tides"}'), _send(writer, "draft it")])
        strict.beta.sessions.events.send(sid, events=[message(prompt)])
        first = read_until(stream, is_idle("requires_action"))
        types = [e.type for e in first]
        assert "agent.tool_use" not in types  # delegations are shown by the thread events only
        assert types.count("session.thread_created") == 2
        assert types.count("agent.thread_message_sent") == 2
        (use,) = [e for e in first if e.type == "agent.custom_tool_use"]  # cross-posted from the researcher
        assert use.name == "lookup"
        assert use.session_thread_id is not None
        assert first[-1].stop_reason.event_ids == [use.id]
        answer = strict.beta.sessions.events.send(
            sid,
            events=[
                {
                    "type": "user.custom_tool_result",
                    "custom_tool_use_id": use.id,
                    "content": [{"type": "text", "text": "high"}],
                }
            ],
        )
        assert answer.data is not None
        rest = read_until(stream, is_idle("end_turn"))
    received = {
        e.from_session_thread_id: e.content[0].text
        for e in [*first, *rest]
        if e.type == "agent.thread_message_received"
    }
    assert received[use.session_thread_id] == "lookup: high"
    # the answer resumed the researcher's thread: the primary stream shows it running again, then idle
    resumed = [
        e.type
        for e in rest
        if e.type.startswith("session.thread_status_") and e.session_thread_id == use.session_thread_id
    ]
    assert resumed == ["session.thread_status_running", "session.thread_status_idle"]
    assert "echo: draft it" in received.values()
    final = [e.content[0].text for e in rest if e.type == "agent.message"]
    assert final == ["send_to_agent: lookup: high\nsend_to_agent: echo: draft it"]
    # threads: the primary one and two children, each with its own log and usage
    threads = strict.beta.sessions.threads.list(sid).data
    assert [t.parent_thread_id is None for t in threads] == [True, False, False]
    children = threads[1:]
    assert {t.agent.id for t in children if t.agent.type == "agent"} == {researcher.id, writer.id}
    assert all(t.status == "idle" for t in threads)
    child = next(t for t in children if t.id == use.session_thread_id)
    assert strict.beta.sessions.threads.retrieve(child.id, session_id=sid).id == child.id
    child_log = list(strict.beta.sessions.threads.events.list(child.id, session_id=sid))
    child_events = [e.type for e in child_log]
    # the coordinator's message, as the thread's own log shows it: received from the primary thread
    assert child_events[0] == "agent.thread_message_received"
    assert "user.message" not in child_events
    assert child_log[0].from_session_thread_id == threads[0].id
    assert child_log[0].from_agent_name is None  # (absent when from the primary agent)
    assert "agent.custom_tool_use" in child_events
    assert child.usage is not None and child.usage.input_tokens > 0
    assert [t.id for t in strict.beta.sessions.threads.list(sid, statuses=["running"]).data] == []
    # archive: a child once idle (twice is a no-op); never the primary
    archived = strict.beta.sessions.threads.archive(child.id, session_id=sid)
    assert archived.archived_at is not None
    assert strict.beta.sessions.threads.archive(child.id, session_id=sid).archived_at == archived.archived_at
    with pytest.raises(anthropic.BadRequestError):
        strict.beta.sessions.threads.archive(threads[0].id, session_id=sid)
    with pytest.raises(anthropic.NotFoundError):
        strict.beta.sessions.threads.retrieve("sthr_nope", session_id=sid)


def test_a_thread_continues_its_own_context_and_streams(strict: anthropic.Anthropic) -> None:
    sid, _, writer = _team(strict)
    with strict.beta.sessions.events.stream(sid, timeout=30) as stream:
        strict.beta.sessions.events.send(sid, events=[message("call list_agents {}\nthen\n" + _send(writer, "one"))])
        read_until(stream, is_idle("end_turn"))
        child = strict.beta.sessions.threads.list(sid).data[1]
        with strict.beta.sessions.threads.events.stream(child.id, session_id=sid, timeout=30) as own:
            strict.beta.sessions.events.send(sid, events=[message(_send(writer, "two"))])
            seen = read_until(own, is_idle("end_turn"))  # the thread's own stream
        events = read_until(stream, is_idle("end_turn"))
    assert [e.content[0].text for e in seen if e.type == "agent.message"] == ["echo: two"]
    assert "session.thread_created" not in [e.type for e in events]  # the writer's thread goes on
    threads = strict.beta.sessions.threads.list(sid).data
    assert len(threads) == 2
    own_log = strict.beta.sessions.threads.events.list(child.id, session_id=sid)
    logged = [e for e in own_log if e.type == "agent.thread_message_received"]
    assert [e.content[0].text for e in logged] == ["one", "two"]


def test_two_calls_to_one_agent_in_a_response_run_one_after_the_other(strict: anthropic.Anthropic) -> None:
    """Both messages reach the agent's one thread, in the response's order, each answered in turn."""
    sid, researcher, writer = _team(strict)
    with strict.beta.sessions.events.stream(sid, timeout=30) as stream:
        prompt = "\n".join([_send(writer, "one"), _send(researcher, "r"), _send(writer, "two")])
        strict.beta.sessions.events.send(sid, events=[message(prompt)])
        events = read_until(stream, is_idle("end_turn"))
    types = [e.type for e in events]
    assert "agent.tool_use" not in types
    assert types.count("session.thread_created") == 2
    sent = [e.content[0].text for e in events if e.type == "agent.thread_message_sent"]
    assert sent.index("one") < sent.index("two")
    final = [e.content[0].text for e in events if e.type == "agent.message"]
    assert final == ["send_to_agent: echo: one\nsend_to_agent: echo: r\nsend_to_agent: echo: two"]
    child = next(t for t in strict.beta.sessions.threads.list(sid).data if t.agent.id == writer.id)
    own_log = strict.beta.sessions.threads.events.list(child.id, session_id=sid)
    received = [e.content[0].text for e in own_log if e.type == "agent.thread_message_received"]
    assert received == ["one", "two"]


def test_every_thread_status_change_shows_on_the_primary_stream(strict: anthropic.Anthropic) -> None:
    """The primary stream is a condensed view of the children: a thread that reschedules (a transient model
    error) shows `rescheduled` then `running` again; a thread whose turn fails for good shows `terminated`."""
    sid, researcher, writer = _team(strict)
    with strict.beta.sessions.events.stream(sid, timeout=30) as stream:
        prompt = "\n".join([_send(researcher, "fail transient 1\nretried"), _send(writer, "fail fatal\nbroken")])
        strict.beta.sessions.events.send(sid, events=[message(prompt)])
        events = read_until(stream, is_idle("end_turn"))
    threads = {e.session_thread_id: e.agent_name for e in events if e.type == "session.thread_created"}
    by_name = {name: tid for tid, name in threads.items()}

    def statuses(name: str) -> list[str]:
        return [
            e.type.removeprefix("session.thread_status_")
            for e in events
            if e.type.startswith("session.thread_status_") and e.session_thread_id == by_name[name]
        ]

    assert statuses(researcher.name) == ["running", "rescheduled", "running", "idle"]
    assert statuses(writer.name) == ["running", "terminated"]
    received = {
        e.from_session_thread_id: e.content[0].text for e in events if e.type == "agent.thread_message_received"
    }
    assert received[by_name[researcher.name]] == "echo: retried"
    assert "terminated" in received[by_name[writer.name]]
    states = {t.id: t.status for t in strict.beta.sessions.threads.list(sid).data}
    assert states[by_name[writer.name]] == "terminated" and states[by_name[researcher.name]] == "idle"


def test_a_thread_whose_retries_ran_out_shows_why_on_the_primary_stream(strict: anthropic.Anthropic) -> None:
    sid, _, writer = _team(strict)
    with strict.beta.sessions.events.stream(sid, timeout=60) as stream:
        strict.beta.sessions.events.send(sid, events=[message(_send(writer, "fail transient 9\nnever"))])
        events = read_until(stream, is_idle("end_turn"), timeout=50)
    (idle,) = [e for e in events if e.type == "session.thread_status_idle"]
    assert idle.stop_reason.type == "retries_exhausted"
    assert [e.type for e in events].count("session.thread_status_rescheduled") >= 1


def test_interrupt_one_thread_then_all(strict: anthropic.Anthropic) -> None:
    sid, researcher, writer = _team(strict)
    with strict.beta.sessions.events.stream(sid, timeout=30) as stream:
        prompt = "\n".join([_send(researcher, "sleep 20000\nslow"), _send(writer, "sleep 20000\nslow too")])
        strict.beta.sessions.events.send(sid, events=[message(prompt)])
        started = read_until(stream, lambda e: e.type == "session.thread_status_running", timeout=20)
        first = started[-1].session_thread_id
        strict.beta.sessions.events.send(sid, events=[{"type": "user.interrupt", "session_thread_id": first}])
        one = read_until(stream, lambda e: e.type == "agent.thread_message_received", timeout=20)
        assert one[-1].from_session_thread_id == first
        assert strict.beta.sessions.retrieve(sid).status == "running"  # the other thread still works
        strict.beta.sessions.events.send(sid, events=[{"type": "user.interrupt"}])
        read_until(stream, is_idle("end_turn"), timeout=20)
    statuses = {t.id: t.status for t in strict.beta.sessions.threads.list(sid).data}
    assert set(statuses.values()) == {"idle"}


def test_threads_of_another_workspace_are_not_found(
    strict: anthropic.Anthropic, other_client: anthropic.Anthropic
) -> None:
    sid, _, writer = _team(strict)
    with strict.beta.sessions.events.stream(sid, timeout=30) as stream:
        strict.beta.sessions.events.send(sid, events=[message(_send(writer, "hi"))])
        read_until(stream, is_idle("end_turn"))
    child = strict.beta.sessions.threads.list(sid).data[1]
    with pytest.raises(anthropic.NotFoundError):
        other_client.beta.sessions.threads.list(sid)
    with pytest.raises(anthropic.NotFoundError):
        other_client.beta.sessions.threads.retrieve(child.id, session_id=sid)
    with pytest.raises(anthropic.NotFoundError):
        other_client.beta.sessions.retrieve(child.id)  # a thread is never a session of anyone's
    with pytest.raises(anthropic.NotFoundError):
        strict.beta.sessions.retrieve(child.id)
    assert child.id not in [s.id for s in strict.beta.sessions.list(limit=100).data]


def test_threads_follow_their_session_into_archive_and_deletion(strict: anthropic.Anthropic) -> None:
    sid, _, writer = _team(strict)
    with strict.beta.sessions.events.stream(sid, timeout=30) as stream:
        strict.beta.sessions.events.send(sid, events=[message(_send(writer, "hi"))])
        read_until(stream, is_idle("end_turn"))
    strict.beta.sessions.archive(sid)
    threads = strict.beta.sessions.threads.list(sid).data
    assert [t.status for t in threads] == ["terminated", "terminated"]
    assert threads[1].archived_at is not None
    strict.beta.sessions.delete(sid)
    with pytest.raises(anthropic.NotFoundError):
        strict.beta.sessions.threads.list(sid)


def _budgeted_team(client: anthropic.Anthropic, budget: Any) -> tuple[str, Any]:
    researcher = client.beta.agents.create(name=uid("researcher"), model="scripted", tools=[LOOKUP_TOOL])  # type: ignore[list-item]
    lead = client.beta.agents.create(
        name=uid("lead"), model="scripted", multiagent={"type": "coordinator", "agents": [researcher.id]}
    )
    env = client.beta.environments.create(name=uid("env"))
    if budget is None:
        return client.beta.sessions.create(agent=lead.id, environment_id=env.id).id, researcher
    return client.beta.sessions.create(agent=lead.id, environment_id=env.id, budget=budget).id, researcher


def _answer_lookup(client: anthropic.Anthropic, sid: str, events: list[Any]) -> None:
    (use,) = [e for e in events if e.type == "agent.custom_tool_use"]
    client.beta.sessions.events.send(
        sid,
        events=[
            {
                "type": "user.custom_tool_result",
                "custom_tool_use_id": use.id,
                "content": [{"type": "text", "text": "ok"}],
            }
        ],
    )


def _cap(cents: int) -> Any:
    return {"type": "limit", "max_list_cost": {"amount": str(cents), "currency": "USD"}}


def test_a_coordinators_budget_counts_its_threads_requests(strict: anthropic.Anthropic) -> None:
    """The cap lies between the coordinator's own first request and that plus its thread's first request: the
    thread's next request waits for the budget, and the whole session pauses; a raise resumes both."""
    prompt = lambda agent: _send(agent, 'call lookup {"q": "x"}')  # noqa: E731
    probe, researcher = _budgeted_team(strict, None)  # the coordinator's first request's cost (1 cent a token)
    with strict.beta.sessions.events.stream(probe, timeout=30) as stream:
        strict.beta.sessions.events.send(probe, events=[message(prompt(researcher))])
        read_until(stream, is_idle("requires_action"))
    usage = strict.beta.sessions.retrieve(probe).usage
    first = (usage.input_tokens or 0) + (usage.output_tokens or 0)
    cap = _cap(first + 1)
    sid, researcher = _budgeted_team(strict, cap)
    with strict.beta.sessions.events.stream(sid, timeout=30) as stream:
        strict.beta.sessions.events.send(sid, events=[message(prompt(researcher))])
        asked = read_until(stream, is_idle("requires_action"))
        _answer_lookup(strict, sid, asked)
        paused = read_until(stream, is_idle("budget_reached"))
        assert not [e for e in paused if e.type == "agent.thread_message_received"]  # the thread did not answer
        (stopped,) = [e for e in paused if e.type == "session.thread_status_idle"]  # the thread's pause, mirrored
        assert stopped.stop_reason.type == "budget_reached"
        usage_events = [e for e in paused if e.type == "session.usage"]
        assert usage_events and usage_events[-1].usage.list_cost is not None
        spent = int(usage_events[-1].usage.list_cost.amount)
        assert spent > first  # the thread's request counted
        session = strict.beta.sessions.retrieve(sid)
        assert session.status == "idle"
        assert session.usage.list_cost is not None and session.usage.list_cost.amount == str(spent)
        (child,) = strict.beta.sessions.threads.list(sid).data[1:]
        assert child.status == "idle"
        with pytest.raises(anthropic.BadRequestError):
            strict.beta.sessions.update(sid, budget=_cap(spent))
        strict.beta.sessions.update(sid, budget=_cap(100000))
        rest = read_until(stream, is_idle("end_turn"))
    assert "session.status_running" in [e.type for e in rest]
    assert "session.thread_status_running" in [e.type for e in rest]  # the thread resumed, mirrored
    assert [e.content[0].text for e in rest if e.type == "agent.message"] == ["send_to_agent: lookup: ok"]
    (ended,) = [e for e in rest if e.type == "session.usage"]  # the turn's end: with the thread's spend
    assert ended.usage.list_cost is not None
    total = strict.beta.sessions.retrieve(sid).usage.list_cost
    assert total is not None and ended.usage.list_cost.amount == total.amount
    assert int(total.amount) > spent
