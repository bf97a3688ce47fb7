"""OpenTelemetry spans of the turn engine, after the GenAI semantic conventions.

    invoke_agent {agent}      one per run of a turn by a worker (a turn parked on its tool calls is run again,
                              as a new span, once they are answered)
      chat {model}            one per model request (usage, finish reasons, `error.type`, retries as events)
      execute_tool {tool}     one per tool call of every kind; a call answered by a client or a worker is a span
                              from the `agent.*tool_use` event's time to the answer event's (both times are in
                              the event ids), recorded by the run that reads the answer

Only `opentelemetry-api` is used, and nothing is paid while no SDK tracer provider is configured: each span site
asks `current_tracer()` (a provider lookup) and gets a no-op. The same sites count the metrics of `_metrics.py`
when they are enabled. Contents (prompts, completions, tool arguments and results) are recorded only when the
operator opts in with `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true`; no secret reaches a model message
or a tool's input, so none reaches a span.

Trace context across the wire: the request that makes a session run (input accepted, its last pending tool use
answered) hands its context to the worker in this process (`hand_off`), which makes it the parent of the turn's
next `invoke_agent` span; the same context is stored with the session as a `traceparent` (`SessionInternal.trace`),
so a turn resumed after a crash, or by another node, starts a new trace linked to the old one.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal

from . import _metrics

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.trace import Span, SpanContext, Tracer

__all__ = (
    "ToolKind",
    "capture_content",
    "chat_span",
    "hand_off",
    "parse_traceparent",
    "tool_span",
    "turn_span",
    "waited_tool_span",
)

ToolKind = Literal["builtin", "mcp", "custom", "worker", "delegation", "unknown"]
"""Which way a call went (`loophost.tool.kind`); `gen_ai.tool.type` says where it ran (see `_TOOL_TYPE`)."""

_TOOL_TYPE: dict[str, str] = {
    "builtin": "extension",  # run by the runtime, on the agent's side
    "mcp": "extension",
    "delegation": "extension",
    "custom": "function",  # run by the client
    "worker": "function",  # run by a self-hosted environment's worker
    "unknown": "function",
}
CAPTURE_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
_HANDOFFS_KEPT = 10_000
_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")

_trace: Any = None
_tracer_cache: tuple[Any, Any] = (None, None)
_handoffs: OrderedDict[str, Context] = OrderedDict()


class NoSpan:
    """What a span site gets while tracing is off: records nothing, costs nothing."""

    def set_attribute(self, key: str, value: Any) -> None:
        pass

    def add_event(self, name: str, attributes: dict[str, Any] | None = None) -> None:
        pass

    def is_recording(self) -> bool:
        return False


NO_SPAN = NoSpan()


def current_tracer() -> Tracer | None:
    """The runtime's tracer, or None while no SDK tracer provider is set (an SDK set later is used from then on)."""
    global _trace, _tracer_cache
    if _trace is None:
        from opentelemetry import trace

        _trace = trace
    provider = _trace.get_tracer_provider()
    if isinstance(provider, _trace.ProxyTracerProvider):
        return None
    if _tracer_cache[0] is not provider:
        from .. import __version__

        _tracer_cache = (provider, provider.get_tracer("loophost.runtime", __version__))
    tracer: Tracer = _tracer_cache[1]
    return tracer


def capture_content() -> bool:
    return os.environ.get(CAPTURE_ENV, "").strip().lower() in ("true", "1", "yes")


# trace context ------------------------------------------------------------------------------------------------
def hand_off(session_id: str) -> str | None:
    """The current trace context as a `traceparent` (None when there is none), remembered for the session's next
    turn run in this process. Called where a request makes a session run."""
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:  # nothing imported OpenTelemetry: no context can be current
        return None
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    from opentelemetry import context as otel_context

    _handoffs[session_id] = otel_context.get_current()
    _handoffs.move_to_end(session_id)
    while len(_handoffs) > _HANDOFFS_KEPT:
        _handoffs.popitem(last=False)
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"


def parse_traceparent(value: str | None) -> SpanContext | None:
    """A stored W3C `traceparent` as a remote span context (None if it is not one)."""
    match = _TRACEPARENT.fullmatch(value) if value else None
    if match is None:
        return None
    from opentelemetry.trace import SpanContext, TraceFlags

    context = SpanContext(
        int(match[1], 16), int(match[2], 16), is_remote=True, trace_flags=TraceFlags(int(match[3], 16))
    )
    return context if context.is_valid else None


