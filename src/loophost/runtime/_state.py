"""The runtime's own state of a session, beside the wire document: what is queued, what the session waits for,
and the position of the turn in progress. Committed with the session row (`SessionRow.internal`), small by design:
a tool's output is never copied here, only the id of the event that holds it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from .. import wire
from ._ids import new_id

PendingKind = Literal["custom", "confirmation", "tool_result", "thread"]
CallState = Literal["started", "done"]


class PendingAction(BaseModel):
    """A tool use the session is blocked on (requires_action), and the answer once it arrived."""

    kind: PendingKind
    tool_use_id: str
    """The model's tool-call id (the history's); the client answers the *event* id this is keyed by."""
    name: str
    input_hash: str = ""
    answer: dict[str, Any] | None = None
    answer_event: str | None = None
    """The id of the event that carried the answer (a custom tool result's content is read back from it)."""
    asks: bool = False
    """A worker call (`tool_result`) whose policy asks: the worker runs it only once the user allowed it."""
    confirmation: dict[str, Any] | None = None
    """The `user.tool_confirmation` of an asking worker call (a denial is also its answer)."""
    thread: str | None = None
    """`thread`: the child thread a delegation waits on (answered by the child, not the client). On a `custom` or
    `confirmation` action: the child thread whose call this is a cross-posted copy of (`engine/_threads.py`)."""
    thread_event: str | None = None
    """A cross-posted copy's original event id in its thread (the answer is forwarded there)."""


class CallRecord(BaseModel):
    """The ledger entry of one tool call of the current response: `started` (in doubt after a crash: never run
    again) or `done`, with the id of the event that holds its result."""

    state: CallState
    result_event: str | None = None


class TurnState(BaseModel):
    """Where the turn in progress stands; with the history it says what a restarted worker does next."""

    input_id: str | None = None
    """The input event that started the turn (its prompt is read back from the log)."""
    system_id: str | None = None
    """A system.message accompanying the input: extra instructions for this turn."""
    prompt_sent: bool = False
    """Whether the prompt is in the history (it is appended with the turn's first model request)."""
    tool_events: dict[str, str] = Field(default_factory=dict)
    """Tool-call id of the last response -> the id of the wire event that announced the call."""
    ledger: dict[str, CallRecord] = Field(default_factory=dict)
    open_span: str | None = None
    """A span.model_request_start whose end has not been emitted. The commit that starts a turn opens the span
    of its first request (`prompt_sent` still false): the worker's first request uses it."""
    attempts: int = 0
    """Transient failures of the current model request, for the backoff."""
    requests: int = 0
    """Model requests made in this turn, against the per-turn limit."""


class ChildThread(BaseModel):
    """A thread a coordinator delegated to: a hidden session of its own (`engine/_threads.py`)."""

    id: str
    agent_id: str
    name: str


class ParentLink(BaseModel):
    """On a child thread: the coordinator session it answers, and the delegation its current message answers."""

    session_id: str
    workspace: str
    agent_name: str
    waiting: str | None = None
    """The parent's pending delegation (its event id) the end of this thread's current turn answers."""


class BudgetState(BaseModel):
    spent: str = "0"
    """List cost accrued so far in US cents, as an exact decimal ("Infinity" after an unpriced request)."""
    paused: bool = False
    """Idle with `budget_reached`: the turn is kept, and resumes when the budget is raised or removed."""


class OutcomeState(BaseModel):
    """Where the grader loop of a `user.define_outcome` stands (`_outcomes.py`, `engine/_grader.py`)."""

    outcome_id: str
    event_id: str
    """The `user.define_outcome` event: its turn does the work, and its rubric is read back from it."""
    max_iterations: int = 3
    iteration: int = 0
    revision_input: str | None = None
    """The `span.outcome_evaluation_end` whose explanation is the input of the revision (or final) turn."""
    grading_start: str | None = None
    """The open `span.outcome_evaluation_start` while grading (the session stays running, with no turn)."""
    final: bool = False
    """max_iterations_reached: the revision turn is the last one; no grading after it."""


class SessionInternal(BaseModel):
    """Runtime-owned session state that is not part of the wire object; committed with the session row."""

    queue: list[str] = Field(default_factory=list)
    """Ids of accepted input events (user.message, user.define_outcome) waiting for the turn in progress, in
    order. Empty whenever the session is idle, unless it is paused or waits for tool answers."""
    attached: dict[str, str] = Field(default_factory=dict)
    """Queued input id -> the system.message sent right behind it (it joins that input's turn)."""
    paused: bool = False
    pending: dict[str, PendingAction] = Field(default_factory=dict)
    """Keyed by the tool-use event id the client answers, in the order the calls were announced."""
    interrupt_requested: bool = False
    turn: TurnState | None = None
    self_hosted: bool = False
    """The session's environment was `self_hosted` when it was created: its bash and file tools run on the
    environment's workers (`engine/_remote.py`, `runtime/_work.py`)."""
    budget: BudgetState | None = None
    """Set while the session has a budget (`_budgets.py`); None otherwise, so a plain session carries nothing."""
    outcome: OutcomeState | None = None
    """The outcome being worked toward and graded (`_outcomes.py`), until its terminal result."""
    threads: list[ChildThread] | None = None
    """A coordinator's child threads, in creation order (None: it never delegated)."""
    parent: ParentLink | None = None
    """Set on a child thread's hidden session."""
    trace: str | None = None
    """The W3C `traceparent` of the request that last made the session run (`_telemetry.py`): a turn run after a
    crash or on another node links its span to that trace."""


@dataclass(frozen=True, slots=True)
class TurnStart:
    """A turn started by a commit: the new internal state, the input events it takes (to mark processed), and the
    events announcing it: `session.status_running` and the start of the turn's first model request, which the
    worker makes right away (the span is open from the commit that starts the turn, one commit fewer per turn)."""

    internal: SessionInternal
    taken: list[str]
    events: list[wire.SessionEvent]
    at: datetime
    """When the turn started: the `processed_at` of the input taken and of the events announcing it."""


def start_next_turn(internal: SessionInternal) -> TurnStart | None:
    """Take the next queued input into a new turn, when nothing holds the session back (None: nothing to take).

    Every commit that can leave a session idle calls this, so a session is never idle with input it could
    process: `idle` means nothing is queued (unless the session is paused or waits for tool answers)."""
    if internal.paused or internal.pending or internal.turn is not None or internal.interrupt_requested:
        return None  # (a session paused at its budget keeps its turn, so it never starts another here)
    if not internal.queue:
        return None
    input_id, *rest = internal.queue
    attached = dict(internal.attached)
    system_id = attached.pop(input_id, None)
    span_id = new_id("sevt")
    turn = TurnState(input_id=input_id, system_id=system_id, open_span=span_id, requests=1)
    taken = [input_id] if system_id is None else [input_id, system_id]
    at = wire.utcnow()
    events = [
        wire.parse_event({"id": new_id("sevt"), "type": "session.status_running", "processed_at": at}),
        wire.parse_event({"id": span_id, "type": "span.model_request_start", "processed_at": at}),
    ]
    updated = internal.model_copy(update={"queue": rest, "attached": attached, "turn": turn})
    return TurnStart(updated, taken, events, at)
