"""Files and session resources through the runtime API: uploads, limits, expiry, lists, tenancy, mounts."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path

import pytest

from loophost import wire
from loophost.runtime import Conflict, InvalidRequest, NotFound, PayloadTooLarge, Runtime
from loophost.runtime.store._records import FileRow

from .conftest import WS, make_session

OTHER = "ws_other"


def _create(agent_id: str, env_id: str, resources: Sequence[Mapping[str, object]]) -> wire.SessionCreateParams:
    return wire.SessionCreateParams.model_validate(
        {"agent": agent_id, "environment_id": env_id, "resources": resources}
    )


async def _agent_and_env(rt: Runtime, ws: str = WS) -> tuple[str, str]:
    agent = await rt.create_agent(ws, wire.AgentCreateParams(name="a", model="scripted"))
    env = await rt.create_environment(ws, wire.EnvironmentCreateParams(name=f"env-{agent.id}"))
    return agent.id, env.id


# files -------------------------------------------------------------------------------------------------------
async def test_upload_round_trips_metadata_and_bytes(rt: Runtime) -> None:
    meta = await rt.upload_file(WS, "a.txt", b"hi", "text/plain")
    assert (meta.type, meta.filename, meta.mime_type, meta.size_bytes) == ("file", "a.txt", "text/plain", 2)
    assert meta.id.startswith("file_") and meta.scope is None and meta.expires_at is None
    assert meta.downloadable is False  # what the Files API reports for uploads
    assert await rt.get_file(WS, meta.id) == meta
    found = await rt.file_content(WS, meta.id)
    assert (found.content, found.metadata) == (b"hi", meta)  # served anyway (see the module doc)
    assert [f.id for f in (await rt.list_files(WS)).data] == [meta.id]
    deleted = await rt.delete_file(WS, meta.id)
    assert (deleted.id, deleted.type) == (meta.id, "file_deleted")
    with pytest.raises(NotFound):
        await rt.get_file(WS, meta.id)
    with pytest.raises(NotFound):
        await rt.file_content(WS, meta.id)
    with pytest.raises(NotFound):
        await rt.delete_file(WS, meta.id)


@pytest.mark.parametrize(
    ("given", "mime", "expected"),
    [
        ("../../etc/passwd", "text/plain", "passwd"),
        ("C:\\Users\\me\\report.pdf", "application/pdf", "report.pdf"),
        ("dir/", "text/plain", "unnamed.txt"),
        ("", "application/json", "unnamed.json"),
        (None, "application/x-unknown-thing", "unnamed"),
        ("a\r\nb.txt", "text/plain", "ab.txt"),
        ("..", "text/plain", "unnamed.txt"),
    ],
)
async def test_filename_is_reduced_to_its_last_component(
    rt: Runtime, given: str | None, mime: str, expected: str
) -> None:
    assert (await rt.upload_file(WS, given, b"x", mime)).filename == expected


async def test_mime_type_is_guessed_when_absent_and_validated_when_given(rt: Runtime) -> None:
    assert (await rt.upload_file(WS, "x.json", b"{}")).mime_type == "application/json"
    assert (await rt.upload_file(WS, "blob", b"\x00")).mime_type == "application/octet-stream"
    assert (await rt.upload_file(WS, "t", b"x", "text/plain; charset=utf-8")).mime_type == "text/plain; charset=utf-8"
    with pytest.raises(InvalidRequest) as err:
        await rt.upload_file(WS, "x", b"x", "text/plain\r\nX-Evil: 1")
    assert err.value.code == "invalid_mime_type"


async def test_size_limit_is_a_payload_too_large(rt: Runtime) -> None:
    rt.config = dataclasses.replace(rt.config, max_file_bytes=4)
    assert (await rt.upload_file(WS, "ok", b"1234")).size_bytes == 4
    with pytest.raises(PayloadTooLarge):
        await rt.upload_file(WS, "big", b"12345")
    assert len((await rt.list_files(WS)).data) == 1


async def test_expiry_bounds_and_expired_content(rt: Runtime) -> None:
    for bad in (0, 3599, 7_776_001, -1):
        with pytest.raises(InvalidRequest) as err:
            await rt.upload_file(WS, "x", b"x", expires_in_seconds=bad)
        assert err.value.code == "invalid_expires_in_seconds"
    meta = await rt.upload_file(WS, "x", b"x", expires_in_seconds=3600)
    assert meta.expires_at is not None and meta.expires_at - meta.created_at == timedelta(seconds=3600)
    assert (await rt.file_content(WS, meta.id)).content == b"x"
    await rt.store.insert_file(
        FileRow(
            WS, "file_old", "old.txt", "text/plain", 1, "2020-01-01T00:00:00.000000Z", "2020-01-01T01:00:00.000000Z"
        ),
        b"x",
    )
    assert (await rt.get_file(WS, "file_old")).filename == "old.txt"  # metadata stays
    with pytest.raises(NotFound) as gone:
        await rt.file_content(WS, "file_old")
    assert gone.value.code == "file_expired"
    agent_id, env_id = await _agent_and_env(rt)
    with pytest.raises(NotFound):
        await rt.start_session(WS, _create(agent_id, env_id, [{"type": "file", "file_id": "file_old"}]))


async def test_enforced_downloadable_refuses_uploads_but_not_outputs(rt: Runtime) -> None:
    session = await make_session(rt)
    upload = await rt.upload_file(WS, "in.txt", b"in")
    output = await rt.save_output_file(WS, session.id, "out.txt", b"out")
    assert output.downloadable is True and output.scope == wire.FileScope(type="session", id=session.id)
    rt.config = dataclasses.replace(rt.config, enforce_downloadable=True)
    with pytest.raises(InvalidRequest) as err:
        await rt.file_content(WS, upload.id)
    assert err.value.code == "file_not_downloadable"
    assert (await rt.file_content(WS, output.id)).content == b"out"


async def test_list_pages_newest_first_and_filters(rt: Runtime) -> None:
    session = await make_session(rt)
    uploads = [await rt.upload_file(WS, f"f{i}", b"x") for i in range(5)]
    output = await rt.save_output_file(WS, session.id, "out.txt", b"out")
    seen: list[str] = []
    page: str | None = None
    while True:
        got = await rt.list_files(WS, limit=2, page=page)
        seen.extend(f.id for f in got.data)
        if got.next_page is None:
            break
        assert got.next_page.startswith("page_")
        page = got.next_page
    assert seen == [output.id, *[u.id for u in reversed(uploads)]]
    assert [f.id for f in (await rt.list_files(WS, scope_id=session.id)).data] == [output.id]
    picked = await rt.list_files(WS, ids=[uploads[0].id, "file_nope", uploads[2].id, uploads[0].id])
    assert [f.id for f in picked.data] == [uploads[2].id, uploads[0].id] and picked.next_page is None
    with pytest.raises(InvalidRequest):
        await rt.list_files(WS, ids=[f"file_{i}" for i in range(101)])
    with pytest.raises(InvalidRequest):
        await rt.list_files(WS, ids=[uploads[0].id], limit=5)
    for limit in (0, 1001):
        with pytest.raises(InvalidRequest):
            await rt.list_files(WS, limit=limit)
    for cursor in ("garbage", "page_eyJwIjoxLCJkIjp0cnVlfQ"):  # the second decodes, with a bad position
        with pytest.raises(InvalidRequest):
            await rt.list_files(WS, page=cursor)


async def test_another_workspace_sees_no_file(rt: Runtime) -> None:
    meta = await rt.upload_file(WS, "a.txt", b"hi")
    for call in (rt.get_file, rt.file_content, rt.delete_file):
        with pytest.raises(NotFound):
            await call(OTHER, meta.id)
    assert (await rt.list_files(OTHER)).data == []
    assert (await rt.list_files(OTHER, ids=[meta.id])).data == []
    agent_id, env_id = await _agent_and_env(rt, OTHER)
    with pytest.raises(NotFound):
        await rt.start_session(OTHER, _create(agent_id, env_id, [{"type": "file", "file_id": meta.id}]))
    session = await make_session(rt, ws=OTHER)
    with pytest.raises(NotFound):
        await rt.add_session_resource(OTHER, session.id, wire.FileResourceParams(file_id=meta.id))
    with pytest.raises(NotFound):
        await rt.save_output_file(WS, session.id, "x", b"x")  # the session is another workspace's


# session resources -------------------------------------------------------------------------------------------
async def test_create_mounts_files_and_repositories_and_never_echoes_the_token(rt: Runtime) -> None:
    meta = await rt.upload_file(WS, "a.txt", b"hi")
    agent_id, env_id = await _agent_and_env(rt)
    session = await rt.start_session(
        WS,
        _create(
            agent_id,
            env_id,
            [
                {"type": "file", "file_id": meta.id},
                {
                    "type": "github_repository",
                    "url": "https://github.com/octo/hello-world.git",
                    "authorization_token": "ghp_secret",
                    "checkout": {"type": "branch", "name": "main"},
                },
                {"type": "file", "file_id": meta.id, "mount_path": "/data/a.txt"},
            ],
        ),
    )
    file_res, repo_res, second = session.resources
    assert isinstance(file_res, wire.FileResource) and isinstance(repo_res, wire.GitHubRepositoryResource)
    assert file_res.mount_path == f"/mnt/session/uploads/{meta.id}" and file_res.file_id == meta.id
    assert repo_res.mount_path == "/workspace/hello-world"
    assert repo_res.checkout == wire.BranchCheckout(name="main")
    assert second.mount_path == "/data/a.txt"
    fetched = await rt.get_session(WS, session.id)
    assert fetched.resources == session.resources
    assert "ghp_secret" not in fetched.model_dump_json()
    assert "ghp_secret" not in (await rt.get_session_resource(WS, session.id, repo_res.id)).model_dump_json()
    assert "ghp_secret" not in (await rt.list_session_resources(WS, session.id)).model_dump_json()
    row = await rt.store.get_session(WS, session.id)
    assert row is not None and "ghp_secret" not in row.body
    assert await rt.resource_secret(WS, session.id, repo_res.id) == "ghp_secret"
    assert await rt.resource_secret(WS, session.id, file_res.id) is None


@pytest.mark.parametrize(
    ("resource", "error", "code"),
    [
        ({"type": "memory_store", "memory_store_id": "memstore_1"}, NotFound, "not_found"),
        ({"type": "file", "file_id": "file_nope"}, NotFound, "not_found"),
        ({"type": "github_repository", "url": "not a url"}, InvalidRequest, "invalid_repository_url"),
        ({"type": "github_repository", "url": "https://github.com/only"}, InvalidRequest, "invalid_repository_url"),
        (
            {"type": "github_repository", "url": "https://github.com/o/r", "mount_path": "/a/../../etc"},
            InvalidRequest,
            "invalid_mount_path",
        ),
        (
            {"type": "github_repository", "url": "https://github.com/o/r", "mount_path": "relative"},
            InvalidRequest,
            "invalid_mount_path",
        ),
    ],
)
async def test_create_refuses_bad_resources_and_creates_nothing(
    rt: Runtime, resource: dict[str, object], error: type[Exception], code: str
) -> None:
    agent_id, env_id = await _agent_and_env(rt)
    with pytest.raises(error) as err:
        await rt.start_session(WS, _create(agent_id, env_id, [resource]))
    assert getattr(err.value, "code", None) == code
    assert (await rt.list_sessions(WS)).data == []


async def test_duplicate_mount_paths_are_refused(rt: Runtime) -> None:
    meta = await rt.upload_file(WS, "a.txt", b"hi")
    agent_id, env_id = await _agent_and_env(rt)
    twice = [{"type": "file", "file_id": meta.id}, {"type": "file", "file_id": meta.id}]
    with pytest.raises(InvalidRequest) as err:
        await rt.start_session(WS, _create(agent_id, env_id, twice))
    assert err.value.code == "duplicate_mount_path"
    session = await rt.start_session(WS, _create(agent_id, env_id, twice[:1]))
    with pytest.raises(InvalidRequest):
        await rt.add_session_resource(WS, session.id, wire.FileResourceParams(file_id=meta.id))
    with pytest.raises(InvalidRequest):
        await rt.add_session_resource(
            WS,
            session.id,
            wire.FileResourceParams(file_id=meta.id, mount_path=f"/mnt/session/uploads/./{meta.id}/"),
        )


async def test_add_list_get_update_delete(rt: Runtime) -> None:
    session = await make_session(rt)
    meta = await rt.upload_file(WS, "a.txt", b"hi")
    added = await rt.add_session_resource(WS, session.id, wire.FileResourceParams(file_id=meta.id))
    assert isinstance(added, wire.FileResource) and added.mount_path == f"/mnt/session/uploads/{meta.id}"
    repo = await rt.add_session_resource(
        WS,
        session.id,
        wire.GitHubRepositoryResourceParams(url="https://github.com/o/r", authorization_token="ghp_1"),
    )
    assert [r.id for r in (await rt.get_session(WS, session.id)).resources] == [added.id, repo.id]
    assert (await rt.list_session_resources(WS, session.id)).data == [added, repo]
    first = await rt.list_session_resources(WS, session.id, limit=1)
    assert first.data == [added] and first.next_page is not None
    rest = await rt.list_session_resources(WS, session.id, limit=1, page=first.next_page)
    assert rest.data == [repo] and rest.next_page is None
    assert await rt.get_session_resource(WS, session.id, added.id) == added

    rotated = await rt.update_session_resource(
        WS, session.id, repo.id, wire.ResourceUpdateParams(authorization_token="ghp_2")
    )
    assert rotated.updated_at > repo.updated_at and rotated.created_at == repo.created_at
    assert await rt.resource_secret(WS, session.id, repo.id) == "ghp_2"
    assert "ghp_2" not in (await rt.get_session(WS, session.id)).model_dump_json()
    with pytest.raises(InvalidRequest) as err:
        await rt.update_session_resource(WS, session.id, added.id, wire.ResourceUpdateParams(authorization_token="x"))
    assert err.value.code == "resource_not_updatable"
    with pytest.raises(InvalidRequest):
        await rt.add_session_resource(WS, session.id, wire.MemoryStoreResourceParams(memory_store_id="memstore_1"))

    deleted = await rt.delete_session_resource(WS, session.id, added.id)
    assert (deleted.id, deleted.type) == (added.id, "session_resource_deleted")
    assert [r.id for r in (await rt.get_session(WS, session.id)).resources] == [repo.id]
    assert (await rt.file_content(WS, meta.id)).content == b"hi"  # detaching keeps the file
    for call in (rt.get_session_resource, rt.delete_session_resource):
        with pytest.raises(NotFound):
            await call(WS, session.id, added.id)


async def test_resources_belong_to_their_session_and_workspace(rt: Runtime) -> None:
    session = await make_session(rt)
    other_session = await make_session(rt)
    meta = await rt.upload_file(WS, "a.txt", b"hi")
    added = await rt.add_session_resource(WS, session.id, wire.FileResourceParams(file_id=meta.id))
    with pytest.raises(NotFound):
        await rt.get_session_resource(WS, other_session.id, added.id)
    with pytest.raises(NotFound):
        await rt.get_session_resource(OTHER, session.id, added.id)
    with pytest.raises(NotFound):
        await rt.list_session_resources(OTHER, session.id)
    with pytest.raises(NotFound):
        await rt.add_session_resource(OTHER, session.id, wire.FileResourceParams(file_id=meta.id))
    with pytest.raises(NotFound):
        await rt.delete_session_resource(OTHER, session.id, added.id)
    assert len((await rt.get_session(WS, session.id)).resources) == 1


async def test_archived_sessions_resources_are_read_only(rt: Runtime) -> None:
    session = await make_session(rt)
    meta = await rt.upload_file(WS, "a.txt", b"hi")
    added = await rt.add_session_resource(WS, session.id, wire.FileResourceParams(file_id=meta.id))
    await rt.archive_session(WS, session.id)
    with pytest.raises(Conflict):
        await rt.add_session_resource(WS, session.id, wire.FileResourceParams(file_id=meta.id, mount_path="/x"))
    with pytest.raises(Conflict):
        await rt.delete_session_resource(WS, session.id, added.id)
    assert (await rt.list_session_resources(WS, session.id)).data == [added]


async def test_deleting_a_session_keeps_its_files(rt: Runtime) -> None:
    session = await make_session(rt)
    upload = await rt.upload_file(WS, "a.txt", b"hi")
    output = await rt.save_output_file(WS, session.id, "out.txt", b"out")
    repo = await rt.add_session_resource(
        WS, session.id, wire.GitHubRepositoryResourceParams(url="https://github.com/o/r", authorization_token="t")
    )
    await rt.add_session_resource(WS, session.id, wire.FileResourceParams(file_id=upload.id))
    await rt.delete_session(WS, session.id)
    assert (await rt.file_content(WS, upload.id)).content == b"hi"
    assert [f.id for f in (await rt.list_files(WS, scope_id=session.id)).data] == [output.id]
    assert await rt.store.list_session_resources(session.id) == []
    assert await rt.store.get_session_resource(session.id, repo.id) is None


async def test_files_resources_and_tokens_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "restart.db"
    async with Runtime.from_url(path) as first:
        session = await make_session(first)
        meta = await first.upload_file(WS, "a.txt", b"hi")
        repo = await first.add_session_resource(
            WS, session.id, wire.GitHubRepositoryResourceParams(url="https://github.com/o/r", authorization_token="t")
        )
    async with Runtime.from_url(path) as second:
        assert (await second.file_content(WS, meta.id)).content == b"hi"
        assert (await second.get_session(WS, session.id)).resources == [repo]
        assert await second.resource_secret(WS, session.id, repo.id) == "t"
