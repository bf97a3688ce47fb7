"""Secure by default: with no working sandbox the built-in tools refuse to run (an error result and a
`session.error` that says how to install bubblewrap) unless the operator opts out; and parallel file writes into
a folder that does not exist yet all succeed (creating parent directories is race-free)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from loophost import wire
from loophost.runtime import Runtime
from loophost.runtime.toolset import Toolset

from ..conftest import WS, user_message
from .conftest import Sandbox


@pytest.fixture
def no_bwrap(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A machine without bubblewrap: none configured, and PATH as it is but for any `bwrap` on it (a directory
    that holds one is replaced by a copy of its links without it)."""
    monkeypatch.delenv("LOOPHOST_BWRAP", raising=False)
    dirs = []
    for index, entry in enumerate(os.environ.get("PATH", "").split(os.pathsep)):
        if entry and (Path(entry) / "bwrap").exists():
            shadow = tmp_path / f"path{index}"
            shadow.mkdir()
            for item in Path(entry).iterdir():
                if item.name != "bwrap":
                    (shadow / item.name).symlink_to(item)
            entry = str(shadow)
        dirs.append(entry)
    monkeypatch.setenv("PATH", os.pathsep.join(dirs))
    assert shutil.which("bwrap") is None


async def _bash_turn(toolset: Toolset, tmp_path: Path) -> list[dict[str, Any]]:
    async with Runtime.from_url(tmp_path / "rt.db", toolset=toolset) as rt:
        agent = await rt.create_agent(
            WS,
            wire.AgentCreateParams.model_validate(
                {"name": "a", "model": "scripted", "tools": [{"type": "agent_toolset_20260401"}]}
            ),
        )
        env = await rt.create_environment(WS, wire.EnvironmentCreateParams(name="env"))
        session = await rt.start_session(WS, wire.SessionCreateParams(agent=agent.id, environment_id=env.id))
        await rt.send_events(WS, session.id, [user_message('call bash {"command": "echo ran-it > mark"}')])
        for _ in range(400):
            stored = (await rt.list_events(WS, session.id, limit=1000)).data
            if stored and stored[-1].type == "session.status_idle":
                return [json.loads(e.body) for e in stored]
            await asyncio.sleep(0.05)
    raise AssertionError("the session did not go idle")


@pytest.mark.usefixtures("no_bwrap")
async def test_without_a_sandbox_the_tools_refuse_and_say_how_to_install_one(tmp_path: Path) -> None:
    toolset = Toolset(tmp_path / "ws")
    assert not toolset.sandboxed and toolset.refusal is not None
    events = await _bash_turn(toolset, tmp_path)
    (error,) = [e for e in events if e["type"] == "session.error"]
    assert "apt install bubblewrap" in error["error"]["message"] and "--unsafe-no-sandbox" in error["error"]["message"]
    (result,) = [e for e in events if e["type"] == "agent.tool_result"]
    assert result["is_error"] and "did not run" in result["content"][0]["text"]
    assert not list((tmp_path / "ws").rglob("mark"))  # nothing ran
    assert events[-1]["stop_reason"] == {"type": "end_turn"}  # the session goes on


@pytest.mark.usefixtures("no_bwrap")
async def test_the_operator_may_opt_out_and_run_in_the_fallback(tmp_path: Path) -> None:
    toolset = Toolset(tmp_path / "ws", unsafe_no_sandbox=True)
    assert not toolset.sandboxed and toolset.refusal is None
    events = await _bash_turn(toolset, tmp_path)
    assert not [e for e in events if e["type"] == "session.error"]
    (result,) = [e for e in events if e["type"] == "agent.tool_result"]
    assert not result["is_error"], result["content"]
    assert [p.read_text() for p in (tmp_path / "ws").rglob("mark")] == ["ran-it\n"]


async def test_parallel_writes_into_a_new_folder_all_succeed(box: Sandbox) -> None:
    for round_ in range(25):  # the window is small: many rounds of many threads, each racing to create the path
        writes = [
            box.call("write", file_path=f"/workspace/new{round_}/a/b/c/d/f{i}.txt", content=str(i)) for i in range(8)
        ]
        results = await asyncio.gather(*writes)
        assert not [r.text for r in results if r.is_error]
        written = sorted(p.name for p in box.host(f"/workspace/new{round_}/a/b/c/d").iterdir())
        assert written == [f"f{i}.txt" for i in range(8)]
