"""The entry points: `run` / `arun` (one request to its terminal) and `start` (a live session).

The async functions are the core; `run` is a thin synchronous facade over `arun`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from types import TracebackType
from typing import Any

from ._errors import ClientError, SessionClosed, SessionTimeout
from ._provider import Provider
from ._results import Outcome, SessionResult
from ._session import Limits, Session

__all__ = ("LiveSession", "arun", "run", "start")

log = logging.getLogger("loophost.client")


def _limits(
    max_turns: int,
    max_input_tokens: int | None,
    max_output_tokens: int | None,
    max_total_tokens: int | None,
    max_reconnects: int | None,
) -> Limits:
    return Limits(
        max_turns=max_turns,
        max_input_tokens=max_input_tokens,
        max_output_tokens=max_output_tokens,
        max_total_tokens=max_total_tokens,
        max_reconnects=max_reconnects,
    )


async def arun(
    provider: Provider,
    *,
    prompt: str | None = None,
    handler: Any = None,
    timeout: float | None = 600.0,
    max_turns: int = 50,
    max_input_tokens: int | None = None,
    max_output_tokens: int | None = None,
    max_total_tokens: int | None = None,
    max_reconnects: int | None = 5,
    outcome: Outcome | None = None,
    **options: Any,
) -> SessionResult:
    """Run `prompt` on `provider` to a terminal, with the handler's tools running here.

    With `outcome` the host works toward it and revises until its grader is done (the prompt, if any, goes
    first); `result.outcome_evaluations` lists every grading.

    `options` are the `Session` options (`output_type`, `confirm`, `on_event`, `turn_guard`, `context`,
    `agent_id`, `environment_id`, `session_id`, `model`, `system`, ...) and provider-specific ones, passed
    through. Raises `SessionTimeout` after `timeout` seconds (the host-side session stays alive).
    """
    session = Session(
        provider,
        handler=handler,
        limits=_limits(max_turns, max_input_tokens, max_output_tokens, max_total_tokens, max_reconnects),
        **options,
    )
    try:
        async with asyncio.timeout(timeout) as deadline:
            async with session:
                return await session.send(prompt, outcome=outcome)
    except TimeoutError as exc:
        if not deadline.expired():
            raise
        sid = session.session_id
        where = f"session {sid} is still alive on the host; resume it with session_id={sid!r}" if sid else "no session"
        raise SessionTimeout(f"the run timed out after {timeout} s ({where})", session_id=sid) from exc


def run(provider: Provider, **kwargs: Any) -> SessionResult:
    """`arun`, synchronously (from code that has no running event loop)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise ClientError("loophost.run() was called inside a running event loop: use `await loophost.arun(...)`")
    from .._aio import run as run_coroutine

    return run_coroutine(arun(provider, **kwargs))


def start(
    provider: Provider,
    *,
    prompt: str | None = None,
    handler: Any = None,
    on_result: Callable[[SessionResult], Any] | None = None,
    on_error: Callable[[ClientError], Any] | None = None,
    max_turns: int = 50,
    max_input_tokens: int | None = None,
    max_output_tokens: int | None = None,
    max_total_tokens: int | None = None,
    max_reconnects: int | None = None,
    **options: Any,
) -> LiveSession:
    """A live session: `async with loophost.start(provider, handler=...) as live:`, then `await
    live.message(text)` for each request; results reach `on_result` and `async for result in live`.
    It reconnects with backoff (forever by default) and stays open after each terminal.
    """
    session = Session(
        provider,
        handler=handler,
        limits=_limits(max_turns, max_input_tokens, max_output_tokens, max_total_tokens, max_reconnects),
        **options,
    )
    return LiveSession(session, prompt=prompt, on_result=on_result, on_error=on_error)


_CLOSED = object()


