"""What `loophost serve` sets up for operators: the OpenTelemetry SDK exporting spans over OTLP, and the logs' format.

Tracing is on when the command line names a collector (`--otlp-endpoint URL`, the base URL: spans go to
`URL/v1/traces`) or the standard variables do (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`,
`OTEL_TRACES_EXPORTER=otlp`); `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none` turn it off. The SDK reads the
rest of its variables itself (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER`,
`OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_BSP_*`). The SDK and the exporter are the `loophost[otel]` extra.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ("ServeTelemetry", "TelemetryUnavailable", "start_tracing")

LogFormat = Literal["text", "json"]


@dataclass(frozen=True, slots=True)
class ServeTelemetry:
    """The telemetry options of `loophost serve`."""

    otlp_endpoint: str | None = None
    metrics: bool = True
    metrics_port: int | None = None
    """Serve `/metrics` on this port of the same host instead of the API's port (0: any free port)."""
    log_format: LogFormat = "text"
    log_level: str = "info"


class TelemetryUnavailable(Exception):
    """Tracing was asked for and the SDK is not installed."""


def _wanted(otlp_endpoint: str | None) -> bool:
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter == "none":
        return False
    return bool(
        otlp_endpoint
        or exporter == "otlp"
        or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def start_tracing(otlp_endpoint: str | None) -> Any | None:
    """Install an SDK tracer provider exporting over OTLP/HTTP when asked (see the module docstring); the provider
    (to `shutdown()` at exit, which flushes), or None when tracing stays off."""
    if not _wanted(otlp_endpoint):
        return None
    try:
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        raise TelemetryUnavailable(
            f"exporting spans needs the OpenTelemetry SDK and OTLP exporter: pip install 'loophost[otel]' ({exc})"
        ) from exc
    from .. import __version__

    endpoint = f"{otlp_endpoint.rstrip('/')}/v1/traces" if otlp_endpoint else None  # else the OTEL_* variables
    resource = Resource.create({"service.name": "loophost", "service.version": __version__})
    if os.environ.get("OTEL_SERVICE_NAME"):  # the standard variable wins over the default name
        resource = resource.merge(Resource.create({"service.name": os.environ["OTEL_SERVICE_NAME"]}))
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    trace.set_tracer_provider(provider)
    return provider
