"""`Session`: the one client loop. It plays turns on any `Provider`, runs the agent's tool calls locally,
and resumes the host until the request reaches a terminal.

Per turn: play it (`Connection.turn`, deduplicated by event id), fold it (`Connection.normalize`), check the
guard and the limits, then either answer what the host waits on (tool results, confirmations) or finish.
A dropped connection is recovered from the host's durable history; a tool-use id never runs twice.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any

from . import _telemetry
from ._errors import (
    ClientError,
    ConnectionLost,
    MaxTurnsExceeded,
    RunHalted,
    TokenLimitExceeded,
    UnresolvedRequiresAction,
)
from ._output import OutputTool
from ._provider import Connection, OpenRequest, Provider, Recovery
from ._results import Outcome, OutcomeEvaluation, SessionResult, ToolResult, ToolUse, TurnInput, TurnResult, Usage
from ._runner import ConfirmHook, ToolRunner

__all__ = ("GuardInfo", "Limits", "Session")

log = logging.getLogger("loophost.client")

EventHook = Callable[[Mapping[str, Any]], Any]


@dataclass(frozen=True, slots=True)
class GuardInfo:
    """What a `turn_guard` sees after each turn."""

    session_id: str
    turns: int
    usage: Usage
    last: TurnResult


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on one request (a prompt or a follow-up, to its terminal)."""

    max_turns: int = 50
    max_input_tokens: int | None = None
    max_output_tokens: int | None = None
    max_total_tokens: int | None = None
    max_reconnects: int | None = 5
    """Reconnect attempts per drop before the error is raised (None: keep trying, as live sessions do)."""
    backoff: float = 0.5
    max_backoff: float = 64.0


class _Request:
    """What one request accumulates over its turns."""

    def __init__(self) -> None:
        self.turns = 0
        self.usage = Usage()
        self.events: list[Mapping[str, Any]] = []
        self.tool_uses: list[ToolUse] = []
        self.server_tool_uses: list[ToolUse] = []
        self.server_tool_results: list[ToolResult] = []
        self.outcome_evaluations: list[OutcomeEvaluation] = []

    def add(self, turn: TurnResult) -> None:
        self.turns += 1
        self.outcome_evaluations.extend(turn.outcome_evaluations)
        self.usage.add(turn.usage)
        self.events.extend(turn.events)
        self.add_tool_uses(turn.tool_uses)
        self.server_tool_uses.extend(turn.server_tool_uses)
        self.server_tool_results.extend(turn.server_tool_results)

    def add_tool_uses(self, uses: Sequence[ToolUse]) -> None:
        known = {use.id for use in self.tool_uses}
        self.tool_uses.extend(use for use in uses if use.id not in known)

    def result(self, turn: TurnResult, session_id: str, output: Any) -> SessionResult:
        return SessionResult(
            terminal=turn.terminal,
            stop_reason=turn.stop_reason,
            session_id=session_id,
            text=turn.text,
            tool_uses=self.tool_uses,
            server_tool_uses=self.server_tool_uses,
            server_tool_results=self.server_tool_results,
            usage=self.usage,
            turns=self.turns,
            events=self.events,
            output=output,
            outcome_evaluations=self.outcome_evaluations,
        )


