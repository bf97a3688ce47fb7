"""Files and session resources over HTTP, driven by the official SDK (checklist items 43-45) plus the edges:
tenancy, size and expiry limits, malformed uploads."""

from __future__ import annotations

import uuid

import anthropic
import httpx2
import pytest
from anthropic.types.beta.sessions import BetaManagedAgentsFileResource, BetaManagedAgentsGitHubRepositoryResource

from .conftest import KEY_A, ServerProcess

UPLOAD_LIMIT = 64 * 1024 * 1024


def _session(client: anthropic.Anthropic, **create: object) -> str:
    agent = client.beta.agents.create(name="files-agent", model="claude-opus-4-8")
    env = client.beta.environments.create(name=f"files-env-{uuid.uuid4().hex[:12]}")
    session = client.beta.sessions.create(agent=agent.id, environment_id=env.id, **create)  # type: ignore[arg-type]
    return session.id


def test_upload_retrieve_download_list_delete(client: anthropic.Anthropic) -> None:
    """Checklist 43."""
    f = client.beta.files.upload(file=("a.txt", b"hi", "text/plain"))
    assert (f.type, f.size_bytes, f.filename, f.mime_type) == ("file", 2, "a.txt", "text/plain")
    assert f.id.startswith("file_") and f.created_at.tzinfo is not None
    assert f.downloadable is False and f.scope is None and f.expires_at is None
    assert client.beta.files.retrieve_metadata(f.id) == f
    download = client.beta.files.download(f.id)
    assert download.read() == b"hi"
    assert download.headers["content-type"] == "text/plain"
    assert f.id in [x.id for x in client.beta.files.list()]
    deleted = client.beta.files.delete(f.id)
    assert (deleted.id, deleted.type) == (f.id, "file_deleted")
    with pytest.raises(anthropic.NotFoundError) as err:
        client.beta.files.retrieve_metadata(f.id)
    assert err.value.type == "not_found_error"


def test_upload_keeps_only_the_last_path_component_and_binary_bytes(client: anthropic.Anthropic) -> None:
    payload = bytes(range(256)) * 10
    f = client.beta.files.upload(file=("../../secret/dir/blob.bin", payload, "application/octet-stream"))
    assert f.filename == "blob.bin" and f.size_bytes == len(payload)
    assert client.beta.files.download(f.id).read() == payload


def test_list_pages_newest_first_and_filters_by_ids(client: anthropic.Anthropic) -> None:
    made = [client.beta.files.upload(file=(f"p{i}.txt", b"x", "text/plain")).id for i in range(3)]
    first = client.beta.files.list(limit=1)
    assert len(first.data) == 1 and first.next_page and first.next_page.startswith("page_")
    walked = [f.id for f in client.beta.files.list(limit=1)]  # auto-pagination through `page=`
    assert len(walked) == len(set(walked))
    assert [i for i in walked if i in made] == list(reversed(made))
    picked = client.beta.files.list(ids=[made[0], "file_nope", made[2]])  # sent as ids[]=...
    assert [f.id for f in picked.data] == [made[2], made[0]] and not picked.next_page
    with pytest.raises(anthropic.BadRequestError):
        client.beta.files.list(limit=1001)
    with pytest.raises(anthropic.BadRequestError):
        client.beta.files.list(page="page_not-a-cursor")


def test_another_workspace_gets_404_for_files(client: anthropic.Anthropic, other_client: anthropic.Anthropic) -> None:
    f = client.beta.files.upload(file=("mine.txt", b"mine", "text/plain"))
    with pytest.raises(anthropic.NotFoundError):
        other_client.beta.files.retrieve_metadata(f.id)
    with pytest.raises(anthropic.NotFoundError):
        other_client.beta.files.download(f.id)
    with pytest.raises(anthropic.NotFoundError):
        other_client.beta.files.delete(f.id)
    assert f.id not in [x.id for x in other_client.beta.files.list(ids=[f.id])]
    assert client.beta.files.download(f.id).read() == b"mine"


def test_oversized_upload_is_413(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.APIStatusError) as err:
        client.beta.files.upload(file=("big.bin", b"\0" * (UPLOAD_LIMIT + 1), "application/octet-stream"))
    assert err.value.status_code == 413
    assert err.value.body["type"] == "error"  # type: ignore[index]


def test_expires_in_seconds_is_bounded(client: anthropic.Anthropic) -> None:
    for bad in (60, 7_776_001):
        with pytest.raises(anthropic.BadRequestError):
            client.beta.files.upload(file=("e.txt", b"x", "text/plain"), expires_in_seconds=bad)
    f = client.beta.files.upload(file=("e.txt", b"x", "text/plain"), expires_in_seconds=3600)
    assert f.expires_at is not None and (f.expires_at - f.created_at).total_seconds() == 3600


@pytest.mark.parametrize(
    "request_kwargs",
    [
        {"files": {"other": ("a.txt", b"x", "text/plain")}},  # no `file` part
        {"files": {"file": ("a.txt", b"x", "text/plain")}, "data": {"expires_in_seconds": "soon"}},
        {"json": {"file": "hi"}},  # not multipart at all
        {"content": b"--x\r\nbroken", "headers": {"content-type": "multipart/form-data; boundary=x"}},
        {"content": b"whatever", "headers": {"content-type": "multipart/form-data"}},  # no boundary
        {"files": {"file": ("a.txt", b"x", "not a mime type")}},
    ],
)
def test_malformed_uploads_are_4xx_envelopes(server: ServerProcess, request_kwargs: dict[str, object]) -> None:
    headers = {"authorization": f"Bearer {KEY_A}", **request_kwargs.pop("headers", {})}  # type: ignore[dict-item]
    response = httpx2.post(f"{server.url}/v1/files", headers=headers, **request_kwargs)  # type: ignore[arg-type]
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["type"] == "error"


