"""Multiagent threads (spec-2 §3.2-3.3): a coordinator delegates to the agents of its roster on child threads.

A child thread is a session of its own, hidden in the workspace `<ws>/threads` (never listed with the caller's
sessions; its id is the thread's `sthr_...` id), so it has its own history, tools, usage, worker and crash
recovery, and children run concurrently. Its id is derived from the coordinator session and the roster agent
(or inline agent name), so a delegation retried after a crash finds the thread it already made: one thread per
roster agent (at most 20, 21 with an advisor) and per inline agent, at most 25 in all, one level deep (a child
never gets delegation tools).

The advisor (spec-2 §3.1: a coordinator's `{type:"advisor", model}` entry, or `multiagent_20261001.advisor`
enabled; "a model the primary thread may consult mid-turn") is the roster member named `advisor`, consulted with
`send_to_agent {"agent": "advisor", "message": QUESTION}` like any other (no tool of its own): its thread runs
`model` with no tools and only `ADVISOR_SYSTEM` as instructions (`advisor_agent`), answers the question, keeps its
history across consultations, and counts in the session's usage and budget like any thread; the thread object
shows its agent as `{type:"advisor", model}` (`runtime/_threads.py`).

Inline agents, which the coordinator's model defines in its call (`send_to_agent {"agent": {"name": NAME, ...},
...}`) where its multiagent configuration allows them, run on threads of their own like roster agents (`_inline.py`).

The coordinator's model sees two tools, loophost's own names (never announced as `agent.tool_use`):
- `list_agents {}`: the roster (name, description, model), answered at once;
- `send_to_agent {"agent": NAME_OR_ID, "message": TEXT}`: the message goes to that agent's thread (created on first
  use: `session.thread_created`), `agent.thread_message_sent` and `session.thread_status_running` are posted, and
  the call parks as a `thread` pending action, the coordinator staying `running`. Several calls in one response
  park together and their threads run in parallel; a second call to the same agent waits for the first (deferred,
  see `Threads.delegate`). The thread logs the message as `agent.thread_message_received` from the primary
  thread, and its model gets it as its user input.

When a child's turn ends, its worker answers the coordinator (`notify_parent`): `agent.thread_message_received`
(the child's last text, which the delegation's result refers to) and `session.thread_status_idle`; the last
answer wakes the coordinator. A child call that needs the client (custom tool, confirmation) is cross-posted on
the primary stream instead: a copy with `session_thread_id`, a pending action of the coordinator that remembers
the original (`PendingAction.thread_event`), and `idle` with `requires_action`; the client's answer is forwarded
to the thread (`runtime/_events.py`). The child's `ParentLink.waiting` stays set until the coordinator has its
answer, which keeps the child wanting a worker (`_writer.wants_worker`), so a crash in between is recovered.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from pydantic_ai.messages import ToolCallPart
from pydantic_ai.tools import ToolDefinition

from ... import wire
from .. import _budgets as budgets
from .. import _telemetry
from .._clock import rfc3339
from .._errors import NotFound
from .._state import BudgetState, ChildThread, ParentLink, PendingAction, SessionInternal, start_next_turn
from .._threads import ADVISOR_AGENT_ID, primary_thread_id, thread_workspace
from .._writer import Change, LoadedSession, SessionWriter, current_fence
from ..store import EventQuery, SessionRow, Store
from . import _outbound as out
from . import _spend
from ._history import Result
from ._inline import AGENT_SCHEMA, Roster, address

LIST_AGENTS = "list_agents"
SEND_TO_AGENT = "send_to_agent"
DELEGATION_TOOLS = frozenset({LIST_AGENTS, SEND_TO_AGENT})
MAX_THREADS = 25


@contextmanager
def unfenced() -> Iterator[None]:
    """Writes to the *other* session of a coordinator/thread pair, from a worker's task: its lease fences only its
    own session's writes (with a cluster a foreign fence would be refused). Each of these writes checks the state it
    changes under the row's lock, so it is safe to make from any node."""
    token = current_fence.set(None)
    try:
        yield
    finally:
        current_fence.reset(token)


def child_thread_id(session_id: str, agent_id: str) -> str:
    digest = hashlib.sha256(f"{session_id}\n{agent_id}".encode()).hexdigest()[:32]
    return f"sthr_{digest}"


