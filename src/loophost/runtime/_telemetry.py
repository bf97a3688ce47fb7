"""OpenTelemetry spans of the turn engine, after the GenAI semantic conventions.

    invoke_agent {agent}      one per run of a turn by a worker (a turn parked on its tool calls is run again,
                              as a new span, once they are answered)
      chat {model}            one per model request (usage, finish reasons, `error.type`, retries as events)
      execute_tool {tool}     one per tool call of every kind; a call answered by a client or a worker is a span
                              from the `agent.*tool_use` event's time to the answer event's (both times are in
                              the event ids), recorded by the run that reads the answer
      invoke_agent {agent}    one per `send_to_agent` of a coordinator (a delegation): the parent of the thread's
                              turns (`delegation_span`, `engine/_threads.py`)

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
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal, cast

from . import _metrics

if TYPE_CHECKING:
    from contextvars import Token

    from opentelemetry.context import Context
    from opentelemetry.trace import Span, SpanContext, Tracer

__all__ = (
    "ToolKind",
    "capture_content",
    "chat_span",
    "delegation_span",
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
_context: Any = None
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
    global _trace, _context, _tracer_cache
    if _trace is None:
        from opentelemetry import context, trace

        _trace, _context = trace, context
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
# A span costs the SDK tens of microseconds however it is made; what loophost adds is kept small: `chat` and
# `execute_tool` spans are made after the fact, in one `start_span(start_time=...)` + `end()` with every attribute
# at once (no span kept open across the awaits, no context attached, no `set_attribute` each), and nothing is built
# when the turn's span is not sampled. Only `invoke_agent` spans are current while they last (their children, and a
# delegation's thread, need them as parent).
def _unsampled() -> bool:
    """The current span (the turn's) is valid but not recording: its children are dropped, so none is made."""
    span = _trace.get_current_span()
    return bool(span.get_span_context().is_valid and not span.is_recording())


def _failed(span: Span, exc: BaseException | None) -> None:
    """A failure's exception event and error status (`error.type` is set with the attributes; a cancellation is
    `loophost.cancelled`, not an error)."""
    if isinstance(exc, Exception):
        span.record_exception(exc)
        span.set_status(_trace.Status(_trace.StatusCode.ERROR, str(exc)[:200]))


def _outcome_attributes(attributes: dict[str, Any], exc: BaseException | None) -> str:
    """The metric outcome of a block that ended with `exc`, noted in the span's attributes."""
    if exc is None:
        return "ok"
    if isinstance(exc, asyncio.CancelledError):
        attributes["loophost.cancelled"] = True
        return "cancelled"
    attributes["error.type"] = type(exc).__qualname__
    return "error"


class _Current:
    """A span current while its block runs (`invoke_agent`: the turn's, or a delegation's)."""

    __slots__ = ("_started", "_token", "span")
    span: Span | NoSpan
    _token: Token[Context] | None

    def _open(self, tracer: Tracer, name: str, attributes: dict[str, Any], **kw: Any) -> None:
        """(Only after `current_tracer()` returned a tracer: the OpenTelemetry modules are loaded.)"""
        span = tracer.start_span(name, attributes=attributes, **kw)
        self.span = span
        self._token = _context.attach(_trace.set_span_in_context(span))

    def _close(self, exc: BaseException | None) -> str:
        outcome = "ok"
        if self._token is not None:
            _context.detach(self._token)
            span = cast("Span", self.span)
            marks: dict[str, Any] = {}
            outcome = _outcome_attributes(marks, exc)
            if marks:
                span.set_attributes(marks)
                _failed(span, exc)
            span.end()
        elif exc is not None:
            outcome = "cancelled" if isinstance(exc, asyncio.CancelledError) else "error"
        return outcome


class _TurnRun(_Current):
    __slots__ = ("_agent", "_session_id", "_stored")

    def __init__(self, session_id: str, agent: Any, stored: str | None) -> None:
        self._session_id, self._agent, self._stored = session_id, agent, stored
        self.span: Span | NoSpan = NO_SPAN
        self._token = None
        self._started = 0.0

    def __enter__(self) -> Span | NoSpan:
        session_id, agent = self._session_id, self._agent
        parent = _handoffs.pop(session_id, None) if _handoffs else None
        if _metrics.enabled():
            self._started = time.perf_counter()
        tracer = current_tracer()
        if tracer is None:
            return NO_SPAN
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": agent.name,
            "gen_ai.agent.id": agent.id,
            "gen_ai.agent.version": str(agent.version),
            "gen_ai.conversation.id": session_id,
            "gen_ai.request.model": agent.model.id,
            "loophost.session.id": session_id,
        }
        if session_id.startswith("sthr_"):  # a coordinator's thread (`engine/_threads.py`): its own session
            attributes["loophost.thread.id"] = session_id
        stored = parse_traceparent(self._stored)
        links = [_trace.Link(stored, {"loophost.link": "turn_request"})] if stored is not None else None
        self._open(
            tracer,
            f"invoke_agent {agent.name}",
            attributes,
            context=parent if parent is not None else _root(),  # no handed-off context: a new trace, say so
            links=links,
        )
        return self.span

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        outcome = self._close(exc)
        if self._started:
            _metrics.turn_run(self._agent.model.id, outcome, time.perf_counter() - self._started)


