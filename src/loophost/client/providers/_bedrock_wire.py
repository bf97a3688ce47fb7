"""The Bedrock AgentCore harness wire, as pure functions: request bodies, event-stream frames, turn folding (the
errors are in `_bedrock_errors`, re-exported here).

Kept apart from the connection so every rule of the wire (spec: bedrock-agentcore-harness.md sections 2-6) can be
read and tested without HTTP. Events yielded by the connection have one shape, botocore's own wrapping plus a
discriminator: `{"type": "<event-type>", "<event-type>": <frame payload>}`, e.g.
`{"type": "messageStop", "messageStop": {"stopReason": "tool_use"}}`. A truncated attempt that is retried is
marked by `{"type": "loophost.stream_retry", "attempt": n, "reason": ...}`; folding starts over after it.
"""

from __future__ import annotations

import importlib
import json
import re
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._results import Terminal, ToolResult, ToolSpec, ToolUse, TurnInput, TurnResult, Usage
from ._bedrock_errors import (
    AccessDeniedError,
    AgentCoreError,
    AuthenticationError,
    ConflictError,
    ContextOverflowError,
    CorruptStreamError,
    InternalServerError,
    ResourceNotFoundError,
    RuntimeClientError,
    ServiceQuotaExceededError,
    ThrottlingError,
    TruncatedStreamError,
    ValidationError,
    http_error,
    make_error,
)

__all__ = (  # the errors of `_bedrock_errors` are part of this wire's vocabulary, re-exported
    "EVENTSTREAM",
    "HARNESS_ARN",
    "INLINE",
    "MISSING_BOTOCORE",
    "RETRY_EVENT",
    "SERVICE",
    "SESSION_HEADER",
    "SESSION_ID",
    "TOOL_NAME",
    "USER_HEADER",
    "AccessDeniedError",
    "AgentCoreError",
    "AuthenticationError",
    "ConflictError",
    "ContextOverflowError",
    "CorruptStreamError",
    "Folded",
    "InternalServerError",
    "ResourceNotFoundError",
    "RuntimeClientError",
    "ServiceQuotaExceededError",
    "StreamDecoder",
    "ThrottlingError",
    "TruncatedStreamError",
    "ValidationError",
    "arn_harness_id",
    "arn_region",
    "assistant_content",
    "botocore",
    "check_session_id",
    "fold",
    "frame_event",
    "http_error",
    "inline_tool",
    "is_inline",
    "make_error",
    "new_session_id",
    "resume_messages",
    "stopped",
    "text_delta",
    "tool_result_block",
    "tool_use_block",
    "turn_result",
    "user_message",
)

SERVICE = "bedrock-agentcore"
SESSION_HEADER = "X-Amzn-Bedrock-AgentCore-Runtime-Session-Id"
USER_HEADER = "X-Amzn-Bedrock-AgentCore-Runtime-User-Id"
EVENTSTREAM = "application/vnd.amazon.eventstream"
RETRY_EVENT = "loophost.stream_retry"
INLINE = "tool_use"
"""The toolUse `type` of an inline function: the only kind the harness hands back to the client."""

SESSION_ID = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_-]{32,99}")
HARNESS_ARN = re.compile(r"arn:aws[a-z-]*:bedrock-agentcore:([a-z0-9-]+):\d{12}:harness/([a-zA-Z0-9_-]+)")
TOOL_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
MISSING_BOTOCORE = "the Bedrock AgentCore provider needs botocore: pip install 'loophost[bedrock]'"


def botocore(module: str) -> Any:
    """A botocore module, imported on first use so that `import loophost` never pays for (or needs) botocore."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(MISSING_BOTOCORE) from exc


# ---------------------------------------------------------------------------------------------------- requests


def new_session_id() -> str:
    """A fresh runtime session id: a uuid4 is 36 chars, inside the service's 33-100."""
    return str(uuid.uuid4())


def check_session_id(session_id: str) -> str:
    if not SESSION_ID.fullmatch(session_id):
        raise ValueError(
            f"invalid AgentCore runtime session id {session_id!r}: 33-100 chars of [a-zA-Z0-9_-], "
            "starting with a letter or digit (a uuid4 string works)"
        )
    return session_id


def arn_region(harness_arn: str) -> str:
    """The region of a harness ARN (requests are signed for it); ValueError when it is not a harness ARN."""
    match = HARNESS_ARN.fullmatch(harness_arn)
    if match is None:
        raise ValueError(f"not a harness ARN: {harness_arn!r} (arn:aws:bedrock-agentcore:REGION:ACCOUNT:harness/ID)")
    return match.group(1)