ADVISOR_SYSTEM = (
    "You are an advisor. Another agent consults you while it works: answer its question directly with your best "
    "advice, briefly. You have no tools; you see only the questions it sends you."
)
ADVISOR_DESCRIPTION = "An advisor model: ask it a question to get its advice (it has no tools)."


def advisor_agent(model: str) -> wire.SessionThreadAgent:
    """The advisor as a roster member: `model`, no tools, only the advisor instructions."""
    return wire.SessionThreadAgent(
        id=ADVISOR_AGENT_ID,
        version=1,
        name=ADVISOR_AGENT_ID,
        description=ADVISOR_DESCRIPTION,
        system=ADVISOR_SYSTEM,
        model=wire.ModelConfig(id=model),
    )


def roster_of(agent: wire.SessionAgent) -> Roster:
    """The agents a coordinator may delegate to (its own roster, its advisor included; empty for any other
    agent), and whether it may define inline agents."""
    roster = agent.multiagent
    if isinstance(roster, wire.SessionCoordinator):
        members = [a if isinstance(a, wire.SessionThreadAgent) else advisor_agent(a.model) for a in roster.agents]
        return Roster(members, no_inline="a `coordinator` roster has no inline agents")
    if isinstance(roster, wire.SessionMultiagent20261001):
        members = []
        if isinstance(roster.advisor, wire.AdvisorEnabled):
            members.append(advisor_agent(roster.advisor.model))
        subagents = roster.subagents
        if not isinstance(subagents, wire.SessionMembersEnabled):
            return Roster(members, no_inline="subagents are disabled in your multiagent configuration")
        members += subagents.predefined_agents
        if subagents.inline_agents.type != "enabled":
            return Roster(members, no_inline="inline agents are disabled in your multiagent configuration")
        return Roster(members, inline=agent)
    return Roster()


def delegation_definitions() -> list[ToolDefinition]:
    return [
        ToolDefinition(
            name=LIST_AGENTS,
            description="List the agents you can delegate to: name, description and model of each.",
            parameters_json_schema={"type": "object", "properties": {}},
        ),
        ToolDefinition(
            name=SEND_TO_AGENT,
            description=(
                "Send a message to one of your agents (by name or id) and get its final answer. The agent keeps its "
                "own context between your messages; calls in one response run in parallel. Where inline agents are "
                "allowed (list_agents says), `agent` may instead define one: {name, system?, model? (default: "
                "yours), description?}; it has no tools, and a later call with its name continues it."
            ),
            parameters_json_schema={
                "type": "object",
                "properties": {"agent": AGENT_SCHEMA, "message": {"type": "string"}},
                "required": ["agent", "message"],
            },
        ),
    ]


