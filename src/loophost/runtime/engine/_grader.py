"""The grader loop of an outcome (spec-2 §4; state in `runtime/_outcomes.py`, `OutcomeState`).

When the turn that works on an outcome ends (`after_turn`), the session stays `running` with no turn, and its
worker grades (`grade`): `span.outcome_evaluation_start`, one model request whose context is only the rubric
and the agent's deliverable (the text of its last response; never the transcript), heartbeats
(`span.outcome_evaluation_ongoing`) while it takes long, then `span.outcome_evaluation_end` with the verdict and
the grader's usage, in the commit that decides what follows:

- `needs_revision`: a revision turn starts at once, its input the end event (the explanation is its prompt);
- `needs_revision` at the last allowed iteration: `max_iterations_reached`, and one final acknowledgement turn;
- `satisfied`, `failed`: idle (`end_turn`), and queued input goes on.

Every step commits where it stands, so a restarted worker grades again from the open span (the grader has no
side effects). An interrupt cancels the grading step; the interrupt step closes the span as `interrupted`.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic_ai.direct import model_request
from pydantic_ai.messages import InstructionPart, ModelRequest, ModelResponse, TextPart, UserPromptPart
from pydantic_ai.models import Model, ModelRequestParameters

from ... import wire
from .. import _outcomes as outcomes
from .._state import OutcomeState, SessionInternal, TurnState
from .._writer import Change, LoadedSession, SessionWriter
from ..store import Store
from . import _outbound as out
from . import _spend
from ._history import History

T = TypeVar("T")

ONGOING_SECONDS = 10.0
"""How often `span.outcome_evaluation_ongoing` is emitted while a grading takes long."""

GRADER_INSTRUCTIONS = (
    "You grade a deliverable against a rubric. You see only the rubric and the deliverable. Answer with a first "
    "line that is exactly one of `verdict: satisfied`, `verdict: needs_revision` or `verdict: failed` (failed: the "
    "rubric does not apply to this deliverable at all), then explain your verdict; for needs_revision, say what "
    "must change."
)

_VERDICT = re.compile(r"^\s*verdict:\s*(satisfied|needs_revision|failed)\b[ \t]*(.*)$", re.MULTILINE)
_END = {"type": "end_turn"}


def parse_verdict(text: str) -> tuple[str, str]:
    """(result, explanation) from a grader's answer; no verdict line reads as needs_revision, with the answer."""
    match = _VERDICT.search(text)
    if match is None:
        return "needs_revision", text.strip()
    rest = (match.group(2) + text[match.end() :]).strip()
    return match.group(1), rest


def revision_prompt(event: dict[str, Any]) -> str:
    """The input of the turn after a grading (`engine/_inputs.py`), from its `span.outcome_evaluation_end`."""
    explanation = event.get("explanation") or ""
    if event.get("result") == "max_iterations_reached":
        return (
            "The grader was still not satisfied after the maximum number of revisions; its last verdict:\n"
            f"{explanation}\nAcknowledge this briefly; the work stops here."
        )
    return f"The grader's verdict on your work: needs revision.\n{explanation}\nRevise your work accordingly."


def after_turn(current: LoadedSession, internal: SessionInternal, ended: list[Any], **change: Any) -> Change | None:
    """The end of an outcome's turn: grading comes next (the session stays running), or after the final turn
    the outcome is over. None when the turn that ended is not the outcome's."""
    from ._turn import turn_end

    state = internal.outcome
    turn = current.internal.turn
    if state is None or turn is None or turn.input_id not in (state.event_id, state.revision_input):
        return None
    if state.final:
        return turn_end(internal.model_copy(update={"outcome": None}), [*ended, out.idle(_END)], **change)
    return Change(events=ended, status="running", internal=internal, **change)


def grading(loaded: LoadedSession) -> bool:
    """Whether the session's next step is a grading (running, the outcome's turn over)."""
    return loaded.internal.turn is None and loaded.internal.outcome is not None


def interrupted(current: LoadedSession) -> tuple[list[Any], SessionInternal, wire.Session | None]:
    """What an interrupt does to the outcome: a started one ends `interrupted` (closing an open grading span); one
    still queued behind the interrupted turn stays. Returns (events, internal, changed document or None)."""
    state = current.internal.outcome
    if state is None or state.event_id in current.internal.queue:
        return [], current.internal, None
    events: list[Any] = []
    if state.grading_start is not None:
        events.append(_end_event(state, out.event_id(), "interrupted", "Interrupted by the user.", None))
    document = outcomes.with_evaluation(current.session, state.outcome_id, result="interrupted")
    return events, current.internal.model_copy(update={"outcome": None}), document


