"""The agent-core checkpoint: pydantic-ai message history, serialized; and closing orphaned tool calls.

Promise: the model never sees a tool call without a result. Before a new prompt (and on interrupt) every call
of the last response that has no result yet is closed: with its recorded result when one exists, otherwise
with an error result saying it was interrupted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pydantic_ai.messages import (
    ModelMessage,
    ModelMessagesTypeAdapter,
    ModelRequest,
    ModelResponse,
    RetryPromptPart,
    ToolCallPart,
    ToolReturnPart,
)

INTERRUPTED = "The tool call was interrupted before a result was produced."


def encode(messages: Sequence[ModelMessage]) -> bytes:
    return ModelMessagesTypeAdapter.dump_json(list(messages))


def decode(blob: bytes | None) -> list[ModelMessage]:
    return [] if not blob else list(ModelMessagesTypeAdapter.validate_json(blob))


def open_calls(messages: Sequence[ModelMessage]) -> list[ToolCallPart]:
    """Tool calls of the last response that no later request answers, in call order."""
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if isinstance(message, ModelResponse):
            answered = {
                part.tool_call_id
                for later in messages[index + 1 :]
                if isinstance(later, ModelRequest)
                for part in later.parts
                if isinstance(part, ToolReturnPart | RetryPromptPart)
            }
            return [p for p in message.parts if isinstance(p, ToolCallPart) and p.tool_call_id not in answered]
    return []


def close_open_calls(
    messages: list[ModelMessage], results: Mapping[str, tuple[str, bool]] | None = None, *, reason: str = INTERRUPTED
) -> list[ModelMessage]:
    """Append one request answering every open call: `results[tool_call_id] = (text, is_error)` where known."""
    calls = open_calls(messages)
    if not calls:
        return messages
    known = results or {}
    parts = []
    for call in calls:
        text, is_error = known.get(call.tool_call_id, (reason, True))
        outcome = "failed" if is_error else "success"
        if call.tool_call_id not in known:
            outcome = "interrupted"
        parts.append(ToolReturnPart(call.tool_name, text, call.tool_call_id, outcome=outcome))  # type: ignore[arg-type]
    return [*messages, ModelRequest(parts=parts)]
