"""Session workers: one asyncio task per active session, owned by `SessionWorkers`, which cancels and awaits
them on close. Idle sessions hold no task.

A worker is woken by the commit that makes its session need one (see `SessionWriter`): the session runs
(input was taken, every pending tool use was answered, a retry is due) or an interrupt waits to be applied.
It repeats: decide the next step from the committed state, run it, until nothing is left. Steps: an interrupt
(it cancels the step in flight, then closes what that step left open); continuing the turn in progress.

A worker that fails unexpectedly does not leave its session `running` with no owner: the turn is ended with a
`session.error` the client sees, and the session accepts the next message.

With a cluster (several nodes on one PostgreSQL database) a worker drives a session only while this node holds its
lease, and its writes are fenced by it (`_leases.py`).
"""

from __future__ import annotations

import asyncio
import contextvars
import importlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from .. import _log_context, _telemetry
from .._bus import EventBus
from .._errors import StaleWrite, Unavailable
from .._state import TurnState
from .._writer import Change, LoadedSession, SessionWriter
from ..store import Lease, Store
from . import _endings as endings
from . import _outbound as out
from ._config import AgentLoopConfig
from ._leases import SessionLeases
from ._mcp import McpCredentials, McpSessions
from ._remote import worker_policies
from ._tools import BuiltinTool, ToolPolicy, builtin_policies, custom_tools

if TYPE_CHECKING:
    from pydantic_ai.models import Model

    from ..models import ModelsConfig
    from ._history import History

_TURN_MODULE = "loophost.runtime.engine._turn"
log = logging.getLogger("loophost.runtime")


def _load_engine() -> None:
    """What a first turn would otherwise load on the event loop (seconds): the turn module with pydantic-ai, and
    the model layer's price data, which pydantic-ai loads when the first model is built."""
    importlib.import_module(_TURN_MODULE)
    importlib.import_module("mcp.client.streamable_http")  # the MCP client, used by sessions with MCP servers
    from ..models import scripted_model

    scripted_model()


Step = Literal["interrupt", "continue"]