class Threads:
    """The delegation tools of one coordinator session."""

    def __init__(self, writer: SessionWriter, store: Store, session_id: str, roster: Sequence[wire.SessionThreadAgent]):
        self._writer = writer
        self._store = store
        self._session_id = session_id
        self.roster = roster if isinstance(roster, Roster) else Roster(roster)

    def list_agents(self) -> str:
        return json.dumps(self.roster.listing(), indent=1)

    async def delegate(
        self, loaded: LoadedSession, call: ToolCallPart, event_id: str, args: dict[str, Any], busy: set[str]
    ) -> tuple[PendingAction, list[Any], ChildThread | None] | Result | None:
        """Send the call's message to its agent's thread (once, even when retried after a crash) and park; or an
        error result for the model. Returns (the pending action, the events to post, a thread new to the list).

        `busy`: the threads an earlier call of the same response waits on. A second call to such an agent is
        deferred (None): it is not sent, and is resolved again once the earlier one was answered (the coordinator
        resumes its response then), so calls to one agent run one after the other, in the response's order."""
        known = {t.agent_id: t for t in loaded.internal.threads or []}
        workspace = thread_workspace(loaded.row.workspace)
        budgeted = loaded.internal.budget is not None
        target = await address(
            self.roster, args.get("agent"), known=known, store=self._store, workspace=workspace, budgeted=budgeted
        )
        if isinstance(target, Result):
            return target
        agent_id, name, agent = target
        message = args.get("message")
        if not isinstance(message, str) or not message.strip():
            return Result("send_to_agent needs a non-empty `message` string.", True)
        thread = known.get(agent_id) or ChildThread(
            id=child_thread_id(self._session_id, agent_id), agent_id=agent_id, name=name
        )
        if thread.id in busy:
            return None
        if agent_id not in known and len({t.id for t in known.values()} | busy) >= MAX_THREADS:
            return Result(f"At most {MAX_THREADS} threads per session.", True)
        # delegations of this coordinator answered already: a thread still marked as waiting on one of them is
        # about to clear its mark (`notify_parent` answers the coordinator first), so it is free
        answered = {k for k, p in loaded.internal.pending.items() if p.kind == "thread" and p.answer is not None}
        row = await self._store.get_session(workspace, thread.id)
        if row is None and agent is None:
            return Result(f"The thread of {name!r} is gone.", True)
        with unfenced(), _telemetry.delegation_span(name, agent_id, thread.id, call.tool_call_id) as span:
            if row is None:
                assert agent is not None
                await self._create(loaded, workspace, thread, agent, message, event_id)
            elif not await self._send(workspace, thread.id, message, event_id, answered):
                span.refused()
                return Result(f"Agent {name!r} is still working on your previous message.", True)
        events: list[Any] = []
        if agent_id not in known:
            events.append(_event("session.thread_created", session_thread_id=thread.id, agent_name=thread.name))
        events.append(
            _event(
                "agent.thread_message_sent",
                to_session_thread_id=thread.id,
                to_agent_name=thread.name,
                content=[{"type": "text", "text": message}],
            )
        )
        events.append(_event("session.thread_status_running", session_thread_id=thread.id, agent_name=thread.name))
        pending = PendingAction(kind="thread", tool_use_id=call.tool_call_id, name=SEND_TO_AGENT, thread=thread.id)
        return pending, events, (thread if agent_id not in known else None)

    async def settle(self, workspace: str, parked: dict[str, PendingAction]) -> None:
        """After the coordinator parked its delegations: answer those whose thread already stopped (it could not
        answer a call that was not parked yet)."""
        from ._history import History

        for event_id, action in parked.items():
            if action.kind != "thread" or action.thread is None:
                continue
            child = await self._writer.load(thread_workspace(workspace), action.thread)
            link = child.internal.parent
            if link is None or link.waiting != event_id or child.status in ("running", "rescheduling"):
                continue
            history = await History.load(self._store, child.id)
            await notify_parent(self._writer, self._store, child, last_text(history))

    async def _create(
        self,
        parent: LoadedSession,
        workspace: str,
        thread: ChildThread,
        agent: wire.SessionThreadAgent,
        message: str,
        event_id: str,
    ) -> None:
        """A new child thread, created running with the message as its first input."""
        ts = wire.utcnow()
        link = ParentLink(
            session_id=self._session_id, workspace=parent.row.workspace, agent_name=agent.name, waiting=event_id
        )
        internal = SessionInternal(parent=link, self_hosted=parent.internal.self_hosted)
        internal.trace = _telemetry.hand_off(thread.id)  # the delegation's span: the parent of the thread's turns
        if parent.internal.budget is not None:
            internal.budget = BudgetState()  # its requests count against the coordinator's budget (`_budgets.py`)
        input_id = out.event_id()
        internal.queue.append(input_id)
        started = start_next_turn(internal)
        assert started is not None
        echo = _received(input_id, self._session_id, message, started.at)
        document = wire.Session.model_validate(
            {
                "id": thread.id,
                "status": "running",
                "environment_id": parent.row.environment_id,
                "agent": wire.SessionAgent.from_agent(agent).model_dump(mode="json"),
                "created_at": rfc3339(ts),
                "updated_at": rfc3339(ts),
            }
        )
        row = SessionRow(
            workspace=workspace,
            id=thread.id,
            agent_id=agent.id,
            agent_version=agent.version,
            environment_id=parent.row.environment_id,
            status="running",
            created_at=rfc3339(ts),
            archived_at=None,
            revision=1,
            last_seq=0,
            body=document.model_dump_json(by_alias=True),
            internal=started.internal.model_dump_json(),
            wants_worker=True,
            updated_at=rfc3339(ts),
        )
        events = [self._writer.new_event(e) for e in [echo, *started.events]]
        await self._writer.insert(row, events)

    async def _send(self, workspace: str, thread_id: str, message: str, event_id: str, answered: set[str]) -> bool:
        """The message as the thread's next input, unless it has it already (a retry); False while it is busy."""
        sent = True

        def send(current: LoadedSession) -> Change:
            nonlocal sent
            link = current.internal.parent
            if link is not None and link.waiting == event_id:
                return Change()  # delivered before a crash: not again
            waits = link is not None and link.waiting is not None and link.waiting not in answered
            if link is None or waits or current.status != "idle" or current.internal.turn:
                sent = False
                return Change()
            internal = current.internal.model_copy(
                update={
                    "queue": [*current.internal.queue],
                    "parent": link.model_copy(update={"waiting": event_id}),
                    "trace": _telemetry.hand_off(thread_id) or current.internal.trace,  # (as in `_create`)
                }
            )
            input_id = out.event_id()
            internal.queue.append(input_id)
            started = start_next_turn(internal)
            if started is None:
                sent = False
                return Change()
            echo = _received(input_id, self._session_id, message, started.at)
            return Change(
                events=[echo, *started.events],
                status="running",
                internal=started.internal,
                processed=started.taken,
                processed_at=started.at,
            )

        async with self._writer.lock(thread_id):
            loaded = await self._writer.load(workspace, thread_id)
            await self._writer.commit(loaded, send(loaded))
        return sent


