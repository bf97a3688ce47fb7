"""Wire events the agent loop emits, built in one place so their shapes stay consistent.

The status and span events every turn emits (`running`, `span_start`, `span_end`, `idle`) have fixed, small shapes
and are written straight to their stored JSON (`NewEvent`): building and dumping a pydantic model for each cost
more than the rest of their commit's Python. `tests/runtime/engine/test_outbound.py` checks that each is exactly
what the wire model would have written. The others are built through the wire models.
"""

from __future__ import annotations

import json
from typing import Any

from ... import wire
from .._clock import rfc3339
from .._ids import new_id
from ..store import NewEvent


def event_id() -> str:
    return new_id("sevt")


def stored(event_type: str, event_id: str, **fields: Any) -> NewEvent:
    """A fixed-shape event as it is stored: `id`, `type`, `processed_at` (now), then `fields`, compact JSON."""
    at = rfc3339(wire.utcnow())
    body = {"id": event_id, "type": event_type, "processed_at": at, **fields}
    return NewEvent(event_id, event_type, at, json.dumps(body, separators=(",", ":"), ensure_ascii=False))


def running() -> NewEvent:
    return stored("session.status_running", event_id())


def rescheduled() -> wire.SessionStatusRescheduledEvent:
    return wire.SessionStatusRescheduledEvent(id=event_id(), processed_at=wire.utcnow())


def terminated() -> wire.SessionStatusTerminatedEvent:
    return wire.SessionStatusTerminatedEvent(id=event_id(), processed_at=wire.utcnow())


def idle(stop_reason: dict[str, Any]) -> NewEvent:
    return stored("session.status_idle", event_id(), stop_reason=stop_reason, stop_details=None)


def error(kind: str, message: str, retry_status: str) -> wire.SessionErrorEvent:
    return wire.SessionErrorEvent.model_validate(
        {
            "id": event_id(),
            "type": "session.error",
            "processed_at": wire.utcnow(),
            "error": {"type": kind, "message": message, "retry_status": {"type": retry_status}},
        }
    )


def span_start(span_id: str) -> NewEvent:
    return stored("span.model_request_start", span_id)


def span_end(start_id: str, usage: dict[str, int] | None = None, *, is_error: bool = False) -> NewEvent:
    tokens = usage or {}
    model_usage = {
        "input_tokens": int(tokens.get("input_tokens", 0)),
        "output_tokens": int(tokens.get("output_tokens", 0)),
        "cache_read_input_tokens": int(tokens.get("cache_read_input_tokens", 0)),
        "cache_creation_input_tokens": int(tokens.get("cache_creation_input_tokens", 0)),
    }
    fields = {"model_request_start_id": start_id, "is_error": is_error, "model_usage": model_usage}
    return stored("span.model_request_end", event_id(), **fields)


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
