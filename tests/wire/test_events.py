from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from loophost.wire import (
    EVENT_ADAPTER,
    EVENT_CLASSES,
    KNOWN_EVENT_TYPES,
    AgentCustomToolUseEvent,
    AgentMcpToolResultEvent,
    AgentMcpToolUseEvent,
    AgentMessageEvent,
    AgentThinkingEvent,
    AgentThreadContextCompactedEvent,
    AgentThreadMessageReceivedEvent,
    AgentThreadMessageSentEvent,
    AgentToolResultEvent,
    AgentToolUseEvent,
    AutoEvaluation,
    Budget,
    EndTurnStopReason,
    EventDeltaPreview,
    EventStartPreview,
    MonetaryAmount,
    RequiresActionStopReason,
    SendEventsResponse,
    SessionDeletedEvent,
    SessionErrorEvent,
    SessionStatusIdleEvent,
    SessionStatusRescheduledEvent,
    SessionStatusRunningEvent,
    SessionStatusTerminatedEvent,
    SessionThreadCreatedEvent,
    SessionThreadStatusIdleEvent,
    SessionThreadStatusRescheduledEvent,
    SessionThreadStatusRunningEvent,
    SessionThreadStatusTerminatedEvent,
    SessionUpdatedEvent,
    SessionUsageEvent,
    SpanModelRequestEndEvent,
    SpanModelRequestStartEvent,
    SpanOutcomeEvaluationEndEvent,
    SpanOutcomeEvaluationOngoingEvent,
    SpanOutcomeEvaluationStartEvent,
    StopDetails,
    SystemMessageEvent,
    TextBlock,
    UnknownEvent,
    UserCustomToolResultEvent,
    UserDefineOutcomeEvent,
    UserInterruptEvent,
    UserMessageEvent,
    UserToolConfirmationEvent,
    UserToolResultEvent,
    dump_json,
    parse_event,
    parse_stream_event,
    utcnow,
)

from ._docs import SNAPSHOT_DOC, USAGE_DOC
from ._helpers import T0, as_json

TEXT = [{"type": "text", "text": "hello"}]
RESULT = [
    {"type": "text", "text": "ok"},
    {
        "type": "search_result",
        "source": "https://e.com",
        "title": "E",
        "content": [{"type": "text", "text": "s"}],
        "citations": {"enabled": False},
    },
]
MODEL_USAGE = {
    "input_tokens": 100,
    "output_tokens": 20,
    "cache_read_input_tokens": 5,
    "cache_creation_input_tokens": 0,
    "speed": None,
}
BUDGET = {"type": "limit", "max_list_cost": {"amount": "2500", "currency": "USD"}}


def _ev(kind: str, *, processed_at: str | None = T0, **fields: Any) -> dict[str, Any]:
    return {"id": f"sevt_{kind}", "type": kind, "processed_at": processed_at, **fields}