class LiveSession:
    """A session that stays open for follow-ups. Its one driver task is owned here: started on enter,
    cancelled and awaited on exit; requests run one at a time, in the order they were sent.

    A request that fails with a `ClientError` fails alone: its error is delivered like a result and the session
    goes on. Anything else that ends the driver (a bug in a hook or the guard, an unexpected exception of the
    provider) ends the live session: the failure, a `ClientError` chained to its cause, is delivered to
    `next_result` / `async for` and `on_error`, raised by every later `message`, and raised by `close` (and so on
    leaving `async with`) unless the caller has already been handed it. Nobody waits on a driver that is gone.
    """

    def __init__(
        self,
        session: Session,
        *,
        prompt: str | None,
        on_result: Callable[[SessionResult], Any] | None,
        on_error: Callable[[ClientError], Any] | None,
    ) -> None:
        self.session = session
        self._inbox: asyncio.Queue[str | None] = asyncio.Queue()
        self._outbox: asyncio.Queue[Any] = asyncio.Queue()
        self._on_result = on_result
        self._on_error = on_error
        self._driver: asyncio.Task[None] | None = None
        self._first = prompt
        self._failure: ClientError | None = None
        self._failure_raised = False

    @property
    def session_id(self) -> str | None:
        return self.session.session_id

    async def __aenter__(self) -> LiveSession:
        await self.session.open()
        self._driver = asyncio.create_task(self._drive(), name=f"loophost-live-{self.session.session_id}")
        self._driver.add_done_callback(self._driver_ended)
        if self._first is not None or self.session.connection.resumed:
            self._inbox.put_nowait(self._first)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._close(raise_failure=exc is None)  # never mask what the block raised (the failure is logged)

    async def close(self) -> None:
        """Stop the driver (a request in flight is abandoned; the host session stays) and disconnect.

        Raises the live session's failure (see the class) if the driver failed and nobody was handed it yet.
        """
        await self._close(raise_failure=True)

    async def _close(self, *, raise_failure: bool) -> None:
        driver, self._driver = self._driver, None
        if driver is not None:
            if not driver.cancel():  # it had ended by itself: its done callback may not have run yet
                self._fail(driver)
            await asyncio.wait([driver])
            if not driver.cancelled():  # it did not end by our cancellation (it raised while unwinding)
                self._fail(driver)
        self._outbox.put_nowait(_CLOSED)
        await self.session.close()
        if raise_failure and self._failure is not None and not self._failure_raised:
            self._failure_raised = True
            raise self._failure

    async def message(self, text: str) -> None:
        """Queue a follow-up user message; its result arrives like every other.

        Raises the live session's failure once its driver has failed, `ClientError` when it is not open.
        """
        if self._failure is not None:
            self._failure_raised = True
            raise self._failure
        if self._driver is None:
            raise ClientError("the live session is not open")
        await self._inbox.put(text)

    async def next_result(self) -> SessionResult:
        """The next terminal (raises the request's error if it failed, or the live session's failure)."""
        item = await self._outbox.get()
        if item is _CLOSED:
            self._outbox.put_nowait(_CLOSED)
            raise SessionClosed("the live session is closed", session_id=self.session_id)
        if isinstance(item, BaseException):
            if item is self._failure:
                self._failure_raised = True
            raise item
        return item

    def __aiter__(self) -> AsyncIterator[SessionResult]:
        return self._results()

    async def _results(self) -> AsyncIterator[SessionResult]:
        while True:
            try:
                yield await self.next_result()
            except SessionClosed:
                return

    async def _drive(self) -> None:
        while True:
            text = await self._inbox.get()
            try:
                result = await self.session.send(text)
            except ClientError as exc:
                log.warning("live session %s: %s", self.session_id, exc)
                self._deliver(exc)
                continue
            self._outbox.put_nowait(result)
            if self._on_result is not None:
                self._call(self._on_result, result)

    def _driver_ended(self, driver: asyncio.Task[None]) -> None:
        if driver is self._driver:  # not stopped by close(): it failed
            self._fail(driver)

    def _fail(self, driver: asyncio.Task[None]) -> None:
        """The driver ended by itself: deliver why to everyone who waits on the live session (once)."""
        if self._failure is not None:
            return
        cause: BaseException | None = asyncio.CancelledError() if driver.cancelled() else driver.exception()
        what = f"{type(cause).__name__}: {cause}" if cause is not None else "it returned"
        sid = self.session_id
        failure = ClientError(f"live session {sid} stopped: its driver failed ({what})", session_id=sid)
        failure.__cause__ = cause
        log.error("live session %s stopped", sid, exc_info=cause)
        self._failure = failure
        self._deliver(failure)
        self._outbox.put_nowait(_CLOSED)

    def _deliver(self, error: ClientError) -> None:
        self._outbox.put_nowait(error)
        if self._on_error is not None:
            self._call(self._on_error, error)

    @staticmethod
    def _call(callback: Callable[[Any], Any], value: Any) -> None:
        try:
            callback(value)
        except Exception:
            log.exception("a live session callback failed (the session goes on)")
