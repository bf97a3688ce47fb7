"""Memory stores through the official SDK over real HTTP: stores, memories with preconditions and path
conflicts, listing with prefixes and depth, versions with their filters, redaction, and other workspaces."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import anthropic
import pytest
from anthropic.types.beta.memory_stores import BetaManagedAgentsMemory

from .test_events_api import uid


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_store_lifecycle(client: anthropic.Anthropic, other_client: anthropic.Anthropic) -> None:
    stores = client.beta.memory_stores
    store = stores.create(name=uid("Notes"), description="what the user likes", metadata={"user": "u1"})
    assert store.id.startswith("memstore_") and store.archived_at is None and store.metadata == {"user": "u1"}
    assert stores.retrieve(store.id) == store
    updated = stores.update(store.id, description="", metadata={"user": None, "team": "t"})
    assert updated.description == "" and updated.metadata == {"team": "t"} and updated.name == store.name
    listed = [s.id for s in stores.list(limit=100)]
    assert store.id in listed
    with pytest.raises(anthropic.NotFoundError):
        other_client.beta.memory_stores.retrieve(store.id)
    archived = stores.archive(store.id)
    assert archived.archived_at is not None
    assert stores.archive(store.id).archived_at == archived.archived_at  # idempotent
    assert store.id not in [s.id for s in stores.list(limit=100)]
    assert store.id in [s.id for s in stores.list(limit=100, include_archived=True)]
    with pytest.raises(anthropic.BadRequestError):
        stores.update(store.id, name="renamed")
    with pytest.raises(anthropic.BadRequestError):
        stores.memories.create(store.id, path="/a.md", content="x")
    assert stores.delete(store.id).type == "memory_store_deleted"
    with pytest.raises(anthropic.NotFoundError):
        stores.retrieve(store.id)


def test_store_validation(client: anthropic.Anthropic) -> None:
    stores = client.beta.memory_stores
    with pytest.raises(anthropic.BadRequestError):
        stores.create(name="")
    with pytest.raises(anthropic.BadRequestError):
        stores.create(name="x", description="d" * 1025)
    with pytest.raises(anthropic.BadRequestError):
        stores.create(name="x", metadata={str(i): "v" for i in range(17)})
    with pytest.raises(anthropic.BadRequestError):
        stores.list(limit=101)


def test_memory_crud_with_preconditions_and_conflicts(client: anthropic.Anthropic) -> None:
    stores = client.beta.memory_stores
    store = stores.create(name=uid("crud"))
    memories = stores.memories
    created = memories.create(store.id, path="/prefs/food.md", content="likes pizza")
    assert created.content is None  # create answers basic by default
    assert created.content_sha256 == sha("likes pizza") and created.content_size_bytes == len("likes pizza")
    full = memories.retrieve(created.id, memory_store_id=store.id)
    assert full.content == "likes pizza"  # retrieve answers full by default

    with pytest.raises(anthropic.ConflictError) as taken:
        memories.create(store.id, path="/prefs/food.md", content="other")
    error = taken.value.body["error"]  # type: ignore[index]
    assert error["type"] == "memory_path_conflict_error"
    assert error["details"]["conflicting_memory_id"] == created.id

    with pytest.raises(anthropic.ConflictError) as stale:
        memories.update(
            created.id,
            memory_store_id=store.id,
            content="likes sushi",
            precondition={"type": "content_sha256", "content_sha256": sha("something else")},
        )
    assert stale.value.body["error"]["type"] == "memory_precondition_failed_error"  # type: ignore[index]
    changed = memories.update(
        created.id,
        memory_store_id=store.id,
        content="likes sushi",
        precondition={"type": "content_sha256", "content_sha256": sha("likes pizza")},
        view="full",
    )
    assert changed.content == "likes sushi" and changed.memory_version_id != created.memory_version_id

    other = memories.create(store.id, path="/prefs/drink.md", content="tea")
    with pytest.raises(anthropic.ConflictError) as rename:
        memories.update(other.id, memory_store_id=store.id, path="/prefs/food.md")
    assert rename.value.body["error"]["type"] == "memory_path_conflict_error"  # type: ignore[index]
    moved = memories.update(other.id, memory_store_id=store.id, path="/drinks/tea.md")
    assert moved.id == other.id and moved.path == "/drinks/tea.md"

    with pytest.raises(anthropic.ConflictError):
        memories.delete(created.id, memory_store_id=store.id, expected_content_sha256=sha("likes pizza"))
    deleted = memories.delete(created.id, memory_store_id=store.id, expected_content_sha256=sha("likes sushi"))
    assert deleted.type == "memory_deleted"
    with pytest.raises(anthropic.NotFoundError):
        memories.retrieve(created.id, memory_store_id=store.id)
    # the path is free again
    assert memories.create(store.id, path="/prefs/food.md", content="").content_size_bytes == 0


@pytest.mark.parametrize(
    "path",
    [
        "no-slash",
        "/",
        "/a//b",
        "/a/./b",
        "/a/../b",
        "/a/",
        "/tab\there",
        "/e\u0301",
        "/a\u2028b",
        "/x" * 21,
        "/" + "a" * 1024,
    ],
)
def test_invalid_paths_are_400(client: anthropic.Anthropic, path: str) -> None:
    store = client.beta.memory_stores.create(name=uid("paths"))
    with pytest.raises(anthropic.BadRequestError):
        client.beta.memory_stores.memories.create(store.id, path=path, content="x")


def test_content_limit(client: anthropic.Anthropic) -> None:
    store = client.beta.memory_stores.create(name=uid("size"))
    memories = client.beta.memory_stores.memories
    assert memories.create(store.id, path="/max", content="é" * 51_200).content_size_bytes == 102_400
    with pytest.raises(anthropic.BadRequestError):
        memories.create(store.id, path="/over", content="x" * 102_401)


def test_listing_with_prefix_and_depth(client: anthropic.Anthropic) -> None:
    store = client.beta.memory_stores.create(name=uid("list"))
    memories = client.beta.memory_stores.memories
    for path in ("/a.md", "/notes/one.md", "/notes/two.md", "/notes/deep/three.md", "/notes-archive/old.md", "/z.md"):
        memories.create(store.id, path=path, content=path)
    every = [m.path for m in memories.list(store.id, limit=2)]  # follows next_page across pages
    assert every == sorted(every) and len(every) == 6
    under = [m.path for m in memories.list(store.id, path_prefix="/notes/")]
    assert under == ["/notes/deep/three.md", "/notes/one.md", "/notes/two.md"]  # whole segments only
    top = [(m.type, m.path) for m in memories.list(store.id, depth=1, limit=1)]
    assert top == [
        ("memory", "/a.md"),
        ("memory_prefix", "/notes-archive/"),
        ("memory_prefix", "/notes/"),
        ("memory", "/z.md"),
    ]
    children = [(m.type, m.path) for m in memories.list(store.id, path_prefix="/notes/", depth=1)]
    assert children == [("memory_prefix", "/notes/deep/"), ("memory", "/notes/one.md"), ("memory", "/notes/two.md")]
    full = list(memories.list(store.id, path_prefix="/notes/", view="full", limit=100))
    assert all(m.type == "memory" and m.content == m.path for m in full)
    with pytest.raises(anthropic.BadRequestError):
        memories.list(store.id, path_prefix="/notes")


def test_versions_and_redaction(client: anthropic.Anthropic) -> None:
    stores = client.beta.memory_stores
    store = stores.create(name=uid("versions"))
    memory = stores.memories.create(store.id, path="/secret.md", content="password=hunter2")
    stores.memories.update(memory.id, memory_store_id=store.id, content="password=<redacted>")
    stores.memories.delete(memory.id, memory_store_id=store.id)
    versions = list(stores.memory_versions.list(store.id, memory_id=memory.id))
    assert [v.operation for v in versions] == ["deleted", "modified", "created"]  # newest first
    assert all(v.created_by is not None and v.created_by.type == "api_actor" for v in versions)
    assert versions[0].content_sha256 is None and versions[0].path == "/secret.md"
    created = versions[2]
    assert created.content is None  # list answers basic
    full = stores.memory_versions.retrieve(created.id, memory_store_id=store.id)
    assert full.content == "password=hunter2" and full.content_sha256 == sha("password=hunter2")
    only_created = list(stores.memory_versions.list(store.id, operation="created"))
    assert [v.id for v in only_created] == [created.id]

    redacted = stores.memory_versions.redact(created.id, memory_store_id=store.id)
    assert redacted.redacted_at is not None and redacted.redacted_by is not None
    assert redacted.content is None and redacted.path is None and redacted.content_sha256 is None
    again = stores.memory_versions.retrieve(created.id, memory_store_id=store.id, view="full")
    assert again.content is None and again.content_size_bytes is None
    assert again.created_by == created.created_by and again.created_at == created.created_at

    live = stores.memories.create(store.id, path="/live.md", content="now")
    with pytest.raises(anthropic.ConflictError):  # the content a live memory still holds
        stores.memory_versions.redact(live.memory_version_id, memory_store_id=store.id)


def test_unknown_ids_and_other_workspaces(client: anthropic.Anthropic, other_client: anthropic.Anthropic) -> None:
    store = client.beta.memory_stores.create(name=uid("tenancy"))
    memory = client.beta.memory_stores.memories.create(store.id, path="/m", content="x")
    theirs = other_client.beta.memory_stores
    with pytest.raises(anthropic.NotFoundError):
        theirs.memories.retrieve(memory.id, memory_store_id=store.id)
    with pytest.raises(anthropic.NotFoundError):
        theirs.memories.list(store.id)
    with pytest.raises(anthropic.NotFoundError):
        theirs.memory_versions.retrieve(memory.memory_version_id, memory_store_id=store.id)
    with pytest.raises(anthropic.NotFoundError):
        client.beta.memory_stores.memories.retrieve("mem_nope", memory_store_id=store.id)


def test_managed_agents_beta_header_is_accepted(client: anthropic.Anthropic) -> None:
    store = client.beta.memory_stores.create(
        name=uid("beta"), extra_headers={"anthropic-beta": "managed-agents-2026-04-01"}
    )
    assert client.beta.memory_stores.retrieve(store.id).name == store.name


def test_time_filters_and_patch(client: anthropic.Anthropic) -> None:
    stores = client.beta.memory_stores
    store = stores.create(name=uid("filters"))
    after = [s.id for s in stores.list(created_at_gte=store.created_at, limit=100)]
    before = [s.id for s in stores.list(created_at_lte=store.created_at - timedelta(seconds=1), limit=100)]
    assert store.id in after and store.id not in before
    memory = stores.memories.create(store.id, path="/p.md", content="one")
    patched = client.patch(
        f"/v1/memory_stores/{store.id}/memories/{memory.id}",
        body={"content": "two"},
        cast_to=BetaManagedAgentsMemory,
        options={"params": {"view": "full"}},
    )
    assert patched.content == "two"
    versions = stores.memory_versions.list(store.id, created_at_gte=patched.updated_at)
    assert [v.operation for v in versions] == ["modified"]
