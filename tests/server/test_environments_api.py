"""Environments over HTTP through the official SDK (spec §3.1; checklist 14-16), other workspaces, bad input."""

from __future__ import annotations

import uuid

import anthropic
import httpx2
import pytest
from fastapi import FastAPI

from loophost.server.routes import environments

from .conftest import KEY_A, ServerProcess


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def test_create_resolves_config_and_rejects_duplicate_names(client: anthropic.Anthropic) -> None:
    name = unique("env")
    env = client.beta.environments.create(name=name, config={"type": "cloud", "networking": {"type": "unrestricted"}})
    assert env.type == "environment"
    assert env.id.startswith("env_")
    assert env.name == name
    assert env.archived_at is None
    assert env.metadata == {}
    assert env.config.type == "cloud"
    assert env.config.networking.type == "unrestricted"
    assert env.config.packages.pip == []
    assert env.config.packages.npm == []
    with pytest.raises(anthropic.ConflictError) as info:
        client.beta.environments.create(name=name)
    err = info.value
    assert isinstance(err.body, dict)
    assert err.body["type"] == "error"
    assert err.request_id is not None
    assert err.response.headers["x-should-retry"] == "false"


def test_create_defaults_and_self_hosted(client: anthropic.Anthropic) -> None:
    plain = client.beta.environments.create(name=unique("default"))
    assert plain.config.type == "cloud"
    assert plain.config.networking.type == "unrestricted"
    assert plain.config.packages.apt == []
    hosted = client.beta.environments.create(name=unique("hosted"), config={"type": "self_hosted"})
    assert hosted.config.type == "self_hosted"


def test_update_patches_metadata_and_round_trips(client: anthropic.Anthropic) -> None:
    env = client.beta.environments.create(name=unique("upd"), description="first", metadata={"k": "v", "keep": "yes"})
    updated = client.beta.environments.update(env.id, metadata={"k": None})
    assert updated.metadata == {"keep": "yes"}
    assert updated.description == "first"  # omitted: preserved
    cleared = client.beta.environments.update(
        env.id,
        description=None,
        config={"type": "cloud", "packages": {"pip": ["requests"]}},
    )
    assert cleared.description is None  # explicit null: cleared
    assert cleared.config.packages.pip == ["requests"]
    assert cleared.config.networking.type == "unrestricted"
    fetched = client.beta.environments.retrieve(env.id)
    assert fetched == cleared

    listed = {e.id: e for e in client.beta.environments.list(limit=1)}
    assert listed[env.id] == fetched

    archived = client.beta.environments.archive(env.id)
    assert archived.archived_at is not None
    assert client.beta.environments.retrieve(env.id).archived_at == archived.archived_at
    assert env.id not in {e.id for e in client.beta.environments.list()}
    assert env.id in {e.id for e in client.beta.environments.list(include_archived=True)}
    with pytest.raises(anthropic.ConflictError):
        client.beta.environments.update(env.id, description="read-only")
    with pytest.raises(anthropic.ConflictError):
        client.beta.environments.archive(env.id)


def test_list_paginates_without_duplicates(client: anthropic.Anthropic) -> None:
    ids = [client.beta.environments.create(name=unique("pages")).id for _ in range(3)]
    first = client.beta.environments.list(limit=1)
    assert len(first.data) == 1
    assert first.next_page
    seen = [e.id for e in client.beta.environments.list(limit=1)]
    assert len(seen) == len(set(seen))
    assert [i for i in seen if i in ids] == ids


def test_archived_environment_rejects_new_sessions(client: anthropic.Anthropic) -> None:
    agent = client.beta.agents.create(name=unique("env-agent"), model="scripted")
    env = client.beta.environments.create(name=unique("closing"))
    client.beta.environments.archive(env.id)
    with pytest.raises(anthropic.ConflictError):
        client.beta.sessions.create(agent=agent.id, environment_id=env.id)


def test_delete_answers_a_model_then_not_found(client: anthropic.Anthropic) -> None:
    env = client.beta.environments.create(name=unique("gone"))
    deleted = client.beta.environments.delete(env.id)
    assert not isinstance(deleted, str)
    assert deleted.type == "environment_deleted"
    assert deleted.id == env.id
    with pytest.raises(anthropic.NotFoundError) as info:
        client.beta.environments.retrieve(env.id)
    assert info.value.type == "not_found_error"
    with pytest.raises(anthropic.NotFoundError):
        client.beta.environments.delete(env.id)
    # the name is free again
    assert client.beta.environments.create(name=env.name).id != env.id


