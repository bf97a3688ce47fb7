"""The memory part of the Store contract (`Store.memory`), against every backend (see conftest.STORE_BACKENDS):
a change and its version commit together, compare-and-set on the current version, unique live paths, byte
order of paths, redaction, and the cascade of a store's delete."""

from __future__ import annotations

import pytest

from loophost.runtime.store import Store
from loophost.runtime.store._memory import MemoryRow, MemoryStoreRow, MemoryVersionRow, PathTaken, VersionQuery

WS = "ws"
STORE = "memstore_1"


def memory(memory_id: str, path: str, version_id: str, content: str = "x") -> MemoryRow:
    return MemoryRow(WS, memory_id, STORE, path, content, "sha-" + content, len(content), version_id, "t0", "t0")


def version(version_id: str, memory_id: str, operation: str = "created", at: str = "t0") -> MemoryVersionRow:
    return MemoryVersionRow(
        WS, version_id, STORE, memory_id, operation, at, "/p", "x", "sha-x", 1, '{"type":"session_actor"}', "s", None
    )


async def with_store(store: Store) -> None:
    await store.memory.put_memory_store(MemoryStoreRow(WS, STORE, "t0", None, "{}"))


async def test_a_change_and_its_version_commit_together(store: Store) -> None:
    await with_store(store)
    await store.memory.insert_memory(memory("mem_1", "/a", "v1"), version("v1", "mem_1"))
    assert await store.memory.replace_memory(
        memory("mem_1", "/a", "v2", "y"), version("v2", "mem_1", "modified", "t1"), expected_version_id="v1"
    )
    stale = memory("mem_1", "/a", "v3", "z")
    assert not await store.memory.replace_memory(stale, version("v3", "mem_1", "modified"), expected_version_id="v1")
    assert await store.memory.get_memory_version(WS, STORE, "v3", with_content=True) is None  # no orphan version
    found = await store.memory.get_memory(WS, STORE, "mem_1", with_content=True)
    assert found is not None and found.content == "y" and found.version_id == "v2"
    basic = await store.memory.get_memory(WS, STORE, "mem_1", with_content=False)
    assert basic is not None and basic.content is None and basic.content_sha256 == "sha-y"
    assert not await store.memory.delete_memory(
        WS, STORE, "mem_1", version("v4", "mem_1", "deleted"), expected_version_id="v1"
    )
    assert await store.memory.delete_memory(
        WS, STORE, "mem_1", version("v5", "mem_1", "deleted", "t2"), expected_version_id="v2"
    )
    listed = await store.memory.list_memory_versions(WS, STORE, VersionQuery(limit=10))
    assert [v.id for v in listed] == ["v5", "v2", "v1"]  # newest first


async def test_live_paths_are_unique(store: Store) -> None:
    await with_store(store)
    await store.memory.insert_memory(memory("mem_1", "/a", "v1"), version("v1", "mem_1"))
    with pytest.raises(PathTaken):
        await store.memory.insert_memory(memory("mem_2", "/a", "v2"), version("v2", "mem_2"))
    await store.memory.insert_memory(memory("mem_2", "/b", "v3"), version("v3", "mem_2"))
    with pytest.raises(PathTaken):
        await store.memory.replace_memory(memory("mem_2", "/a", "v4"), version("v4", "mem_2"), expected_version_id="v3")
    assert await store.memory.get_memory_version(WS, STORE, "v2", with_content=False) is None


async def test_paths_list_in_byte_order_within_a_prefix(store: Store) -> None:
    await with_store(store)
    paths = ["/n/b", "/n/a", "/n-x/a", "/n/é", "/n/Z", "/n0", "/m"]
    for i, path in enumerate(paths):
        await store.memory.insert_memory(memory(f"mem_{i}", path, f"v{i}"), version(f"v{i}", f"mem_{i}"))
    rows = await store.memory.list_memories(
        WS, STORE, prefix="/n/", after=None, at_or_after=None, limit=10, with_content=False
    )
    assert [r.path for r in rows] == sorted(["/n/b", "/n/a", "/n/é", "/n/Z"], key=str.encode)
    page = await store.memory.list_memories(
        WS, STORE, prefix="/", after="/n/a", at_or_after=None, limit=2, with_content=True
    )
    assert [r.path for r in page] == ["/n/b", "/n/é"] and page[0].content == "x"


async def test_redaction_and_the_cascade_of_a_store_delete(store: Store) -> None:
    await with_store(store)
    await store.memory.insert_memory(memory("mem_1", "/a", "v1"), version("v1", "mem_1"))
    await store.memory.attach_memory_stores(WS, "sesn_1", [STORE])
    assert await store.memory.redact_memory_version(
        WS, STORE, "v1", redacted_at="t9", redacted_by='{"type":"api_actor"}'
    )
    redacted = await store.memory.get_memory_version(WS, STORE, "v1", with_content=True)
    assert redacted is not None and redacted.content is None and redacted.path is None
    assert redacted.created_by == '{"type":"session_actor"}' and redacted.redacted_at == "t9"
    assert not await store.memory.delete_memory_store("other", STORE)
    assert await store.memory.delete_memory_store(WS, STORE)
    assert await store.memory.get_memory(WS, STORE, "mem_1", with_content=False) is None
    assert await store.memory.get_memory_version(WS, STORE, "v1", with_content=False) is None
