"""Cursor pages (`_cursors.cut_page`), as a property: walking the pages of a list with any page size gives every
item once, in the order one large page gives, each page full but the last, and the last without a cursor.
Environments are listed oldest first, files newest first; both cut pages as the other lists do."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loophost import wire
from loophost.runtime import Runtime

_workspaces = itertools.count()


async def _walk(list_page: Callable[[str | None], Awaitable[Any]], size: int) -> list[str]:
    """Every id the pages give, checking each page's size and that only the last has no cursor."""
    ids: list[str] = []
    page: str | None = None
    while True:
        got = await list_page(page)
        assert len(got.data) <= size
        ids += [item.id for item in got.data]
        if got.next_page is None:
            return ids
        assert len(got.data) == size  # a page that says more follows is full
        page = got.next_page


def _run(tmp_path: Path, scenario: Callable[[Runtime, str], Awaitable[None]]) -> None:
    async def main() -> None:
        async with Runtime.from_url(tmp_path / "pages.db") as rt:
            await scenario(rt, f"ws_pages_{next(_workspaces)}")  # a fresh workspace per example

    asyncio.run(main())


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(count=st.integers(0, 12), size=st.integers(1, 5))
def test_environment_pages_give_every_item_once_oldest_first(tmp_path: Path, count: int, size: int) -> None:
    async def scenario(rt: Runtime, ws: str) -> None:
        created = [
            (await rt.create_environment(ws, wire.EnvironmentCreateParams(name=f"env-{i}"))).id for i in range(count)
        ]
        walked = await _walk(lambda page: rt.list_environments(ws, limit=size, page=page), size)
        assert walked == [e.id for e in (await rt.list_environments(ws, limit=100)).data]  # one page's order
        assert sorted(walked) == sorted(created)

    _run(tmp_path, scenario)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(count=st.integers(0, 12), size=st.integers(1, 5))
def test_file_pages_give_every_item_once_newest_first(tmp_path: Path, count: int, size: int) -> None:
    async def scenario(rt: Runtime, ws: str) -> None:
        created = [(await rt.upload_file(ws, f"f{i}.txt", b"x")).id for i in range(count)]
        walked = await _walk(lambda page: rt.list_files(ws, limit=size, page=page), size)
        assert walked == [f.id for f in (await rt.list_files(ws, limit=100)).data]  # one page's order
        assert sorted(walked) == sorted(created)

    _run(tmp_path, scenario)
