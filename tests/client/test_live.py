"""A live session's driver is owned by the `LiveSession`: whatever ends it surfaces to whoever waits on the session.

A `ClientError` fails one request and the session goes on; anything else (a bug in the turn guard, an unexpected
exception of the provider) ends the live session, and every waiter hears of it instead of waiting forever.
Each test is bounded by `asyncio.timeout`, so a regression fails instead of hanging.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest

import loophost
from loophost.client import Connection, OpenRequest, Provider, TurnInput

from .conftest import Host

pytestmark = pytest.mark.timeout(60)


def _broken_guard(info: loophost.GuardInfo) -> str | None:
    raise RuntimeError("guard bug")


async def test_a_driver_bug_reaches_next_result_on_error_and_message(host: Host) -> None:
    errors: list[loophost.ClientError] = []
    async with asyncio.timeout(30):
        async with loophost.start(
            host.provider, model="scripted", prompt="first", turn_guard=_broken_guard, on_error=errors.append
        ) as live:
            with pytest.raises(loophost.ClientError, match="guard bug") as caught:
                await live.next_result()  # waiting already when the driver fails
            assert isinstance(caught.value.__cause__, RuntimeError)
            assert str(caught.value.__cause__) == "guard bug"
            assert caught.value.session_id == live.session_id
            assert errors == [caught.value]
            with pytest.raises(loophost.ClientError, match="guard bug") as again:
                await live.message("anyone there?")
            assert again.value is caught.value
            assert [result async for result in live] == []  # the iterator ends: no more results will come
    # leaving the block raised nothing: the caller had been handed the failure already


async def test_a_driver_bug_nobody_took_is_raised_on_leaving(host: Host) -> None:
    failed = asyncio.Event()
    async with asyncio.timeout(30):
        with pytest.raises(loophost.ClientError, match="guard bug") as caught:
            async with loophost.start(
                host.provider,
                model="scripted",
                prompt="first",
                turn_guard=_broken_guard,
                on_error=lambda error: failed.set(),
            ):
                await failed.wait()
    assert isinstance(caught.value.__cause__, RuntimeError)


class _FaultyConnection:
    """The host's connection, except that playing a turn raises an exception no client code expects."""

    def __init__(self, inner: Connection) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def turn(self, turn_input: TurnInput | None) -> AsyncIterator[Mapping[str, Any]]:
        async for event in self._inner.turn(turn_input):
            yield event
            raise LookupError("provider bug")  # after the first event of the turn


class _FaultyProvider:
    """The host's provider, handing out `_FaultyConnection`s."""

    def __init__(self, inner: Provider) -> None:
        self._inner = inner
        self.name = inner.name

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def __aenter__(self) -> _FaultyProvider:
        await self._inner.__aenter__()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._inner.__aexit__(*exc_info)

    async def open_session(self, request: OpenRequest) -> Connection:
        return _FaultyConnection(await self._inner.open_session(request))


async def test_an_unexpected_provider_exception_ends_the_live_session_loudly(host: Host) -> None:
    provider: Any = _FaultyProvider(host.provider)
    errors: list[loophost.ClientError] = []
    async with asyncio.timeout(30):
        async with loophost.start(provider, model="scripted", on_error=errors.append) as live:
            await live.message("hello")
            results = live.__aiter__()
            with pytest.raises(loophost.ClientError, match="provider bug") as caught:
                await anext(results)
            assert isinstance(caught.value.__cause__, LookupError)
            with pytest.raises(StopAsyncIteration):
                await anext(results)
    assert errors == [caught.value]


async def test_a_failed_request_does_not_end_the_live_session(host: Host) -> None:
    """The other side of the rule: a ClientError (here the token limit) fails its request only."""
    async with asyncio.timeout(30):
        async with loophost.start(
            host.provider, model="scripted", max_output_tokens=1, prompt="many words here"
        ) as live:
            with pytest.raises(loophost.TokenLimitExceeded) as caught:
                await live.next_result()
            assert caught.value.__cause__ is None
            await live.message("still here?")  # accepted: the driver runs on
            with pytest.raises(loophost.TokenLimitExceeded):
                await live.next_result()
