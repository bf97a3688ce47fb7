"""Fixtures for runtime tests: a real Runtime on a real SQLite file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from loophost import wire
from loophost.runtime import Runtime

WS = "ws_test"


@pytest.fixture
async def rt(tmp_path: Path) -> AsyncIterator[Runtime]:
    async with Runtime.from_url(tmp_path / "runtime.db") as runtime:
        yield runtime


async def make_session(rt: Runtime, *, model: str = "scripted", ws: str = WS, **agent: object) -> wire.Session:
    created = await rt.create_agent(ws, wire.AgentCreateParams.model_validate({"name": "a", "model": model, **agent}))
    env = await rt.create_environment(ws, wire.EnvironmentCreateParams(name=f"env-{created.id}"))
    return await rt.start_session(ws, wire.SessionCreateParams(agent=created.id, environment_id=env.id))


def user_message(text: str) -> wire.UserMessageParams:
    return wire.UserMessageParams.model_validate({"type": "user.message", "content": [{"type": "text", "text": text}]})
