"""Events through the runtime API: send/echo, idempotency, validation, list pages, stream cursors."""

from __future__ import annotations

import asyncio
import json

import pytest

from loophost import wire
from loophost.runtime import CursorOutOfRange, InvalidRequest, PayloadTooLarge, Runtime, RuntimeConfig

from .conftest import WS, make_session, user_message


async def test_a_queued_message_is_echoed_with_its_log_id(rt: Runtime) -> None:
    session = await make_session(rt)
    (echo,) = await rt.send_events(WS, session.id, [user_message("hello")])
    assert isinstance(echo, wire.UserMessageEvent) and echo.id.startswith("sevt_")
    page = await rt.list_events(WS, session.id, types=["user.message"])
    assert [e.id for e in page.data] == [echo.id]
    assert json.loads(page.data[0].body)["content"] == [{"type": "text", "text": "hello"}]


async def test_idempotency_key_applies_a_send_once(rt: Runtime) -> None:
    session = await make_session(rt)
    first = await rt.send_events(WS, session.id, [user_message("once")], idempotency_key="k1")
    again = await rt.send_events(WS, session.id, [user_message("once")], idempotency_key="k1")
    assert [e.id for e in again] == [e.id for e in first]
    assert len((await rt.list_events(WS, session.id, types=["user.message"])).data) == 1


async def test_concurrent_sends_with_one_key_apply_once(rt: Runtime) -> None:
    session = await make_session(rt)
    results = await asyncio.gather(
        *(rt.send_events(WS, session.id, [user_message("x")], idempotency_key="same") for _ in range(5))
    )
    assert len({r[0].id for r in results}) == 1
    assert len((await rt.list_events(WS, session.id, types=["user.message"])).data) == 1


async def test_interrupt_on_an_idle_session_is_accepted_and_changes_nothing(rt: Runtime) -> None:
    session = await make_session(rt)
    echo = await rt.interrupt(WS, session.id)
    assert echo.type == "user.interrupt" and echo.processed_at is not None
    state = await rt.status(WS, session.id)
    assert state.status == "idle" and state.pending_event_ids == ()


async def test_answers_to_nothing_pending_are_rejected_and_change_nothing(rt: Runtime) -> None:
    session = await make_session(rt)
    before = (await rt.list_events(WS, session.id)).data
    bad = [
        wire.UserToolConfirmationParams(type="user.tool_confirmation", tool_use_id="sevt_nope", result="allow"),
        wire.UserCustomToolResultParams(type="user.custom_tool_result", custom_tool_use_id="sevt_nope"),
    ]
    for event in bad:
        with pytest.raises(InvalidRequest) as info:
            await rt.send_events(WS, session.id, [user_message("before"), event])
        assert "pending: none" in info.value.message
    tool_result = wire.UserToolResultParams(type="user.tool_result", tool_use_id="sevt_nope")
    with pytest.raises(InvalidRequest, match="self_hosted"):
        await rt.send_events(WS, session.id, [tool_result])
    assert (await rt.list_events(WS, session.id)).data == before  # all-or-nothing


async def test_system_message_must_follow_the_event_it_accompanies(rt: Runtime) -> None:
    session = await make_session(rt)
    system = wire.SystemMessageParams.model_validate(
        {"type": "system.message", "content": [{"type": "text", "text": "s"}]}
    )
    with pytest.raises(InvalidRequest):
        await rt.send_events(WS, session.id, [system])
    with pytest.raises(InvalidRequest):
        await rt.send_events(WS, session.id, [user_message("a"), system, user_message("b")])
    echoes = await rt.send_events(WS, session.id, [user_message("a"), system])
    assert [e.type for e in echoes] == ["user.message", "system.message"]


async def test_oversized_events_are_refused(tmp_path: object) -> None:
    from pathlib import Path

    async with Runtime.from_url(Path(str(tmp_path)) / "small.db", config=RuntimeConfig(max_event_bytes=2000)) as rt:
        session = await make_session(rt)
        with pytest.raises(PayloadTooLarge):
            await rt.send_events(WS, session.id, [user_message("x" * 5000)])
        assert (await rt.list_events(WS, session.id)).data == []


async def test_list_pages_both_orders_with_limit_one(rt: Runtime) -> None:
    session = await make_session(rt)
    await rt.pause(WS, session.id)  # messages stay queued: the log holds still while it is paged
    for i in range(4):
        await rt.send_events(WS, session.id, [user_message(f"m{i}")])
    everything = [e.id for e in (await rt.list_events(WS, session.id)).data]
    for order in ("asc", "desc"):
        seen: list[str] = []
        page = await rt.list_events(WS, session.id, limit=1, order=order)
        while True:
            seen.extend(e.id for e in page.data)
            if page.next_page is None:
                break
            page = await rt.list_events(WS, session.id, limit=1, order=order, page=page.next_page)
        assert seen == (everything if order == "asc" else everything[::-1])
    first = await rt.list_events(WS, session.id, limit=1)
    assert first.next_page is not None
    with pytest.raises(InvalidRequest):
        await rt.list_events(WS, session.id, limit=1, order="desc", page=first.next_page)


async def test_stream_cursors(rt: Runtime) -> None:
    session = await make_session(rt)
    await rt.pause(WS, session.id)
    for i in range(3):
        await rt.send_events(WS, session.id, [user_message(f"m{i}")])
    log = (await rt.list_events(WS, session.id)).data

    async def take(n: int, **cursor: object) -> list[str]:
        got: list[str] = []
        async for event in rt.stream_events(WS, session.id, **cursor):  # type: ignore[arg-type]
            got.append(event.id)
            if len(got) == n:
                break
        return got

    assert await take(3, after_seq=0) == [e.id for e in log]
    assert await take(2, after_id=log[0].id) == [e.id for e in log[1:]]
    with pytest.raises(CursorOutOfRange):
        await take(1, after_seq=99)
    with pytest.raises(CursorOutOfRange):
        await take(1, after_id="sevt_unknown")

    live: list[str] = []

    async def follow() -> None:
        async for event in rt.stream_events(WS, session.id):  # no cursor: live only
            live.append(event.id)
            return

    task = asyncio.create_task(follow())
    await asyncio.sleep(0.05)
    (echo,) = await rt.send_events(WS, session.id, [user_message("live")])
    await asyncio.wait_for(task, 5)
    assert live == [echo.id]
