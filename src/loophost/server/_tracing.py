"""The server's span of each request, the child of the caller's `traceparent` (W3C trace context).

While no SDK tracer provider is configured, no span is made; a request that carries a `traceparent` still runs in
its context, so the turn it starts stores that trace (`runtime/_telemetry.py`) for a node that does trace. A request
without one, on a server without an SDK, pays one header lookup.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from starlette.types import Scope

from ..runtime import _telemetry

__all__ = ("RequestSpan", "request_span")


class RequestSpan:
    """What the middleware tells the request's span: the response status."""

    __slots__ = ("span",)

    def __init__(self, span: Any) -> None:
        self.span = span

    def status(self, code: int) -> None:
        if self.span is None:
            return
        self.span.set_attribute("http.response.status_code", code)
        if code >= 500:
            from opentelemetry.trace import Status, StatusCode

            self.span.set_attribute("error.type", str(code))
            self.span.set_status(Status(StatusCode.ERROR))


_NO_REQUEST_SPAN = RequestSpan(None)


@contextmanager
def request_span(scope: Scope, headers: dict[bytes, bytes], request_id: str) -> Iterator[RequestSpan]:
    """`{METHOD} {route}` (kind SERVER) around a request, its parent the request's `traceparent` if any."""
    traceparent = headers.get(b"traceparent")
    tracer = _telemetry.current_tracer()
    if tracer is None and traceparent is None:
        yield _NO_REQUEST_SPAN
        return
    from opentelemetry import context as otel_context
    from opentelemetry import trace
    from opentelemetry.propagate import extract

    parent = None
    if traceparent is not None:
        carrier = {"traceparent": traceparent.decode("latin-1")}
        if (state := headers.get(b"tracestate")) is not None:
            carrier["tracestate"] = state.decode("latin-1")
        parent = extract(carrier)
    if tracer is None:
        assert parent is not None
        token = otel_context.attach(parent)
        try:
            yield _NO_REQUEST_SPAN
        finally:
            otel_context.detach(token)
        return
    method = scope.get("method", "")
    span = tracer.start_span(
        method,
        context=parent,
        kind=trace.SpanKind.SERVER,
        attributes={
            "http.request.method": method,
            "url.path": scope.get("path", ""),
            "url.scheme": scope.get("scheme", "http"),
            "loophost.request.id": request_id,
        },
    )
    try:
        with trace.use_span(span, end_on_exit=False):
            yield RequestSpan(span)
    finally:
        route = getattr(scope.get("route"), "path", None) or scope.get("loophost.route")
        if route:
            span.update_name(f"{method} {route}")
            span.set_attribute("http.route", route)
        span.end()