def test_delete_is_json_not_204(client: anthropic.Anthropic, server: ServerProcess) -> None:
    env = client.beta.environments.create(name=unique("raw-del"))
    response = httpx2.delete(f"{server.url}/v1/environments/{env.id}", headers={"authorization": f"Bearer {KEY_A}"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"id": env.id, "type": "environment_deleted"}


def test_other_workspace_sees_nothing(client: anthropic.Anthropic, other_client: anthropic.Anthropic) -> None:
    env = client.beta.environments.create(name=unique("private"))
    with pytest.raises(anthropic.NotFoundError) as info:
        other_client.beta.environments.retrieve(env.id)
    assert info.value.body["type"] == "error"  # type: ignore[index]
    with pytest.raises(anthropic.NotFoundError):
        other_client.beta.environments.update(env.id, description="hijack")
    with pytest.raises(anthropic.NotFoundError):
        other_client.beta.environments.archive(env.id)
    with pytest.raises(anthropic.NotFoundError):
        other_client.beta.environments.delete(env.id)
    assert env.id not in {e.id for e in other_client.beta.environments.list(include_archived=True)}
    # names are unique per workspace, not globally
    theirs = other_client.beta.environments.create(name=env.name)
    assert theirs.id != env.id
    assert client.beta.environments.retrieve(env.id).archived_at is None


def test_bad_input_is_400(client: anthropic.Anthropic, server: ServerProcess) -> None:
    with pytest.raises(anthropic.BadRequestError) as info:
        client.beta.environments.create(name="")
    assert info.value.body["type"] == "error"  # type: ignore[index]
    assert info.value.request_id is not None
    with pytest.raises(anthropic.BadRequestError):
        client.beta.environments.create(
            name=unique("limited"),
            config={
                "type": "cloud",
                "networking": {"type": "limited", "allowed_hosts": [], "allow_package_managers": False},
                "packages": {"pip": ["requests"]},
            },
        )
    env = client.beta.environments.create(name=unique("target"))
    headers = {"authorization": f"Bearer {KEY_A}", "content-type": "application/json"}
    cases = [
        ("POST", "/v1/environments", b"{"),
        ("POST", "/v1/environments", b'{"name": "x", "config": {"type": "moon"}}'),
        ("POST", "/v1/environments", b'{"name": "x", "colour": "red"}'),
        ("POST", f"/v1/environments/{env.id}", b'{"metadata": "nope"}'),
        ("GET", "/v1/environments?limit=zero", b""),
        ("GET", "/v1/environments?limit=0", b""),
        ("GET", "/v1/environments?page=%%%", b""),
    ]
    with httpx2.Client(base_url=server.url, headers=headers) as http:
        for method, path, body in cases:
            response = http.request(method, path, content=body)
            assert response.status_code == 400, (method, path, response.text)
            assert response.json()["type"] == "error"
            assert response.json()["error"]["type"] == "invalid_request_error"


def test_archive_accepts_no_body_and_empty_object(client: anthropic.Anthropic, server: ServerProcess) -> None:
    with httpx2.Client(base_url=server.url, headers={"authorization": f"Bearer {KEY_A}"}) as http:
        for body in (None, b"{}"):
            env = client.beta.environments.create(name=unique("bodyless"))
            headers = {"content-type": "application/json"} if body else {}
            response = http.post(f"/v1/environments/{env.id}/archive", content=body, headers=headers)
            assert response.status_code == 200, response.text
            assert response.json()["archived_at"] is not None


async def test_async_client_round_trip(async_client: anthropic.AsyncAnthropic) -> None:
    async with async_client:
        env = await async_client.beta.environments.create(name=unique("async"), metadata={"a": "1"})
        updated = await async_client.beta.environments.update(env.id, metadata={"b": "2"})
        assert updated.metadata == {"a": "1", "b": "2"}
        assert env.id in [e.id async for e in async_client.beta.environments.list(limit=1)]
        deleted = await async_client.beta.environments.delete(env.id)
        assert deleted.type == "environment_deleted"
        with pytest.raises(anthropic.NotFoundError):
            await async_client.beta.environments.retrieve(env.id)


def test_openapi_describes_environment_routes() -> None:
    app = FastAPI()
    app.include_router(environments.router)
    spec = app.openapi()
    delete = spec["paths"]["/v1/environments/{environment_id}"]["delete"]
    assert delete["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/Deleted")
    assert "404" in delete["responses"]
    create = spec["paths"]["/v1/environments"]["post"]
    assert create["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/Environment")
