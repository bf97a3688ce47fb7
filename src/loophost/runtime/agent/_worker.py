"""Session workers: one asyncio task per active session, owned by `SessionWorkers`, which cancels and awaits
them on close. Idle sessions hold no task.

A worker repeats: decide the next step under the session's lock (and commit its start), run it, until nothing
is left. Steps, in priority order: an interrupt; a resume once every pending tool use is answered; continuing a
turn that was running (after a crash, or a retry); the next queued input. An interrupt cancels the step in
flight; the interrupt step then closes what the cancelled step left open.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

from ... import wire
from .._core import LoadedSession, RuntimeCore, TurnState
from .._errors import StaleWrite
from . import _outbound as out
from ._tools import BuiltinTool

if TYPE_CHECKING:
    from pydantic_ai import Agent
    from pydantic_ai.messages import ModelMessage, UserContent
    from pydantic_ai.tools import DeferredToolRequests, DeferredToolResults

    from ..models import ModelsConfig
    from ._history import History

ENGINE = "loophost.runtime.agent._engine"


def _engine() -> ModuleType:
    """pydantic-ai and the turn engine, imported on first use (usually already warmed up by `Runtime.open`)."""
    return importlib.import_module(ENGINE)


log = logging.getLogger("loophost.runtime")


@dataclass(frozen=True, slots=True)
class AgentLoopConfig:
    max_retries: int = 4
    """Transient model failures retried per model request before the turn ends with retries_exhausted."""
    retry_backoff: float = 0.5
    retry_backoff_max: float = 8.0
    max_model_requests_per_turn: int = 200
    history_cache_size: int = 256
    """Decoded histories kept in memory, so consecutive turns of a session do not decode it again."""


@dataclass(slots=True)
class _Step:
    kind: str  # "interrupt" | "resume" | "recover" | "input"
    prompt: str | list[UserContent] | None = None
    deferred: DeferredToolResults | None = None


def _text(blocks: Any) -> str:
    return "\n".join(b.get("text", "") for b in blocks or [] if isinstance(b, dict) and b.get("type") == "text")


def _prompt(event: dict[str, Any]) -> str | list[UserContent]:
    """A queued input event as a pydantic-ai user prompt."""
    if event["type"] == "user.define_outcome":
        rubric = event.get("rubric") or {}
        return f"{event.get('description', '')}\n\nRubric:\n{rubric.get('content', '')}".strip()
    parts: list[UserContent] = []
    for block in event.get("content") or []:
        kind = block.get("type")
        source = block.get("source") or {}
        if kind == "text":
            parts.append(block["text"])
        elif kind == "image" and source.get("type") == "base64":
            import base64

            parts.append(_engine().BinaryContent(base64.b64decode(source["data"]), media_type=source["media_type"]))
        elif kind == "image" and source.get("type") == "url":
            parts.append(_engine().ImageUrl(url=source["url"]))
        elif kind == "document" and source.get("type") == "text":
            parts.append(source.get("data", ""))
    if all(isinstance(p, str) for p in parts):
        return "\n".join(p for p in parts if isinstance(p, str))
    return parts


class SessionWorkers:
    """Owns the worker tasks of this process and everything they share (models, built-in tools, config)."""

    def __init__(
        self,
        core: RuntimeCore,
        *,
        builtin_tools: Mapping[str, BuiltinTool] | None = None,
        models: ModelsConfig | None = None,
        config: AgentLoopConfig | None = None,
    ) -> None:
        self.core = core
        self.builtin_tools = dict(builtin_tools or {})
        self.models_config = models
        self.config = config or AgentLoopConfig()
        self._agents: dict[str, Agent[None, str | DeferredToolRequests]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._steps: dict[str, asyncio.Task[None]] = {}
        self._wakes: dict[str, int] = {}
        self._histories: OrderedDict[str, History] = OrderedDict()
        self._closing = False
        self._warm_up: asyncio.Task[ModuleType] | None = None

    # lifecycle -----------------------------------------------------------------------------------------
    def wake(self, session_id: str) -> None:
        """Input arrived for the session: make sure a worker will look at it."""
        if self._closing:
            return
        self._wakes[session_id] = self._wakes.get(session_id, 0) + 1
        self.warm_up()
        if session_id not in self._workers:
            task = asyncio.create_task(self._drive(session_id), name=f"loophost-session-{session_id}")
            self._workers[session_id] = task

    def interrupt(self, session_id: str) -> None:
        """Cancel the step in flight (model request, tool, retry wait); the worker then runs the interrupt step."""
        step = self._steps.get(session_id)
        if step is not None and not step.done():
            step.cancel()
        self.wake(session_id)

    def warm_up(self) -> None:
        """Import the agent core on a thread (once), so no turn stalls the event loop on that import. Called when
        a worker is first needed; a server calls it as soon as it listens."""
        if self._warm_up is None:
            self._warm_up = asyncio.create_task(asyncio.to_thread(importlib.import_module, ENGINE))

    async def recover(self) -> int:
        """On open: give every session that was mid-work (or has queued input) a worker again."""
        rows = await self.core.store.sessions_wanting_work()
        for row in rows:
            self.wake(row.id)
        return len(rows)

    async def close(self) -> None:
        """Cancel every worker and wait for them: running sessions stay `running` in the store and are resumed
        from their checkpoints by the next `recover`."""
        self._closing = True
        tasks = list(self._workers.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._warm_up is not None:  # a thread cannot be cancelled: wait for the import to finish
            await asyncio.gather(self._warm_up, return_exceptions=True)

    def active(self) -> int:
        return len(self._workers)

    def is_active(self, session_id: str) -> bool:
        """Whether a worker is driving the session right now."""
        return session_id in self._workers

    # committing ----------------------------------------------------------------------------------------
    async def apply(self, session_id: str, build: Callable[[LoadedSession], dict[str, Any]]) -> None:
        """Commit a change built from the session's current state, under its lock."""
        async with self.core.locks.lock(session_id):
            loaded = await self.core.load_session(None, session_id)
            try:
                plan = build(loaded)
                events = [self.core.new_event(e) for e in plan.pop("events", [])]
                await self.core.commit(loaded, events=events, **plan)
            except BaseException:
                self._histories.pop(session_id, None)  # its view of what is stored may be ahead of the store
                raise

    async def history(self, session_id: str) -> History:
        """The session's decoded history, cached (LRU) while this process drives the session."""
        history = self._histories.get(session_id)
        if history is None:
            history = _engine().History.from_entries(await self.core.store.get_checkpoint(session_id))
            self._histories[session_id] = history
            while len(self._histories) > self.config.history_cache_size:
                self._histories.popitem(last=False)
        else:
            self._histories.move_to_end(session_id)
        return history

    # the worker ----------------------------------------------------------------------------------------
    async def _drive(self, session_id: str) -> None:
        try:
            if self._warm_up is not None:
                await asyncio.shield(self._warm_up)
            async with self.core.locks.lock(session_id):  # so no commit can slip between the load and the cache
                self.core.live[session_id] = await self.core.load_session(None, session_id)
            while True:
                seen = self._wakes.get(session_id, 0)
                step = await self._next_step(session_id)
                if step is None:
                    if self._wakes.get(session_id, 0) == seen:
                        return
                    continue
                task = asyncio.create_task(self._run_step(session_id, step))
                self._steps[session_id] = task
                try:
                    await task
                except asyncio.CancelledError:
                    current = asyncio.current_task()
                    if current is not None and current.cancelling():
                        task.cancel()
                        await asyncio.gather(task, return_exceptions=True)
                        raise
                    # the step was cancelled by an interrupt: the next step closes it
                finally:
                    self._steps.pop(session_id, None)
        except (StaleWrite, LookupError):
            self._histories.pop(session_id, None)
            return  # the session was deleted under the worker
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("session worker for %s failed", session_id)
        finally:
            self._workers.pop(session_id, None)
            self.core.live.pop(session_id, None)
            self._wakes.pop(session_id, None)

    async def _next_step(self, session_id: str) -> _Step | None:
        async with self.core.locks.lock(session_id):
            loaded = await self.core.load_session(None, session_id)
            session, internal = loaded.session, loaded.internal
            if session.archived_at is not None or session.status == "terminated":
                return None
            if internal.interrupt_requested:
                return _Step("interrupt")
            if internal.pending:
                if any(p.answer is None for p in internal.pending.values()):
                    return None
                return await self._start_resume(loaded)
            if session.status in ("running", "rescheduling"):
                return await self._start_recover(loaded)
            if internal.paused or not internal.queue:
                return None
            return await self._take_input(loaded)

    async def _take_input(self, loaded: LoadedSession) -> _Step:
        queue = list(loaded.internal.queue)
        taken = [queue.pop(0)]
        first = await self.core.store.get_event(loaded.row.id, taken[0])
        instructions = None
        if queue:  # a system.message right behind the input joins its turn
            following = await self.core.store.get_event(loaded.row.id, queue[0])
            if following is not None and following.type == "system.message":
                taken.append(queue.pop(0))
                instructions = _text(json.loads(following.body).get("content"))
        internal = loaded.internal.model_copy(deep=True)
        internal.queue = queue
        internal.turn = TurnState(input_id=taken[0], instructions=instructions)
        taken_at = wire.utcnow()  # before the running event: the input is processed, then the session runs
        session = loaded.session.model_copy(update={"status": "running", "updated_at": taken_at})
        await self.core.commit(
            loaded,
            session=session,
            internal=internal,
            events=[self.core.new_event(out.running())],
            processed=(taken, wire.format_timestamp(taken_at)),
        )
        return _Step("input", prompt=_prompt(json.loads(first.body)) if first is not None else "")

    async def _start_resume(self, loaded: LoadedSession) -> _Step:
        """Every pending tool use is answered: build the deferred results and continue the turn."""
        engine = _engine()
        history = await self.history(loaded.row.id)
        open_args = {call.tool_call_id: call.args_as_dict() for call in engine.open_calls(history.messages)}
        calls: dict[str, Any] = {}
        approvals: dict[str, Any] = {}
        events: list[Any] = [out.running()]
        for event_id, pending in loaded.internal.pending.items():
            answer = pending.answer or {}
            if pending.kind == "confirmation":
                current = open_args.get(pending.tool_use_id)
                if (
                    answer.get("result") == "allow"
                    and current is not None
                    and engine.input_hash(current) == pending.input_hash
                ):
                    approvals[pending.tool_use_id] = True
                else:
                    message = answer.get("deny_message") or (
                        "The user denied this tool call."
                        if answer.get("result") != "allow"
                        else "The confirmation no longer matches this tool call's input; it was not run."
                    )
                    approvals[pending.tool_use_id] = engine.ToolDenied(message)
                    events.append(out.tool_result(event_id, message, is_error=True))
            else:
                text = _text(answer.get("content"))
                failed = engine.ToolFailed(text or "The tool failed.")
                calls[pending.tool_use_id] = failed if answer.get("is_error") else text
        internal = loaded.internal.model_copy(deep=True)
        internal.turn = TurnState(tool_events={p.tool_use_id: e for e, p in loaded.internal.pending.items()})
        internal.pending = {}
        session = loaded.session.model_copy(update={"status": "running", "updated_at": wire.utcnow()})
        await self.core.commit(
            loaded, session=session, internal=internal, events=[self.core.new_event(e) for e in events]
        )
        return _Step("resume", deferred=engine.DeferredToolResults(calls=calls, approvals=approvals))

    async def _start_recover(self, loaded: LoadedSession) -> _Step:
        """A turn was running (crash) or waits for a retry: close what is open, then continue it."""
        events: list[Any] = []
        internal = loaded.internal.model_copy(deep=True)
        turn = internal.turn or TurnState()
        if turn.open_span is not None:
            events.append(out.span_end(turn.open_span, is_error=True))
            turn = turn.model_copy(update={"open_span": None})
        internal.turn = turn
        session = loaded.session
        if session.status == "rescheduling":
            events.append(out.running())
            session = session.model_copy(update={"status": "running", "updated_at": wire.utcnow()})
        await self.core.commit(
            loaded, session=session, internal=internal, events=[self.core.new_event(e) for e in events]
        )
        prompt = None
        if turn.input_id is not None and not turn.prompt_sent:  # died before the prompt reached a checkpoint
            stored = await self.core.store.get_event(loaded.row.id, turn.input_id)
            prompt = _prompt(json.loads(stored.body)) if stored else None
        return _Step("recover", prompt=prompt)

    # running a step ------------------------------------------------------------------------------------
    def _agent(self, model_id: str) -> Agent[None, str | DeferredToolRequests]:
        """One pydantic-ai agent per model id, reused by every turn (instructions and tools are per run)."""
        agent = self._agents.get(model_id)
        if agent is None:
            engine = _engine()
            model = engine.resolve_model(model_id, self.models_config)
            agent = engine.Agent(model, output_type=[str, engine.DeferredToolRequests])
            self._agents[model_id] = agent
        return agent

    async def _run_step(self, session_id: str, step: _Step) -> None:
        if step.kind == "interrupt":
            await self._interrupt(session_id)
            return
        loaded = await self.core.load_session(None, session_id)
        engine = _engine()
        try:
            agent = self._agent(loaded.session.agent.model.id)
            history = await self.history(session_id)
            messages = history.messages
            if step.prompt is not None:
                messages = self._closed_history(messages, loaded)
            await engine.Turn(self, loaded, agent, history).run(messages, step.prompt, step.deferred)
        except (asyncio.CancelledError, StaleWrite):
            raise
        except engine.UsageLimitExceeded as exc:
            await self._end_with_error(session_id, "tool_use_limit_reached_error", str(exc))
        except engine.ModelRoutingError as exc:
            await self._terminate(session_id, "model_request_failed_error", str(exc))
        except Exception as exc:
            if engine.is_transient_model_error(exc):
                await self._reschedule(session_id, exc)
            elif engine.model_error_type(exc) != "unknown_error":
                await self._terminate(session_id, engine.model_error_type(exc), str(exc))
            else:
                log.exception("turn of session %s failed", session_id)
                await self._terminate(session_id, "unknown_error", f"{type(exc).__name__}: {exc}")

    @staticmethod
    def _closed_history(history: list[ModelMessage], loaded: LoadedSession) -> list[ModelMessage]:
        """Close calls left open by an earlier interrupt or crash before a new prompt is added."""
        turn = loaded.internal.turn
        results = {k: (v.text, v.is_error) for k, v in (turn.ledger if turn else {}).items() if v.done}
        return _engine().close_open_calls(history, results)

    async def _interrupt(self, session_id: str) -> None:
        history = await self.history(session_id)

        def change(loaded: LoadedSession) -> dict[str, Any]:
            internal = loaded.internal
            turn = internal.turn or TurnState()
            results = {k: (v.text, v.is_error) for k, v in turn.ledger.items() if v.done}
            for pending in internal.pending.values():
                if pending.kind == "custom" and pending.answer is not None:
                    answer = pending.answer
                    results[pending.tool_use_id] = (_text(answer.get("content")), bool(answer.get("is_error")))
            events: list[Any] = []
            if turn.open_span is not None:
                events.append(out.span_end(turn.open_span))
            busy = loaded.session.status != "idle" or bool(internal.pending)
            if busy:
                events.append(out.idle({"type": "end_turn"}))
            updated = internal.model_copy(update={"pending": {}, "turn": None, "interrupt_requested": False}, deep=True)
            return {
                "session": loaded.session.model_copy(update={"status": "idle", "updated_at": wire.utcnow()}),
                "internal": updated,
                "events": events,
                "checkpoint": history.write(_engine().close_open_calls(history.messages, results)),
            }

        await self.apply(session_id, change)

    async def _reschedule(self, session_id: str, exc: Exception) -> None:
        kind = _engine().model_error_type(exc)
        loaded = await self.core.load_session(None, session_id)
        turn = loaded.internal.turn or TurnState()
        attempts = turn.attempts + 1
        if attempts > self.config.max_retries:
            await self._end_with_error(session_id, kind, str(exc), stop="retries_exhausted", retry="exhausted")
            return

        def change(loaded: LoadedSession) -> dict[str, Any]:
            internal = loaded.internal.model_copy(deep=True)
            current = internal.turn or TurnState()
            events: list[Any] = []
            if current.open_span is not None:
                events.append(out.span_end(current.open_span, is_error=True))
            events += [out.error(kind, str(exc), "retrying"), out.rescheduled()]
            internal.turn = current.model_copy(update={"attempts": attempts, "open_span": None})
            session = loaded.session.model_copy(update={"status": "rescheduling", "updated_at": wire.utcnow()})
            return {"session": session, "internal": internal, "events": events}

        await self.apply(session_id, change)
        delay = min(self.config.retry_backoff * 2 ** (attempts - 1), self.config.retry_backoff_max)
        await asyncio.sleep(delay)

    async def _end_with_error(
        self, session_id: str, kind: str, message: str, *, stop: str = "end_turn", retry: str = "exhausted"
    ) -> None:
        def change(loaded: LoadedSession) -> dict[str, Any]:
            turn = loaded.internal.turn or TurnState()
            events: list[Any] = []
            if turn.open_span is not None:
                events.append(out.span_end(turn.open_span, is_error=True))
            events += [out.error(kind, message, retry), out.idle({"type": stop})]
            return {
                "session": loaded.session.model_copy(update={"status": "idle", "updated_at": wire.utcnow()}),
                "internal": loaded.internal.model_copy(update={"turn": None}),
                "events": events,
            }

        await self.apply(session_id, change)

    async def _terminate(self, session_id: str, kind: str, message: str) -> None:
        def change(loaded: LoadedSession) -> dict[str, Any]:
            turn = loaded.internal.turn or TurnState()
            events: list[Any] = []
            if turn.open_span is not None:
                events.append(out.span_end(turn.open_span, is_error=True))
            events += [out.error(kind, message, "terminal"), out.terminated()]
            return {
                "session": loaded.session.model_copy(update={"status": "terminated", "updated_at": wire.utcnow()}),
                "internal": loaded.internal.model_copy(update={"turn": None, "queue": []}),
                "events": events,
            }

        await self.apply(session_id, change)
