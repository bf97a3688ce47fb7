"""Outcomes over HTTP with the official SDK (spec-2 §4): the grader loop, its span events, the session's
`outcome_evaluations`, `max_iterations`, interrupts during grading, one outcome at a time, file rubrics.

The scripted grader reads `verdict needs_revision|satisfied|failed <explanation>` lines of the rubric as the
verdicts of iterations 0, 1, 2 ... (none left: satisfied); a `sleep MS` line slows every request that sees it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import pytest

from .conftest import KEY_A, ServerProcess
from .test_events_api import is_idle, read_until, uid


@pytest.fixture
def strict(server: ServerProcess) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=server.url, api_key=KEY_A, max_retries=0, _strict_response_validation=True) as c:
        yield c


def _session(client: anthropic.Anthropic, **create: Any) -> str:
    env = client.beta.environments.create(name=uid("env"))
    agent = client.beta.agents.create(name=uid("agent"), model="scripted")
    return client.beta.sessions.create(agent=agent.id, environment_id=env.id, **create).id


def _log_until(client: anthropic.Anthropic, sid: str, stop: Callable[[Any], bool], timeout: float = 20.0) -> list[Any]:
    """The session's stored log once an event matches `stop`."""
    deadline = time.monotonic() + timeout
    while True:
        events = list(client.beta.sessions.events.list(sid))
        if any(stop(e) for e in events):
            return events
        if time.monotonic() > deadline:
            pytest.fail(f"no matching event within {timeout}s; got {[e.type for e in events]}")
        time.sleep(0.05)


def _outcome(rubric: str, *, description: str = "write a haiku", **extra: Any) -> Any:
    return {
        "type": "user.define_outcome",
        "description": description,
        "rubric": {"type": "text", "content": rubric},
        **extra,
    }


def _spans(events: list[Any], kind: str) -> list[Any]:
    return [e for e in events if e.type == f"span.outcome_evaluation_{kind}"]


def test_two_revisions_then_satisfied(strict: anthropic.Anthropic) -> None:
    sid = _session(strict)
    with strict.beta.sessions.events.stream(sid, timeout=30) as stream:
        sent = strict.beta.sessions.events.send(
            sid, events=[_outcome("verdict needs_revision too long\nverdict needs_revision no kigo")]
        )
        echo = sent.data[0]
        assert echo.type == "user.define_outcome"
        outcome_id = echo.outcome_id
        assert outcome_id.startswith("outc_")
        events = read_until(stream, is_idle("end_turn"))
    starts, ends = _spans(events, "start"), _spans(events, "end")
    assert [(s.outcome_id, s.iteration) for s in starts] == [(outcome_id, 0), (outcome_id, 1), (outcome_id, 2)]
    assert [(e.iteration, e.result, e.explanation) for e in ends] == [
        (0, "needs_revision", "too long"),
        (1, "needs_revision", "no kigo"),
        (2, "satisfied", "No verdict line left in the rubric."),
    ]
    assert [e.outcome_evaluation_start_id for e in ends] == [s.id for s in starts]
    assert all(e.usage.input_tokens > 0 and e.usage.output_tokens > 0 for e in ends)
    # each revision turn's input is the grader's explanation; the session never idled in between
    messages = [e.content[0].text for e in events if e.type == "agent.message"]
    assert len(messages) == 3
    assert "too long" in messages[1]
    assert "no kigo" in messages[2]
    assert [e.type for e in events].count("session.status_idle") == 1
    session = strict.beta.sessions.retrieve(sid)
    assert session.status == "idle"
    (evaluation,) = session.outcome_evaluations
    assert (evaluation.outcome_id, evaluation.result, evaluation.iteration) == (outcome_id, "satisfied", 2)
    listed = [e.type for e in strict.beta.sessions.events.list(sid)]  # strict models parse every stored event
    assert listed.count("span.outcome_evaluation_end") == 3
    assert evaluation.completed_at is not None