EVENTS: list[tuple[dict[str, Any], type]] = [
    (_ev("user.message", content=TEXT), UserMessageEvent),
    (_ev("user.message", processed_at=None, content=[{"type": "redacted"}]), UserMessageEvent),
    (_ev("user.interrupt", session_thread_id=None), UserInterruptEvent),
    (
        _ev(
            "user.tool_confirmation",
            tool_use_id="sevt_t",
            result="deny",
            deny_message="no",
            session_thread_id=None,
        ),
        UserToolConfirmationEvent,
    ),
    (
        _ev(
            "user.custom_tool_result",
            custom_tool_use_id="sevt_c",
            content=RESULT,
            is_error=False,
            session_thread_id="sthr_2",
        ),
        UserCustomToolResultEvent,
    ),
    (
        _ev("user.tool_result", tool_use_id="sevt_t", content=None, is_error=True, session_thread_id=None),
        UserToolResultEvent,
    ),
    (
        _ev(
            "user.define_outcome",
            description="A report",
            rubric={"type": "file", "file_id": "file_r"},
            max_iterations=3,
            outcome_id="outc_1",
        ),
        UserDefineOutcomeEvent,
    ),
    (_ev("system.message", processed_at=None, content=TEXT), SystemMessageEvent),
    (_ev("agent.message", content=[*TEXT, {"type": "redacted"}]), AgentMessageEvent),
    (_ev("agent.thinking"), AgentThinkingEvent),
    (
        _ev(
            "agent.tool_use",
            name="bash",
            input={"command": "ls -la"},
            evaluated_permission="allow",
            evaluation={"type": "always_allow"},
            session_thread_id=None,
        ),
        AgentToolUseEvent,
    ),
    (
        _ev(
            "agent.tool_use",
            name="bash",
            input={"command": "rm -rf /"},
            evaluated_permission="deny",
            evaluation={"type": "auto", "evaluated_permission": {"type": "deny", "reason_code": "high_risk"}},
            session_thread_id="sthr_2",
        ),
        AgentToolUseEvent,
    ),
    (_ev("agent.tool_result", tool_use_id="sevt_t", content=RESULT, is_error=None), AgentToolResultEvent),
    (
        _ev(
            "agent.mcp_tool_use",
            mcp_server_name="github",
            name="create_issue",
            input={"title": "t"},
            evaluated_permission="ask",
            evaluation={"type": "always_ask"},
            session_thread_id=None,
        ),
        AgentMcpToolUseEvent,
    ),
    (
        _ev("agent.mcp_tool_result", mcp_tool_use_id="sevt_m", content=TEXT, is_error=False),
        AgentMcpToolResultEvent,
    ),
    (
        _ev("agent.custom_tool_use", name="get_weather", input={"city": "Oslo"}, session_thread_id=None),
        AgentCustomToolUseEvent,
    ),
    (_ev("agent.thread_context_compacted"), AgentThreadContextCompactedEvent),
    (
        _ev("agent.thread_message_sent", to_session_thread_id="sthr_2", to_agent_name="helper", content=TEXT),
        AgentThreadMessageSentEvent,
    ),
    (
        _ev(
            "agent.thread_message_received",
            from_session_thread_id="sthr_1",
            from_agent_name=None,
            content=TEXT,
        ),
        AgentThreadMessageReceivedEvent,
    ),
    (_ev("session.status_running"), SessionStatusRunningEvent),
    (_ev("session.status_rescheduled"), SessionStatusRescheduledEvent),
    (_ev("session.status_terminated"), SessionStatusTerminatedEvent),
    (_ev("session.status_idle", stop_reason={"type": "end_turn"}, stop_details=None), SessionStatusIdleEvent),
    (
        _ev(
            "session.status_idle",
            stop_reason={"type": "refusal"},
            stop_details={"type": "refusal", "category": "cyber", "explanation": None},
        ),
        SessionStatusIdleEvent,
    ),
    (
        _ev(
            "session.error",
            error={
                "type": "mcp_connection_failed_error",
                "message": "cannot reach github",
                "retry_status": {"type": "retrying"},
                "mcp_server_name": "github",
            },
        ),
        SessionErrorEvent,
    ),
    (_ev("session.updated", title="t", metadata={"x": "1"}), SessionUpdatedEvent),
    (_ev("session.updated", budget=None, agent=SNAPSHOT_DOC), SessionUpdatedEvent),
    (_ev("session.usage", usage=USAGE_DOC, budget=BUDGET), SessionUsageEvent),
    (_ev("session.deleted"), SessionDeletedEvent),
    (
        _ev("session.thread_created", session_thread_id="sthr_2", agent_name="helper", workflow_run_id=None),
        SessionThreadCreatedEvent,
    ),
    (
        _ev("session.thread_status_running", session_thread_id="sthr_2", agent_name="helper"),
        SessionThreadStatusRunningEvent,
    ),
    (
        _ev("session.thread_status_rescheduled", session_thread_id="sthr_2", agent_name="helper"),
        SessionThreadStatusRescheduledEvent,
    ),
    (
        _ev("session.thread_status_terminated", session_thread_id="sthr_2", agent_name="helper"),
        SessionThreadStatusTerminatedEvent,
    ),
    (
        _ev(
            "session.thread_status_idle",
            session_thread_id="sthr_2",
            agent_name="helper",
            stop_reason={"type": "budget_reached"},
            stop_details=None,
        ),
        SessionThreadStatusIdleEvent,
    ),
    (_ev("span.model_request_start"), SpanModelRequestStartEvent),
    (
        _ev(
            "span.model_request_end",
            model_request_start_id="sevt_span.model_request_start",
            is_error=False,
            model_usage=MODEL_USAGE,
        ),
        SpanModelRequestEndEvent,
    ),
    (_ev("span.outcome_evaluation_start", outcome_id="outc_1", iteration=0), SpanOutcomeEvaluationStartEvent),
    (
        _ev("span.outcome_evaluation_ongoing", outcome_id="outc_1", iteration=0),
        SpanOutcomeEvaluationOngoingEvent,
    ),
    (
        _ev(
            "span.outcome_evaluation_end",
            outcome_id="outc_1",
            iteration=0,
            outcome_evaluation_start_id="sevt_s",
            result="needs_revision",
            explanation="missing totals",
            usage={**MODEL_USAGE, "speed": "fast"},
        ),
        SpanOutcomeEvaluationEndEvent,
    ),
]