class Session:
    """A host-side session driven by this client. Open it (`async with`), then `await session.send(prompt)`.

    `loophost.run`/`arun` wrap one request; `loophost.start` keeps a live session for follow-ups.
    """

    def __init__(
        self,
        provider: Provider,
        *,
        handler: Any = None,
        confirm: ConfirmHook | None = None,
        on_event: EventHook | None = None,
        on_text_delta: Callable[[str], None] | None = None,
        turn_guard: Callable[[GuardInfo], str | None] | None = None,
        context: Any = None,
        output_type: Any = None,
        output_tool_name: str = "final_result",
        max_output_retries: int = 2,
        max_concurrency: int = 8,
        limits: Limits | None = None,
        session_id: str | None = None,
        agent_id: str | None = None,
        agent_version: int | None = None,
        environment_id: str | None = None,
        model: str | None = None,
        system: str | None = None,
        title: str | None = None,
        metadata: Mapping[str, str] | None = None,
        **options: Any,
    ) -> None:
        self.provider = provider
        self.limits = limits or Limits()
        self._output = (
            OutputTool(output_type, name=output_tool_name, max_retries=max_output_retries)
            if output_type is not None
            else None
        )
        output_tool = self._output.tool if self._output is not None else None
        self.tools = ToolRunner(
            handler,
            confirm=confirm,
            context=context,
            provider=provider.name,
            max_concurrency=max_concurrency,
            extra=[self._output.tool] if self._output is not None else [],
        )
        self._on_event = on_event if on_event is not None else self.tools.hook("on_event")
        self._turn_guard = turn_guard
        self._request = OpenRequest(
            session_id=session_id,
            agent_id=agent_id,
            agent_version=agent_version,
            environment_id=environment_id,
            model=model,
            system=system,
            tools=tuple(t.spec for t in self.tools.tools.values() if self._output is None or t is not output_tool),
            output_tool=self._output.tool.spec if self._output is not None else None,
            title=title,
            metadata=dict(metadata or {}),
            options=options,
            on_text_delta=on_text_delta,
        )
        self._on_text_delta = on_text_delta
        self._conn: Connection | None = None
        self._known_session_id = session_id
        self._seen: set[str] = set()
        self._carry: list[Mapping[str, Any]] = []
        self._entered_provider = False
        self._lock = asyncio.Lock()

    # -- lifecycle ---------------------------------------------------------------------------------------------

    @property
    def session_id(self) -> str | None:
        return self._conn.session_id if self._conn is not None else self._known_session_id

    @property
    def connection(self) -> Connection:
        if self._conn is None:
            raise ClientError("the session is not open: use `async with Session(...)` or `await session.open()`")
        return self._conn

    async def open(self) -> Session:
        """Enter the provider and create (or attach to) the host-side session."""
        if self._conn is None:
            await self.provider.__aenter__()
            self._entered_provider = True
            try:
                self._conn = await self.provider.open_session(self._request)
            except BaseException:
                self._entered_provider = False
                await self.provider.__aexit__(None, None, None)
                raise
            self.tools.session_id = self._known_session_id = self._conn.session_id
        return self

    async def close(self) -> None:
        """Disconnect; the host-side session stays (resume it with `session_id=`)."""
        conn, self._conn = self._conn, None
        try:
            if conn is not None:
                await conn.close()
        finally:
            if self._entered_provider:
                self._entered_provider = False
                await self.provider.__aexit__(None, None, None)

    async def __aenter__(self) -> Session:
        return await self.open()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # -- requests ----------------------------------------------------------------------------------------------

    async def send(self, prompt: str | None = None, *, outcome: Outcome | None = None) -> SessionResult:
        """Send `prompt` and run the loop to a terminal. On a session attached with `session_id=`, the first
        call first finishes what the host waits on (unanswered tool calls, a turn still running). With `outcome`
        the host works and revises until its grader is done (`result.outcome_evaluations`)."""
        if outcome is not None:
            return await self._send_outcome(prompt, outcome)
        async with self._lock:
            conn = self.connection
            with _telemetry.span("loophost.run", {"loophost.provider": self.provider.name}) as span:
                span.set_attribute("loophost.session_id", conn.session_id)
                if conn.resumed and not self._seen:
                    result = await self._reattach(prompt)
                else:
                    first = TurnInput(text=prompt if prompt is not None else "Begin.")
                    result = await self._drive(first)
                span.set_attribute("loophost.terminal", result.terminal)
                return result

    async def _send_outcome(self, prompt: str | None, outcome: Outcome) -> SessionResult:
        if not getattr(self.provider, "supports_outcomes", False):
            raise ClientError(f"the {self.provider.name!r} provider has no outcomes (user.define_outcome)")
        async with self._lock:
            conn = self.connection
            with _telemetry.span("loophost.run", {"loophost.provider": self.provider.name}) as span:
                span.set_attribute("loophost.session_id", conn.session_id)
                if conn.resumed and not self._seen:
                    await self._reattach(None)  # finish what the host waits on first
                result = await self._drive(TurnInput(text=prompt, outcome=outcome))
                span.set_attribute("loophost.terminal", result.terminal)
                return result

    async def _reattach(self, prompt: str | None) -> SessionResult:
        """Pick up an existing session where the host stands: answer what waits, finish a running turn,
        then deliver the prompt (never in the middle of a requires_action)."""
        conn = self.connection
        recovered = await conn.recover(self._seen)
        self._seen.update(e["id"] for e in recovered.missed if e.get("id") is not None)
        waiting = bool(recovered.pending or recovered.awaiting_confirmation)
        running = recovered.latest_status in ("session.status_running", "session.status_rescheduled")
        if not waiting and not running:
            if prompt is not None:
                return await self._drive(TurnInput(text=prompt))
            return _Request().result(conn.normalize(recovered.missed), conn.session_id, None)
        first = await self._answer(recovered.pending, recovered.awaiting_confirmation) if waiting else None
        result = await self._drive(first)
        if prompt is not None and result.terminal == "end_turn":
            return await self._drive(TurnInput(text=prompt))
        return result

    async def _drive(self, first: TurnInput | None) -> SessionResult:
        conn = self.connection
        request = _Request()
        turn_input = first
        reprompts = 0
        if self._output is not None:
            self._output.reset()
        while True:
            with _telemetry.span("loophost.turn", {"loophost.turn": request.turns + 1}) as span:
                events = await self._play(turn_input)
                turn = conn.normalize(events)
                span.set_attribute("loophost.terminal", turn.terminal)
            request.add(turn)
            self._check(request, turn)
            if turn.terminal == "requires_action":
                uses, gated = list(turn.tool_uses), list(turn.confirmations)
                if not uses and not gated:
                    uses, gated = await self._recover_waiting(turn)
                turn_input = await self._answer(uses, gated)
                if self._output is not None and self._output.exhausted:
                    self._output.fail(conn.session_id)
                request.add_tool_uses(uses)  # those recovered from the history, when the turn named none
                continue
            if turn.terminal == "end_turn" and self._output is not None and not self._output.has_value:
                if reprompts < self._output.max_retries:
                    reprompts += 1
                    turn_input = TurnInput(text=self._output.reprompt())
                    continue
                self._output.fail(conn.session_id)
            output = self._output.value if self._output is not None else None
            return request.result(turn, conn.session_id, output)

    def _check(self, request: _Request, turn: TurnResult) -> None:
        """The guard first, then max_turns, then the token limits (the host session stays alive)."""
        sid = self.connection.session_id
        if self._turn_guard is not None:
            reason = self._turn_guard(GuardInfo(sid, request.turns, request.usage, turn))
            if reason is not None:
                raise RunHalted(f"the turn guard halted the run: {reason}", reason=reason, session_id=sid)
        limits = self.limits
        if request.turns > limits.max_turns:
            raise MaxTurnsExceeded(
                f"the request took more than max_turns={limits.max_turns} turns (session {sid} is still alive)",
                session_id=sid,
            )
        usage = request.usage
        for name, used, limit in (
            ("max_input_tokens", usage.input_tokens, limits.max_input_tokens),
            ("max_output_tokens", usage.output_tokens, limits.max_output_tokens),
            ("max_total_tokens", usage.total_tokens, limits.max_total_tokens),
        ):
            if limit is not None and used > limit:
                raise TokenLimitExceeded(
                    f"{name}={limit} exceeded ({used} used; session {sid} is still alive)", session_id=sid
                )

    async def _recover_waiting(self, turn: TurnResult) -> tuple[list[ToolUse], list[ToolUse]]:
        """A requires_action that names nothing in this turn: find what waits in the history, or fail loudly."""
        recovered = await self.connection.recover(self._seen)
        self._absorb(recovered)
        if recovered.pending or recovered.awaiting_confirmation:
            return list(recovered.pending), list(recovered.awaiting_confirmation)
        raise UnresolvedRequiresAction(
            f"the host waits on the client ({turn.stop_reason!r}) but names no tool use it could find",
            session_id=self.connection.session_id,
        )

    async def _answer(self, uses: Sequence[ToolUse], gated: Sequence[ToolUse]) -> TurnInput:
        results = await self.tools.run(uses)
        confirmations = await self.tools.confirm(gated)
        return TurnInput(tool_uses=tuple(uses), tool_results=tuple(results), confirmations=tuple(confirmations))

    # -- one turn, with reconnects -----------------------------------------------------------------------------

    async def _play(self, turn_input: TurnInput | None) -> list[Mapping[str, Any]]:
        """The new events of one turn, up to its boundary. A drop is recovered from the host's history;
        input the host already has is never sent twice, and an empty input is never sent."""
        conn = self.connection
        events: list[Mapping[str, Any]] = []
        pending = turn_input if turn_input is not None and not turn_input.is_empty() else None
        if self._carry:
            carried, self._carry = self._carry, []
            if self._take(carried, events, conn):
                return events
        attempt = 0
        while True:
            try:
                seen = self._seen
                async for event in conn.turn(pending):
                    pending = None
                    event_id = event.get("id")
                    if event_id is not None:
                        if event_id in seen:
                            continue
                        seen.add(event_id)
                    events.append(event)
                    self._notify(event, conn)
                return events
            except ConnectionLost as exc:
                if exc.delivered:
                    pending = None
                if not conn.reconnectable:
                    raise
                recovered = await self._reconnect(exc, attempt)
                attempt += 1
                if self._take(list(recovered.missed), events, conn):
                    return events
                if pending is not None:
                    pending = _unanswered(pending, recovered.answered)

    async def _reconnect(self, cause: ConnectionLost, attempt: int) -> Recovery:
        """Back off (0.5 s, 1, 2, ... up to 64 s) and recover; give up after `max_reconnects` attempts."""
        limits = self.limits
        conn = self.connection
        while True:
            if limits.max_reconnects is not None and attempt >= limits.max_reconnects:
                raise ConnectionLost(
                    f"lost the connection to the host and could not reconnect after {attempt} attempts "
                    f"({cause}); session {conn.session_id} is still on the host",
                    session_id=conn.session_id,
                    delivered=cause.delivered,
                ) from cause
            delay = min(limits.backoff * 2**attempt, limits.max_backoff)
            log.warning("connection to %s lost (%s); reconnecting in %.1fs", self.provider.name, cause, delay)
            await asyncio.sleep(delay)
            attempt += 1
            try:
                recovered = await conn.recover(self._seen)
            except ConnectionLost as exc:
                cause = exc
                continue
            log.info("reconnected to session %s (%d missed events)", conn.session_id, len(recovered.missed))
            return recovered

    def _take(
        self,
        new: Sequence[Mapping[str, Any]],
        events: list[Mapping[str, Any]],
        conn: Connection,
    ) -> bool:
        """Add unseen events to the turn, ending at the first boundary (the rest waits for the next turn)."""
        ends = getattr(conn, "ends_turn", None)
        for index, event in enumerate(new):
            event_id = event.get("id")
            if event_id is not None:
                if event_id in self._seen:
                    continue
                self._seen.add(event_id)
            events.append(event)
            self._notify(event, conn)
            if ends is not None and ends(event):
                self._carry.extend(new[index + 1 :])
                return True
        return False

    def _absorb(self, recovered: Recovery) -> None:
        for event in recovered.missed:
            if event.get("id") is not None and event["id"] not in self._seen:
                self._seen.add(event["id"])
                self._notify(event, self.connection)

    def _notify(self, event: Mapping[str, Any], conn: Connection) -> None:
        if self._on_text_delta is None and self._on_event is None:
            return
        if self._on_text_delta is not None:
            text = conn.text_delta(event)
            if text:
                try:
                    self._on_text_delta(text)
                except Exception:
                    log.exception("the on_text_delta hook failed (the session goes on)")
        if self._on_event is None:
            return
        try:
            outcome = self._on_event(event)
            if inspect.isawaitable(outcome):
                raise TypeError("on_event must be a plain function (it runs inline with the stream)")
        except Exception:
            log.exception("the on_event hook failed (the session goes on)")


def _unanswered(turn_input: TurnInput, answered: frozenset[str]) -> TurnInput | None:
    """The part of an input the host does not have yet (None when it has all of it)."""
    if not answered:
        return turn_input
    keep = [i for i, r in enumerate(turn_input.tool_results) if r.tool_use_id not in answered]
    trimmed = replace(
        turn_input,
        tool_uses=tuple(turn_input.tool_uses[i] for i in keep if i < len(turn_input.tool_uses)),
        tool_results=tuple(turn_input.tool_results[i] for i in keep),
        confirmations=tuple(c for c in turn_input.confirmations if c.tool_use_id not in answered),
    )
    return None if trimmed.is_empty() else trimmed
