"""The memory and skills services on a real SQLite store: what a session writes is idempotent, a precondition
checked against a stale read never applies, and the system prompt's notes about stores and skills."""

from __future__ import annotations

import asyncio

import pytest

from loophost import wire
from loophost.runtime import Conflict, Runtime
from loophost.runtime._memory import sha256
from loophost.runtime._session_notes import session_notes

from .conftest import WS, make_session

ACTOR = wire.ApiActor(api_key_id="apikey_test")


async def new_store(rt: Runtime, name: str = "Team Notes", description: str = "") -> wire.MemoryStore:
    return await rt.memory.create_store(WS, wire.MemoryStoreCreateParams(name=name, description=description))


async def test_session_writes_are_idempotent(rt: Runtime) -> None:
    store = await new_store(rt)
    for _ in range(3):  # a sync repeated after a crash adds nothing
        await rt.memory.session_write(WS, store.id, "/a.md", "one", "sesn_x")
    await rt.memory.session_write(WS, store.id, "/a.md", "two", "sesn_x")
    await rt.memory.session_delete(WS, store.id, "/a.md", "sesn_x")
    await rt.memory.session_delete(WS, store.id, "/a.md", "sesn_x")
    versions = (await rt.memory.list_versions(WS, store.id)).data
    assert [v.operation for v in versions] == ["deleted", "modified", "created"]
    assert all(v.created_by == wire.SessionActor(session_id="sesn_x") for v in versions)


async def test_one_of_two_racing_conditional_updates_wins(rt: Runtime) -> None:
    store = await new_store(rt)
    memory = await rt.memory.create_memory(WS, store.id, wire.MemoryCreateParams(path="/n", content="v0"), ACTOR)
    condition = wire.MemoryPrecondition(type="content_sha256", content_sha256=sha256("v0"))

    async def update(text: str) -> str:
        params = wire.MemoryUpdateParams(content=text, precondition=condition)
        try:
            await rt.memory.update_memory(WS, store.id, memory.id, params, ACTOR)
        except Conflict as exc:
            return exc.code
        return "applied"

    outcomes = await asyncio.gather(*(update(f"v{i}") for i in range(1, 6)))
    assert sorted(outcomes) == ["applied"] + ["memory_precondition_failed"] * 4
    assert len((await rt.memory.list_versions(WS, store.id)).data) == 2


async def test_the_system_prompt_notes_stores_and_skills(rt: Runtime) -> None:
    store = await new_store(rt, "Team Notes", "decisions the team made")
    skill_md = b"---\nname: lint-fix\ndescription: Fixes lint errors in Python files\n---\n"
    skill = await rt.skills.create_skill(WS, [("lint-fix/SKILL.md", skill_md)])
    session = await make_session(rt, skills=[{"type": "custom", "skill_id": skill.id}])
    attached = await rt.start_session(
        WS,
        wire.SessionCreateParams.model_validate(
            {
                "agent": session.agent.id,
                "environment_id": session.environment_id,
                "resources": [
                    {"type": "memory_store", "memory_store_id": store.id, "access": "read_only", "instructions": "cite"}
                ],
            }
        ),
    )
    notes = await session_notes(rt.store, WS, attached)
    assert notes is not None
    assert "- /mnt/memory/team-notes (read-only): Team Notes. decisions the team made" in notes
    assert "Instructions: cite" in notes
    assert "- lint-fix (/mnt/skills/lint-fix/SKILL.md): Fixes lint errors in Python files" in notes
    assert await session_notes(rt.store, WS, await make_session(rt)) is None


@pytest.mark.parametrize("name", ["My Store", "my-store", "  My  Store!! "])
async def test_mount_paths_come_from_the_name(rt: Runtime, name: str) -> None:
    store = await new_store(rt, name)
    session = await make_session(rt)
    attached = await rt.start_session(
        WS,
        wire.SessionCreateParams.model_validate(
            {
                "agent": session.agent.id,
                "environment_id": session.environment_id,
                "resources": [{"type": "memory_store", "memory_store_id": store.id}],
            }
        ),
    )
    (resource,) = attached.resources
    assert isinstance(resource, wire.MemoryStoreResource)
    assert resource.mount_path in ("/mnt/memory/my-store", "/mnt/memory/-my-store-")
