"""A session's message history: pydantic-ai messages that loophost owns, append-only.

Stored as one checkpoint entry per message; a step appends what it added and never rewrites an entry, so the
bytes a turn writes are proportional to the turn, not to the session.

A tool result lives once, in the event that carried it (`agent.tool_result`, `user.custom_tool_result`), and so
does a response's text (its `agent.message`): the history's entry holds a reference to that event instead of a
copy, and loading the history reads the content back from the log.

Promise: the model never sees a tool call without a result. Before a new prompt (and on interrupt) every call
of the last response that has no result yet is closed: with its recorded result when one exists, otherwise
with an error result saying it was interrupted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from pydantic import TypeAdapter
from pydantic_ai.messages import ModelMessage, ModelRequest, ModelResponse, TextPart, ToolCallPart, ToolReturnPart

from ..store import CheckpointWrite, Store

INTERRUPTED = "The tool call was interrupted before a result was produced."
_MESSAGE: TypeAdapter[ModelMessage] = TypeAdapter(ModelMessage)
_REQUEST: TypeAdapter[ModelRequest] = TypeAdapter(ModelRequest)
_RESPONSE: TypeAdapter[ModelResponse] = TypeAdapter(ModelResponse)
"""Writing a message with its own type's adapter gives the union's JSON at a third of the cost for a response."""
_REF = "loophost_result_event"
"""Key of a tool return's metadata naming the event that holds its content."""
_TEXT_REF = "loophost_message_event"
"""Key of a response's metadata naming the `agent.message` that holds its (single) text part."""


def refer_text(response: ModelResponse, message_event_id: str) -> None:
    """Mark a response whose one text part is the content of `message_event_id`, so it is stored once."""
    if sum(isinstance(p, TextPart) for p in response.parts) == 1:
        response.metadata = {**(response.metadata or {}), _TEXT_REF: message_event_id}


def _text_ref(message: ModelMessage) -> str | None:
    if isinstance(message, ModelResponse) and message.metadata:
        ref = message.metadata.get(_TEXT_REF)
        return ref if isinstance(ref, str) else None
    return None


class Result:
    """A tool call's result as the model sees it, and the event that holds it (if any)."""

    __slots__ = ("event_id", "is_error", "text")

    def __init__(self, text: str, is_error: bool, event_id: str | None = None) -> None:
        self.text = text
        self.is_error = is_error
        self.event_id = event_id

    def part(self, call: ToolCallPart) -> ToolReturnPart:
        return ToolReturnPart(
            call.tool_name,
            self.text,
            call.tool_call_id,
            outcome="failed" if self.is_error else "success",
            metadata={_REF: self.event_id} if self.event_id is not None else None,
        )


def result_of(body: str) -> Result:
    """The result an event carries: the text of its content blocks and its error flag."""
    data = json.loads(body)
    text = "\n".join(b.get("text", "") for b in data.get("content") or [] if b.get("type") == "text")
    return Result(text, bool(data.get("is_error")), data["id"])


async def read_results(store: Store, session_id: str, event_ids: Sequence[str]) -> dict[str, Result]:
    """Results read back from the log, keyed by the id of the event holding each."""
    if not event_ids:
        return {}
    return {event.id: result_of(event.body) for event in await store.get_events(session_id, event_ids)}


def _encode(message: ModelMessage) -> bytes:
    """A message as stored: tool returns held by an event keep only the reference."""
    if isinstance(message, ModelRequest) and any(_ref(p) is not None for p in message.parts):
        parts = [replace(p, content="") if _ref(p) else p for p in message.parts]  # type: ignore[arg-type]
        message = replace(message, parts=parts)
    elif _text_ref(message) is not None:
        assert isinstance(message, ModelResponse)
        message = replace(
            message, parts=[replace(p, content="") if isinstance(p, TextPart) else p for p in message.parts]
        )
    if isinstance(message, ModelResponse):
        return _RESPONSE.dump_json(message)
    return _REQUEST.dump_json(message)


def _ref(part: Any) -> str | None:
    if isinstance(part, ToolReturnPart) and isinstance(part.metadata, dict):
        ref = part.metadata.get(_REF)
        return ref if isinstance(ref, str) else None
    return None


class History:
    """The messages of a session, and how many of them are stored."""

    def __init__(self, messages: Sequence[ModelMessage] = ()) -> None:
        self.messages: list[ModelMessage] = list(messages)

    @classmethod
    async def load(cls, store: Store, session_id: str) -> History:
        messages = [_MESSAGE.validate_json(entry) for entry in await store.get_checkpoint(session_id)]
        refs = [ref for m in messages if isinstance(m, ModelRequest) for p in m.parts if (ref := _ref(p)) is not None]
        refs += [ref for m in messages if (ref := _text_ref(m)) is not None]
        results = await read_results(store, session_id, refs)
        for message in messages:
            text_ref = _text_ref(message)
            if isinstance(message, ModelResponse) and text_ref in results:
                for response_part in message.parts:
                    if isinstance(response_part, TextPart):
                        response_part.content = results[text_ref].text
            elif isinstance(message, ModelRequest):
                for part in message.parts:
                    ref = _ref(part)
                    if isinstance(part, ToolReturnPart) and ref is not None and ref in results:
                        part.content = results[ref].text
        return cls(messages)

    def append(self, *new: ModelMessage) -> CheckpointWrite | None:
        """Add messages; the write that stores them (None when there are none)."""
        if not new:
            return None
        keep = len(self.messages)
        self.messages.extend(new)
        return CheckpointWrite(keep, tuple(_encode(m) for m in new))

    def last_response(self) -> ModelResponse | None:
        last = self.messages[-1] if self.messages else None
        return last if isinstance(last, ModelResponse) else None


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
                if isinstance(part, ToolReturnPart)
            }
            return [p for p in message.parts if isinstance(p, ToolCallPart) and p.tool_call_id not in answered]
    return []


def closing_request(
    messages: Sequence[ModelMessage], results: Mapping[str, Result] | None = None, *, reason: str = INTERRUPTED
) -> ModelRequest | None:
    """One request answering every open call (`results` by tool-call id where known), or None if none is open."""
    calls = open_calls(messages)
    if not calls:
        return None
    known = results or {}
    parts = []
    for call in calls:
        result = known.get(call.tool_call_id)
        if result is not None:
            parts.append(result.part(call))
        else:
            parts.append(ToolReturnPart(call.tool_name, reason, call.tool_call_id, outcome="interrupted"))
    return ModelRequest(parts=parts)
