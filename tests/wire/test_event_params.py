from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from loophost.wire import (
    CLIENT_EVENT_TYPES,
    EVENT_DELTA_TYPES,
    SETTLE_EVENT_TYPES,
    TERMINAL_STREAM_EVENT_TYPES,
    USER_EVENT_TYPES,
    FileRubric,
    SendEventsParams,
    SystemMessageParams,
    TextRubric,
    UserCustomToolResultParams,
    UserDefineOutcomeParams,
    UserInterruptParams,
    UserMessageParams,
    UserToolConfirmationParams,
    UserToolResultParams,
    dump_dict,
)

MESSAGE = {"type": "user.message", "content": [{"type": "text", "text": "hi"}]}
SYSTEM = {"type": "system.message", "content": [{"type": "text", "text": "be brief"}]}


def _send(*events: dict[str, Any]) -> SendEventsParams:
    return SendEventsParams.model_validate({"events": list(events)})


def test_every_sendable_type_parses_into_its_params_class() -> None:
    body = _send(
        {"type": "user.interrupt"},
        {"type": "user.tool_confirmation", "tool_use_id": "sevt_1", "result": "allow"},
        {"type": "user.tool_confirmation", "tool_use_id": "sevt_2", "result": "deny", "deny_message": "no"},
        {
            "type": "user.custom_tool_result",
            "custom_tool_use_id": "sevt_3",
            "content": [{"type": "text", "text": "r"}],
        },
        {"type": "user.define_outcome", "description": "d", "rubric": {"type": "file", "file_id": "file_1"}},
        {"type": "user.tool_result", "tool_use_id": "sevt_4", "is_error": True},
        SYSTEM,
    )
    assert [type(e) for e in body.events] == [
        UserInterruptParams,
        UserToolConfirmationParams,
        UserToolConfirmationParams,
        UserCustomToolResultParams,
        UserDefineOutcomeParams,
        UserToolResultParams,
        SystemMessageParams,
    ]
    assert {e.type for e in body.events} | {"user.message"} == CLIENT_EVENT_TYPES


def test_deny_message_is_only_allowed_with_deny() -> None:
    with pytest.raises(ValidationError, match="deny_message"):
        _send(
            {
                "type": "user.tool_confirmation",
                "tool_use_id": "sevt_1",
                "result": "allow",
                "deny_message": "x",
            }
        )
    ok = UserToolConfirmationParams(tool_use_id="sevt_1", result="deny", deny_message="x")
    assert ok.deny_message == "x"
    assert UserToolConfirmationParams(tool_use_id="sevt_1", result="allow", deny_message=None).result == "allow"


@pytest.mark.parametrize(
    "events",
    [
        [],
        [{"type": "user.shout", "content": "hi"}],
        [{"type": "agent.message", "content": [{"type": "text", "text": "x"}]}],
        [{"content": [{"type": "text", "text": "hi"}]}],
        [{"type": "user.message", "content": []}],
        [{"type": "user.message", "content": [{"type": "search_result"}]}],
        [{"type": "user.tool_confirmation", "tool_use_id": "t", "result": "maybe"}],
        [{"type": "user.custom_tool_result"}],
        [
            {
                "type": "user.define_outcome",
                "description": "d",
                "rubric": {"type": "text", "content": "r"},
                "max_iterations": 21,
            }
        ],
        [{"type": "user.define_outcome", "description": "d", "rubric": {"type": "url", "url": "u"}}],
        [MESSAGE, {"type": "system.message", "content": []}],
        [MESSAGE, {"type": "system.message", "content": [{"type": "text", "text": "x"}] * 1001}],
        [
            MESSAGE,
            {"type": "system.message", "content": [{"type": "image", "source": {"type": "url", "url": "u"}}]},
        ],
    ],
)
def test_invalid_event_bodies_are_rejected(events: list[dict[str, Any]]) -> None:
    with pytest.raises(ValidationError):
        SendEventsParams.model_validate({"events": events})


def test_unknown_event_type_names_the_problem() -> None:
    with pytest.raises(ValidationError) as info:
        _send({"type": "user.shout"})
    assert info.value.errors()[0]["type"] == "union_tag_invalid"


def test_define_outcome_defaults_and_bounds() -> None:
    outcome = UserDefineOutcomeParams.model_validate(
        {"type": "user.define_outcome", "description": "d", "rubric": {"type": "text", "content": "r"}}
    )
    assert outcome.max_iterations == 3
    assert isinstance(outcome.rubric, TextRubric)
    nulled = UserDefineOutcomeParams.model_validate(
        {"description": "d", "rubric": FileRubric(file_id="f"), "max_iterations": None}
    )
    assert nulled.max_iterations == 3
    assert (
        UserDefineOutcomeParams(description="d", rubric=TextRubric(content="r"), max_iterations=20).max_iterations == 20
    )


def test_system_message_must_be_single_last_and_follow_what_it_accompanies() -> None:
    assert len(_send(MESSAGE, SYSTEM).events) == 2
    assert len(_send({"type": "user.custom_tool_result", "custom_tool_use_id": "c"}, SYSTEM).events) == 2
    for events in (
        [SYSTEM],
        [SYSTEM, MESSAGE],
        [MESSAGE, SYSTEM, SYSTEM],
        [{"type": "user.interrupt"}, SYSTEM],
    ):
        with pytest.raises(ValidationError, match=r"system\.message"):
            _send(*events)


def test_params_dump_back_to_the_body_a_client_sends() -> None:
    message = UserMessageParams.model_validate(MESSAGE)
    assert dump_dict(message, exclude_unset=True) == MESSAGE
    interrupt = UserInterruptParams()
    assert dump_dict(interrupt, exclude_unset=True) == {"type": "user.interrupt"}


def test_event_groups() -> None:
    assert {
        "user.tool_confirmation",
        "user.tool_result",
        "user.custom_tool_result",
        "user.interrupt",
    } == SETTLE_EVENT_TYPES
    assert SETTLE_EVENT_TYPES <= USER_EVENT_TYPES
    assert "system.message" not in USER_EVENT_TYPES
    assert {"session.status_terminated", "session.deleted"} == TERMINAL_STREAM_EVENT_TYPES
    assert {"agent.message", "agent.thinking"} == EVENT_DELTA_TYPES
