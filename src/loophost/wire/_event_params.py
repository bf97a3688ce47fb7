"""What a client sends to `POST /sessions/{id}/events` (spec §5.2), validated as far as the body alone allows.

State-dependent rules (a tool_use_id must match a pending event, `user.tool_result` only on self-hosted
environments, settle-only while paused at a budget) are the runtime's; shape rules are here. An unknown
event `type` fails the discriminated union, which is the spec's 400.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from ._base import ParamsModel, WireModel
from ._content import TextBlock, ToolResultContent, UserMessageContent

ToolConfirmationResult = Literal["allow", "deny"]


class TextRubric(WireModel):
    type: Literal["text"] = "text"
    content: Annotated[str, Field(max_length=262_144)]


class FileRubric(WireModel):
    type: Literal["file"] = "file"
    file_id: str


Rubric = Annotated[TextRubric | FileRubric, Field(discriminator="type")]


class UserMessageParams(ParamsModel):
    """Starts a turn, or queues behind the running one."""

    type: Literal["user.message"] = "user.message"
    content: Annotated[list[UserMessageContent], Field(min_length=1)]


class UserInterruptParams(ParamsModel):
    """Jumps the queue; with `session_thread_id` it interrupts only that thread."""

    type: Literal["user.interrupt"] = "user.interrupt"
    session_thread_id: str | None = None


class UserToolConfirmationParams(ParamsModel):
    """Answers an ask-gated `agent.tool_use` / `agent.mcp_tool_use`; `deny_message` only with deny."""

    type: Literal["user.tool_confirmation"] = "user.tool_confirmation"
    tool_use_id: Annotated[str, Field(min_length=1)]
    result: ToolConfirmationResult
    deny_message: str | None = None
    session_thread_id: str | None = None
    """Sent by older clients; ignored: answers are routed by tool-use id."""

    @model_validator(mode="after")
    def _deny_message_only_with_deny(self) -> UserToolConfirmationParams:
        if self.deny_message is not None and self.result != "deny":
            raise ValueError("deny_message is only allowed when result is 'deny'")
        return self


class UserCustomToolResultParams(ParamsModel):
    """Answers an `agent.custom_tool_use`."""

    type: Literal["user.custom_tool_result"] = "user.custom_tool_result"
    custom_tool_use_id: Annotated[str, Field(min_length=1)]
    content: list[ToolResultContent] | None = None
    is_error: bool | None = None
    session_thread_id: str | None = None
    """Sent by older clients; ignored: answers are routed by tool-use id."""


class UserToolResultParams(ParamsModel):
    """Answers a sandbox `agent.tool_use` (self-hosted environments only)."""

    type: Literal["user.tool_result"] = "user.tool_result"
    tool_use_id: Annotated[str, Field(min_length=1)]
    content: list[ToolResultContent] | None = None
    is_error: bool | None = None


class UserDefineOutcomeParams(ParamsModel):
    """Starts work toward an outcome graded by `rubric`; `max_iterations` defaults to 3 (max 20)."""

    type: Literal["user.define_outcome"] = "user.define_outcome"
    description: Annotated[str, Field(min_length=1)]
    rubric: Rubric
    max_iterations: Annotated[int, Field(ge=1, le=20)] = 3

    @field_validator("max_iterations", mode="before")
    @classmethod
    def _null_is_default(cls, value: Any) -> Any:
        return 3 if value is None else value


class SystemMessageParams(ParamsModel):
    """Mid-conversation system text; at most one per request, last, right after what it accompanies."""

    type: Literal["system.message"] = "system.message"
    content: Annotated[list[TextBlock], Field(min_length=1, max_length=1000)]


EventParams = Annotated[
    UserMessageParams
    | UserInterruptParams
    | UserToolConfirmationParams
    | UserCustomToolResultParams
    | UserToolResultParams
    | UserDefineOutcomeParams
    | SystemMessageParams,
    Field(discriminator="type"),
]
"""Any event a client may send; an unknown `type` is a validation error."""

InitialEventParams = Annotated[UserMessageParams | UserDefineOutcomeParams, Field(discriminator="type")]
"""The events `sessions.create(initial_events=...)` accepts."""

_SYSTEM_MESSAGE_FOLLOWS = frozenset({"user.message", "user.tool_result", "user.custom_tool_result"})


class SendEventsParams(ParamsModel):
    """`{"events": [...]}`: at least one event; a `system.message` must be the single, final event and
    directly follow a `user.message`, `user.tool_result` or `user.custom_tool_result`."""

    events: Annotated[list[EventParams], Field(min_length=1)]

    @model_validator(mode="after")
    def _system_message_placement(self) -> SendEventsParams:
        positions = [i for i, e in enumerate(self.events) if isinstance(e, SystemMessageParams)]
        if not positions:
            return self
        if len(positions) > 1:
            raise ValueError("at most one system.message may be sent per request")
        index = positions[0]
        if index != len(self.events) - 1:
            raise ValueError("system.message must be the last event of the request")
        if index == 0 or self.events[index - 1].type not in _SYSTEM_MESSAGE_FOLLOWS:
            raise ValueError(
                "system.message must directly follow a user.message, user.tool_result or user.custom_tool_result"
            )
        return self
