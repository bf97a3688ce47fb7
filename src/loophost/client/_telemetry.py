"""OpenTelemetry spans for the run, each turn and each tool call, and the trace context on every HTTP call.

Only `opentelemetry-api` is used: without an SDK configured by the application every span is a no-op, and
then not even the API's context switching is paid for (checked per span, so an SDK configured later is used
from then on). The API is imported on the first span, so `import loophost` stays light.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Any

__all__ = ("propagate_context", "span")

_trace: Any = None
_tracer: Any = None
_tracer_of: Any = None


class _NoSpan:
    """What `span()` gives while tracing is off: a context manager and a span that do nothing, at no cost."""

    def set_attribute(self, key: str, value: Any) -> None:
        pass

    def __enter__(self) -> _NoSpan:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None


_NO_SPAN = _NoSpan()


def _configured_tracer() -> Any:
    """The tracer, or None while no SDK tracer provider is set."""
    global _trace, _tracer, _tracer_of
    if _trace is None:
        from opentelemetry import trace

        _trace = trace
    provider = _trace.get_tracer_provider()
    if isinstance(provider, _trace.ProxyTracerProvider):
        return None
    if _tracer_of is not provider:
        from .. import __version__

        _tracer, _tracer_of = provider.get_tracer("loophost", __version__), provider
    return _tracer


def span(name: str, attributes: Mapping[str, Any] | None = None) -> AbstractContextManager[Any]:
    """A span around a block (`with span(...) as s:`); an exception is recorded on it and re-raised."""
    tracer = _configured_tracer()
    if tracer is None:
        return _NO_SPAN
    return tracer.start_as_current_span(name, attributes=dict(attributes or {}))


async def propagate_context(request: Any) -> None:
    """An httpx2 request hook: the current trace context as `traceparent` (and `tracestate`), so the server's
    request span and the turn it starts join the caller's trace. Free while OpenTelemetry is not imported."""
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None or not trace.get_current_span().get_span_context().is_valid:
        return
    from opentelemetry.propagate import inject

    inject(request.headers)
