"""The split of a response's tool calls by kind, and running the calls that may run now.

Each call of a response goes one way:
- a built-in or MCP tool the policy allows (or the user confirmed, for this exact input): run now, concurrently
  with the others in a `TaskGroup`, through the ledger (an MCP call's events are `agent.mcp_tool_use` /
  `agent.mcp_tool_result`; otherwise it is handled exactly like a built-in tool);
- a custom tool, or a built-in or MCP tool that asks for confirmation: parked until the client answers;
- a built-in tool of a self-hosted session (`_remote.py`): parked until a worker answers with `user.tool_result`
  (after the user's `user.tool_confirmation` when its policy asks; a denial is answered here);
- an unknown or disabled tool: answered at once with a retry prompt naming the tools there are (the model may
  call it any number of times; each call gets its own error result, the session goes on).

Ledger promise: a call is recorded `started` (one commit for the batch) before any of them runs, and `done`
with its result event in the commit that stores the result. A call found `started` but not `done` (the process
died while it ran) is answered "interrupted by a restart" and never run again; a `done` call's result is read
back from its event.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic_ai.messages import ModelResponse, RetryInfo, ToolCallPart, ToolReturnPart

from .. import _telemetry
from .._state import CallRecord, PendingAction, SessionInternal, TurnState
from .._writer import Change, LoadedSession, SessionWriter
from ..store import Store
from . import _outbound as out
from ._history import Result, read_results
from ._threads import DELEGATION_TOOLS, LIST_AGENTS, Threads
from ._tools import ToolContext, ToolOutput, ToolPolicy

INTERRUPTED_BY_RESTART = (
    "The tool call was interrupted by a restart of the runtime before its result was recorded; "
    "it was not run again, to avoid repeating its side effects."
)


def input_hash(tool_input: Any) -> str:
    """Binds a confirmation to the exact input it approved."""
    return hashlib.sha256(json.dumps(tool_input, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def call_args(call: ToolCallPart) -> dict[str, Any]:
    try:
        return call.args_as_dict()
    except Exception:
        return {"_raw": call.args}


def answer_text(answer: Mapping[str, Any]) -> str:
    blocks = answer.get("content") or []
    return "\n".join(b.get("text", "") for b in blocks if isinstance(b, dict) and b.get("type") == "text")


def with_turn(internal: SessionInternal, **update: Any) -> SessionInternal:
    """`internal` with its turn state updated (a new object: committed state is never changed in place)."""
    turn = internal.turn or TurnState()
    return internal.model_copy(update={"turn": turn.model_copy(update=update)})


@dataclass(frozen=True, slots=True)
class SessionTools:
    """The tools a session's agent may call, by kind."""

    builtin: Mapping[str, ToolPolicy]
    custom: frozenset[str]
    mcp: Mapping[str, ToolPolicy] = field(default_factory=dict)
    """MCP tools by the name the model sees (their `tool` is an `McpTool`)."""
    worker: Mapping[str, ToolPolicy] = field(default_factory=dict)
    """Built-in tools a self-hosted environment's worker runs (their `tool` is a `RemoteTool`)."""
    threads: Threads | None = None
    """A coordinator's delegation tools (`_threads.py`); None for every other session."""

    def policy(self, name: str) -> ToolPolicy | None:
        """How a built-in or MCP tool may be called (None: not one of those)."""
        return self.builtin.get(name) or self.mcp.get(name)

    def result_event(self, name: str, tool_use_id: str, text: str, *, is_error: bool) -> Any:
        """The event holding a call's result: `agent.mcp_tool_result` for an MCP tool, else `agent.tool_result`."""
        if name in self.mcp:
            return out.mcp_tool_result(tool_use_id, text, is_error=is_error)
        return out.tool_result(tool_use_id, text, is_error=is_error)

    def unknown(self, name: str) -> str:
        available = sorted({*self.builtin, *self.custom, *self.mcp, *self.worker})
        listed = ", ".join(available) if available else "none"
        return f"Unknown tool name: {name!r}. Available tools: {listed}."