def _doc(kind: str, nth: int = 0) -> dict[str, Any]:
    return [doc for doc, _ in EVENTS if doc["type"] == kind][nth]


@pytest.mark.parametrize(("doc", "cls"), EVENTS, ids=[f"{d['type']}-{i}" for i, (d, _) in enumerate(EVENTS)])
def test_every_event_type_parses_into_its_class_and_round_trips(doc: dict[str, Any], cls: type) -> None:
    event = parse_event(doc)
    assert type(event) is cls
    assert as_json(event) == doc
    assert parse_event(dump_json(event)) == event


def test_the_table_covers_every_known_type() -> None:
    assert {doc["type"] for doc, _ in EVENTS} == set(KNOWN_EVENT_TYPES)
    assert len(KNOWN_EVENT_TYPES) == 35
    assert all(EVENT_CLASSES[doc["type"]] is cls for doc, cls in EVENTS)


def test_spec_sse_example_round_trips() -> None:
    data = (
        '{"id":"sevt_0123","type":"session.status_idle","processed_at":"2026-04-07T04:27:43.197Z",'
        '"stop_reason":{"type":"end_turn"},"stop_details":null}'
    )
    event = parse_event(data)
    assert isinstance(event, SessionStatusIdleEvent)
    assert isinstance(event.stop_reason, EndTurnStopReason)
    assert as_json(event) == {**json.loads(data), "processed_at": "2026-04-07T04:27:43.197000Z"}


def test_unknown_types_round_trip_unchanged() -> None:
    raw = (
        b'{"id":"sevt_9","type":"workflow_run.phase_started","processed_at":"2026-04-07T04:27:43.197Z",'
        b'"workflow_run_id":"wr_1","workflow_run_phase_id":"ph_2","nested":{"b":[1,2.5,null,true],"a":"x"}}'
    )
    event = parse_event(raw)
    assert isinstance(event, UnknownEvent)
    assert event.type == "workflow_run.phase_started"
    assert event.id == "sevt_9"
    assert event.processed_at is not None
    assert dump_json(event) == raw  # byte for byte: same keys, order and timestamp text
    assert parse_event(json.loads(raw)) == event
    assert dump_json(EVENT_ADAPTER.validate_python(event)) == raw


def test_unknown_events_tolerate_odd_envelopes() -> None:
    odd = {"type": "future.thing", "id": 7, "processed_at": "not a time", "data": {}}
    event = parse_event(odd)
    assert isinstance(event, UnknownEvent)
    assert event.id == ""
    assert event.processed_at is None
    assert as_json(event) == odd
    with pytest.raises(ValidationError):
        event.type = "other"  # type: ignore[misc]


def test_event_without_a_type_is_an_error() -> None:
    with pytest.raises(ValidationError):
        parse_event({"id": "sevt_1", "processed_at": T0})


