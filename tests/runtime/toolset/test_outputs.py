"""Outputs become session-scoped files; deleting a session removes its workspace but keeps them; the agent loop
drives the real tools (scripted model)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from ..conftest import user_message
from .conftest import WS, Sandbox


async def test_outputs_become_session_files(box: Sandbox) -> None:
    await box.call("write", file_path="/mnt/session/outputs/report.md", content="# Report\n")
    await box.bash('mkdir -p "$SESSION_OUTPUTS/deep" && echo data > "$SESSION_OUTPUTS/deep/data.txt"')
    files = (await box.rt.list_files(WS, scope_id=box.session.id)).data
    assert sorted(f.filename for f in files) == ["data.txt", "report.md"]
    assert all(f.downloadable and f.scope is not None and f.scope.id == box.session.id for f in files)
    report = next(f for f in files if f.filename == "report.md")
    assert (await box.rt.file_content(WS, report.id)).content == b"# Report\n"

    await box.call("edit", file_path="/mnt/session/outputs/report.md", old_string="Report", new_string="Final")
    files = (await box.rt.list_files(WS, scope_id=box.session.id)).data
    assert len(files) == 2  # the changed file replaced its earlier version
    report = next(f for f in files if f.filename == "report.md")
    assert (await box.rt.file_content(WS, report.id)).content == b"# Final\n"

    await box.rt.delete_session(WS, box.session.id)
    assert not box.host("/workspace").exists()
    after = (await box.rt.list_files(WS, scope_id=box.session.id)).data
    assert sorted(f.id for f in after) == sorted(f.id for f in files)


async def test_symlinked_outputs_are_not_uploaded(box: Sandbox) -> None:
    await box.call("write", file_path="/workspace/real.txt", content="x")
    await box.bash('ln -s /etc/passwd "$SESSION_OUTPUTS/passwd"; ln -s ../../../etc "$SESSION_OUTPUTS/etc"')
    assert (await box.rt.list_files(WS, scope_id=box.session.id)).data == []


async def _run_turn(box: Sandbox, text: str) -> list[dict[str, Any]]:
    await box.rt.send_events(WS, box.session.id, [user_message(text)])
    for _ in range(400):
        session = await box.rt.get_session(WS, box.session.id)
        if session.status == "idle" and not (await box.rt.status(WS, box.session.id)).queued:
            stored = (await box.rt.list_events(WS, box.session.id, limit=1000)).data
            if stored and stored[-1].type == "session.status_idle":
                return [json.loads(e.body) for e in stored]
        await asyncio.sleep(0.05)
    raise AssertionError("the session did not go idle")


async def test_the_agent_loop_runs_the_real_tools(box: Sandbox) -> None:
    events = await _run_turn(
        box,
        'call write {"file_path": "/workspace/hello.sh", "content": "echo hello from $1"}\n'
        'call bash {"command": "mkdir -p /tmp/x && echo made"}',
    )
    results = [e for e in events if e["type"] == "agent.tool_result"]
    assert len(results) == 2 and not any(r.get("is_error") for r in results)
    events = await _run_turn(box, 'call bash {"command": "bash /workspace/hello.sh world || bash hello.sh world"}')
    last = [e for e in events if e["type"] == "agent.message"][-1]
    assert "hello from world" in last["content"][0]["text"]