# spans --------------------------------------------------------------------------------------------------------
@contextmanager
def _span(
    tracer: Tracer,
    name: str,
    attributes: dict[str, Any],
    *,
    kind: Any = None,
    context: Context | None = None,
    links: Sequence[Any] = (),
    start_time: int | None = None,
) -> Iterator[Span]:
    """A current span that records a failure as `error.type` (a cancellation is `cancelled`, not an error)."""
    trace = _trace
    span = tracer.start_span(
        name,
        context=context,
        kind=kind if kind is not None else trace.SpanKind.INTERNAL,
        attributes=attributes,
        links=links,
        start_time=start_time,
    )
    try:
        with trace.use_span(span, end_on_exit=False, record_exception=False, set_status_on_exception=False):
            yield span
    except BaseException as exc:
        if isinstance(exc, asyncio.CancelledError):
            span.set_attribute("loophost.cancelled", True)
        elif isinstance(exc, Exception):
            span.set_attribute("error.type", type(exc).__qualname__)
            span.record_exception(exc)
            span.set_status(trace.Status(trace.StatusCode.ERROR, str(exc)[:200]))
        raise
    finally:
        span.end()


@contextmanager
def _measured(record: Any) -> Iterator[list[str]]:
    """Times a block for a metric: `record(outcome, seconds)`, the outcome `ok` unless the block set another,
    `error` when it raised, `cancelled` when it was cancelled."""
    outcome = ["ok"]
    started = time.perf_counter()
    try:
        yield outcome
    except BaseException as exc:
        outcome[0] = "cancelled" if isinstance(exc, asyncio.CancelledError) else "error"
        raise
    finally:
        record(outcome[0], time.perf_counter() - started)


@contextmanager
def turn_span(
    session_id: str, agent: Any, *, trace: str | None = None, thread_id: str | None = None
) -> Iterator[Span | NoSpan]:
    """`invoke_agent {agent name}` around one run of a turn. Its parent is the context the request that made the
    session run handed off in this process; `trace` (the stored `traceparent` of that request) is linked, so a
    run after a crash or on another node starts a new trace that points to the old one."""
    parent = _handoffs.pop(session_id, None) if _handoffs else None
    tracer = current_tracer()
    if not _metrics.enabled():
        with _turn(tracer, session_id, agent, parent, trace, thread_id) as span:
            yield span
        return
    model = agent.model.id
    with (
        _measured(lambda outcome, seconds: _metrics.turn_run(model, outcome, seconds)),
        _turn(tracer, session_id, agent, parent, trace, thread_id) as span,
    ):
        yield span


@contextmanager
def _turn(
    tracer: Tracer | None, session_id: str, agent: Any, parent: Context | None, trace: str | None, thread_id: str | None
) -> Iterator[Span | NoSpan]:
    if tracer is None:
        yield NO_SPAN
        return
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": agent.name,
        "gen_ai.agent.id": agent.id,
        "gen_ai.agent.version": str(agent.version),
        "gen_ai.conversation.id": session_id,
        "gen_ai.request.model": agent.model.id,
        "loophost.session.id": session_id,
    }
    if thread_id is not None:
        attributes["loophost.thread.id"] = thread_id
    links = []
    stored = parse_traceparent(trace)
    if stored is not None:
        links.append(_trace.Link(stored, {"loophost.link": "turn_request"}))
    if parent is None:
        from opentelemetry.context import Context as _Context

        parent = _Context()  # a new trace (the worker's context holds nothing, but say so)
    with _span(tracer, f"invoke_agent {agent.name}", attributes, context=parent, links=links) as span:
        yield span


class ChatSpan:
    """The span of one model request (and its metrics), told the response when it arrives."""

    def __init__(self, span: Span | NoSpan) -> None:
        self.span = span
        self.tokens = (0, 0)

    def response(self, response: Any) -> None:
        span = self.span
        usage = response.usage
        self.tokens = (int(usage.input_tokens or 0), int(usage.output_tokens or 0))
        if not span.is_recording():
            return
        span.set_attribute("gen_ai.usage.input_tokens", self.tokens[0])
        span.set_attribute("gen_ai.usage.output_tokens", self.tokens[1])
        if usage.cache_read_tokens:
            span.set_attribute("gen_ai.usage.cache_read.input_tokens", int(usage.cache_read_tokens))
        if usage.cache_write_tokens:
            span.set_attribute("gen_ai.usage.cache_creation.input_tokens", int(usage.cache_write_tokens))
        if response.finish_reason:
            span.set_attribute("gen_ai.response.finish_reasons", [str(response.finish_reason)])
        if response.model_name:
            span.set_attribute("gen_ai.response.model", response.model_name)
        if response.provider_response_id:
            span.set_attribute("gen_ai.response.id", response.provider_response_id)
        if capture_content():
            span.set_attribute("gen_ai.output.messages", json.dumps([_message(response)]))


_NO_CHAT = ChatSpan(NO_SPAN)


