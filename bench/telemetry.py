"""What telemetry costs a turn: tracing (the OpenTelemetry SDK with a batch processor and an exporter that drops
everything) plus metrics (`runtime/_metrics.py`) on, against both off, in the same run.

Rounds alternate off and on on one runtime, so drift (the machine, the database growing, the collector) falls on
both sides alike. Each round runs echo turns and turns with a built-in tool call (a `chat` and an `execute_tool`
span, the counters of both). Goal (issue 19): on costs under 5 % more per turn.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from loophost import wire
from loophost.runtime import Runtime, StoredEvent, ToolContext, ToolOutput, _metrics, tune_gc

from ._registry import Context, benchmark
from ._report import Metric, latency_ms, metric

WS = "bench"
TURNS = 5
"""Turns per session, alternating an echo turn and a turn with one tool call."""


class _Noop:
    name = "read"
    description = "Answers at once."
    input_schema: dict[str, Any] = {"type": "object"}

    async def run(self, ctx: ToolContext, tool_input: dict[str, Any]) -> ToolOutput:
        return ToolOutput("ok")


class _DropExporter:
    """An SDK span exporter that exports nothing: the cost measured is the SDK's and loophost's, not a network's."""

    def export(self, spans: Sequence[Any]) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def _tracing(on: bool, provider: Any) -> None:
    """Install (or remove) the SDK provider globally, as an operator's process would have it (benchmarks only: the
    API lets a provider be set once per process)."""
    from opentelemetry import trace

    trace._TRACER_PROVIDER_SET_ONCE._done = False
    if on:
        trace.set_tracer_provider(provider)
        _metrics.enable()
    else:
        trace._TRACER_PROVIDER = None
        _metrics.disable()


async def _turn(rt: Runtime, session_id: str, text: str) -> tuple[float, float]:
    """The turn's latency, and the process's CPU time meanwhile (less noisy on a shared machine)."""
    started, cpu = time.perf_counter(), time.process_time()
    stream = await rt.open_stream(WS, session_id)
    try:
        await rt.send_events(WS, session_id, [_message(text)])
        async for event in stream:
            if isinstance(event, StoredEvent) and event.type == "session.status_idle":
                break  # end_turn: the tool is always allowed, so no turn parks
    finally:
        await stream.aclose()
    return time.perf_counter() - started, time.process_time() - cpu


def _message(text: str) -> wire.UserMessageParams:
    return wire.UserMessageParams.model_validate({"type": "user.message", "content": [{"type": "text", "text": text}]})


@benchmark("telemetry.turn_cost")
async def turn_cost(ctx: Context) -> AsyncIterator[Metric]:
    """Turn latency with tracing (SDK, batch processor, dropping exporter) and metrics on vs off, same run."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(_DropExporter()))  # type: ignore[arg-type]
    rounds, sessions = ctx.size(10, 2), ctx.size(6, 2)
    samples: dict[bool, list[float]] = {False: [], True: []}
    cpu: dict[bool, list[float]] = {False: [], True: []}
    read = {"name": "read", "enabled": True, "permission_policy": {"type": "always_allow"}}
    tools = [{"type": "agent_toolset_20260401", "default_config": {"enabled": False}, "configs": [read]}]
    try:
        async with Runtime.from_url(ctx.fresh_path("telemetry"), builtin_tools={"read": _Noop()}) as rt:
            params = wire.AgentCreateParams.model_validate({"name": "bench", "model": "scripted", "tools": tools})
            agent = await rt.create_agent(WS, params)
            env = await rt.create_environment(WS, wire.EnvironmentCreateParams(name="bench"))
            for index in range(rounds + 1):  # the first round warms up (imports, caches) and is not counted
                for on in (False, True) if index % 2 else (True, False):
                    _tracing(on, provider)
                    for _ in range(sessions):
                        created = wire.SessionCreateParams(agent=agent.id, environment_id=env.id)
                        session = await rt.start_session(WS, created)
                        for i in range(TURNS):
                            text = "call read {}" if i % 2 else f"hello {i}"
                            elapsed, used = await _turn(rt, session.id, text)
                            if index:
                                samples[on].append(elapsed)
                                cpu[on].append(used)
                if index == 0:
                    tune_gc()
    finally:
        _tracing(False, provider)
        provider.shutdown()
    off, with_on = latency_ms(samples[False]), latency_ms(samples[True])
    added = ((with_on["p50"] or 0) - (off["p50"] or 0)) / (off["p50"] or 1) * 100
    cpu_off, cpu_on = statistics.median(cpu[False]) * 1000, statistics.median(cpu[True]) * 1000
    yield metric(
        "telemetry.turn_cost",
        round(added, 2),
        "%",
        p50_off=off["p50"],
        p50_on=with_on["p50"],
        p99_off=off["p99"],
        p99_on=with_on["p99"],
        p_unit="ms per turn (send -> idle on the stream), half the turns with one built-in tool call",
        cpu_p50_off=round(cpu_off, 3),
        cpu_p50_on=round(cpu_on, 3),
        cpu_added_pct=round((cpu_on - cpu_off) / cpu_off * 100, 2),
        cpu_unit="ms of process CPU time per turn (median)",
        turns=len(samples[True]),
        goal="< 5 % more per turn with tracing and metrics on (issue 19)",
    )
