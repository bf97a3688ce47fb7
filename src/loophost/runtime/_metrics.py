"""Prometheus metrics of the runtime: counters and histograms incremented where things happen, off until enabled.

`loophost serve` turns them on (through `ServerSettings(metrics=True)`, unless `--no-metrics`); an embedded runtime
(the `Local` provider) pays no more than a flag test per site. The counting sites are the span sites of
`_telemetry.py` (turn runs, model requests, tool calls), the session writer's commit (events appended) and the
webhook deliverer (attempts); gauges that describe state (stream subscribers, active workers, leases held, sandbox
processes, sessions and work items by state, the webhook backlog) are read when `/metrics` is scraped
(`server/_metrics.py`), so nothing keeps them up to date in between.

One registry per process (`registry()`, not prometheus-client's global one, so an application embedding loophost
keeps its own), labelled only by bounded values: model ids, tool kinds, outcomes, states, environment ids.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

__all__ = (
    "disable",
    "enable",
    "enabled",
    "events_appended",
    "model_request",
    "registry",
    "tool_call",
    "turn_run",
    "webhook_attempt",
)

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)

_on = False
_metrics: dict[str, Any] = {}
_children: dict[tuple[str, ...], Any] = {}


def enabled() -> bool:
    return _on


def enable() -> CollectorRegistry:
    """Start counting (idempotent); the registry `/metrics` serves."""
    global _on
    if not _metrics:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        reg = CollectorRegistry(auto_describe=True)
        _metrics["registry"] = reg
        _metrics["turns"] = Counter(
            "loophost_turns",
            "Runs of a turn by a session worker (a turn parked on tool calls runs again once they are answered)",
            ["model", "outcome"],
            registry=reg,
        )
        _metrics["turn_seconds"] = Histogram(
            "loophost_turn_duration_seconds",
            "Duration of a run of a turn",
            ["model"],
            registry=reg,
            buckets=_LATENCY_BUCKETS,
        )
        _metrics["requests"] = Counter("loophost_model_requests", "Model requests", ["model", "outcome"], registry=reg)
        _metrics["request_seconds"] = Histogram(
            "loophost_model_request_duration_seconds",
            "Duration of a model request (streamed to its end)",
            ["model"],
            registry=reg,
            buckets=_LATENCY_BUCKETS,
        )
        _metrics["tokens"] = Counter(
            "loophost_model_tokens", "Tokens of model requests", ["model", "type"], registry=reg
        )
        _metrics["tools"] = Counter(
            "loophost_tool_calls", "Tool calls by kind and outcome", ["kind", "outcome"], registry=reg
        )
        _metrics["events"] = Counter("loophost_events_appended", "Events appended to session logs", registry=reg)
        _metrics["webhooks"] = Counter(
            "loophost_webhook_delivery_attempts",
            "Webhook delivery attempts by this process, by outcome (delivered, retrying, gave_up, refused)",
            ["outcome"],
            registry=reg,
        )
        _metrics["gauges"] = {
            "subscribers": Gauge("loophost_stream_subscribers", "Live event-stream subscriptions", registry=reg),
            "workers": Gauge("loophost_session_workers", "Session workers running in this process", registry=reg),
            "leases": Gauge("loophost_leases_held", "Session leases this node holds", registry=reg),
            "sessions": Gauge("loophost_sessions", "Sessions by status", ["status"], registry=reg),
            "work": Gauge(
                "loophost_work_items", "Live work items of self-hosted environments by state", ["state"], registry=reg
            ),
            "queue": Gauge(
                "loophost_work_queue_depth",
                "Queued work items per self-hosted environment",
                ["environment_id"],
                registry=reg,
            ),
            "sandboxes": Gauge("loophost_sandbox_processes", "Sandboxed tool processes running", registry=reg),
            "webhooks": Gauge(
                "loophost_webhook_backlog", "Webhook deliveries pending (due or waiting to retry)", registry=reg
            ),
        }
    _on = True
    return registry()


def disable() -> None:
    """Stop counting (what was counted stays); for comparing a runtime with and without metrics."""
    global _on
    _on = False


def registry() -> CollectorRegistry:
    reg: CollectorRegistry = _metrics["registry"]
    return reg


def gauges() -> dict[str, Any]:
    found: dict[str, Any] = _metrics["gauges"]
    return found


def _child(metric: str, *labels: str) -> Any:
    """A labelled child, kept: `labels()` validates and locks on every call, and the label values are bounded."""
    key = (metric, *labels)
    child = _children.get(key)
    if child is None:
        child = _children[key] = _metrics[metric].labels(*labels)
    return child


def turn_run(model: str, outcome: str, seconds: float) -> None:
    _child("turns", model, outcome).inc()
    _child("turn_seconds", model).observe(seconds)


def model_request(model: str, outcome: str, seconds: float, input_tokens: int = 0, output_tokens: int = 0) -> None:
    _child("requests", model, outcome).inc()
    _child("request_seconds", model).observe(seconds)
    if input_tokens:
        _child("tokens", model, "input").inc(input_tokens)
    if output_tokens:
        _child("tokens", model, "output").inc(output_tokens)


def tool_call(kind: str, outcome: str) -> None:
    _child("tools", kind, outcome).inc()


def webhook_attempt(outcome: str) -> None:
    """A delivery attempt ended (`_webhook_delivery.py`): `delivered`, `retrying` (a failure that is tried again),
    `gave_up` (a failure after a day of retries) or `refused` (a private address: the endpoint is disabled)."""
    if _on:
        _child("webhooks", outcome).inc()


def events_appended(count: int) -> None:
    if _on and count:
        _metrics["events"].inc(count)