class SessionWorkers:
    """Owns the worker tasks of this process and what they share (models, built-in tools, the history cache)."""

    def __init__(
        self,
        writer: SessionWriter,
        bus: EventBus,
        store: Store,
        *,
        builtin_tools: Mapping[str, BuiltinTool] | None = None,
        models: ModelsConfig | None = None,
        config: AgentLoopConfig | None = None,
        mcp_credentials: McpCredentials | None = None,
    ) -> None:
        """`mcp_credentials`: where MCP connections get their tokens (the runtime's vaults)."""
        self._writer = writer
        self._bus = bus
        self._store = store
        self.builtin_tools = dict(builtin_tools or {})
        self._models_config = models
        self._config = config or AgentLoopConfig()
        self.mcp = McpSessions(mcp_credentials, self._config)
        self._models: dict[str, Model] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._steps: dict[str, Step] = {}  # the step each worker is running (in the worker's own task)
        self._cut_off: set[str] = set()  # sessions whose running step an interrupt cancelled
        self._wakes: dict[str, int] = {}
        self._histories: OrderedDict[str, History] = OrderedDict()
        self._closing = False
        self._warm_up: asyncio.Task[None] | None = None
        self._leases = (
            SessionLeases(writer.cluster, wake=self.wake, busy=self._workers.keys, cancel=self._cancel)
            if writer.cluster is not None
            else None
        )
        writer.waker = self.wake
        self.on_settled: Callable[[LoadedSession], Awaitable[None]] | None = None
        """Awaited with a session each time its worker has nothing left to do (parked or idle): the runtime makes
        sure a self-hosted session waiting on worker calls has a work item (`Runtime._worker_needed`)."""

    @property
    def config(self) -> AgentLoopConfig:
        return self._config

    # lifecycle -----------------------------------------------------------------------------------------
    def wake(self, session_id: str, interrupt: bool = False) -> None:
        """The session needs a worker (its commit said so): make sure one will look at it."""
        if self._closing:
            return
        if interrupt:
            worker = self._workers.get(session_id)
            if self._steps.get(session_id) == "continue" and worker is not None and session_id not in self._cut_off:
                self._cut_off.add(session_id)  # the worker takes this cancellation back (`_run_cut_off`)
                worker.cancel()
            elif self._leases is not None and session_id not in self._workers:
                self._leases.interrupt_for_owner(session_id)
        self._wakes[session_id] = self._wakes.get(session_id, 0) + 1
        self.warm_up()
        if session_id not in self._workers:
            task = asyncio.create_task(  # a context of its own: nothing of the waking task's (its lease) carries over
                self._supervise(session_id), name=f"loophost-session-{session_id}", context=contextvars.Context()
            )
            self._workers[session_id] = task

    def warm_up(self, then: Callable[[], None] | None = None) -> None:
        """Import the turn engine (pydantic-ai) on a thread, once, so no turn stalls the event loop on that
        import. Called when a worker is first needed; a server calls it as soon as it listens, with `then` to
        run on the loop once the import is done."""
        if self._warm_up is None:
            self._warm_up = asyncio.create_task(asyncio.to_thread(_load_engine))
        if then is not None:
            self._warm_up.add_done_callback(lambda _: then())

    async def recover(self) -> int:
        """On open: give every session that was mid-work a worker again (with a cluster: start keeping leases and
        sweeping, every TTL/3, for sessions that want a worker and have no live owner)."""
        if self._leases is not None:
            return await self._leases.start()
        rows = await self._store.sessions_wanting_work()
        for row in rows:
            self.wake(row.id)
        return len(rows)

    async def close(self) -> None:
        """Cancel every worker and wait for them: running sessions stay `running` in the store and are resumed
        from their committed position by the next `recover`."""
        self._closing = True
        if self._leases is not None:
            await self._leases.close()
        tasks = list(self._workers.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._warm_up is not None:  # a thread cannot be cancelled: wait for the import to finish
            await asyncio.gather(self._warm_up, return_exceptions=True)
        await self.mcp.close()

    def active(self) -> int:
        return len(self._workers)

    def leases_held(self) -> int:
        """Sessions this node holds the lease of (0 without a cluster)."""
        return self._leases.held() if self._leases is not None else 0

    def is_active(self, session_id: str) -> bool:
        """Whether a worker is driving the session right now."""
        return session_id in self._workers

    # the worker ----------------------------------------------------------------------------------------
    def _cancel(self, session_id: str) -> None:
        task = self._workers.get(session_id)
        if task is not None:
            task.cancel()

    async def _supervise(self, session_id: str) -> None:
        _log_context.session_id.set(session_id)  # in this task's own context (see `wake`)
        try:
            if self._leases is None:
                await self._drive_until_done(session_id)
            else:
                drive = lambda lease: self._drive_leased(session_id, lease)  # noqa: E731
                await self._leases.supervise(session_id, drive, lambda: self._wakes.get(session_id, 0))
        finally:
            self._workers.pop(session_id, None)
            self._wakes.pop(session_id, None)

    async def _drive_leased(self, session_id: str, lease: Lease) -> None:
        self._histories.pop(session_id, None)  # (re)claimed: another node may have written the history meanwhile
        await self._drive_until_done(session_id, lease)

    async def _drive_until_done(self, session_id: str, lease: Lease | None = None) -> None:
        """Run the session's worker; if it fails unexpectedly, end the turn visibly and drive the session again
        (a few times at most: a session whose worker keeps failing is left idle with the errors in its log). With
        a lease, a database that cannot be reached is waited for while the lease is valid."""
        failures = 0
        while failures < _MAX_WORKER_FAILURES:
            try:
                await self._drive(session_id)
                return
            except (StaleWrite, LookupError):
                return  # the session was deleted (or its lease moved on) under the worker
            except Unavailable as exc:
                self._histories.pop(session_id, None)  # a step cut off: its view may be ahead of the store
                if lease is None or self._leases is None or not self._leases.lease_valid(lease):
                    return
                log.warning("session %s waits for the database: %s", session_id, exc)
                await asyncio.sleep(max(0.1, self._leases.cluster.ttl / 6))
            except Exception as exc:
                failures += 1
                log.exception("session worker for %s failed", session_id)
                self._histories.pop(session_id, None)
                await self._fail(session_id, exc)

    async def _drive(self, session_id: str) -> None:
        if self._warm_up is not None:
            await asyncio.shield(self._warm_up)
        while True:
            seen = self._wakes.get(session_id, 0)
            loaded = await self._writer.load(None, session_id)
            step = _next_step(loaded)
            if step is None and loaded.internal.parent is not None and loaded.internal.parent.waiting is not None:
                await self._notify_parent(loaded)  # a child thread that stopped answers its coordinator (once)
            if step is None:
                if self._wakes.get(session_id, 0) == seen:
                    if self.on_settled is not None:
                        await self.on_settled(loaded)
                    return
                continue
            await self._run_cut_off(session_id, step)

    async def _run_cut_off(self, session_id: str, step: Step) -> None:
        """Run a step in the worker's own task (no task per step: a turn that needs no wait runs at once), where an
        interrupt can cut it off: `wake` cancels the worker, and here that cancellation is taken back (unless the
        worker's owner is cancelling it too); the interrupt step then closes what the step left open."""
        self._steps[session_id] = step
        try:
            await self._run_step(session_id, step)
        except asyncio.CancelledError:
            if not self._take_back_cut_off(session_id):
                raise
        else:
            if session_id in self._cut_off and not self._take_back_cut_off(session_id):
                raise asyncio.CancelledError  # the step absorbed a cancellation that was not only the interrupt's
        finally:
            self._steps.pop(session_id, None)
            self._cut_off.discard(session_id)

    def _take_back_cut_off(self, session_id: str) -> bool:
        """Whether an interrupt's cancellation was all that cancelled this worker (and is now taken back)."""
        if session_id not in self._cut_off:
            return False
        self._cut_off.discard(session_id)
        current = asyncio.current_task()
        return current is not None and current.uncancel() == 0

    async def _run_step(self, session_id: str, step: Step) -> None:
        from ..models import ModelRoutingError, is_transient_model_error, model_error_type

        try:
            if step == "interrupt":
                await self._interrupt(session_id)
                return
            await self._continue(session_id)
        except asyncio.CancelledError:
            raise
        except (StaleWrite, Unavailable):
            self._histories.pop(session_id, None)
            raise
        except ModelRoutingError as exc:
            self._histories.pop(session_id, None)
            await endings.terminate(self._writer, session_id, "model_request_failed_error", str(exc))
        except Exception as exc:
            self._histories.pop(session_id, None)  # its view of what is stored may be ahead of the store
            if is_transient_model_error(exc):
                await endings.reschedule(self._writer, self.config, session_id, exc)
            elif (kind := model_error_type(exc)) != "unknown_error":
                await endings.terminate(self._writer, session_id, kind, str(exc))
            else:
                log.exception("turn of session %s failed", session_id)
                await endings.terminate(self._writer, session_id, "unknown_error", f"{type(exc).__name__}: {exc}")

    async def _continue(self, session_id: str) -> None:
        """Continue the turn in progress: after a retry wait or a crash, close what was left open first."""
        from ._calls import SessionTools
        from ._turn import Turn

        loaded = await self._writer.load(None, session_id)
        turn = loaded.internal.turn
        # a span left open by a request in flight when the process died is closed; the span the turn's start
        # opened for its first request (prompt not sent yet) is that request's, and stays
        if loaded.status == "rescheduling" or (turn is not None and turn.open_span is not None and turn.prompt_sent):

            def resume(current: LoadedSession) -> Change:
                state = current.internal.turn or TurnState()
                events: list[Any] = []
                if state.open_span is not None and state.prompt_sent:
                    events.append(out.span_end(state.open_span, is_error=True))
                change: dict[str, Any] = {}
                if current.status == "rescheduling":
                    events.append(out.running())
                    change["status"] = "running"
                open_span = None if state.prompt_sent else state.open_span
                internal = current.internal.model_copy(
                    update={"turn": state.model_copy(update={"open_span": open_span})}
                )
                return Change(events=events, internal=internal, **change)

            await self._writer.apply(session_id, resume)
            loaded = await self._writer.load(None, session_id)
        if loaded.internal.turn is None and loaded.internal.outcome is not None:  # an outcome's turn ended: grade
            await self._grade(session_id, loaded)
            return
        if loaded.internal.turn is None:  # running with no turn (a database from an older loophost): settle it
            await self._writer.apply(session_id, lambda c: Change(events=[out.idle(_END)], status="idle"))
            return
        agent = loaded.document.agent
        builtin, custom = builtin_policies(agent, self.builtin_tools), frozenset(custom_tools(agent))
        worker = worker_policies(agent) if loaded.internal.self_hosted else {}  # run by the environment's worker
        builtin = {name: policy for name, policy in builtin.items() if name not in worker}
        mcp = await self._mcp_tools(loaded, {*builtin, *custom, *worker})
        tools = SessionTools(builtin, custom, mcp, worker, threads=self._threads(session_id, agent))
        turn_runner = Turn(
            writer=self._writer,
            bus=self._bus,
            store=self._store,
            session_id=session_id,
            history=await self._history(session_id),
            model=await self._model(agent.model.id),
            tools=tools,
            config=self.config,
        )
        with _telemetry.turn_span(session_id, agent, trace=loaded.internal.trace):
            await turn_runner.run()

    async def _mcp_tools(self, loaded: LoadedSession, taken: set[str]) -> dict[str, ToolPolicy]:
        """The session's MCP tools, its servers connected (or reused); a server that fails is reported in the log
        as a `session.error`, once per turn, and the turn goes on without its tools."""
        agent = loaded.document.agent
        if not agent.mcp_servers:
            return {}
        turn = loaded.internal.turn
        tools, failures = await self.mcp.tools_for(
            workspace=loaded.row.workspace,
            session_id=loaded.row.id,
            agent=agent,
            vault_ids=loaded.document.vault_ids,
            turn=turn.input_id if turn is not None else None,
            taken=taken,
        )
        if failures:
            errors = [out.mcp_error(f.kind, f.server_name, f.message) for f in failures]
            await self._writer.apply(loaded.row.id, lambda current: Change(events=errors))
        return tools

    def _threads(self, session_id: str, agent: Any) -> Any:
        """A coordinator's delegation tools (`_threads.py`), or None."""
        if agent.multiagent is None:
            return None
        from ._threads import Threads, roster_of

        roster = roster_of(agent)
        return Threads(self._writer, self._store, session_id, roster) if roster.can_delegate else None

    async def _notify_parent(self, loaded: LoadedSession) -> None:
        from ._threads import last_text, notify_parent

        await notify_parent(self._writer, self._store, loaded, last_text(await self._history(loaded.id)))

    async def _grade(self, session_id: str, loaded: LoadedSession) -> None:
        """Grade the outcome whose turn just ended (`_grader.py`), with the session's model."""
        from ._grader import grade

        model_id = loaded.document.agent.model.id
        await grade(
            writer=self._writer,
            store=self._store,
            session_id=session_id,
            model=await self._model(model_id),
            history=await self._history(session_id),
            model_id=model_id,
        )

    async def _model(self, model_id: str) -> Model:
        """The model for an id, resolved once; on a thread, since a provider's first use imports its SDK."""
        model = self._models.get(model_id)
        if model is None:
            from ..models import resolve_model

            model = await asyncio.to_thread(resolve_model, model_id, self._models_config)
            model = self._models.setdefault(model_id, model)
        return model

    async def _history(self, session_id: str) -> History:
        """The session's decoded history, cached (LRU) while this process drives the session."""
        from ._history import History

        history = self._histories.get(session_id)
        if history is None:
            history = await History.load(self._store, session_id)
            self._histories[session_id] = history
            while len(self._histories) > self.config.history_cache_size:
                self._histories.popitem(last=False)
        else:
            self._histories.move_to_end(session_id)
        return history

    # ends of a turn (`_endings.py`) ------------------------------------------------------------------
    async def _interrupt(self, session_id: str) -> None:
        self._histories.pop(session_id, None)  # the cancelled step may have been cut off mid-change
        await endings.interrupt(self._writer, self._store, session_id, await self._history(session_id))

    async def _fail(self, session_id: str, exc: Exception) -> None:
        """The worker itself failed: end the turn visibly rather than leave the session running unowned."""
        try:
            await endings.end_with_error(
                self._writer, session_id, "unknown_error", f"the session's worker failed: {exc}"
            )
        except Exception:
            log.exception("could not end the turn of session %s after its worker failed", session_id)


def _next_step(loaded: LoadedSession) -> Step | None:
    if loaded.document.archived_at is not None or loaded.status == "terminated":
        return None
    if loaded.internal.interrupt_requested:
        return "interrupt"
    if loaded.status in ("running", "rescheduling"):
        pending = loaded.internal.pending
        if pending and any(p.answer is None for p in pending.values()):
            return None
        return "continue"
    return None


_END = {"type": "end_turn"}
_MAX_WORKER_FAILURES = 3
