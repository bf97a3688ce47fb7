"""The `SessionEvent` union: any known event by its `type`, anything else as a lossless `UnknownEvent`.

Newer servers add event types (e.g. `workflow_run.*`). A client must not break on them and a store must
not lose them, so an unknown `type` never fails: it parses as `UnknownEvent`, which dumps back exactly
the document it was parsed from. A known `type` with a malformed body is still a validation error.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    ConfigDict,
    Discriminator,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    Tag,
    TypeAdapter,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from ._base import Timestamp, WireModel
from ._content import TextBlock
from ._events import (
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
    SystemMessageEvent,
    UserCustomToolResultEvent,
    UserDefineOutcomeEvent,
    UserInterruptEvent,
    UserMessageEvent,
    UserToolConfirmationEvent,
    UserToolResultEvent,
)

_UNKNOWN = "unknown"


class UnknownEvent(WireModel):
    """An event whose `type` this code does not know. Frozen, and dumps back as received (same keys,
    same order, same values), so it can be stored and relayed without loss."""

    model_config = ConfigDict(frozen=True)

    type: str
    id: str = ""
    processed_at: Timestamp | None = None
    _raw: dict[str, Any] = PrivateAttr(default_factory=dict)

    @field_validator("id", mode="before")
    @classmethod
    def _lenient_id(cls, value: Any) -> Any:
        return value if isinstance(value, str) else ""

    @field_validator("processed_at", mode="wrap")
    @classmethod
    def _lenient_processed_at(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        try:
            return handler(value)
        except ValidationError:
            return None

    @model_validator(mode="wrap")
    @classmethod
    def _keep_raw(cls, data: Any, handler: ModelWrapValidatorHandler[UnknownEvent]) -> UnknownEvent:
        event = handler(data)
        if isinstance(data, Mapping) and event is not data:
            event._raw = copy.deepcopy(dict(data))
        return event

    @model_serializer(mode="wrap")
    def _as_received(self, handler: SerializerFunctionWrapHandler):  # type: ignore[no-untyped-def]  # keeps schema
        return copy.deepcopy(self._raw) if self._raw else handler(self)


class PreviewedEvent(WireModel):
    """The event an `event_start` announces; its `id` is the id the buffered event will carry."""

    type: Literal["agent.message", "agent.thinking"]
    id: str


class EventStartPreview(WireModel):
    """Stream-only (opt-in via `event_deltas[]`): opens a preview. Has no `id` or `processed_at`."""

    type: Literal["event_start"] = "event_start"
    event: PreviewedEvent


class ContentDelta(WireModel):
    """A text fragment that lands in `content[index]` of the previewed message."""

    type: Literal["content_delta"] = "content_delta"
    index: int = 0
    content: TextBlock


class EventDeltaPreview(WireModel):
    """Stream-only: one fragment of a previewed `agent.message`. Best effort, never replayed."""

    type: Literal["event_delta"] = "event_delta"
    event_id: str
    delta: ContentDelta


_KNOWN_EVENTS: tuple[type[WireModel], ...] = (
    UserMessageEvent,
    UserInterruptEvent,
    UserToolConfirmationEvent,
    UserCustomToolResultEvent,
    UserToolResultEvent,
    UserDefineOutcomeEvent,
    SystemMessageEvent,
    AgentMessageEvent,
    AgentThinkingEvent,
    AgentToolUseEvent,
    AgentToolResultEvent,
    AgentMcpToolUseEvent,
    AgentMcpToolResultEvent,
    AgentCustomToolUseEvent,
    AgentThreadContextCompactedEvent,
    AgentThreadMessageSentEvent,
    AgentThreadMessageReceivedEvent,
    SessionStatusRunningEvent,
    SessionStatusRescheduledEvent,
    SessionStatusTerminatedEvent,
    SessionStatusIdleEvent,
    SessionErrorEvent,
    SessionUpdatedEvent,
    SessionUsageEvent,
    SessionDeletedEvent,
    SessionThreadCreatedEvent,
    SessionThreadStatusRunningEvent,
    SessionThreadStatusRescheduledEvent,
    SessionThreadStatusTerminatedEvent,
    SessionThreadStatusIdleEvent,
    SpanModelRequestStartEvent,
    SpanModelRequestEndEvent,
    SpanOutcomeEvaluationStartEvent,
    SpanOutcomeEvaluationOngoingEvent,
    SpanOutcomeEvaluationEndEvent,
)

EVENT_CLASSES: Mapping[str, type[WireModel]] = {cls.model_fields["type"].default: cls for cls in _KNOWN_EVENTS}
"""Event `type` -> its class, for every type of §5.3 this code knows."""

_PREVIEWS = frozenset({"event_start", "event_delta"})


def _type_of(value: Any) -> Any:
    return value.get("type") if isinstance(value, Mapping) else getattr(value, "type", None)


def _event_tag(value: Any) -> str | None:
    kind = _type_of(value)
    if not isinstance(kind, str):
        return None  # no usable `type`: a validation error, not an event
    if isinstance(value, UnknownEvent):
        return _UNKNOWN
    return kind if kind in EVENT_CLASSES else _UNKNOWN


def _stream_tag(value: Any) -> str | None:
    kind = _type_of(value)
    if not isinstance(kind, str):
        return None
    return kind if kind in _PREVIEWS else "event"


SessionEvent = Annotated[
    Annotated[UserMessageEvent, Tag("user.message")]
    | Annotated[UserInterruptEvent, Tag("user.interrupt")]
    | Annotated[UserToolConfirmationEvent, Tag("user.tool_confirmation")]
    | Annotated[UserCustomToolResultEvent, Tag("user.custom_tool_result")]
    | Annotated[UserToolResultEvent, Tag("user.tool_result")]
    | Annotated[UserDefineOutcomeEvent, Tag("user.define_outcome")]
    | Annotated[SystemMessageEvent, Tag("system.message")]
    | Annotated[AgentMessageEvent, Tag("agent.message")]
    | Annotated[AgentThinkingEvent, Tag("agent.thinking")]
    | Annotated[AgentToolUseEvent, Tag("agent.tool_use")]
    | Annotated[AgentToolResultEvent, Tag("agent.tool_result")]
    | Annotated[AgentMcpToolUseEvent, Tag("agent.mcp_tool_use")]
    | Annotated[AgentMcpToolResultEvent, Tag("agent.mcp_tool_result")]
    | Annotated[AgentCustomToolUseEvent, Tag("agent.custom_tool_use")]
    | Annotated[AgentThreadContextCompactedEvent, Tag("agent.thread_context_compacted")]
    | Annotated[AgentThreadMessageSentEvent, Tag("agent.thread_message_sent")]
    | Annotated[AgentThreadMessageReceivedEvent, Tag("agent.thread_message_received")]
    | Annotated[SessionStatusRunningEvent, Tag("session.status_running")]
    | Annotated[SessionStatusRescheduledEvent, Tag("session.status_rescheduled")]
    | Annotated[SessionStatusTerminatedEvent, Tag("session.status_terminated")]
    | Annotated[SessionStatusIdleEvent, Tag("session.status_idle")]
    | Annotated[SessionErrorEvent, Tag("session.error")]
    | Annotated[SessionUpdatedEvent, Tag("session.updated")]
    | Annotated[SessionUsageEvent, Tag("session.usage")]
    | Annotated[SessionDeletedEvent, Tag("session.deleted")]
    | Annotated[SessionThreadCreatedEvent, Tag("session.thread_created")]
    | Annotated[SessionThreadStatusRunningEvent, Tag("session.thread_status_running")]
    | Annotated[SessionThreadStatusRescheduledEvent, Tag("session.thread_status_rescheduled")]
    | Annotated[SessionThreadStatusTerminatedEvent, Tag("session.thread_status_terminated")]
    | Annotated[SessionThreadStatusIdleEvent, Tag("session.thread_status_idle")]
    | Annotated[SpanModelRequestStartEvent, Tag("span.model_request_start")]
    | Annotated[SpanModelRequestEndEvent, Tag("span.model_request_end")]
    | Annotated[SpanOutcomeEvaluationStartEvent, Tag("span.outcome_evaluation_start")]
    | Annotated[SpanOutcomeEvaluationOngoingEvent, Tag("span.outcome_evaluation_ongoing")]
    | Annotated[SpanOutcomeEvaluationEndEvent, Tag("span.outcome_evaluation_end")]
    | Annotated[UnknownEvent, Tag(_UNKNOWN)],
    Discriminator(_event_tag),
]
"""Any persisted event (history, stream, send echo); unknown types become `UnknownEvent`."""

StreamEvent = Annotated[
    Annotated[SessionEvent, Tag("event")]
    | Annotated[EventStartPreview, Tag("event_start")]
    | Annotated[EventDeltaPreview, Tag("event_delta")],
    Discriminator(_stream_tag),
]
"""What an SSE `data:` line can hold: a `SessionEvent` or a preview (`event_start` / `event_delta`)."""

EVENT_ADAPTER: TypeAdapter[SessionEvent] = TypeAdapter(SessionEvent)
STREAM_EVENT_ADAPTER: TypeAdapter[StreamEvent] = TypeAdapter(StreamEvent)


def parse_event(data: Mapping[str, Any] | bytes | str) -> SessionEvent:
    """Parse one event from JSON text or a decoded dict; raises ValidationError on a malformed event."""
    if isinstance(data, bytes | str):
        return EVENT_ADAPTER.validate_json(data)
    return EVENT_ADAPTER.validate_python(data)


def parse_stream_event(data: Mapping[str, Any] | bytes | str) -> StreamEvent:
    """Parse an SSE `data:` payload: a session event or a stream-only preview."""
    if isinstance(data, bytes | str):
        return STREAM_EVENT_ADAPTER.validate_json(data)
    return STREAM_EVENT_ADAPTER.validate_python(data)


class SendEventsResponse(WireModel):
    """`{"data": [...]}`: the sent events echoed with their server ids."""

    data: list[SessionEvent] = Field(default_factory=list)


USER_EVENT_TYPES = frozenset(
    {
        "user.message",
        "user.interrupt",
        "user.tool_confirmation",
        "user.custom_tool_result",
        "user.tool_result",
        "user.define_outcome",
    }
)
CLIENT_EVENT_TYPES = USER_EVENT_TYPES | {"system.message"}
"""Every type a client may send (the `EventParams` union)."""
SETTLE_EVENT_TYPES = frozenset(
    {"user.tool_confirmation", "user.tool_result", "user.custom_tool_result", "user.interrupt"}
)
"""The only events accepted while a session is paused at its budget."""
TERMINAL_STREAM_EVENT_TYPES = frozenset({"session.status_terminated", "session.deleted"})
"""After one of these the server ends the stream."""
PREVIEW_EVENT_TYPES = _PREVIEWS
"""Stream-only preview types; never persisted or listed."""
EVENT_DELTA_TYPES = frozenset({"agent.message", "agent.thinking"})
"""Valid values of the `event_deltas[]` stream query parameter."""
KNOWN_EVENT_TYPES = frozenset(EVENT_CLASSES)