@pytest.mark.parametrize(
    "doc",
    [
        {"id": "e", "type": "agent.message", "processed_at": T0},
        {"id": "e", "type": "agent.message", "content": TEXT},
        {"id": "e", "type": "agent.message", "processed_at": None, "content": TEXT},
        {"type": "session.status_running", "processed_at": T0},
        {"id": "e", "type": "session.status_idle", "processed_at": T0, "stop_reason": {"type": "bored"}},
        {
            "id": "e",
            "type": "span.model_request_end",
            "processed_at": T0,
            "model_request_start_id": "s",
            "model_usage": {"input_tokens": 1, "output_tokens": 1, "cache_read_input_tokens": 1},
        },
    ],
)
def test_known_types_with_bad_bodies_are_errors(doc: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        parse_event(doc)


def test_user_events_may_be_queued_without_processed_at() -> None:
    event = parse_event({"id": "e", "type": "user.message", "content": TEXT})
    assert isinstance(event, UserMessageEvent)
    assert event.processed_at is None
    assert as_json(event)["processed_at"] is None


def test_events_built_in_code_carry_their_type_and_fields() -> None:
    now = utcnow()
    idle = SessionStatusIdleEvent(
        id="sevt_1", processed_at=now, stop_reason=RequiresActionStopReason(event_ids=["sevt_a"])
    )
    body = as_json(idle)
    assert body["type"] == "session.status_idle"
    assert body["stop_reason"] == {"type": "requires_action", "event_ids": ["sevt_a"]}
    assert body["stop_details"] is None
    refusal = SessionStatusIdleEvent(
        id="sevt_2",
        processed_at=now,
        stop_reason={"type": "refusal"},
        stop_details=StopDetails(category="bio"),
    )
    assert as_json(refusal)["stop_details"] == {"type": "refusal", "category": "bio", "explanation": None}


def test_auto_evaluation_judgement() -> None:
    event = parse_event(_doc("agent.tool_use", 1))
    assert isinstance(event, AgentToolUseEvent)
    assert isinstance(event.evaluation, AutoEvaluation)
    assert event.evaluation.evaluated_permission.reason_code == "high_risk"
    allow = parse_event(
        _ev(
            "agent.tool_use",
            name="read",
            input={},
            evaluation={"type": "auto", "evaluated_permission": {"type": "allow"}},
        )
    )
    assert as_json(allow)["evaluation"] == {"type": "auto", "evaluated_permission": {"type": "allow"}}


def test_session_error_keeps_type_specific_fields() -> None:
    event = parse_event(_doc("session.error"))
    assert isinstance(event, SessionErrorEvent)
    assert event.error.retry_status.type == "retrying"
    assert (event.error.model_extra or {})["mcp_server_name"] == "github"


def test_session_updated_carries_only_changed_fields() -> None:
    now = utcnow()
    title_only = SessionUpdatedEvent(id="e", processed_at=now, title="t")
    assert set(as_json(title_only)) == {"id", "type", "processed_at", "title"}
    budget_removed = SessionUpdatedEvent(id="e", processed_at=now, budget=None)
    assert as_json(budget_removed)["budget"] is None
    assert "title" not in as_json(budget_removed)
    replaced = SessionUpdatedEvent(id="e", processed_at=now, budget=Budget(max_list_cost=MonetaryAmount(amount="10")))
    assert as_json(replaced)["budget"] == {
        "type": "limit",
        "max_list_cost": {"amount": "10", "currency": "USD"},
    }


def test_stream_previews() -> None:
    start = parse_stream_event('{"type":"event_start","event":{"type":"agent.message","id":"sevt_5"}}')
    assert isinstance(start, EventStartPreview)
    assert start.event.id == "sevt_5"
    delta_doc = {
        "type": "event_delta",
        "event_id": "sevt_5",
        "delta": {"type": "content_delta", "index": 0, "content": {"type": "text", "text": "frag"}},
    }
    delta = parse_stream_event(delta_doc)
    assert isinstance(delta, EventDeltaPreview)
    assert delta.delta.content == TextBlock(text="frag")
    assert as_json(delta) == delta_doc
    assert isinstance(parse_stream_event(_doc("agent.message")), AgentMessageEvent)
    assert isinstance(parse_stream_event({"type": "workflow_run.error", "id": "x"}), UnknownEvent)
    # previews are not persisted events: the session-event union only tolerates them as unknown
    assert isinstance(parse_event(delta_doc), UnknownEvent)


def test_send_events_response_echoes_with_ids() -> None:
    doc = {"data": [_doc("user.message"), _doc("user.define_outcome")]}
    response = SendEventsResponse.model_validate(doc)
    assert [type(e) for e in response.data] == [UserMessageEvent, UserDefineOutcomeEvent]
    assert as_json(response) == doc
