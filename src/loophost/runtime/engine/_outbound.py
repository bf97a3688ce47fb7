"""Wire events the agent loop emits, built in one place so their shapes stay consistent."""

from __future__ import annotations

from typing import Any

from ... import wire
from .._ids import new_id


def event_id() -> str:
    return new_id("sevt")


def running() -> wire.SessionStatusRunningEvent:
    return wire.SessionStatusRunningEvent(id=event_id(), processed_at=wire.utcnow())


def rescheduled() -> wire.SessionStatusRescheduledEvent:
    return wire.SessionStatusRescheduledEvent(id=event_id(), processed_at=wire.utcnow())


def terminated() -> wire.SessionStatusTerminatedEvent:
    return wire.SessionStatusTerminatedEvent(id=event_id(), processed_at=wire.utcnow())


def idle(stop_reason: dict[str, Any]) -> wire.SessionStatusIdleEvent:
    return wire.SessionStatusIdleEvent.model_validate(
        {
            "id": event_id(),
            "type": "session.status_idle",
            "processed_at": wire.utcnow(),
            "stop_reason": stop_reason,
            "stop_details": None,
        }
    )


def error(kind: str, message: str, retry_status: str) -> wire.SessionErrorEvent:
    return wire.SessionErrorEvent.model_validate(
        {
            "id": event_id(),
            "type": "session.error",
            "processed_at": wire.utcnow(),
            "error": {"type": kind, "message": message, "retry_status": {"type": retry_status}},
        }
    )


def span_start(span_id: str) -> wire.SpanModelRequestStartEvent:
    return wire.SpanModelRequestStartEvent(id=span_id, processed_at=wire.utcnow())


def span_end(start_id: str, usage: dict[str, int] | None = None, *, is_error: bool = False) -> wire.SessionEvent:
    tokens = usage or {}
    return wire.SpanModelRequestEndEvent.model_validate(
        {
            "id": event_id(),
            "type": "span.model_request_end",
            "processed_at": wire.utcnow(),
            "model_request_start_id": start_id,
            "is_error": is_error,
            "model_usage": {
                "input_tokens": tokens.get("input_tokens", 0),
                "output_tokens": tokens.get("output_tokens", 0),
                "cache_read_input_tokens": tokens.get("cache_read_input_tokens", 0),
                "cache_creation_input_tokens": tokens.get("cache_creation_input_tokens", 0),
            },
        }
    )


def agent_message(message_id: str, text: str) -> wire.AgentMessageEvent:
    return wire.AgentMessageEvent.model_validate(
        {
            "id": message_id,
            "type": "agent.message",
            "processed_at": wire.utcnow(),
            "content": [{"type": "text", "text": text}],
        }
    )


def thinking() -> wire.AgentThinkingEvent:
    return wire.AgentThinkingEvent(id=event_id(), processed_at=wire.utcnow())


def tool_use(name: str, tool_input: dict[str, Any], permission: str, evaluation: dict[str, Any] | None) -> Any:
    data: dict[str, Any] = {
        "id": event_id(),
        "type": "agent.tool_use",
        "processed_at": wire.utcnow(),
        "name": name,
        "input": tool_input,
        "evaluated_permission": permission,
    }
    if evaluation is not None:
        data["evaluation"] = evaluation
    return wire.AgentToolUseEvent.model_validate(data)


def custom_tool_use(name: str, tool_input: dict[str, Any]) -> wire.AgentCustomToolUseEvent:
    return wire.AgentCustomToolUseEvent.model_validate(
        {
            "id": event_id(),
            "type": "agent.custom_tool_use",
            "processed_at": wire.utcnow(),
            "name": name,
            "input": tool_input,
        }
    )


def tool_result(tool_use_id: str, text: str, *, is_error: bool) -> wire.AgentToolResultEvent:
    return wire.AgentToolResultEvent.model_validate(
        {
            "id": event_id(),
            "type": "agent.tool_result",
            "processed_at": wire.utcnow(),
            "tool_use_id": tool_use_id,
            "content": [{"type": "text", "text": text}],
            "is_error": is_error,
        }
    )


def preview_start(message_id: str) -> str:
    return wire.EventStartPreview.model_validate(
        {"type": "event_start", "event": {"type": "agent.message", "id": message_id}}
    ).model_dump_json()


def preview_delta(message_id: str, text: str) -> str:
    return wire.EventDeltaPreview.model_validate(
        {
            "type": "event_delta",
            "event_id": message_id,
            "delta": {"type": "content_delta", "index": 0, "content": {"type": "text", "text": text}},
        }
    ).model_dump_json()


def mcp_tool_use(
    server_name: str, name: str, tool_input: dict[str, Any], permission: str, evaluation: dict[str, Any]
) -> wire.AgentMcpToolUseEvent:
    """`name` is the tool's name on its server (the model may know it by a qualified one)."""
    return wire.AgentMcpToolUseEvent.model_validate(
        {
            "id": event_id(),
            "type": "agent.mcp_tool_use",
            "processed_at": wire.utcnow(),
            "mcp_server_name": server_name,
            "name": name,
            "input": tool_input,
            "evaluated_permission": permission,
            "evaluation": evaluation,
        }
    )


def mcp_tool_result(tool_use_id: str, text: str, *, is_error: bool) -> wire.AgentMcpToolResultEvent:
    return wire.AgentMcpToolResultEvent.model_validate(
        {
            "id": event_id(),
            "type": "agent.mcp_tool_result",
            "processed_at": wire.utcnow(),
            "mcp_tool_use_id": tool_use_id,
            "content": [{"type": "text", "text": text}],
            "is_error": is_error,
        }
    )


def mcp_error(kind: str, server_name: str, message: str) -> wire.SessionErrorEvent:
    """An MCP server that could not be used this turn; the session goes on without its tools (`exhausted`: it
    is tried again at the next turn, not within this one)."""
    return wire.SessionErrorEvent.model_validate(
        {
            "id": event_id(),
            "type": "session.error",
            "processed_at": wire.utcnow(),
            "error": {
                "type": kind,
                "mcp_server_name": server_name,
                "message": message,
                "retry_status": {"type": "exhausted"},
            },
        }
    )