def _root() -> Context:
    from opentelemetry.context import Context as _Context

    return _Context()


def turn_span(session_id: str, agent: Any, *, trace: str | None = None) -> _TurnRun:
    """`invoke_agent {agent name}` around one run of a turn. Its parent is the context the request that made the
    session run handed off in this process; `trace` (the stored `traceparent` of that request) is linked, so a
    run after a crash or on another node starts a new trace that points to the old one."""
    return _TurnRun(session_id, agent, trace)


class DelegationSpan(_Current):
    """`invoke_agent {agent}` of a coordinator's `send_to_agent`: the child of its turn's span, current while the
    message is handed to the thread, so the thread's turns (`hand_off` in `engine/_threads.py`) are its children."""

    __slots__ = ("_attributes", "_error", "_name")

    def __init__(self, agent_name: str, agent_id: str, thread_id: str, call_id: str) -> None:
        self.span: Span | NoSpan = NO_SPAN
        self._token = None
        self._error = False
        self._name = f"invoke_agent {agent_name}"
        self._attributes = {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": agent_name,
            "gen_ai.agent.id": agent_id,
            "gen_ai.conversation.id": thread_id,
            "loophost.thread.id": thread_id,
            "gen_ai.tool.name": "send_to_agent",
            "gen_ai.tool.call.id": call_id,
            "loophost.tool.kind": "delegation",
        }

    def refused(self) -> None:
        """The call came back as an error for the model (no such agent, busy thread, too many threads)."""
        self._error = True
        if self._token is not None:
            self.span.set_attribute("error.type", "tool_error")

    def __enter__(self) -> DelegationSpan:
        tracer = current_tracer()
        if tracer is not None and not _unsampled():
            self._open(tracer, self._name, self._attributes)
        return self

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        outcome = self._close(exc)
        if _metrics.enabled():
            _metrics.tool_call("delegation", "error" if self._error or outcome == "error" else outcome)


def delegation_span(agent_name: str, agent_id: str, thread_id: str, call_id: str) -> DelegationSpan:
    return DelegationSpan(agent_name, agent_id, thread_id, call_id)


class ChatSpan:
    """One model request: told its response, it makes its `chat {model}` span when it ends (and counts it)."""

    __slots__ = ("_attempt", "_input", "_model", "_response", "_started", "_tracer", "tokens")

    def __init__(self, model: Any, messages: Sequence[Any], attempt: int, tracer: Tracer | None) -> None:
        self._model, self._attempt, self._tracer = model, attempt, tracer
        self._response: Any = None
        self._input: str | None = None
        self._started = 0
        self.tokens = (0, 0)
        if tracer is not None and capture_content():  # now: the history grows once the response is in
            self._input = json.dumps([_message(m) for m in messages])

    def __enter__(self) -> ChatSpan:
        self._started = time.time_ns()
        return self

    def response(self, response: Any) -> None:
        self._response = response
        usage = response.usage
        self.tokens = (int(usage.input_tokens or 0), int(usage.output_tokens or 0))

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        ended = time.time_ns()
        name = self._model.model_name
        tracer = self._tracer
        if tracer is None or _unsampled():
            if _metrics.enabled():
                outcome = "ok" if exc is None else "cancelled" if isinstance(exc, asyncio.CancelledError) else "error"
                _metrics.model_request(name, outcome, (ended - self._started) / 1e9, *self.tokens)
            return
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": name,
            "gen_ai.provider.name": self._model.system,
            "gen_ai.request.stream": True,
        }
        if self._input is not None:
            attributes["gen_ai.input.messages"] = self._input
        response = self._response
        if response is not None:
            _response_attributes(attributes, response, self.tokens, self._input is not None)
        outcome = _outcome_attributes(attributes, exc)
        span = tracer.start_span(
            f"chat {name}", kind=_trace.SpanKind.CLIENT, attributes=attributes, start_time=self._started
        )
        if self._attempt:
            span.add_event("gen_ai.request.retry", {"loophost.retry.attempt": self._attempt}, self._started)
        if outcome == "error":
            _failed(span, exc)
        span.end(end_time=ended)
        if _metrics.enabled():
            _metrics.model_request(name, outcome, (ended - self._started) / 1e9, *self.tokens)