@dataclass(slots=True)
class Resolution:
    """What resolving a response's calls gave: every result in call order (None while parked), and the events
    that announce results decided now (denials, calls cut off by a restart), to commit with them."""

    parts: list[ToolReturnPart] | None
    events: list[Any]


class CallRunner:
    """Resolves the calls of one response of one session (see the module docstring)."""

    def __init__(self, writer: SessionWriter, store: Store, session_id: str, tools: SessionTools) -> None:
        self._writer = writer
        self._store = store
        self._session_id = session_id
        self._tools = tools

    async def resolve(self, loaded: LoadedSession, response: ModelResponse) -> Resolution:
        internal = loaded.internal
        turn = internal.turn or TurnState()
        calls = [p for p in response.parts if isinstance(p, ToolCallPart)]
        done = {c.tool_call_id: r.result_event for c in calls if (r := turn.ledger.get(c.tool_call_id))}
        recorded = await read_results(self._store, self._session_id, [e for e in done.values() if e])
        results: dict[str, ToolReturnPart] = {}
        events: list[Any] = []
        to_run: list[ToolCallPart] = []
        park: dict[str, PendingAction] = {}
        posted: list[Any] = []
        new_threads: list[Any] = []
        for call in calls:
            call_id = call.tool_call_id
            event_id = turn.tool_events.get(call_id, call_id)
            if self._tools.threads is not None and call.tool_name in DELEGATION_TOOLS:
                busy = {p.thread for p in park.values() if p.kind == "thread" and p.thread is not None}
                delegated = await self._delegation(loaded, call, event_id, busy)
                if delegated is None:
                    continue  # deferred behind an earlier call to the same agent (parked: resolved again later)
                if isinstance(delegated, ToolReturnPart):
                    results[call_id] = delegated
                else:
                    park[event_id], events_, thread = delegated
                    posted += events_
                    new_threads += [thread] if thread is not None else []
                continue
            record = turn.ledger.get(call_id)
            if record is not None and record.result_event in recorded:
                results[call_id] = recorded[record.result_event].part(call)
                continue
            if record is not None:  # started, never finished: the process died while it ran
                event = self._tools.result_event(call.tool_name, event_id, INTERRUPTED_BY_RESTART, is_error=True)
                events.append(event)
                results[call_id] = Result(INTERRUPTED_BY_RESTART, True, event.id).part(call)
                continue
            pending = internal.pending.get(event_id)
            answer = pending.answer if pending is not None else None
            if call.tool_name in self._tools.custom:
                if answer is None:
                    park[event_id] = PendingAction(kind="custom", tool_use_id=call_id, name=call.tool_name)
                else:
                    assert pending is not None
                    result = Result(answer_text(answer), bool(answer.get("is_error")), pending.answer_event)
                    results[call_id] = result.part(call)
                    _waited(call, "custom", event_id, pending.answer_event, results[call_id])
            elif call.tool_name in self._tools.worker:
                resolved = self._worker_call(call, event_id, pending)
                if isinstance(resolved, PendingAction):
                    park[event_id] = resolved
                elif isinstance(resolved, ToolReturnPart):
                    results[call_id] = resolved
                    _waited(call, "worker", event_id, pending.answer_event if pending else None, resolved)
                else:
                    events.append(resolved[0])
                    results[call_id] = resolved[1]
            elif (policy := self._tools.policy(call.tool_name)) is not None:
                if policy.permission == "allow":
                    to_run.append(call)
                elif answer is None:
                    park[event_id] = PendingAction(
                        kind="confirmation",
                        tool_use_id=call_id,
                        name=call.tool_name,
                        input_hash=input_hash(call_args(call)),
                    )
                elif (
                    answer.get("result") == "allow"
                    and pending is not None
                    and (input_hash(call_args(call)) == pending.input_hash)
                ):
                    to_run.append(call)
                else:
                    message = answer.get("deny_message") or (
                        "The user denied this tool call."
                        if answer.get("result") != "allow"
                        else "The confirmation no longer matches this tool call's input; it was not run."
                    )
                    event = self._tools.result_event(call.tool_name, event_id, message, is_error=True)
                    events.append(event)
                    results[call_id] = Result(message, True, event.id).part(call)
            else:
                results[call_id] = ToolReturnPart(
                    call.tool_name,
                    self._tools.unknown(call.tool_name),
                    call_id,
                    outcome="retried",
                    retry=RetryInfo("unknown_tool"),
                )
        if to_run:
            results.update(await self._run(to_run, turn.tool_events))
        if park:
            await self._park(park, turn, posted, new_threads)
            if self._tools.threads is not None:
                await self._tools.threads.settle(loaded.row.workspace, park)
            return Resolution(None, events)
        return Resolution([results[c.tool_call_id] for c in calls], events)

    async def _delegation(
        self, loaded: LoadedSession, call: ToolCallPart, event_id: str, busy: set[str]
    ) -> ToolReturnPart | tuple[PendingAction, list[Any], Any] | None:
        """A coordinator's `list_agents` / `send_to_agent`: answered now, answered by its thread, parked, or
        deferred (None) behind an earlier call of the response to the same agent (`busy`: their threads)."""
        threads = self._tools.threads
        assert threads is not None
        if call.tool_name == LIST_AGENTS:
            with _telemetry.tool_span(LIST_AGENTS, call.tool_call_id, "delegation"):
                return Result(threads.list_agents(), False).part(call)
        pending = loaded.internal.pending.get(event_id)
        if pending is not None and pending.kind == "thread":
            if pending.answer is None:
                return pending, [], None  # still waiting on its thread
            answer = pending.answer
            return Result(answer_text(answer), bool(answer.get("is_error")), pending.answer_event).part(call)
        delegated = await threads.delegate(loaded, call, event_id, call_args(call), busy)
        return delegated.part(call) if isinstance(delegated, Result) else delegated

    def _worker_call(
        self, call: ToolCallPart, event_id: str, pending: PendingAction | None
    ) -> PendingAction | ToolReturnPart | tuple[Any, ToolReturnPart]:
        """A worker's call: parked until answered, then its result (the worker's `user.tool_result`, or an
        `agent.tool_result` saying the user denied it, to commit with the results)."""
        answer = pending.answer if pending is not None else None
        if pending is None or answer is None:
            policy = self._tools.worker[call.tool_name]
            return pending or PendingAction(
                kind="tool_result",
                tool_use_id=call.tool_call_id,
                name=call.tool_name,
                input_hash=input_hash(call_args(call)),
                asks=policy.permission != "allow",
            )
        if "result" in answer:  # the confirmation denied it: the worker posts nothing
            message = answer.get("deny_message") or "The user denied this tool call."
            event = self._tools.result_event(call.tool_name, event_id, message, is_error=True)
            return event, Result(message, True, event.id).part(call)
        return Result(answer_text(answer), bool(answer.get("is_error")), pending.answer_event).part(call)

    async def _run(self, calls: Sequence[ToolCallPart], tool_events: Mapping[str, str]) -> dict[str, ToolReturnPart]:
        """Run allowed calls concurrently: `started` for all in one commit, then each result as it comes."""
        started = {c.tool_call_id: CallRecord(state="started") for c in calls}

        def start(loaded: LoadedSession) -> Change:
            turn = loaded.internal.turn or TurnState()
            return Change(internal=with_turn(loaded.internal, ledger={**turn.ledger, **started}))

        await self._writer.apply(self._session_id, start)
        loaded = await self._writer.load(None, self._session_id)
        self._writer.check_lease(self._session_id)  # a node paused past its lease runs nothing when it resumes
        async with asyncio.TaskGroup() as group:
            tasks = {
                call.tool_call_id: group.create_task(
                    self._run_one(loaded, call, tool_events.get(call.tool_call_id, call.tool_call_id))
                )
                for call in calls
            }
        return {call_id: task.result() for call_id, task in tasks.items()}

    async def _run_one(self, loaded: LoadedSession, call: ToolCallPart, event_id: str) -> ToolReturnPart:
        policy = self._tools.policy(call.tool_name)
        assert policy is not None
        ctx = ToolContext(
            workspace=loaded.row.workspace,
            session_id=self._session_id,
            environment_id=loaded.row.environment_id,
            tool_use_id=event_id,
        )
        kind: _telemetry.ToolKind = "mcp" if call.tool_name in self._tools.mcp else "builtin"
        with _telemetry.tool_span(call.tool_name, call.tool_call_id, kind, call.args) as span:
            try:
                output = await policy.tool.run(ctx, call_args(call))
            except Exception as exc:  # a tool that raises gives the model an error result; the session goes on
                output = ToolOutput(f"{type(exc).__name__}: {exc}", is_error=True)
            span.result(output.text, is_error=output.is_error)
        event = self._tools.result_event(call.tool_name, event_id, output.text, is_error=output.is_error)
        record = CallRecord(state="done", result_event=event.id)

        def finish(current: LoadedSession) -> Change:
            turn = current.internal.turn or TurnState()
            ledger = {**turn.ledger, call.tool_call_id: record}
            return Change(events=[*output.events, event], internal=with_turn(current.internal, ledger=ledger))

        await self._writer.apply(self._session_id, finish)
        return Result(output.text, output.is_error, event.id).part(call)

    async def _park(
        self, park: dict[str, PendingAction], turn: TurnState, posted: Sequence[Any] = (), threads: Sequence[Any] = ()
    ) -> None:
        """Persist the calls that wait for the client and idle with requires_action (the turn stays open). Calls
        that wait on a thread (`_threads.py`) keep the session running, and post the thread events."""
        order = {event_id: i for i, event_id in enumerate(turn.tool_events.values())}
        ids = sorted(park, key=lambda e: order.get(e, len(order)))
        client = [i for i in ids if park[i].kind != "thread"]

        def change(loaded: LoadedSession) -> Change:
            # answers this response already has stay (a call deferred behind a delegation parks in a later pass)
            kept = {k: p for k, p in loaded.internal.pending.items() if p.answer is not None and k not in park}
            internal = loaded.internal.model_copy(update={"pending": {**kept, **{i: park[i] for i in ids}}})
            if threads:
                internal.threads = [*(internal.threads or []), *threads]
            if not client:
                return Change(events=list(posted), internal=internal)
            idle = out.idle({"type": "requires_action", "event_ids": client})
            return Change(events=[*posted, idle], status="idle", internal=internal)

        await self._writer.apply(self._session_id, change)


