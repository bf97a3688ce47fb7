"""Agents over HTTP through the official SDK (spec §2; checklist 1-13), plus transport rules and bad input."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta

import anthropic
import httpx2
import pytest
from fastapi import FastAPI

from loophost.server.routes import agents

from .conftest import KEY_A, ServerProcess


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def assert_envelope(err: anthropic.APIStatusError, status: int, error_type: str) -> None:
    """The §0.1 envelope, the matching status, and the request id the SDK exposes."""
    assert err.status_code == status
    assert isinstance(err.body, dict)
    assert err.body["type"] == "error"
    assert err.body["error"]["type"] == error_type
    assert err.body["error"]["message"]
    assert err.type == error_type
    assert err.request_id is not None
    assert err.request_id.startswith("req_")
    assert err.body["request_id"].startswith("req_")


# --- transport (1-4) -------------------------------------------------------------------------------------


def test_bearer_x_api_key_and_missing_key(client: anthropic.Anthropic, server: ServerProcess) -> None:
    agent = client.beta.agents.create(name=unique("auth"), model="claude-opus-4-8")  # the SDK sends Bearer
    response = httpx2.get(
        f"{server.url}/v1/agents/{agent.id}",
        headers={"x-api-key": KEY_A, "anthropic-version": "2023-06-01", "anthropic-beta": "managed-agents-2026-04-01"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["id"] == agent.id
    missing = httpx2.get(f"{server.url}/v1/agents/{agent.id}")
    assert missing.status_code == 401
    assert missing.json()["error"]["type"] == "authentication_error"
    with (
        anthropic.Anthropic(base_url=server.url, api_key="not-a-key", max_retries=0) as stranger,
        pytest.raises(anthropic.AuthenticationError) as info,
    ):
        stranger.beta.agents.retrieve(agent.id)
    assert_envelope(info.value, 401, "authentication_error")


def test_comma_joined_beta_header(client: anthropic.Anthropic) -> None:
    agent = client.beta.agents.create(name=unique("betas"), model="claude-opus-4-8", betas=["foo-2026"])
    assert agent.type == "agent"
    assert client.beta.agents.retrieve(agent.id, betas=["foo-2026", "bar-2027"]).id == agent.id


def test_unknown_agent_is_not_found_with_envelope(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as info:
        client.beta.agents.retrieve("agent_nope")
    assert_envelope(info.value, 404, "not_found_error")


def test_validation_failure_is_bad_request(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as info:
        client.beta.agents.create(name="", model="claude-opus-4-8")
    assert_envelope(info.value, 400, "invalid_request_error")
    assert info.value.error_code == "validation_error"


def test_malformed_bodies_and_queries_are_400(client: anthropic.Anthropic, server: ServerProcess) -> None:
    headers = {"authorization": f"Bearer {KEY_A}", "content-type": "application/json"}
    agent = client.beta.agents.create(name=unique("bad"), model="claude-opus-4-8")
    cases = [
        ("POST", "/v1/agents", b"{not json"),
        ("POST", "/v1/agents", b"[]"),
        ("POST", "/v1/agents", b'{"name": 3, "model": "m"}'),
        ("POST", "/v1/agents", b'{"name": "n", "model": "m", "surprise": 1}'),
        ("POST", f"/v1/agents/{agent.id}", b"{not json"),
        ("POST", f"/v1/agents/{agent.id}", b'{"version": "latest"}'),
        ("POST", f"/v1/agents/{agent.id}", b'{"metadata": {"a": 1}}'),
        ("POST", f"/v1/agents/{agent.id}", b""),
        ("GET", "/v1/agents?limit=abc", b""),
        ("GET", "/v1/agents?limit=0", b""),
        ("GET", "/v1/agents?limit=100000", b""),
        ("GET", "/v1/agents?page=garbage", b""),
        ("GET", "/v1/agents?include_archived=maybe", b""),
        ("GET", "/v1/agents?created_at[gte]=yesterday", b""),
        ("GET", f"/v1/agents/{agent.id}?version=abc", b""),
        ("GET", f"/v1/agents/{agent.id}?version=0", b""),
        ("GET", f"/v1/agents/{agent.id}?version={10**30}", b""),
        ("GET", f"/v1/agents/{agent.id}/versions?limit=-1", b""),
    ]
    with httpx2.Client(base_url=server.url, headers=headers) as http:
        for method, path, body in cases:
            response = http.request(method, path, content=body)
            assert response.status_code == 400, (method, path, body, response.text)
            payload = response.json()
            assert payload["type"] == "error", path
            assert payload["error"]["type"] == "invalid_request_error", path
            assert payload["request_id"].startswith("req_"), path
            assert payload["request_id"] in response.headers["request-id"], path
    # the agent is untouched by the rejected updates
    assert client.beta.agents.retrieve(agent.id).version == 1


def test_error_responses_carry_one_request_id(server: ServerProcess) -> None:
    response = httpx2.get(f"{server.url}/v1/agents/agent_nope", headers={"authorization": f"Bearer {KEY_A}"})
    assert response.status_code == 404
    assert response.headers.get_list("request-id") == [response.json()["request_id"]]


def _cursor(position: object, *, descending: bool) -> str:
    raw = json.dumps({"p": position, "d": descending}).encode()
    return "page_" + base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "path",
    [
        "/v1/agents?page=" + _cursor(5, descending=False),
        "/v1/environments?page=" + _cursor(["only-one"], descending=False),
        "/v1/sessions?page=" + _cursor(3, descending=True),
    ],
)
def test_forged_cursors_are_400(server: ServerProcess, path: str) -> None:
    response = httpx2.get(f"{server.url}{path}", headers={"authorization": f"Bearer {KEY_A}"})
    assert response.status_code == 400


def test_out_of_range_timestamp_is_400(server: ServerProcess) -> None:
    response = httpx2.get(
        f"{server.url}/v1/agents",
        params={"created_at[gte]": "0001-01-01T00:00:00+05:00"},
        headers={"authorization": f"Bearer {KEY_A}"},
    )
    assert response.status_code == 400


# --- agents (5-13) ---------------------------------------------------------------------------------------


def test_create_resolves_defaults(client: anthropic.Anthropic) -> None:
    name = unique("plain")
    agent = client.beta.agents.create(name=name, model="claude-opus-4-8")
    assert agent.type == "agent"
    assert agent.id.startswith("agent_")
    assert agent.name == name
    assert agent.version == 1
    assert agent.model.id == "claude-opus-4-8"
    assert agent.archived_at is None
    assert agent.metadata == {}
    assert agent.tools == []
    assert agent.execution_identity.type == "service_account"
    assert agent.created_at == agent.updated_at


def test_toolsets_resolve_their_policies(client: anthropic.Anthropic) -> None:
    agent = client.beta.agents.create(
        name=unique("tools"),
        model={"id": "claude-opus-4-8", "effort": "high"},
        mcp_servers=[{"type": "url", "name": "docs", "url": "https://mcp.example.com/sse"}],
        tools=[{"type": "agent_toolset_20260401"}, {"type": "mcp_toolset", "mcp_server_name": "docs"}],
    )
    toolset, mcp = agent.tools
    assert toolset.type == "agent_toolset_20260401"
    assert toolset.default_config.enabled is True
    assert toolset.default_config.permission_policy.type == "always_allow"
    assert mcp.type == "mcp_toolset"
    assert mcp.default_config.permission_policy.type == "always_ask"
    assert agent.mcp_servers[0].name == "docs"
    assert agent.model.effort is not None
    assert agent.model.effort.type == "high"


def test_retrieve_equals_create(client: anthropic.Anthropic) -> None:
    created = client.beta.agents.create(
        name=unique("same"),
        model="claude-opus-4-8",
        system="be brief",
        metadata={"team": "a"},
        tools=[{"type": "agent_toolset_20260401", "configs": [{"name": "bash", "enabled": False}]}],
    )
    fetched = client.beta.agents.retrieve(created.id)
    assert fetched == created
    assert fetched.to_dict() == created.to_dict()


def test_update_versions_and_conflict(client: anthropic.Anthropic) -> None:
    agent = client.beta.agents.create(name=unique("ver"), model="claude-opus-4-8", system="old")
    updated = client.beta.agents.update(agent.id, system="new", version=1)
    assert updated.version == 2
    assert updated.system == "new"
    assert updated.updated_at > agent.updated_at
    assert client.beta.agents.retrieve(agent.id, version=1).system == "old"
    assert client.beta.agents.retrieve(agent.id).version == 2
    with pytest.raises(anthropic.ConflictError) as info:
        client.beta.agents.update(agent.id, name="x", version=1)
    assert_envelope(info.value, 409, "conflict_error")
    assert info.value.response.headers["x-should-retry"] == "false"
    assert client.beta.agents.retrieve(agent.id).name == agent.name
    with pytest.raises(anthropic.NotFoundError):
        client.beta.agents.retrieve(agent.id, version=3)


def test_update_omit_vs_null(client: anthropic.Anthropic) -> None:
    agent = client.beta.agents.create(name=unique("patch"), model="claude-opus-4-8", system="keep me")
    first = client.beta.agents.update(agent.id, metadata={"a": "1"})
    assert first.metadata == {"a": "1"}
    assert first.system == "keep me"  # omitted: preserved
    second = client.beta.agents.update(agent.id, metadata={"a": None, "b": "2"})
    assert second.metadata == {"b": "2"}
    assert second.system == "keep me"
    cleared = client.beta.agents.update(agent.id, system=None)
    assert cleared.system is None  # explicit null: cleared
    assert cleared.metadata == {"b": "2"}
    assert cleared.version == 4
    same = client.beta.agents.update(agent.id, system=None)  # a no-op makes no version
    assert same.version == 4
    assert same.updated_at == cleared.updated_at


def test_versions_list(client: anthropic.Anthropic) -> None:
    agent = client.beta.agents.create(name=unique("hist"), model="claude-opus-4-8", system="v1")
    client.beta.agents.update(agent.id, system="v2")
    client.beta.agents.update(agent.id, system="v3")
    versions = list(client.beta.agents.versions.list(agent.id))
    assert sorted(v.version for v in versions) == [1, 2, 3]
    assert {v.version: v.system for v in versions} == {1: "v1", 2: "v2", 3: "v3"}
    paged = list(client.beta.agents.versions.list(agent.id, limit=1))
    assert [v.version for v in paged] == [v.version for v in versions]
    assert all(v.id == agent.id for v in versions)


def test_list_auto_paginates_and_hides_archived(client: anthropic.Anthropic) -> None:
    since = datetime.now(UTC) - timedelta(seconds=1)
    prefix = unique("page")
    agents = [client.beta.agents.create(name=f"{prefix}-{i}", model="claude-opus-4-8") for i in range(3)]
    ids = [a.id for a in agents]

    first = client.beta.agents.list(limit=1, created_at_gte=since)
    assert len(first.data) == 1
    assert first.next_page
    pages = list(first.iter_pages())
    assert len(pages) >= 3
    seen = [a.id for a in client.beta.agents.list(limit=1, created_at_gte=since)]
    assert len(seen) == len(set(seen))
    assert [i for i in seen if i in ids] == ids  # oldest first, each once

    only_first = client.beta.agents.list(created_at_gte=since, created_at_lte=agents[0].created_at)
    assert agents[0].id in [a.id for a in only_first]
    assert not {agents[1].id, agents[2].id} & {a.id for a in only_first}

    client.beta.agents.archive(agents[1].id)
    visible = [a.id for a in client.beta.agents.list(limit=1, created_at_gte=since)]
    assert agents[1].id not in visible
    assert {agents[0].id, agents[2].id} <= set(visible)
    everything = {a.id: a for a in client.beta.agents.list(limit=2, created_at_gte=since, include_archived=True)}
    assert set(ids) <= set(everything)
    assert everything[agents[1].id].archived_at is not None


def test_archive_blocks_new_sessions(client: anthropic.Anthropic) -> None:
    agent = client.beta.agents.create(name=unique("arch"), model="claude-opus-4-8")
    env = client.beta.environments.create(name=unique("arch-env"))
    archived = client.beta.agents.archive(agent.id)
    assert archived.archived_at is not None
    assert archived.version == agent.version
    assert client.beta.agents.retrieve(agent.id).archived_at == archived.archived_at
    with pytest.raises(anthropic.APIStatusError) as info:
        client.beta.sessions.create(agent=agent.id, environment_id=env.id)
    assert 400 <= info.value.status_code < 500
    assert info.value.body["type"] == "error"  # type: ignore[index]
    with pytest.raises(anthropic.ConflictError):
        client.beta.agents.update(agent.id, system="read-only now")
    with pytest.raises(anthropic.ConflictError):
        client.beta.agents.archive(agent.id)


def test_archive_accepts_no_body_and_empty_object(client: anthropic.Anthropic, server: ServerProcess) -> None:
    with httpx2.Client(base_url=server.url, headers={"authorization": f"Bearer {KEY_A}"}) as http:
        for body in (None, b"{}"):
            agent = client.beta.agents.create(name=unique("bodyless"), model="claude-opus-4-8")
            headers = {"content-type": "application/json"} if body else {}
            response = http.post(f"/v1/agents/{agent.id}/archive", content=body, headers=headers)
            assert response.status_code == 200, response.text
            assert response.headers["content-type"].startswith("application/json")
            assert response.json()["archived_at"] is not None


def test_other_workspace_sees_nothing(client: anthropic.Anthropic, other_client: anthropic.Anthropic) -> None:
    agent = client.beta.agents.create(name=unique("mine"), model="claude-opus-4-8")
    with pytest.raises(anthropic.NotFoundError) as info:
        other_client.beta.agents.retrieve(agent.id)
    assert_envelope(info.value, 404, "not_found_error")
    with pytest.raises(anthropic.NotFoundError):
        other_client.beta.agents.update(agent.id, system="hijack")
    with pytest.raises(anthropic.NotFoundError):
        other_client.beta.agents.archive(agent.id)
    with pytest.raises(anthropic.NotFoundError):
        list(other_client.beta.agents.versions.list(agent.id))
    assert agent.id not in {a.id for a in other_client.beta.agents.list(include_archived=True)}
    assert client.beta.agents.retrieve(agent.id).archived_at is None


async def test_async_client_round_trip(async_client: anthropic.AsyncAnthropic) -> None:
    async with async_client:
        agent = await async_client.beta.agents.create(name=unique("async"), model="claude-opus-4-8", system="a")
        updated = await async_client.beta.agents.update(agent.id, system="b", version=1)
        assert updated.version == 2
        versions = [v.version async for v in async_client.beta.agents.versions.list(agent.id, limit=1)]
        assert versions == [2, 1]
        assert (await async_client.beta.agents.retrieve(agent.id, version=1)).system == "a"
        archived = await async_client.beta.agents.archive(agent.id)
        assert archived.archived_at is not None
        with pytest.raises(anthropic.NotFoundError):
            await async_client.beta.agents.retrieve("agent_nope")


def test_openapi_describes_agent_routes() -> None:
    """Built from this router alone, so another module's schema trouble cannot hide a regression here."""
    app = FastAPI()
    app.include_router(agents.router)
    spec = app.openapi()
    create = spec["paths"]["/v1/agents"]["post"]
    assert create["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/Agent")
    assert {"400", "401", "404", "409"} <= set(create["responses"])
    assert create["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/AgentCreateParams")
    listing = spec["paths"]["/v1/agents"]["get"]
    assert {"created_at[gte]", "created_at[lte]", "include_archived", "limit", "page"} <= {
        p["name"] for p in listing["parameters"]
    }
    versions = spec["paths"]["/v1/agents/{agent_id}/versions"]["get"]
    assert "CursorPage" in versions["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
