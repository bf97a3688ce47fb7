"""Every persisted session event of spec §5.3, one class per `type`.

All carry `id`, `type` and `processed_at`. User and system events may be queued, so their
`processed_at` is nullable; agent, session and span events always have it. The union that parses any of
them (and tolerates unknown types) is in `_event_union`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from ._base import SparseWireModel, Timestamp, WireModel
from ._content import AgentMessageContent, TextBlock, ToolResultContent, UserMessageContent
from ._event_params import Rubric, ToolConfirmationResult
from ._sessions import SessionAgent
from ._stop import StopDetails, StopReason
from ._usage import Budget, ModelUsage, SessionUsage

EvaluatedPermission = Literal["allow", "ask", "deny"]


class _Event(WireModel):
    id: str
    type: str
    processed_at: Timestamp | None


class _ClientEvent(_Event):
    """User and system events: `processed_at` is null while the event waits in the queue."""

    processed_at: Timestamp | None = None


class _ServerEvent(_Event):
    """Agent, session and span events: `processed_at` is always set."""

    processed_at: Timestamp


# --- user and system -----------------------------------------------------------------------------------


class UserMessageEvent(_ClientEvent):
    type: Literal["user.message"] = "user.message"
    content: list[UserMessageContent]


class UserInterruptEvent(_ClientEvent):
    type: Literal["user.interrupt"] = "user.interrupt"
    session_thread_id: str | None = None


class UserToolConfirmationEvent(_ClientEvent):
    type: Literal["user.tool_confirmation"] = "user.tool_confirmation"
    tool_use_id: str
    result: ToolConfirmationResult
    deny_message: str | None = None
    session_thread_id: str | None = None


class UserCustomToolResultEvent(_ClientEvent):
    type: Literal["user.custom_tool_result"] = "user.custom_tool_result"
    custom_tool_use_id: str
    content: list[ToolResultContent] | None = None
    is_error: bool | None = None
    session_thread_id: str | None = None


class UserToolResultEvent(_ClientEvent):
    type: Literal["user.tool_result"] = "user.tool_result"
    tool_use_id: str
    content: list[ToolResultContent] | None = None
    is_error: bool | None = None
    session_thread_id: str | None = None


class UserDefineOutcomeEvent(_ClientEvent):
    """Echo of `user.define_outcome` with the server's `outcome_id` (outc_...)."""

    type: Literal["user.define_outcome"] = "user.define_outcome"
    description: str
    rubric: Rubric
    max_iterations: int | None = None
    outcome_id: str


class SystemMessageEvent(_ClientEvent):
    type: Literal["system.message"] = "system.message"
    content: list[TextBlock]


# --- agent ----------------------------------------------------------------------------------------------


class AgentMessageEvent(_ServerEvent):
    type: Literal["agent.message"] = "agent.message"
    content: list[AgentMessageContent]


class AgentThinkingEvent(_ServerEvent):
    """A progress signal; it carries no thinking text."""

    type: Literal["agent.thinking"] = "agent.thinking"


class AutoEvaluatedPermission(SparseWireModel):
    """The server's judgement under an `auto` policy; `reason_code` (ask/deny) is an open registry."""

    type: EvaluatedPermission
    reason_code: str | None = None


class AlwaysAllowEvaluation(WireModel):
    type: Literal["always_allow"] = "always_allow"


class AlwaysAskEvaluation(WireModel):
    type: Literal["always_ask"] = "always_ask"


class AutoEvaluation(WireModel):
    type: Literal["auto"] = "auto"
    evaluated_permission: AutoEvaluatedPermission


ToolEvaluation = Annotated[AlwaysAllowEvaluation | AlwaysAskEvaluation | AutoEvaluation, Field(discriminator="type")]
"""Which resolved policy produced `evaluated_permission`; absent when a call was refused outright."""


class AgentToolUseEvent(_ServerEvent):
    """A built-in tool call. `session_thread_id` is set when cross-posted from a subagent thread."""

    type: Literal["agent.tool_use"] = "agent.tool_use"
    name: str
    input: dict[str, Any] = Field(default_factory=dict)
    evaluated_permission: EvaluatedPermission | None = None
    evaluation: ToolEvaluation | None = None
    session_thread_id: str | None = None


class AgentToolResultEvent(_ServerEvent):
    type: Literal["agent.tool_result"] = "agent.tool_result"
    tool_use_id: str
    content: list[ToolResultContent] | None = None
    is_error: bool | None = None


class AgentMcpToolUseEvent(_ServerEvent):
    type: Literal["agent.mcp_tool_use"] = "agent.mcp_tool_use"
    mcp_server_name: str
    name: str
    input: dict[str, Any] = Field(default_factory=dict)
    evaluated_permission: EvaluatedPermission | None = None
    evaluation: ToolEvaluation | None = None
    session_thread_id: str | None = None


class AgentMcpToolResultEvent(_ServerEvent):
    type: Literal["agent.mcp_tool_result"] = "agent.mcp_tool_result"
    mcp_tool_use_id: str
    content: list[ToolResultContent] | None = None
    is_error: bool | None = None


class AgentCustomToolUseEvent(_ServerEvent):
    """A custom tool call; the session goes idle with `requires_action` until the client answers."""

    type: Literal["agent.custom_tool_use"] = "agent.custom_tool_use"
    name: str
    input: dict[str, Any] = Field(default_factory=dict)
    session_thread_id: str | None = None


