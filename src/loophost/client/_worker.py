"""`Worker`: the self-hosted side of an environment. It polls the environment's work queue, and for each session
it is handed runs the agent's built-in tool calls (bash, read, write, edit, glob, grep) on this machine.

The same protocol the official SDK's `EnvironmentWorker` speaks, so it serves a loophost server and
api.anthropic.com's self-hosted environments alike:

1. poll (`block_ms=999`, `Anthropic-Worker-ID`) with the environment key, ack the item;
2. heartbeat its lease (`NO_HEARTBEAT`, then echo `last_heartbeat`), with the sessions token of the item's
   `secret` (else the environment key); a 412 means another worker holds it: let go without stopping it;
3. open the session's event stream, then list its log to reconcile: every `agent.tool_use` of these tools without
   a `user.tool_result` runs (an `ask` call once a `user.tool_confirmation` allows it, a `deny` never), each at
   most once in this process, and its result is posted as `user.tool_result`;
4. stop serving on `session.status_terminated` / `session.deleted`, `max_idle` seconds after the turn ended, or a
   heartbeat that says stop; then stop the item (`{"force": true}`).

Every task has an owner: the poll loop owns the item tasks (one `TaskGroup`), an item owns its heartbeat, its
stream reader and its running tools. `stop()` is graceful: no new item and no new call starts, running calls
finish and post their results, and each item is stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2

from ._telemetry import propagate_context
from ._worker_http import NO_HEARTBEAT, WorkerHttp, WorkerHttpError, sessions_token
from ._worker_tools import WorkerTools

log = logging.getLogger("loophost.worker")

DEFAULT_BASE_URL = "https://api.anthropic.com"
_IDLE_NEUTRAL = ("user.tool_confirmation", "session.thread_status_terminated")


@dataclass(slots=True)
class _Lease:
    """The worker's view of one item's lease: why it ended, if it did."""

    ended: asyncio.Event = field(default_factory=asyncio.Event)
    reason: str | None = None

    def finish(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
        self.ended.set()

    @property
    def lost(self) -> bool:
        return self.reason == "lost"


class Worker:
    """A worker for one self-hosted environment (see the module docstring). `async with Worker(...) as w:
    await w.run()`, or `await Worker(...).run()`; `stop()` ends it gracefully.

    `workdir`: each session's files are under `workdir/<session_id>/fs/workspace` (the tools' `/workspace`).
    `unsafe_no_sandbox`: run the tools even when no working bubblewrap sandbox is found (otherwise every call
    is answered with an error saying how to install it). `on_progress`: called with a line per step, for a
    terminal."""

    def __init__(
        self,
        *,
        environment_id: str,
        environment_key: str,
        base_url: str | None = None,
        workdir: str | os.PathLike[str] | None = None,
        worker_id: str | None = None,
        max_idle: float = 60.0,
        max_sessions: int = 16,
        unsafe_no_sandbox: bool = False,
        on_progress: Callable[[str], None] | None = None,
        http_client: httpx2.AsyncClient | None = None,
    ) -> None:
        self.environment_id = environment_id
        self._key = environment_key
        self.base_url = base_url or os.environ.get("ANTHROPIC_BASE_URL") or DEFAULT_BASE_URL
        self.workdir = Path(workdir if workdir is not None else os.getcwd()).absolute()
        self.worker_id = worker_id or f"{socket.gethostname()}-{uuid.uuid4().hex[:12]}"
        self.max_idle = max_idle
        self._slots = asyncio.Semaphore(max_sessions)
        self._unsafe = unsafe_no_sandbox
        self._progress = on_progress or (lambda line: log.info("%s", line))
        self._own_client = http_client is None
        self._client = http_client
        self._tools: WorkerTools | None = None
        self._stopping = asyncio.Event()
        self.completed = 0
        """Items served to their end by this worker."""

    # lifecycle -----------------------------------------------------------------------------------------------
    async def __aenter__(self) -> Worker:
        if self._client is None:
            self._client = httpx2.AsyncClient(
                base_url=self.base_url,
                headers={"anthropic-version": "2023-06-01", "user-agent": "loophost-worker"},
                timeout=httpx2.Timeout(30.0),
                event_hooks={"request": [propagate_context]},  # the worker's trace context, on every call
            )
        if self._tools is None:
            self._tools = WorkerTools(self.workdir, self._http, unsafe_no_sandbox=self._unsafe)
            if self._tools.refusal is not None:
                self._progress("no working sandbox (bubblewrap): built-in tool calls will be refused")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._tools is not None:
            await self._tools.close()
            self._tools = None
        if self._own_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    def stop(self) -> None:
        """Graceful: take no new item or call; running calls finish and post; each item is stopped."""
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    @property
    def tools(self) -> WorkerTools:
        assert self._tools is not None, "use the worker inside `async with`"
        return self._tools

    @property
    def _http(self) -> WorkerHttp:
        assert self._client is not None, "use the worker inside `async with`"
        return WorkerHttp(self._client)

    async def run(self) -> None:
        """Poll and serve until `stop()` (or cancellation). A refused poll (a wrong or revoked key) raises."""
        if self._client is None:
            async with self:
                return await self.run()
        self._progress(f"polling environment {self.environment_id} at {self.base_url} as {self.worker_id}")
        attempt = 0
        async with asyncio.TaskGroup() as items:
            while not self._stopping.is_set():
                await self._slots.acquire()
                try:
                    work = await self._until_stopped(self._poll())
                except WorkerHttpError as exc:
                    self._slots.release()
                    if not exc.transient:
                        raise
                    attempt += 1
                    await self._pause(min(60.0, 2.0**attempt) * random.uniform(0.5, 1.0))
                    continue
                attempt = 0
                if work is None:
                    self._slots.release()
                    continue
                items.create_task(self._item(work), name=f"loophost-worker-{work['id']}")

    async def _until_stopped(self, call: Any) -> Any:
        """`call`'s result, or None once `stop()` was asked (the call is cancelled then)."""
        task = asyncio.ensure_future(call)
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            return None
        return task.result()

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _poll(self) -> dict[str, Any] | None:
        """One long poll; an item is acknowledged before it is returned (a healthcheck is stopped at once)."""
        path = f"/v1/environments/{self.environment_id}/work"
        work = await self._http.call(
            "GET", f"{path}/poll", self._key, params={"block_ms": 999}, headers={"anthropic-worker-id": self.worker_id}
        )
        if not isinstance(work, dict):
            return None
        if (work.get("data") or {}).get("type") != "session":
            await self._stop_item(work, self._key)
            return None
        try:
            await self._http.call("POST", f"{path}/{work['id']}/ack", self._key)
        except WorkerHttpError as exc:
            if exc.transient:
                return None  # it is handed out again later
            await self._stop_item(work, self._key)
            return None
        return work

    # one item ------------------------------------------------------------------------------------------------
    async def _item(self, work: dict[str, Any]) -> None:
        session_id = str(work["data"]["id"])
        credential = sessions_token(work.get("secret")) or self._key
        lease = _Lease()
        self._progress(f"serving session {session_id} (work {work['id']})")
        try:
            async with asyncio.TaskGroup() as group:
                beat = group.create_task(self._heartbeat(work, credential, lease))
                try:
                    await _Session(self, work, credential, lease).serve()
                except WorkerHttpError as exc:
                    self._progress(f"session {session_id}: {exc}")
                finally:
                    lease.finish("done")
                    beat.cancel()
        except Exception:
            log.exception("work %s failed", work["id"])
        finally:
            try:
                await self.tools.close_session(session_id)
                if not lease.lost:
                    await self._stop_item(work, credential)
                    self.completed += 1
                self._progress(f"done with session {session_id} ({'lease lost' if lease.lost else 'stopped'})")
            finally:
                self._slots.release()

    async def _heartbeat(self, work: dict[str, Any], credential: str, lease: _Lease) -> None:
        path = f"/v1/environments/{work['environment_id']}/work/{work['id']}/heartbeat"
        last, interval, ttl = NO_HEARTBEAT, 30.0, 90.0
        succeeded = time.monotonic()
        while not lease.ended.is_set():
            try:
                beat = await asyncio.wait_for(
                    self._http.call("POST", path, credential, params={"expected_last_heartbeat": last}), interval
                )
            except (WorkerHttpError, TimeoutError) as exc:
                status = exc.status if isinstance(exc, WorkerHttpError) else None
                if status == 412:
                    self._progress(f"work {work['id']}: lease lost (another worker holds it)")
                    lease.finish("lost")
                    return
                if status is not None and status < 500 and status not in (408, 409, 429):
                    lease.finish("rejected")
                    return
                if time.monotonic() - succeeded > ttl:
                    lease.finish("lost")
                    return
            else:
                last, succeeded = beat["last_heartbeat"], time.monotonic()
                if beat.get("ttl_seconds", 0) > 0:
                    ttl = float(beat["ttl_seconds"])
                    interval = max(0.5, min(ttl / 2, 30.0))
                if beat.get("state") in ("stopping", "stopped") or not beat.get("lease_extended"):
                    lease.finish("stop")
                    return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lease.ended.wait(), interval)

    async def _stop_item(self, work: Mapping[str, Any], credential: str) -> None:
        path = f"/v1/environments/{work['environment_id']}/work/{work['id']}/stop"
        try:
            await self._http.call("POST", path, credential, body={"force": True})
        except WorkerHttpError as exc:
            if exc.status != 409:
                log.warning("stopping work %s failed: %s", work["id"], exc)