@contextmanager
def chat_span(model: Any, messages: Sequence[Any], *, attempt: int = 0) -> Iterator[ChatSpan]:
    """`chat {model}` around one model request; `attempt` > 0 (a retry after transient failures) is an event."""
    tracer = current_tracer()
    counting = _metrics.enabled()
    if tracer is None and not counting:
        yield _NO_CHAT
        return
    chat = ChatSpan(NO_SPAN)
    name = model.model_name

    def record(outcome: str, seconds: float) -> None:
        if counting:
            _metrics.model_request(name, outcome, seconds, *chat.tokens)

    with _measured(record):
        if tracer is None:
            yield chat
            return
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": name,
            "gen_ai.provider.name": model.system,
            "gen_ai.request.stream": True,
        }
        if capture_content():
            attributes["gen_ai.input.messages"] = json.dumps([_message(m) for m in messages])
        with _span(tracer, f"chat {name}", attributes, kind=_trace.SpanKind.CLIENT) as span:
            if attempt:
                span.add_event("gen_ai.request.retry", {"loophost.retry.attempt": attempt})
            chat.span = span
            yield chat


class ToolSpan:
    """The span of one tool call (and its metric), told its result."""

    def __init__(self, span: Span | NoSpan) -> None:
        self.span = span
        self.is_error = False

    def result(self, text: str, *, is_error: bool) -> None:
        self.is_error = is_error
        if not self.span.is_recording():
            return
        if is_error:
            self.span.set_attribute("error.type", "tool_error")
        if capture_content():
            self.span.set_attribute("gen_ai.tool.call.result", text)


def _tool_attributes(name: str, call_id: str, kind: ToolKind, arguments: Any) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": name,
        "gen_ai.tool.call.id": call_id,
        "gen_ai.tool.type": _TOOL_TYPE[kind],
        "loophost.tool.kind": kind,
    }
    if capture_content() and arguments is not None:
        attributes["gen_ai.tool.call.arguments"] = json.dumps(arguments, default=str)
    return attributes


@contextmanager
def tool_span(name: str, call_id: str, kind: ToolKind, arguments: Any = None) -> Iterator[ToolSpan]:
    """`execute_tool {tool}` around a call the runtime runs itself (built-in, MCP, a delegation)."""
    tracer = current_tracer()
    tool = ToolSpan(NO_SPAN)
    try:
        if tracer is None:
            yield tool
        else:
            with _span(tracer, f"execute_tool {name}", _tool_attributes(name, call_id, kind, arguments)) as span:
                tool.span = span
                yield tool
    except Exception:
        tool.is_error = True
        raise
    finally:
        if _metrics.enabled():
            _metrics.tool_call(kind, "error" if tool.is_error else "ok")


def waited_tool_span(
    name: str,
    call_id: str,
    kind: ToolKind,
    *,
    announced: str,
    answered: str | None,
    is_error: bool,
    arguments: Any = None,
    result: str | None = None,
) -> None:
    """`execute_tool {tool}` of a call answered from outside (a client's custom tool, a worker's built-in one):
    from the announcing event's time to the answer's, both read from the event ids (`_ids.py`)."""
    if _metrics.enabled():
        _metrics.tool_call(kind, "error" if is_error else "ok")
    tracer = current_tracer()
    if tracer is None:
        return
    start = _id_time_ns(announced)
    end = _id_time_ns(answered) if answered is not None else None
    span = tracer.start_span(
        f"execute_tool {name}", attributes=_tool_attributes(name, call_id, kind, arguments), start_time=start
    )
    tool = ToolSpan(span)
    tool.result(result or "", is_error=is_error)
    span.end(end_time=end)


def _id_time_ns(event_id: str) -> int | None:
    """When an id was made (its first 48 bits are milliseconds), in nanoseconds; None if it is not one of ours."""
    try:
        return int(event_id.rpartition("_")[2][:12], 16) * 1_000_000
    except ValueError:
        return None


def _message(message: Any) -> dict[str, Any]:
    """A pydantic-ai message in the conventions' message shape (only built when contents are captured)."""
    parts: list[dict[str, Any]] = []
    role = "assistant" if message.kind == "response" else "user"
    for part in message.parts:
        kind = part.part_kind
        if kind in ("text", "user-prompt", "system-prompt"):
            content = part.content if isinstance(part.content, str) else str(part.content)
            parts.append({"type": "text", "content": content})
        elif kind == "tool-call":
            parts.append({"type": "tool_call", "id": part.tool_call_id, "name": part.tool_name, "arguments": part.args})
        elif kind in ("tool-return", "retry-prompt"):
            role = "tool"
            parts.append({"type": "tool_call_response", "id": part.tool_call_id, "response": str(part.content)})
    return {"role": role, "parts": parts}
