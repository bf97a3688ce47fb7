"""OpenTelemetry spans for the run, each turn and each tool call.

Only `opentelemetry-api` is used: without an SDK configured by the application every span is a no-op.
The API is imported on the first span, so `import loophost` stays light.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

__all__ = ("span",)

_tracer: Any = None


def _get_tracer() -> Any:
    global _tracer
    if _tracer is None:
        from opentelemetry import trace

        from .. import __version__

        _tracer = trace.get_tracer("loophost", __version__)
    return _tracer


@contextmanager
def span(name: str, attributes: Mapping[str, Any] | None = None) -> Iterator[Any]:
    """A span around a block; an exception is recorded on it and re-raised."""
    with _get_tracer().start_as_current_span(name, attributes=dict(attributes or {})) as current:
        yield current