def arn_harness_id(harness_arn: str) -> str:
    arn_region(harness_arn)
    return harness_arn.rsplit("/", 1)[1]


def inline_tool(spec: ToolSpec) -> dict[str, Any]:
    """A local tool as an `inline_function`: the harness pauses on it and hands the call back to the client."""
    if not TOOL_NAME.fullmatch(spec.name):
        raise ValueError(f"tool name {spec.name!r} is not accepted by AgentCore ([a-zA-Z0-9_-]{{1,64}})")
    config = {"description": spec.description[:4096] or spec.name, "inputSchema": dict(spec.input_schema)}
    return {"type": "inline_function", "name": spec.name, "config": {"inlineFunction": config}}


def user_message(text: str) -> dict[str, Any]:
    """A new user turn; an empty prompt becomes "Begin." because text blocks must not be empty."""
    return {"role": "user", "content": [{"text": text or "Begin."}]}


def tool_result_block(result: ToolResult) -> dict[str, Any]:
    return {
        "toolResult": {
            "toolUseId": result.tool_use_id,
            "content": [{"text": result.text or "(empty result)"}],
            "status": "error" if result.is_error else "success",
        }
    }


def tool_use_block(use: ToolUse) -> dict[str, Any]:
    return {"toolUse": {"toolUseId": use.id, "name": use.name, "input": dict(use.input), "type": INLINE}}