def test_max_iterations_reached_then_one_final_turn(strict: anthropic.Anthropic) -> None:
    sid = _session(strict)
    with strict.beta.sessions.events.stream(sid, timeout=30) as stream:
        strict.beta.sessions.events.send(
            sid,
            events=[
                _outcome("verdict needs_revision a\nverdict needs_revision b\nverdict satisfied", max_iterations=2)
            ],
        )
        events = read_until(stream, is_idle("end_turn"))
    ends = _spans(events, "end")
    assert [e.result for e in ends] == ["needs_revision", "max_iterations_reached"]
    after = [e for e in events[events.index(ends[-1]) :] if e.type == "agent.message"]
    assert len(after) == 1  # the acknowledgement turn, not graded
    assert len(_spans(events, "start")) == 2
    (evaluation,) = strict.beta.sessions.retrieve(sid).outcome_evaluations
    assert evaluation.result == "max_iterations_reached"


def test_failed_verdict_and_initial_events(strict: anthropic.Anthropic) -> None:
    env = strict.beta.environments.create(name=uid("env"))
    agent = strict.beta.agents.create(name=uid("agent"), model="scripted")
    session = strict.beta.sessions.create(
        agent=agent.id, environment_id=env.id, initial_events=[_outcome("verdict failed not a poem")]
    )
    assert session.outcome_evaluations[0].result == "pending"
    # the turn starts with the create call and may end before a live stream could open, so the log is read
    events = _log_until(strict, session.id, is_idle("end_turn"))
    assert [(e.result, e.explanation) for e in _spans(events, "end")] == [("failed", "not a poem")]
    assert strict.beta.sessions.retrieve(session.id).outcome_evaluations[0].result == "failed"


def test_one_outcome_at_a_time(strict: anthropic.Anthropic) -> None:
    sid = _session(strict)
    with strict.beta.sessions.events.stream(sid, timeout=30) as stream:
        strict.beta.sessions.events.send(sid, events=[_outcome("sleep 1500")])
        with pytest.raises(anthropic.BadRequestError) as info:
            strict.beta.sessions.events.send(sid, events=[_outcome("verdict satisfied")])
        assert isinstance(info.value.body, dict)
        assert info.value.body["error"]["details"]["error_code"] == "outcome_in_progress"
        read_until(stream, is_idle("end_turn"))
        # after a terminal result the next one is accepted
        strict.beta.sessions.events.send(sid, events=[_outcome("verdict satisfied fine")])
        events = read_until(stream, is_idle("end_turn"))
    assert [e.result for e in _spans(events, "end")] == ["satisfied"]
    assert [e.result for e in strict.beta.sessions.retrieve(sid).outcome_evaluations] == ["satisfied", "satisfied"]


def test_interrupt_during_grading(strict: anthropic.Anthropic) -> None:
    sid = _session(strict)
    with strict.beta.sessions.events.stream(sid, timeout=30) as stream:
        # the agent answers at once (its turn is a `then`-less echo); the grader's request sleeps
        strict.beta.sessions.events.send(sid, events=[_outcome("sleep 3000\nverdict satisfied", description="go")])
        started = read_until(stream, lambda e: e.type == "span.outcome_evaluation_start")
        strict.beta.sessions.events.send(sid, events=[{"type": "user.interrupt"}])
        events = read_until(stream, is_idle("end_turn"))
    (end,) = _spans(events, "end")
    assert end.result == "interrupted"
    assert end.outcome_evaluation_start_id == started[-1].id
    (evaluation,) = strict.beta.sessions.retrieve(sid).outcome_evaluations
    assert evaluation.result == "interrupted"
    assert evaluation.completed_at is not None


def test_file_rubric(strict: anthropic.Anthropic) -> None:
    uploaded = strict.beta.files.upload(file=("rubric.md", b"verdict needs_revision shorter\n", "text/markdown"))
    sid = _session(strict)
    with strict.beta.sessions.events.stream(sid, timeout=30) as stream:
        sent = strict.beta.sessions.events.send(
            sid,
            events=[
                {"type": "user.define_outcome", "description": "d", "rubric": {"type": "file", "file_id": uploaded.id}}
            ],
        )
        echo = sent.data[0]
        assert echo.type == "user.define_outcome"
        assert echo.rubric.type == "text"  # file rubrics are resolved to their text
        events = read_until(stream, is_idle("end_turn"))
    assert [e.result for e in _spans(events, "end")] == ["needs_revision", "satisfied"]
    with pytest.raises(anthropic.NotFoundError):
        strict.beta.sessions.events.send(
            sid,
            events=[
                {"type": "user.define_outcome", "description": "d", "rubric": {"type": "file", "file_id": "file_nope"}}
            ],
        )
