"""A memory write no tool result acknowledged (the runtime died mid-call) reaches the store when the runtime starts
again, not only at that session's next call or idle: a restart of a Runtime on the same SQLite file and
workspaces directory, with the real toolset (unsandboxed: the file tools run in this process)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from loophost import wire
from loophost.runtime import Runtime
from loophost.runtime.toolset import Toolset

from .conftest import WS, user_message


def runtime(tmp_path: Path) -> Runtime:
    return Runtime.from_url(tmp_path / "rt.db", toolset=Toolset(tmp_path / "ws", use_bwrap=False))


async def settled(rt: Runtime, session_id: str) -> None:
    for _ in range(1000):
        state = await rt.status(WS, session_id)
        if state.status == "idle" and state.queued == 0 and not rt.workers.is_active(session_id):
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"session {session_id} did not settle")


async def paths(rt: Runtime, store_id: str, session_id: str) -> list[tuple[str | None, str]]:
    """(path, operation) of the versions the session wrote."""
    versions = (await rt.memory.list_versions(WS, store_id, session_id=session_id, limit=100)).data
    return sorted((v.path, v.operation) for v in versions)


async def test_a_write_left_unsynced_by_a_crash_is_synced_at_startup(tmp_path: Path) -> None:
    async with runtime(tmp_path) as rt:
        store = await rt.memory.create_store(WS, wire.MemoryStoreCreateParams(name="notes"))
        tools = [{"type": "agent_toolset_20260401"}]
        agent = await rt.create_agent(
            WS, wire.AgentCreateParams.model_validate({"name": "a", "model": "scripted", "tools": tools})
        )
        env = await rt.create_environment(WS, wire.EnvironmentCreateParams(name="memory"))
        params = wire.SessionCreateParams.model_validate(
            {
                "agent": agent.id,
                "environment_id": env.id,
                "resources": [{"type": "memory_store", "memory_store_id": store.id}],
            }
        )
        session = await rt.start_session(WS, params)
        (resource,) = [r for r in session.resources if isinstance(r, wire.MemoryStoreResource)]
        assert resource.mount_path is not None
        write = {"file_path": f"{resource.mount_path}/first.md", "content": "one"}
        await rt.send_events(WS, session.id, [user_message(f"call write {json.dumps(write)}")])
        await settled(rt, session.id)
        assert await paths(rt, store.id, session.id) == [("/first.md", "created")]

    # what a call wrote just before the process died: in the session's mount, never synced (no tool result
    # was committed, so neither that call's sync nor the idle sync ran)
    mount = tmp_path / "ws" / session.id / "fs" / resource.mount_path.lstrip("/")
    (mount / "second.md").write_text("two")
    (mount / "first.md").write_text("one, edited")

    async with runtime(tmp_path) as rt:
        # nothing was sent to the session and nothing resumed it: the runtime's start synced the mount
        assert await paths(rt, store.id, session.id) == [
            ("/first.md", "created"),
            ("/first.md", "modified"),
            ("/second.md", "created"),
        ]
        listed = (await rt.memory.list_memories(WS, store.id, view="full")).data
        contents = sorted((m.path, m.content) for m in listed if isinstance(m, wire.Memory))
        assert contents == [("/first.md", "one, edited"), ("/second.md", "two")]
        assert (await rt.get_session(WS, session.id)).status == "idle"

    async with runtime(tmp_path) as rt:  # synced once: a later start adds no version
        assert len(await paths(rt, store.id, session.id)) == 3
