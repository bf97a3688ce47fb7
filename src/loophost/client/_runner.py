"""`ToolRunner`: runs the agent's tool calls on the client, each tool-use id at most once.

Calls run in parallel under a bound, results come back in call order, and nothing a tool does can hang or
crash the session: exceptions, bad input and unknown names all become error results the model can read.

Each `run` owns its calls: they are tasks of one `asyncio.TaskGroup`, so `run` returns only once every call has
ended, and cancelling it cancels and awaits them all. A call never raises an `Exception` into the group (it becomes
the call's error result), so one failing call cannot cancel its siblings.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from . import _telemetry
from ._results import Confirmation, ToolResult, ToolSpec, ToolUse
from ._tools import Tool, ToolCallContext, ToolOutcome, _to_text, dispatch_function, tools_of

__all__ = ("ConfirmHook", "ToolRunner")

log = logging.getLogger("loophost.client")

ConfirmHook = Callable[[str, Mapping[str, Any], Any], Any]
"""`(name, input, context) -> True | False | str | Confirmation` (a str denies with that message); may be async."""


class ToolRunner:
    """The handler's tools for one session, with the record of what already ran."""

    def __init__(
        self,
        handler: Any,
        *,
        confirm: ConfirmHook | None = None,
        context: Any = None,
        provider: str = "",
        max_concurrency: int = 8,
        extra: Sequence[Tool] = (),
    ) -> None:
        if inspect.isclass(handler):
            handler = handler()
        self.handler = handler
        self.tools: dict[str, Tool] = {t.name: t for t in [*tools_of(handler), *extra]}
        self._dispatch = dispatch_function(handler)
        self._confirm = confirm if confirm is not None else self.hook("confirm")
        self._context = context
        self._provider = provider
        self._limit = asyncio.Semaphore(max_concurrency)
        self._done: dict[str, ToolResult] = {}
        self._running: dict[str, asyncio.Future[ToolResult]] = {}
        self.session_id = ""
        self.executions: dict[str, int] = {}
        """How many times each tool-use id was executed here (always 1: a diagnostic for tests and logs)."""

    def hook(self, name: str) -> Any:
        """The handler object's `name` method (`confirm`, `on_event`), if it has one; lists and functions have none."""
        handler = self.handler
        if handler is None or isinstance(handler, list | tuple | Tool) or inspect.isfunction(handler):
            return None
        method = getattr(handler, name, None)
        return method if callable(method) else None

    @property
    def specs(self) -> tuple[ToolSpec, ...]:
        return tuple(t.spec for t in self.tools.values())

    def answered(self, tool_use_id: str) -> ToolResult | None:
        return self._done.get(tool_use_id)

    async def run(self, uses: Sequence[ToolUse]) -> list[ToolResult]:
        """Results for `uses`, in order. A use that already ran (or is running) is never run again."""
        ids = [use.id for use in uses]
        if len(set(ids)) != len(ids):
            log.warning("one turn names tool-use ids more than once: %s", ids)
        async with asyncio.TaskGroup() as calls:
            tasks = [calls.create_task(self._once(use), name=f"loophost-tool-{use.id}") for use in uses]
        return [task.result() for task in tasks]

    async def _once(self, use: ToolUse) -> ToolResult:
        """The result of `use`: the recorded one, the one of the same id running now, or a new run's.

        Raises nothing but cancellation: whatever goes wrong in the call is its error result, recorded like
        any other, so the id is never run again.
        """
        done = self._done.get(use.id)
        if done is not None:
            return done
        running = self._running.get(use.id)
        if running is not None:
            return await self._join(use, running)
        future: asyncio.Future[ToolResult] = asyncio.get_running_loop().create_future()
        self._running[use.id] = future
        try:
            async with self._limit:
                outcome = await self._execute(use)
        except Exception as exc:  # a bug below the tool (its own exceptions are error outcomes already)
            log.exception("running tool %s (%s) failed", use.name, use.id)
            outcome = ToolOutcome(f"Tool {use.name!r} failed: {type(exc).__name__}: {exc}", is_error=True)
        except BaseException:
            future.cancel()  # cancelled before it finished: nothing is recorded, and whoever joined it is told
            raise
        finally:
            del self._running[use.id]
        result = self._done[use.id] = ToolResult(use.id, outcome.text, outcome.is_error)
        future.set_result(result)
        return result

    @staticmethod
    async def _join(use: ToolUse, running: asyncio.Future[ToolResult]) -> ToolResult:
        """Wait for the run of the same id that another call started (shielded: leaving does not cancel it)."""
        try:
            return await asyncio.shield(running)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if running.cancelled() and task is not None and not task.cancelling():
                # the run we joined was cancelled, this call was not: answer, rather than leak its cancellation
                return ToolResult(use.id, f"Tool {use.name!r} was cancelled before it finished.", True)
            raise

    async def _execute(self, use: ToolUse) -> ToolOutcome:
        self.executions[use.id] = self.executions.get(use.id, 0) + 1
        ctx = ToolCallContext(self.session_id, use.id, self._provider, self._context)
        with _telemetry.span("loophost.tool", {"gen_ai.tool.name": use.name, "gen_ai.tool.call.id": use.id}) as span:
            outcome = await self._outcome(use, ctx)
            span.set_attribute("loophost.tool.is_error", outcome.is_error)
        log.debug("tool %s (%s) -> %s", use.name, use.id, "error" if outcome.is_error else "ok")
        return outcome

    async def _outcome(self, use: ToolUse, ctx: ToolCallContext) -> ToolOutcome:
        declared = self.tools.get(use.name)
        if declared is not None:
            return await declared.call(use.input, ctx)
        if self._dispatch is not None:
            try:
                value = self._dispatch(use.name, dict(use.input), ctx)
                if inspect.isawaitable(value):
                    value = await value
            except Exception as exc:
                return ToolOutcome(f"Tool {use.name!r} raised {type(exc).__name__}: {exc}", is_error=True)
            return _dispatch_outcome(value)
        known = ", ".join(sorted(self.tools)) or "none"
        return ToolOutcome(f"Unknown tool {use.name!r}; this client's tools are: {known}.", is_error=True)

    async def confirm(self, uses: Sequence[ToolUse]) -> list[Confirmation]:
        """Allow or deny each ask-gated host tool use through the `confirm` hook (denied when there is none)."""
        answers = []
        for use in uses:
            if self._confirm is None:
                answers.append(
                    Confirmation(use.id, False, f"The client has no confirm hook, so {use.name!r} was denied.")
                )
                continue
            try:
                verdict = self._confirm(use.name, dict(use.input), self._context)
                if inspect.isawaitable(verdict):
                    verdict = await verdict
            except Exception as exc:
                answers.append(Confirmation(use.id, False, f"The confirm hook failed ({type(exc).__name__}: {exc})."))
                continue
            answers.append(_confirmation(use.id, verdict))
        return answers


def _confirmation(tool_use_id: str, verdict: Any) -> Confirmation:
    if isinstance(verdict, Confirmation):
        return Confirmation(tool_use_id, verdict.allow, verdict.message)
    if verdict is True:
        return Confirmation(tool_use_id, True)
    if isinstance(verdict, str):
        return Confirmation(tool_use_id, False, verdict)
    return Confirmation(tool_use_id, False, None)


def _dispatch_outcome(value: Any) -> ToolOutcome:
    """A dispatch callable returns text, `(ok, text)`, or raises."""
    if isinstance(value, ToolOutcome):
        return value
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], bool):
        return ToolOutcome(_to_text(value[1]), is_error=not value[0])
    return ToolOutcome(_to_text(value))