async def grade(
    *, writer: SessionWriter, store: Store, session_id: str, model: Model, history: History, model_id: str
) -> None:
    """One grading of the session's outcome, from its open span (see the module docstring)."""
    loaded = await writer.load(None, session_id)
    state = loaded.internal.outcome
    if state is None:
        return
    if loaded.internal.budget is not None and _spend.over_budget(loaded):  # the grader's request is one too
        await writer.apply(session_id, _spend.pause)
        return
    if state.grading_start is None:
        start_id = out.event_id()
        first: OutcomeState = state

        def begin(current: LoadedSession) -> Change:
            now_state = current.internal.outcome or first
            event = wire.parse_event(
                {
                    "id": start_id,
                    "type": "span.outcome_evaluation_start",
                    "processed_at": wire.utcnow(),
                    "outcome_id": now_state.outcome_id,
                    "iteration": now_state.iteration,
                }
            )
            internal = current.internal.model_copy(
                update={"outcome": now_state.model_copy(update={"grading_start": start_id})}
            )
            document = outcomes.with_evaluation(
                current.session, now_state.outcome_id, result="evaluating", iteration=now_state.iteration
            )
            return Change(events=[event], internal=internal, document=document)

        await writer.apply(session_id, begin)
        state = state.model_copy(update={"grading_start": start_id})
    rubric = await _rubric(store, session_id, state.event_id)
    response = await _heartbeating(writer, session_id, state, _ask(model, session_id, state, rubric, history))
    text = "".join(p.content for p in response.parts if isinstance(p, TextPart))
    verdict, explanation = parse_verdict(text)
    usage = response.usage
    tokens = (
        int(usage.input_tokens or 0),
        int(usage.output_tokens or 0),
        int(usage.cache_read_tokens or 0),
        int(usage.cache_write_tokens or 0),
    )
    await writer.apply(session_id, lambda current: _graded(current, verdict, explanation, tokens, response, model_id))


def _graded(
    current: LoadedSession,
    verdict: str,
    explanation: str,
    tokens: tuple[int, int, int, int],
    response: ModelResponse,
    model_id: str,
) -> Change:
    from ..store import TokenCounts
    from ._turn import turn_end

    state = current.internal.outcome
    if state is None or state.grading_start is None:
        return Change()  # (an interrupt closed it meanwhile)
    counts = TokenCounts(*tokens)
    result = verdict
    if verdict == "needs_revision" and state.iteration + 1 >= state.max_iterations:
        result = "max_iterations_reached"
    end_id = out.event_id()
    events: list[Any] = [_end_event(state, end_id, result, explanation, counts)]
    internal = current.internal
    if internal.budget is not None:
        internal = _spend.charged(internal, model_id, counts, response)
    if result in ("needs_revision", "max_iterations_reached"):
        span_id = out.event_id()
        revised = state.model_copy(
            update={
                "iteration": state.iteration + 1 if result == "needs_revision" else state.iteration,
                "revision_input": end_id,
                "grading_start": None,
                "final": result == "max_iterations_reached",
            }
        )
        internal = internal.model_copy(
            update={"outcome": revised, "turn": TurnState(input_id=end_id, open_span=span_id, requests=1)}
        )
        document = outcomes.with_evaluation(
            current.session,
            state.outcome_id,
            result="running" if result == "needs_revision" else result,
            iteration=revised.iteration,
            explanation=explanation,
        )
        events.append(out.span_start(span_id))
        return Change(events=events, internal=internal, document=document, usage=counts)
    document = outcomes.with_evaluation(current.session, state.outcome_id, result=result, explanation=explanation)
    internal = internal.model_copy(update={"outcome": None})
    return turn_end(internal, [*events, out.idle(_END)], document=document, usage=counts)


def _end_event(state: OutcomeState, event_id: str, result: str, explanation: str, tokens: Any) -> Any:
    counts = tokens or (0, 0, 0, 0)
    return wire.parse_event(
        {
            "id": event_id,
            "type": "span.outcome_evaluation_end",
            "processed_at": wire.utcnow(),
            "outcome_id": state.outcome_id,
            "iteration": state.iteration,
            "outcome_evaluation_start_id": state.grading_start,
            "result": result,
            "explanation": explanation,
            "usage": {
                "input_tokens": counts[0],
                "output_tokens": counts[1],
                "cache_read_input_tokens": counts[2],
                "cache_creation_input_tokens": counts[3],
            },
        }
    )


def _only(event: Any) -> Callable[[LoadedSession], Change]:
    return lambda current: Change(events=[event])


async def _rubric(store: Store, session_id: str, event_id: str) -> str:
    stored = await store.get_event(session_id, event_id)
    if stored is None:
        return ""
    rubric = json.loads(stored.body).get("rubric") or {}
    return str(rubric.get("content") or "")


def _deliverable(history: History) -> str:
    """The agent's deliverable: the text of its last response."""
    response = history.last_response()
    if response is None:
        return ""
    return "".join(p.content for p in response.parts if isinstance(p, TextPart))


async def _ask(model: Model, session_id: str, state: OutcomeState, rubric: str, history: History) -> ModelResponse:
    """The grader's request: its own context, the rubric and the deliverable only."""
    prompt = f"<rubric>\n{rubric}\n</rubric>\n\n<deliverable>\n{_deliverable(history)}\n</deliverable>"
    tag = {
        "loophost": {
            "session_id": session_id,
            "input_id": f"{state.outcome_id}/{state.iteration}",
            "grader": {"iteration": state.iteration},
        }
    }
    request = ModelRequest(parts=[UserPromptPart(prompt)], metadata=tag)
    params = ModelRequestParameters(
        allow_text_output=True, instruction_parts=[InstructionPart(content=GRADER_INSTRUCTIONS)]
    )
    return await model_request(model, [request], model_request_parameters=params)


async def _heartbeating(writer: SessionWriter, session_id: str, state: OutcomeState, work: Awaitable[T]) -> T:
    """Await `work`, committing `span.outcome_evaluation_ongoing` every ONGOING_SECONDS until it is done."""
    task = asyncio.ensure_future(work)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=ONGOING_SECONDS)
            if done:
                return task.result()
            event = wire.parse_event(
                {
                    "id": out.event_id(),
                    "type": "span.outcome_evaluation_ongoing",
                    "processed_at": wire.utcnow(),
                    "outcome_id": state.outcome_id,
                    "iteration": state.iteration,
                }
            )
            await writer.apply(session_id, _only(event))
    finally:
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