class _Session:
    """Serves one item's session: stream, reconcile, run the calls, post results (see the module docstring)."""

    def __init__(self, worker: Worker, work: Mapping[str, Any], credential: str, lease: _Lease) -> None:
        self._worker = worker
        self._http = worker._http
        self._tools = worker.tools
        self._id = str(work["data"]["id"])
        self._environment_id = str(work["environment_id"])
        self._credential = credential
        self._lease = lease
        self._started: set[str] = set()
        self._answered: set[str] = set()
        self._held: dict[str, Mapping[str, Any]] = {}
        self._verdicts: dict[str, str] = {}
        self._idle_since: float | None = None
        self._running: set[asyncio.Task[None]] = set()
        self._done = False

    async def serve(self) -> None:
        session = await self._http.call("GET", f"/v1/sessions/{self._id}", self._credential)
        if session.get("status") == "terminated":
            return
        self._tools.serve(session, self._credential)  # its memory stores and skills, mounted for its tools
        backoff = 0.5
        async with asyncio.TaskGroup() as calls:
            self._calls = calls
            while not self._finished():
                try:
                    # the stream opens before the log is listed: nothing written in between is missed
                    async with self._http.stream(self._id, self._credential) as live:
                        events: asyncio.Queue[Mapping[str, Any] | Exception] = asyncio.Queue()
                        reader = asyncio.create_task(_pump(live, events))
                        try:
                            for event in await self._http.events(self._id, self._credential):
                                self._note(event)
                            self._dispatch_pending()
                            backoff = 0.5
                            await self._follow(events)
                        finally:
                            reader.cancel()
                            await asyncio.gather(reader, return_exceptions=True)
                except WorkerHttpError as exc:
                    if not exc.transient:
                        raise
                    log.warning("session %s: %s; reconnecting", self._id, exc)
                    await self._worker._pause(backoff)
                    backoff = min(10.0, backoff * 2)
            if self._running:  # graceful: the calls in flight finish and post their results
                await asyncio.gather(*self._running, return_exceptions=True)

    def _finished(self) -> bool:
        return self._done or self._lease.ended.is_set() or self._worker._stopping.is_set()

    async def _follow(self, events: asyncio.Queue[Mapping[str, Any] | Exception]) -> None:
        while not self._finished():
            try:
                item = await asyncio.wait_for(events.get(), 0.25)
            except TimeoutError:
                item = None
            if isinstance(item, Exception):
                raise item
            if item is not None:
                self._note(item)
                self._dispatch_pending()
            if (
                self._idle_since is not None
                and not self._running
                and not self._held
                and time.monotonic() - self._idle_since >= self._worker.max_idle
            ):
                self._done = True

    def _note(self, event: Mapping[str, Any]) -> None:
        kind = event.get("type")
        if kind == "agent.tool_use" and self._tools.owns(str(event.get("name"))):
            if event["id"] not in self._answered and event["id"] not in self._started:
                self._held.setdefault(str(event["id"]), event)
        elif kind == "user.tool_result":
            self._answered.add(str(event.get("tool_use_id")))
            self._held.pop(str(event.get("tool_use_id")), None)
        elif kind == "user.tool_confirmation":
            self._verdicts[str(event.get("tool_use_id"))] = str(event.get("result"))
        elif kind in ("session.status_terminated", "session.deleted"):
            self._done = True
        if kind == "session.status_idle":
            reason = (event.get("stop_reason") or {}).get("type")
            self._idle_since = None if reason == "requires_action" else time.monotonic()
        elif kind not in _IDLE_NEUTRAL:
            self._idle_since = None

    def _dispatch_pending(self) -> None:
        """Start every held call that may run now (an `ask` call once allowed; a denied one is dropped)."""
        if self._worker._stopping.is_set():
            return
        for event_id, event in list(self._held.items()):
            permission = event.get("evaluated_permission")
            verdict = self._verdicts.get(event_id)
            if permission == "deny" or verdict == "deny":
                del self._held[event_id]
                continue
            if permission == "ask" and verdict != "allow":
                continue
            del self._held[event_id]
            self._started.add(event_id)
            task = self._calls.create_task(self._run(event))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _run(self, event: Mapping[str, Any]) -> None:
        name, event_id = event["name"], str(event["id"])
        self._worker._progress(f"session {self._id}: {name} {_brief(event.get('input'))}")
        output = await self._tools.run(self._environment_id, self._id, event)
        content = [{"type": "text", "text": output.text or "(no output)"}]
        result = {"type": "user.tool_result", "tool_use_id": event_id, "content": content, "is_error": output.is_error}
        for attempt in range(8):
            try:
                await self._http.call(
                    "POST", f"/v1/sessions/{self._id}/events", self._credential, body={"events": [result]}
                )
                self._answered.add(event_id)
                return
            except WorkerHttpError as exc:
                if not exc.transient or self._lease.lost:
                    self._worker._progress(f"session {self._id}: the result of {event_id} was refused: {exc}")
                    return
                await asyncio.sleep(min(5.0, 0.25 * 2**attempt))


async def _pump(live: AsyncIterator[Mapping[str, Any]], events: asyncio.Queue[Mapping[str, Any] | Exception]) -> None:
    """Move a stream's events into `events`, ending with the error that ended it."""
    try:
        async for event in live:
            events.put_nowait(event)
        events.put_nowait(WorkerHttpError(None, "the event stream ended"))
    except WorkerHttpError as exc:
        events.put_nowait(exc)
    except httpx2.TransportError as exc:
        events.put_nowait(WorkerHttpError(None, f"the event stream broke: {exc}"))


def _brief(tool_input: object) -> str:
    text = str(tool_input)
    return text if len(text) <= 80 else text[:77] + "..."