def resume_messages(turn_input: TurnInput, pending: Sequence[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    """The assistant message echoed with its toolUse blocks, then one user message with a toolResult per call.

    The harness does not keep an unfinished inline-tool turn, so the echo is what lets it accept the results.
    `pending` is the paused assistant message as this connection saw it: its text and reasoning are echoed too,
    with exactly the toolUse blocks being answered. Without it (a resumed session), the echo is built from
    `turn_input.tool_uses`, which are in the same order as the results.
    """
    results = turn_input.tool_results
    ids = [result.tool_use_id for result in results]
    if len(set(ids)) != len(ids):
        raise ValueError(f"duplicate tool results in one resume: {ids}")
    uses: dict[str, dict[str, Any]] = {use.id: tool_use_block(use) for use in turn_input.tool_uses}
    content: list[dict[str, Any]] = []
    for block in pending or ():
        tool = block.get("toolUse")
        if tool is None:
            content.append(dict(block))
        elif tool["toolUseId"] in ids:
            uses.setdefault(tool["toolUseId"], dict(block))
    missing = [tool_use_id for tool_use_id in ids if tool_use_id not in uses]
    if missing:
        raise ValueError(f"tool results for unknown tool uses {missing}: pass the answered uses in TurnInput.tool_uses")
    content.extend(uses[tool_use_id] for tool_use_id in ids)
    user = [tool_result_block(result) for result in results]
    if turn_input.text:
        user.append({"text": turn_input.text})
    return [{"role": "assistant", "content": content}, {"role": "user", "content": user}]


# ---------------------------------------------------------------------------------------------------- frames


class StreamDecoder:
    """Incremental `application/vnd.amazon.eventstream` decoding on botocore's `EventStreamBuffer`.

    Partial frames stay buffered between chunks, so any split of the body decodes to the same events.
    """

    def __init__(self) -> None:
        self._buffer = botocore("botocore.eventstream").EventStreamBuffer()

    def feed(self, data: bytes, *, session_id: str | None = None) -> Iterator[dict[str, Any]]:
        """The events completed by `data`; an exception frame raises its typed error, a bad frame
        `CorruptStreamError`."""
        parser_error = botocore("botocore.eventstream").ParserError
        self._buffer.add_data(data)
        while True:
            try:
                message = next(self._buffer)
            except StopIteration:
                return
            except parser_error as exc:
                raise CorruptStreamError(f"corrupt event-stream frame: {exc}") from exc
            yield frame_event(dict(message.headers), message.payload, session_id=session_id)


def frame_event(headers: Mapping[str, Any], payload: bytes, *, session_id: str | None = None) -> dict[str, Any]:
    """One decoded frame as an event dict; `exception`/`error` frames raise their typed error (never retried)."""
    try:
        body: Any = json.loads(payload) if payload else {}
    except ValueError:
        body = {"raw": payload.decode("utf-8", "replace")}
    kind = headers.get(":message-type", "event")
    if kind == "event":
        name = str(headers.get(":event-type") or "unknown")
        return {"type": name, name: body}
    if kind == "exception":
        name = str(headers.get(":exception-type") or "")
        message = body.get("message", "") if isinstance(body, dict) else str(body)
    else:
        name = str(headers.get(":error-code") or "")
        message = str(headers.get(":error-message") or "")
    error = make_error(name or None, f"{message} (in the event stream)", body=body, session_id=session_id)
    error.retryable = False
    raise error


# ---------------------------------------------------------------------------------------------------- folding


@dataclass
class _Block:
    kind: str
    text: list[str] = field(default_factory=list)
    tool_use_id: str = ""
    name: str = ""
    tool_type: str | None = None
    server_name: str | None = None
    status: str | None = None
    result: list[Any] = field(default_factory=list)
    signature: str | None = None
    redacted: str | None = None

    def tool_input(self) -> dict[str, Any]:
        try:
            value = json.loads("".join(self.text) or "{}")
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}


@dataclass
class _Message:
    role: str
    blocks: list[_Block] = field(default_factory=list)
    by_key: dict[tuple[str, str], _Block] = field(default_factory=dict)
    active: dict[int, _Block] = field(default_factory=dict)
    stop: str | None = None


@dataclass
class Folded:
    """One invoke's events folded into messages (the last `messageStop` decides), and the last usage seen."""

    messages: list[_Message]
    stop_reason: str | None
    final: _Message | None
    usage: Mapping[str, Any] | None
    events: tuple[Mapping[str, Any], ...]


def fold(events: Sequence[Mapping[str, Any]]) -> Folded:
    """Fold without assuming an order for `metadata`; tool blocks keyed by `toolUseId`, never by index alone.

    A live stream was seen reusing `contentBlockIndex` 0 for two tool ids: the index only says which open
    block a delta belongs to. Each `messageStart` opens a new message; a retry marker starts over.
    """
    messages: list[_Message] = []
    stop: str | None = None
    final: _Message | None = None
    usage: Mapping[str, Any] | None = None

    def current() -> _Message:
        if not messages:
            messages.append(_Message("assistant"))
        return messages[-1]

    for event in events:
        kind = event.get("type")
        body = event.get(kind) if isinstance(kind, str) else None
        body = body if isinstance(body, Mapping) else {}
        if kind == RETRY_EVENT:
            messages, stop, final, usage = [], None, None, None
        elif kind == "messageStart":
            messages.append(_Message(str(body.get("role", "assistant"))))
        elif kind == "contentBlockStart":
            _start(current(), body)
        elif kind == "contentBlockDelta":
            _delta(current(), body)
        elif kind == "contentBlockStop":
            current().active.pop(_index(body), None)
        elif kind == "messageStop":
            message = current()
            message.stop = stop = str(body.get("stopReason", ""))
            final = message
        elif kind == "metadata" and isinstance(body.get("usage"), Mapping):
            usage = body["usage"]
    return Folded(messages, stop, final, usage, tuple(events))


def _index(body: Mapping[str, Any]) -> int:
    value = body.get("contentBlockIndex", 0)
    return value if isinstance(value, int) else 0


def _open(message: _Message, index: int, key: tuple[str, str], kind: str) -> _Block:
    block = message.by_key.get(key)
    if block is None:
        block = message.by_key[key] = _Block(kind)
        message.blocks.append(block)
    message.active[index] = block
    return block


def _start(message: _Message, body: Mapping[str, Any]) -> None:
    start: Mapping[str, Any] = body["start"] if isinstance(body.get("start"), Mapping) else {}
    index = _index(body)
    if isinstance(start.get("toolUse"), Mapping):
        tool = start["toolUse"]
        block = _open(message, index, ("toolUse", str(tool.get("toolUseId", ""))), "toolUse")
        block.tool_use_id, block.name = str(tool.get("toolUseId", "")), str(tool.get("name", ""))
        block.tool_type, block.server_name = tool.get("type"), tool.get("serverName")
    elif isinstance(start.get("toolResult"), Mapping):
        result = start["toolResult"]
        block = _open(message, index, ("toolResult", str(result.get("toolUseId", ""))), "toolResult")
        block.tool_use_id, block.status = str(result.get("toolUseId", "")), result.get("status")


def _delta(message: _Message, body: Mapping[str, Any]) -> None:
    delta: Mapping[str, Any] = body["delta"] if isinstance(body.get("delta"), Mapping) else {}
    index = _index(body)
    block = message.active.get(index)
    if isinstance(delta.get("text"), str):
        if block is None or block.kind != "text":
            block = _open(message, index, ("text", str(len(message.blocks))), "text")
        block.text.append(delta["text"])
    elif isinstance(delta.get("toolUse"), Mapping):
        if block is None or block.kind != "toolUse":
            block = next((b for b in reversed(message.blocks) if b.kind == "toolUse"), None)
        if block is not None:
            block.text.append(str(delta["toolUse"].get("input", "")))
    elif isinstance(delta.get("toolResult"), list):
        if block is not None and block.kind == "toolResult":
            block.result.extend(delta["toolResult"])
    elif isinstance(delta.get("reasoningContent"), Mapping):
        if block is None or block.kind != "reasoning":
            block = _open(message, index, ("reasoning", str(len(message.blocks))), "reasoning")
        reasoning = delta["reasoningContent"]
        if isinstance(reasoning.get("text"), str):
            block.text.append(reasoning["text"])
        block.signature = reasoning.get("signature", block.signature)
        block.redacted = reasoning.get("redactedContent", block.redacted)


def is_inline(block: _Block, local_names: frozenset[str] | None) -> bool:
    """`type: tool_use` is an inline function; a missing type counts as one when the name is a local tool."""
    if block.tool_type is None:
        return local_names is None or block.name in local_names
    return block.tool_type == INLINE


def _use(block: _Block) -> ToolUse:
    return ToolUse(id=block.tool_use_id, name=block.name, input=block.tool_input())


def turn_result(events: Sequence[Mapping[str, Any]], local_names: frozenset[str] | None = None) -> TurnResult:
    """The turn's outcome. `end_turn`/`stop_sequence` end it, `tool_use` on inline tools asks the client to act;
    anything else (`max_iterations_exceeded`, a server tool left unresolved, no stop at all) terminates it with the
    raw stop reason. The text is the last assistant message's, as the harness's final answer.
    """
    folded = fold(events)
    server = tuple(
        _use(b)
        for m in folded.messages
        for b in m.blocks
        if b.kind == "toolUse" and b.tool_use_id and not is_inline(b, local_names)
    )
    final_tools = [b for b in folded.final.blocks if b.kind == "toolUse"] if folded.final else []
    tool_uses: tuple[ToolUse, ...] = ()
    terminal: Terminal = "terminated"
    if folded.stop_reason in ("end_turn", "stop_sequence"):
        terminal = "end_turn"
    elif folded.stop_reason == INLINE and final_tools and all(is_inline(b, local_names) for b in final_tools):
        terminal, tool_uses = "requires_action", tuple(_use(b) for b in final_tools)
    assistant = [m for m in folded.messages if m.role == "assistant"]
    text = "".join("".join(b.text) for b in assistant[-1].blocks if b.kind == "text") if assistant else ""
    return TurnResult(
        terminal=terminal,
        stop_reason=folded.stop_reason,
        text=text,
        tool_uses=tool_uses,
        server_tool_uses=server,
        usage=Usage.from_raw(folded.usage) if folded.usage is not None else None,
        events=folded.events,
    )


def assistant_content(events: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The final assistant message in request shape (text, reasoning, toolUse), to echo on resume."""
    final = fold(events).final
    content: list[dict[str, Any]] = []
    for block in final.blocks if final is not None and final.role == "assistant" else ():
        if block.kind == "text" and "".join(block.text):
            content.append({"text": "".join(block.text)})
        elif block.kind == "reasoning" and block.redacted is not None:
            content.append({"reasoningContent": {"redactedContent": block.redacted}})
        elif block.kind == "reasoning" and "".join(block.text):
            reasoning: dict[str, Any] = {"text": "".join(block.text)}
            if block.signature is not None:
                reasoning["signature"] = block.signature
            content.append({"reasoningContent": {"reasoningText": reasoning}})
        elif block.kind == "toolUse" and block.tool_use_id:
            tool = {"toolUseId": block.tool_use_id, "name": block.name, "input": block.tool_input()}
            tool["type"] = block.tool_type or INLINE
            content.append({"toolUse": tool})
    return content


def stopped(events: Sequence[Mapping[str, Any]]) -> bool:
    """Whether the stream's last message got its `messageStop` (else the stream was cut short)."""
    done = False
    for event in events:
        if event.get("type") in ("messageStart", RETRY_EVENT):
            done = False
        elif event.get("type") == "messageStop":
            done = True
    return done


def text_delta(event: Mapping[str, Any]) -> str | None:
    if event.get("type") != "contentBlockDelta":
        return None
    delta = (event.get("contentBlockDelta") or {}).get("delta") or {}
    text = delta.get("text") if isinstance(delta, Mapping) else None
    return text if isinstance(text, str) else None
