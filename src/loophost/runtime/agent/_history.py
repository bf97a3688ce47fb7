"""The agent-core checkpoint: pydantic-ai message history as an append-only list of entries, one per message;
and closing orphaned tool calls.

A checkpoint writes only what changed since the last one (the messages after the common prefix), so the bytes a
turn writes are proportional to the turn, not to the session's history.

Promise: the model never sees a tool call without a result. Before a new prompt (and on interrupt) every call
of the last response that has no result yet is closed: with its recorded result when one exists, otherwise
with an error result saying it was interrupted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pydantic import TypeAdapter
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    RetryPromptPart,
    ToolCallPart,
    ToolReturnPart,
)

from ..store import CheckpointWrite

INTERRUPTED = "The tool call was interrupted before a result was produced."
_MESSAGE: TypeAdapter[ModelMessage] = TypeAdapter(ModelMessage)
_RECHECK = 2
"""Prefix messages compared by value, not only identity: pydantic-ai may update its newest messages in place."""


class History:
    """A session's message history and what of it is stored, so a checkpoint writes only the difference."""

    def __init__(self, messages: Sequence[ModelMessage] = (), stored: Sequence[bytes] | None = None) -> None:
        self.messages: list[ModelMessage] = list(messages)
        self._stored: list[ModelMessage] = list(messages)
        self._bytes: list[bytes] = list(stored) if stored is not None else [_MESSAGE.dump_json(m) for m in messages]

    @classmethod
    def from_entries(cls, entries: Sequence[bytes]) -> History:
        return cls([_MESSAGE.validate_json(entry) for entry in entries], stored=entries)

    def write(self, new: Sequence[ModelMessage]) -> CheckpointWrite | None:
        """The write that makes the stored checkpoint equal `new`, which becomes the history (None: no change)."""
        stored = self._stored
        keep = 0
        limit = min(len(stored), len(new))
        while keep < limit and new[keep] is stored[keep]:
            keep += 1
        for index in range(max(0, keep - _RECHECK), keep):
            if _MESSAGE.dump_json(new[index]) != self._bytes[index]:
                keep = index
                break
        append = [_MESSAGE.dump_json(message) for message in new[keep:]]
        self.messages = list(new)
        if keep == len(stored) and not append:
            return None
        self._stored = list(new)
        self._bytes = self._bytes[:keep] + append
        return CheckpointWrite(keep, tuple(append))


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
        if call.tool_call_id in known:
            text, is_error = known[call.tool_call_id]
            outcome = "failed" if is_error else "success"
        else:
            text, outcome = reason, "interrupted"
        parts.append(ToolReturnPart(call.tool_name, text, call.tool_call_id, outcome=outcome))  # type: ignore[arg-type]
    return [*messages, ModelRequest(parts=parts)]


def orphaned_calls(messages: Sequence[ModelMessage]) -> int:
    """Tool calls anywhere in the history with no result after them (0 in a history fit to send to a model)."""
    answered = {
        part.tool_call_id
        for message in messages
        if isinstance(message, ModelRequest)
        for part in message.parts
        if isinstance(part, ToolReturnPart | RetryPromptPart)
    }
    return sum(
        1
        for message in messages
        if isinstance(message, ModelResponse)
        for part in message.parts
        if isinstance(part, ToolCallPart) and part.tool_call_id not in answered
    )