def test_session_file_resources(client: anthropic.Anthropic) -> None:
    """Checklist 44."""
    sid = _session(client)
    f = client.beta.files.upload(file=("r.txt", b"res", "text/plain"))
    added = client.beta.sessions.resources.add(sid, type="file", file_id=f.id)
    assert added.type == "file" and added.file_id == f.id
    assert added.mount_path == f"/mnt/session/uploads/{f.id}"
    listed = list(client.beta.sessions.resources.list(sid))
    assert [r for r in listed if isinstance(r, BetaManagedAgentsFileResource)] == listed
    assert [r.id for r in listed if isinstance(r, BetaManagedAgentsFileResource)] == [added.id]
    fetched = client.beta.sessions.resources.retrieve(added.id, session_id=sid)
    assert isinstance(fetched, BetaManagedAgentsFileResource) and fetched.id == added.id
    assert client.beta.sessions.retrieve(sid).resources == [added]
    deleted = client.beta.sessions.resources.delete(added.id, session_id=sid)
    assert (deleted.id, deleted.type) == (added.id, "session_resource_deleted")
    assert client.beta.sessions.retrieve(sid).resources == []
    with pytest.raises(anthropic.NotFoundError):
        client.beta.sessions.resources.retrieve(added.id, session_id=sid)
    assert client.beta.files.download(f.id).read() == b"res"  # detaching keeps the file
    with pytest.raises(anthropic.NotFoundError):
        client.beta.sessions.resources.add(sid, type="file", file_id="file_nope")


def test_github_token_is_never_echoed(client: anthropic.Anthropic) -> None:
    """Checklist 45."""
    token = f"ghp_{uuid.uuid4().hex}"
    sid = _session(
        client,
        resources=[
            {
                "type": "github_repository",
                "url": "https://github.com/octo/hello-world",
                "authorization_token": token,
                "checkout": {"type": "branch", "name": "main"},
            }
        ],
    )
    raw = client.beta.sessions.with_raw_response.retrieve(sid)
    assert token not in raw.text()
    (repo,) = raw.parse().resources
    assert isinstance(repo, BetaManagedAgentsGitHubRepositoryResource)
    assert repo.mount_path == "/workspace/hello-world" and repo.checkout is not None
    raw_resource = client.beta.sessions.resources.with_raw_response.retrieve(repo.id, session_id=sid)
    assert token not in raw_resource.text() and raw_resource.parse().type == "github_repository"
    assert token not in client.beta.sessions.resources.with_raw_response.list(sid).text()
    rotated_token = f"ghp_{uuid.uuid4().hex}"
    rotated = client.beta.sessions.resources.with_raw_response.update(
        repo.id, session_id=sid, authorization_token=rotated_token
    )
    parsed = rotated.parse()
    assert rotated_token not in rotated.text()
    assert isinstance(parsed, BetaManagedAgentsGitHubRepositoryResource) and parsed.id == repo.id
    assert rotated_token not in client.beta.sessions.with_raw_response.retrieve(sid).text()


def test_session_create_with_a_file_and_refused_resources(client: anthropic.Anthropic) -> None:
    f = client.beta.files.upload(file=("c.txt", b"c", "text/plain"))
    sid = _session(client, resources=[{"type": "file", "file_id": f.id, "mount_path": "/data/c.txt"}])
    (res,) = client.beta.sessions.retrieve(sid).resources
    assert isinstance(res, BetaManagedAgentsFileResource) and res.mount_path == "/data/c.txt"
    with pytest.raises(anthropic.NotFoundError) as err:  # memory stores must exist (tests/server/test_memory_*)
        _session(client, resources=[{"type": "memory_store", "memory_store_id": "memstore_1"}])
    assert "memory store" in err.value.message
    with pytest.raises(anthropic.NotFoundError):
        _session(client, resources=[{"type": "file", "file_id": "file_nope"}])
    with pytest.raises(anthropic.BadRequestError):  # only repositories take a token
        client.beta.sessions.resources.update(res.id, session_id=sid, authorization_token="t")


def test_another_workspace_gets_404_for_resources(
    client: anthropic.Anthropic, other_client: anthropic.Anthropic
) -> None:
    sid = _session(client)
    f = client.beta.files.upload(file=("w.txt", b"w", "text/plain"))
    added = client.beta.sessions.resources.add(sid, type="file", file_id=f.id)
    with pytest.raises(anthropic.NotFoundError):
        other_client.beta.sessions.resources.retrieve(added.id, session_id=sid)
    with pytest.raises(anthropic.NotFoundError):
        other_client.beta.sessions.resources.list(sid)
    with pytest.raises(anthropic.NotFoundError):
        other_client.beta.sessions.resources.delete(added.id, session_id=sid)
    other_sid = _session(other_client)
    with pytest.raises(anthropic.NotFoundError):  # a file of another workspace cannot be mounted
        other_client.beta.sessions.resources.add(other_sid, type="file", file_id=f.id)


def test_deleting_a_session_keeps_its_files(client: anthropic.Anthropic) -> None:
    f = client.beta.files.upload(file=("k.txt", b"keep", "text/plain"))
    sid = _session(client, resources=[{"type": "file", "file_id": f.id}])
    client.beta.sessions.delete(sid)
    assert client.beta.files.download(f.id).read() == b"keep"