def _response_attributes(attributes: dict[str, Any], response: Any, tokens: tuple[int, int], capture: bool) -> None:
    usage = response.usage
    attributes["gen_ai.usage.input_tokens"], attributes["gen_ai.usage.output_tokens"] = tokens
    if usage.cache_read_tokens:
        attributes["gen_ai.usage.cache_read.input_tokens"] = int(usage.cache_read_tokens)
    if usage.cache_write_tokens:
        attributes["gen_ai.usage.cache_creation.input_tokens"] = int(usage.cache_write_tokens)
    if response.finish_reason:
        attributes["gen_ai.response.finish_reasons"] = [str(response.finish_reason)]
    if response.model_name:
        attributes["gen_ai.response.model"] = response.model_name
    if response.provider_response_id:
        attributes["gen_ai.response.id"] = response.provider_response_id
    if capture:
        attributes["gen_ai.output.messages"] = json.dumps([_message(response)])


def chat_span(model: Any, messages: Sequence[Any], *, attempt: int = 0) -> ChatSpan:
    """`chat {model}` around one model request; `attempt` > 0 (a retry after transient failures) is an event."""
    return ChatSpan(model, messages, attempt, current_tracer())


def _tool_attributes(name: str, call_id: str, kind: ToolKind, arguments: Any, capture: bool) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": name,
        "gen_ai.tool.call.id": call_id,
        "gen_ai.tool.type": _TOOL_TYPE[kind],
        "loophost.tool.kind": kind,
    }
    if arguments is not None and capture:
        attributes["gen_ai.tool.call.arguments"] = json.dumps(arguments, default=str)
    return attributes


def _tool(
    name: str, call_id: str, kind: ToolKind, arguments: Any, is_error: bool, result: str | None, start: int | None
) -> Span | None:
    """An `execute_tool` span begun at `start` with all its attributes (None while tracing is off or unsampled)."""
    tracer = current_tracer()
    if tracer is None or _unsampled():
        return None
    capture = capture_content()
    attributes = _tool_attributes(name, call_id, kind, arguments, capture)
    if is_error:
        attributes["error.type"] = "tool_error"
    if result is not None and capture:
        attributes["gen_ai.tool.call.result"] = result
    return tracer.start_span(f"execute_tool {name}", attributes=attributes, start_time=start)


class ToolSpan:
    """One call the runtime runs itself: told its result, it makes its `execute_tool {tool}` span when it ends."""

    __slots__ = ("_args", "_call_id", "_kind", "_name", "_result", "_started", "is_error")

    def __init__(self, name: str, call_id: str, kind: ToolKind, arguments: Any) -> None:
        self._name, self._call_id, self._kind, self._args = name, call_id, kind, arguments
        self._result: str | None = None
        self._started = 0
        self.is_error = False

    def __enter__(self) -> ToolSpan:
        self._started = time.time_ns()
        return self

    def result(self, text: str, *, is_error: bool) -> None:
        self.is_error = is_error
        self._result = text

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        failed = self.is_error or isinstance(exc, Exception)
        if _metrics.enabled():
            _metrics.tool_call(self._kind, "error" if failed else "ok")
        span = _tool(self._name, self._call_id, self._kind, self._args, failed, self._result, self._started)
        if span is not None:
            if isinstance(exc, Exception):
                _failed(span, exc)
            span.end()


def tool_span(name: str, call_id: str, kind: ToolKind, arguments: Any = None) -> ToolSpan:
    """`execute_tool {tool}` around a call the runtime runs itself (built-in, MCP, a delegation answered at once)."""
    return ToolSpan(name, call_id, kind, arguments)


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
    span = _tool(name, call_id, kind, arguments, is_error, result or "", _id_time_ns(announced))
    if span is not None:
        span.end(end_time=_id_time_ns(answered) if answered is not None else None)


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
