"""Outcomes in process: what one grading iteration costs (spec-2 §4; `engine/_grader.py`).

The scripted agent works, the scripted grader reads the verdicts from the rubric (`needs_revision` N times, then
satisfied), so every iteration is: grading (span start -> end, one grader request and its commits) and a
revision turn. The peer for the grading is pydantic-ai's `direct.model_request` alone on the same scripted model
with a grader-sized prompt: what is left is what loophost adds around the grader's request.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

from pydantic_ai.direct import model_request
from pydantic_ai.messages import ModelRequest, UserPromptPart

from loophost import wire
from loophost.runtime import Runtime, StoredEvent
from loophost.runtime.models import scripted_model

from ._registry import Context, benchmark
from ._report import Metric, latency_ms, metric

WS = "bench"
REVISIONS = 3
"""needs_revision verdicts per outcome: REVISIONS + 1 gradings."""


def _outcome(revisions: int) -> wire.UserDefineOutcomeParams:
    rubric = "\n".join(f"verdict needs_revision fix {i}" for i in range(revisions))
    return wire.UserDefineOutcomeParams.model_validate(
        {
            "type": "user.define_outcome",
            "description": "write the report",
            "rubric": {"type": "text", "content": rubric},
            "max_iterations": revisions + 1,
        }
    )


async def _run_outcome(rt: Runtime, agent_id: str, env_id: str) -> tuple[list[float], list[float]]:
    """(seconds per grading span, seconds per whole iteration: one span end to the next) of one outcome."""
    session = await rt.start_session(WS, wire.SessionCreateParams(agent=agent_id, environment_id=env_id))
    gradings: list[float] = []
    cycles: list[float] = []
    started: float | None = None
    last_end: float | None = None
    stream = await rt.open_stream(WS, session.id)
    try:
        await rt.send_events(WS, session.id, [_outcome(REVISIONS)])
        async for event in stream:
            if not isinstance(event, StoredEvent):
                continue
            now = time.perf_counter()
            if event.type == "span.outcome_evaluation_start":
                started = now
            elif event.type == "span.outcome_evaluation_end" and started is not None:
                gradings.append(now - started)
                if last_end is not None:
                    cycles.append(now - last_end)
                last_end = now
            elif event.type == "session.status_idle":
                break
    finally:
        await stream.aclose()
    if len(gradings) != REVISIONS + 1:
        raise RuntimeError(f"expected {REVISIONS + 1} gradings, saw {len(gradings)}")
    return gradings, cycles


async def _grader_requests(count: int) -> list[float]:
    """Seconds per `direct.model_request` of the scripted model on a grader's prompt (no loophost code)."""
    model = scripted_model()
    rubric = "\n".join(f"verdict needs_revision fix {i}" for i in range(REVISIONS))
    samples: list[float] = []
    for i in range(count):
        prompt = f"<rubric>\n{rubric}\n</rubric>\n\n<deliverable>\necho: write the report {i}\n</deliverable>"
        tag = {"loophost": {"grader": {"iteration": i % (REVISIONS + 1)}}}
        began = time.perf_counter()
        await model_request(model, [ModelRequest(parts=[UserPromptPart(prompt)], metadata=tag)])
        samples.append(time.perf_counter() - began)
    return samples


@benchmark("agent.grading_overhead")
async def grading_overhead(ctx: Context) -> AsyncIterator[Metric]:
    """Per grading iteration of an outcome: the grading span and the whole iteration, vs the grader request alone."""
    outcomes = ctx.size(30, 4)
    async with Runtime.from_url(ctx.fresh_path("outcomes")) as rt:
        agent = await rt.create_agent(WS, wire.AgentCreateParams(name="bench", model="scripted"))
        env = await rt.create_environment(WS, wire.EnvironmentCreateParams(name="bench-outcomes"))
        gradings: list[float] = []
        cycles: list[float] = []
        for index in range(outcomes + 1):
            spans, iterations = await _run_outcome(rt, agent.id, env.id)
            if index:  # the first outcome warms up imports and caches
                gradings += spans
                cycles += iterations
    ours, peer, whole = latency_ms(gradings), latency_ms(await _grader_requests(len(gradings) + 5)), latency_ms(cycles)
    yield metric(
        "agent.grading_overhead",
        round((ours["p50"] or 0) - (peer["p50"] or 0), 3),
        "ms",
        p50=ours["p50"],
        p99=ours["p99"],
        p_unit="ms per grading (span.outcome_evaluation_start -> end on a live stream)",
        peer="pydantic_ai.direct.model_request alone, scripted model, a grader's prompt",
        peer_p50=peer["p50"],
        iteration_p50=whole["p50"],
        iteration_p99=whole["p99"],
        iteration_note="one grading plus the revision turn it starts (span end to the next span end)",
        gradings=len(gradings),
        revisions_per_outcome=REVISIONS,
        ref="issue 15",
    )
    ctx.log(json.dumps({"gradings": len(gradings)}))
