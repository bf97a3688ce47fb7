"""Helpers to drive sessions through the runtime API and read what they emitted."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

from loophost import wire
from loophost.runtime import Runtime, StoredEvent

from ..conftest import WS

STOPS = ("session.status_idle", "session.status_terminated")


async def last_seq(rt: Runtime, session_id: str) -> int:
    seq = await rt.store.last_seq(session_id)
    assert seq is not None
    return seq


async def wait_for(
    rt: Runtime, session_id: str, after: int, *, stop: Sequence[str] = STOPS, count: int = 1, timeout: float = 15
) -> list[dict[str, Any]]:
    """Events after seq `after` up to and including the `count`-th event whose type is in `stop`."""
    seen: list[dict[str, Any]] = []

    async def collect() -> None:
        hits = 0
        async for event in rt.stream_events(WS, session_id, after_seq=after):
            assert isinstance(event, StoredEvent)
            seen.append(json.loads(event.body))
            if event.type in stop:
                hits += 1
                if hits == count:
                    return

    await asyncio.wait_for(collect(), timeout)
    return seen


async def turn(rt: Runtime, session_id: str, *events: Any, count: int = 1) -> list[dict[str, Any]]:
    """Send events and return everything the session emitted until it stopped (`count` times)."""
    after = await last_seq(rt, session_id)
    await rt.send_events(WS, session_id, list(events))
    return await wait_for(rt, session_id, after, count=count)


def message(text: str) -> wire.UserMessageParams:
    return wire.UserMessageParams.model_validate({"type": "user.message", "content": [{"type": "text", "text": text}]})


def custom_result(event_id: str, text: str, *, is_error: bool = False) -> wire.UserCustomToolResultParams:
    return wire.UserCustomToolResultParams.model_validate(
        {
            "type": "user.custom_tool_result",
            "custom_tool_use_id": event_id,
            "content": [{"type": "text", "text": text}],
            "is_error": is_error,
        }
    )


def confirmation(event_id: str, result: str, deny_message: str | None = None) -> wire.UserToolConfirmationParams:
    data: dict[str, Any] = {"type": "user.tool_confirmation", "tool_use_id": event_id, "result": result}
    if deny_message is not None:
        data["deny_message"] = deny_message
    return wire.UserToolConfirmationParams.model_validate(data)


def types(events: Sequence[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


def of_type(events: Sequence[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == kind]


def final_text(events: Sequence[dict[str, Any]]) -> str:
    messages = of_type(events, "agent.message")
    return "".join(b["text"] for b in messages[-1]["content"]) if messages else ""