class AgentThreadContextCompactedEvent(_ServerEvent):
    type: Literal["agent.thread_context_compacted"] = "agent.thread_context_compacted"


class AgentThreadMessageSentEvent(_ServerEvent):
    type: Literal["agent.thread_message_sent"] = "agent.thread_message_sent"
    to_session_thread_id: str
    to_agent_name: str | None = None
    content: list[UserMessageContent]


class AgentThreadMessageReceivedEvent(_ServerEvent):
    type: Literal["agent.thread_message_received"] = "agent.thread_message_received"
    from_session_thread_id: str
    from_agent_name: str | None = None
    content: list[UserMessageContent]


# --- session ----------------------------------------------------------------------------------------------


class SessionStatusRunningEvent(_ServerEvent):
    type: Literal["session.status_running"] = "session.status_running"


class SessionStatusRescheduledEvent(_ServerEvent):
    type: Literal["session.status_rescheduled"] = "session.status_rescheduled"


class SessionStatusTerminatedEvent(_ServerEvent):
    type: Literal["session.status_terminated"] = "session.status_terminated"


class SessionStatusIdleEvent(_ServerEvent):
    """`stop_details` is always written: null unless the stop was a refusal."""

    type: Literal["session.status_idle"] = "session.status_idle"
    stop_reason: StopReason
    stop_details: StopDetails | None = None


class RetryStatus(WireModel):
    """What the client should do next: wait (`retrying`), resend (`exhausted`) or give up (`terminal`)."""

    type: Literal["retrying", "exhausted", "terminal"]


class SessionErrorDetail(WireModel):
    """`error` of `session.error`. Type-specific fields (`mcp_server_name`, `credential_id`, `vault_id`,
    `repository_url`, ...) ride along as extras. See `SessionErrorType` for the known types."""

    type: str
    message: str
    retry_status: RetryStatus


SessionErrorType = Literal[
    "unknown_error",
    "model_overloaded_error",
    "model_rate_limited_error",
    "model_request_failed_error",
    "mcp_connection_failed_error",
    "mcp_authentication_failed_error",
    "billing_error",
    "credential_host_unreachable_error",
    "tool_use_limit_reached_error",
    "compaction_limit_reached_error",
    "repository_authentication_error",
    "repository_forbidden_error",
    "repository_not_found_error",
    "repository_checkout_error",
    "repository_clone_error",
]


class SessionErrorEvent(_ServerEvent):
    type: Literal["session.error"] = "session.error"
    error: SessionErrorDetail


class SessionUpdatedEvent(_ServerEvent, SparseWireModel):
    """Carries only what changed: unset fields are left out, and `budget: null` means it was removed."""

    type: Literal["session.updated"] = "session.updated"
    title: str | None = None
    metadata: dict[str, str] | None = None
    budget: Budget | None = None
    agent: SessionAgent | None = None


class SessionUsageEvent(_ServerEvent):
    type: Literal["session.usage"] = "session.usage"
    usage: SessionUsage
    budget: Budget | None = None


class SessionDeletedEvent(_ServerEvent):
    """The last event of a deleted session's streams."""

    type: Literal["session.deleted"] = "session.deleted"


class SessionThreadCreatedEvent(_ServerEvent):
    type: Literal["session.thread_created"] = "session.thread_created"
    session_thread_id: str
    agent_name: str
    workflow_run_id: str | None = None


class _ThreadStatusEvent(_ServerEvent):
    session_thread_id: str
    agent_name: str


class SessionThreadStatusRunningEvent(_ThreadStatusEvent):
    type: Literal["session.thread_status_running"] = "session.thread_status_running"


class SessionThreadStatusRescheduledEvent(_ThreadStatusEvent):
    type: Literal["session.thread_status_rescheduled"] = "session.thread_status_rescheduled"


class SessionThreadStatusTerminatedEvent(_ThreadStatusEvent):
    type: Literal["session.thread_status_terminated"] = "session.thread_status_terminated"


class SessionThreadStatusIdleEvent(_ThreadStatusEvent):
    type: Literal["session.thread_status_idle"] = "session.thread_status_idle"
    stop_reason: StopReason
    stop_details: StopDetails | None = None


# --- spans ----------------------------------------------------------------------------------------------


class SpanModelRequestStartEvent(_ServerEvent):
    type: Literal["span.model_request_start"] = "span.model_request_start"


class SpanModelRequestEndEvent(_ServerEvent):
    """Closes the span opened by `model_request_start_id` (and any delta preview it produced)."""

    type: Literal["span.model_request_end"] = "span.model_request_end"
    model_request_start_id: str
    is_error: bool | None = None
    model_usage: ModelUsage


class SpanOutcomeEvaluationStartEvent(_ServerEvent):
    type: Literal["span.outcome_evaluation_start"] = "span.outcome_evaluation_start"
    outcome_id: str
    iteration: int


class SpanOutcomeEvaluationOngoingEvent(_ServerEvent):
    type: Literal["span.outcome_evaluation_ongoing"] = "span.outcome_evaluation_ongoing"
    outcome_id: str
    iteration: int


class SpanOutcomeEvaluationEndEvent(_ServerEvent):
    """`result`: satisfied, needs_revision, max_iterations_reached, failed or interrupted."""

    type: Literal["span.outcome_evaluation_end"] = "span.outcome_evaluation_end"
    outcome_id: str
    iteration: int
    outcome_evaluation_start_id: str
    result: str
    explanation: str
    usage: ModelUsage