def _waited(call: ToolCallPart, kind: _telemetry.ToolKind, event_id: str, answered: str | None, part: Any) -> None:
    """The span of a call answered from outside, from its announcement to its answer (`_telemetry.py`)."""
    _telemetry.waited_tool_span(
        call.tool_name,
        call.tool_call_id,
        kind,
        announced=event_id,
        answered=answered,
        is_error=part.outcome == "failed",
        arguments=call.args,
        result=str(part.content),
    )


def tool_use_event(tools: SessionTools, call: ToolCallPart) -> Any:
    """The wire event announcing a call: custom tools go to the client, built-in and MCP ones carry their
    permission, unknown or disabled ones are shown as denied."""
    args = call_args(call)
    if call.tool_name in tools.custom:
        return out.custom_tool_use(call.tool_name, args)
    policy = tools.builtin.get(call.tool_name) or tools.worker.get(call.tool_name)
    if policy is not None:
        return out.tool_use(call.tool_name, args, policy.permission, policy.evaluation)
    mcp = tools.mcp.get(call.tool_name)
    if mcp is not None:
        server, name = getattr(mcp.tool, "server_name", ""), getattr(mcp.tool, "tool_name", call.tool_name)
        return out.mcp_tool_use(server, name, args, mcp.permission, mcp.evaluation)
    return out.tool_use(call.tool_name, args, "deny", None)