async def notify_parent(writer: SessionWriter, store: Store, child: LoadedSession, final_text: str) -> None:
    """A child thread that stopped tells its coordinator (see the module docstring). Idempotent."""
    with unfenced():
        await _notify(writer, store, child, final_text)


async def _notify(writer: SessionWriter, store: Store, child: LoadedSession, final_text: str) -> None:
    link = child.internal.parent
    if link is None or link.waiting is None or child.status in ("running", "rescheduling"):
        return
    if budgets.budget_paused(child.internal):
        await _budget_paused(writer, child, link)
        return
    waiting = link.waiting
    asks = {
        k: p for k, p in child.internal.pending.items() if p.answer is None and p.kind in ("custom", "confirmation")
    }
    if asks and child.status == "idle":
        bodies = {}
        for event_id in asks:
            stored = await store.get_event(child.id, event_id)
            if stored is not None:
                bodies[event_id] = json.loads(stored.body)
        await writer.apply(link.session_id, lambda parent: _cross_posted(parent, child.id, link, asks, bodies))
        return
    failed = child.status == "terminated"
    text = final_text if not failed else f"The thread of {link.agent_name!r} terminated: {final_text}".strip()
    stopped = await _last_stop(store, child.id) if not failed else {}
    verdict: list[str] = []
    await writer.apply(
        link.session_id, lambda parent: _answered(parent, child.id, link, waiting, text, stopped, verdict)
    )
    if verdict == ["later"]:
        return  # the coordinator has not parked the call yet: it settles the thread once it has (`Threads.settle`)

    def done(current: LoadedSession) -> Change:
        now = current.internal.parent
        if now is None or now.waiting != waiting:
            return Change()
        return Change(internal=current.internal.model_copy(update={"parent": now.model_copy(update={"waiting": None})}))

    await writer.apply(child.id, done)


async def _budget_paused(writer: SessionWriter, child: LoadedSession, link: ParentLink) -> None:
    """A child paused at its coordinator's cap pauses the coordinator (the whole session waits for the budget), or
    runs on if the budget was raised or removed meanwhile."""
    try:
        primary = await writer.load(link.workspace, link.session_id)
    except (LookupError, NotFound):
        return  # deleted with its coordinator
    spent = await budgets.threads_spent(writer, primary)
    if _spend.over_budget(primary, spent):
        await writer.apply(link.session_id, lambda current: _spend.pause(current, spent))
    else:
        await writer.apply(child.id, budgets.resumed)


async def _last_stop(store: Store, thread_id: str) -> dict[str, Any]:
    """Why the thread's turn ended, from its last `session.status_idle`: `stop_reason` (`end_turn`,
    `retries_exhausted` or `refusal`) and `stop_details`, for the `session.thread_status_idle` its coordinator shows."""
    rows = await store.list_events(thread_id, EventQuery(types=("session.status_idle",), descending=True, limit=1))
    body = json.loads(rows[0].body) if rows else {}
    reason = body.get("stop_reason") or {}
    if reason.get("type") not in ("retries_exhausted", "refusal"):
        return {"stop_reason": {"type": "end_turn"}}
    return {"stop_reason": {"type": reason["type"]}, "stop_details": body.get("stop_details")}


