"""Outcomes (spec-2 §4): accepting a `user.define_outcome`, and the session's `outcome_evaluations`.

A `user.define_outcome` is input like a `user.message`: its turn does the work (the description, and the
rubric, are its prompt). When that turn ends the session stays `running` and grades (`engine/_grader.py`): a
grader with its own context (the rubric and the agent's deliverable, never the transcript) gives a verdict;
`needs_revision` feeds its explanation back as the input of the next turn, until `satisfied`, `failed`, or
`max_iterations` gradings (then `max_iterations_reached` and one last acknowledgement turn). An interrupt
ends the outcome as `interrupted`. One outcome at a time: another while one runs is a 400.

A file rubric is resolved to its text when the event is accepted, so the echo shows `{type: "text"}` (the spec
allows it) and grading never depends on the file later.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .. import wire
from ._clock import now
from ._errors import InvalidRequest, NotFound
from ._state import OutcomeState, SessionInternal
from .store import Store

MAX_RUBRIC_CHARS = 262_144
TERMINAL_RESULTS = frozenset({"satisfied", "failed", "max_iterations_reached", "interrupted"})


async def resolve_rubrics(store: Store, workspace: str, events: Sequence[Any]) -> list[Any]:
    """The events with every file rubric replaced by the file's text (404 for a file not in the workspace)."""
    resolved: list[Any] = []
    for event in events:
        rubric = getattr(event, "rubric", None)
        if event.type == "user.define_outcome" and isinstance(rubric, wire.FileRubric):
            content = await store.get_file_content(workspace, rubric.file_id)
            if content is None:
                raise NotFound(f"rubric file {rubric.file_id!r} not found", resource="file")
            try:
                text = content.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InvalidRequest("a rubric file must be UTF-8 text", code="invalid_rubric") from exc
            if len(text) > MAX_RUBRIC_CHARS:
                raise InvalidRequest(f"a rubric is at most {MAX_RUBRIC_CHARS} characters", code="invalid_rubric")
            event = event.model_copy(update={"rubric": wire.TextRubric(content=text)})
        resolved.append(event)
    return resolved


def define_outcomes(
    session: wire.Session, internal: SessionInternal, echoes: Sequence[wire.SessionEvent]
) -> wire.Session | None:
    """Record the accepted `user.define_outcome` (in `internal`, which is changed in place) and return the document
    with its evaluation `pending`; None when there is none. A second outcome while one runs is a 400."""
    defined = [e for e in echoes if isinstance(e, wire.UserDefineOutcomeEvent)]
    if not defined:
        return None
    if internal.outcome is not None or len(defined) > 1:
        running = internal.outcome.outcome_id if internal.outcome is not None else defined[0].outcome_id
        raise InvalidRequest(
            f"outcome {running!r} is still being worked on; one outcome at a time (send the next once it has a "
            "terminal result, or interrupt it)",
            code="outcome_in_progress",
        )
    event = defined[0]
    internal.outcome = OutcomeState(
        outcome_id=event.outcome_id, event_id=event.id, max_iterations=event.max_iterations or 3
    )
    entry = wire.OutcomeEvaluation(outcome_id=event.outcome_id, description=event.description, result="pending")
    return session.model_copy(
        update={"outcome_evaluations": [*session.outcome_evaluations, entry], "updated_at": now()}
    )


def with_evaluation(session: wire.Session, outcome_id: str, **fields: Any) -> wire.Session:
    """The document with one outcome's evaluation changed (`completed_at` set with a terminal result)."""
    if fields.get("result") in TERMINAL_RESULTS:
        fields.setdefault("completed_at", now())
    entries = [e.model_copy(update=fields) if e.outcome_id == outcome_id else e for e in session.outcome_evaluations]
    return session.model_copy(update={"outcome_evaluations": entries, "updated_at": now()})