def _answered(
    parent: LoadedSession,
    thread_id: str,
    link: ParentLink,
    waiting: str,
    text: str,
    stopped: dict[str, Any],
    verdict: list[str],
) -> Change:
    """The coordinator's delegation answered; `stopped`: how the thread's turn ended (empty: it terminated)."""
    failed = not stopped
    pending = parent.internal.pending.get(waiting)
    if pending is None:
        turn = parent.internal.turn
        verdict.append("later" if turn is not None and waiting in turn.tool_events else "stale")
        return Change()
    if pending.answer is not None or pending.thread != thread_id:
        return Change()  # answered already
    received = _event(
        "agent.thread_message_received",
        from_session_thread_id=thread_id,
        from_agent_name=link.agent_name,
        content=[{"type": "text", "text": text}],
    )
    answer = {"content": [{"type": "text", "text": text}], "is_error": failed}
    updated = pending.model_copy(update={"answer": answer, "answer_event": received.id})
    # copies of this thread's calls still unanswered are moot now (it was interrupted): dropped
    kept = {
        k: p
        for k, p in parent.internal.pending.items()
        if not (p.thread == thread_id and p.thread_event is not None and p.answer is None)
    }
    internal = parent.internal.model_copy(update={"pending": {**kept, waiting: updated}})
    change: dict[str, Any] = {}
    client = [p for p in internal.pending.values() if p.answer is None and p.kind != "thread"]
    if not client and parent.status == "idle" and not internal.interrupt_requested:
        change = {"status": "running"}  # (idle only while cross-posted calls waited: none is left)
    events: list[Any] = [received]  # (a failed thread's `terminated` is posted by `_threads.mirror_status`)
    if not failed:
        thread = {"session_thread_id": thread_id, "agent_name": link.agent_name}
        events.append(_event("session.thread_status_idle", **thread, **stopped))
    if change:
        events.append(out.running())
    return Change(events=events, internal=internal, **change)


def _cross_posted(
    parent: LoadedSession,
    thread_id: str,
    link: ParentLink,
    asks: dict[str, PendingAction],
    bodies: dict[str, dict[str, Any]],
) -> Change:
    waits = parent.internal.pending.values()
    if not any(p.kind == "thread" and p.thread == thread_id and p.answer is None for p in waits):
        return Change()  # not parked yet (`Threads.settle` posts them then), or the coordinator moved on
    posted = {p.thread_event for p in waits if p.thread == thread_id}
    pending = dict(parent.internal.pending)
    events: list[Any] = []
    copies: list[str] = []
    for event_id, action in asks.items():
        body = bodies.get(event_id)
        if event_id in posted or body is None:
            continue
        copy_id = out.event_id()
        events.append(
            wire.parse_event({**body, "id": copy_id, "processed_at": wire.utcnow(), "session_thread_id": thread_id})
        )
        pending[copy_id] = action.model_copy(update={"thread": thread_id, "thread_event": event_id})
        copies.append(copy_id)
    if not copies:
        return Change()
    requires = {"type": "requires_action", "event_ids": copies}
    events.append(
        _event(
            "session.thread_status_idle", session_thread_id=thread_id, agent_name=link.agent_name, stop_reason=requires
        )
    )
    open_ids = [k for k, p in pending.items() if p.answer is None and p.kind != "thread"]
    events.append(out.idle({"type": "requires_action", "event_ids": open_ids}))
    return Change(events=events, status="idle", internal=parent.internal.model_copy(update={"pending": pending}))


def last_text(history: Any) -> str:
    """The text of a thread's last response: what it answers its coordinator."""
    from pydantic_ai.messages import TextPart

    response = history.last_response()
    if response is None:
        return ""
    return "".join(p.content for p in response.parts if isinstance(p, TextPart))


def _received(event_id: str, session_id: str, text: str, at: Any) -> wire.SessionEvent:
    """The coordinator's message as its thread logs it (spec-2 §3.3: `sent`/`received` are relative to the thread
    read): from the primary thread, so without `from_agent_name`. The thread's model gets it as its user input
    (`engine/_inputs.py` reads its `content`)."""
    return wire.parse_event(
        {
            "id": event_id,
            "type": "agent.thread_message_received",
            "processed_at": at,
            "from_session_thread_id": primary_thread_id(session_id),
            "content": [{"type": "text", "text": text}],
        }
    )


def _event(kind: str, **fields: Any) -> wire.SessionEvent:
    return wire.parse_event({"id": out.event_id(), "type": kind, "processed_at": wire.utcnow(), **fields})
