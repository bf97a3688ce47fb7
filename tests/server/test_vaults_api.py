"""Vaults and credentials over HTTP through the official SDK (spec §7; part 2 §2.4), with the secret sweep: no
secret written is ever in a response, the server's log output or the database file."""

from __future__ import annotations

import os
import secrets as random
import sqlite3
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anthropic
import pytest

from ._sweep import LoggedServer, Recorder, assert_no_secret, start_logged_server
from .conftest import KEY_B

WRITTEN: list[str] = []


def secret(kind: str) -> str:
    """A distinctive secret, remembered for the sweep."""
    value = f"{kind}-SECRET-{random.token_hex(12)}"
    WRITTEN.append(value)
    return value


@pytest.fixture(scope="module")
def vault_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoggedServer]:
    server = start_logged_server(tmp_path_factory.mktemp("vault-server"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def client(vault_server: LoggedServer, recorder: Recorder) -> Iterator[anthropic.Anthropic]:
    with recorder.client(vault_server.url) as c:
        yield c


@pytest.fixture
def other(vault_server: LoggedServer, recorder: Recorder) -> Iterator[anthropic.Anthropic]:
    with recorder.client(vault_server.url, KEY_B) as c:
        yield c


def test_vault_lifecycle(client: anthropic.Anthropic, other: anthropic.Anthropic) -> None:
    vault = client.beta.vaults.create(display_name="team", metadata={"a": "1", "b": "2"})
    assert vault.type == "vault"
    assert vault.id.startswith("vlt_")
    assert vault.archived_at is None
    assert client.beta.vaults.retrieve(vault.id) == vault
    updated = client.beta.vaults.update(vault.id, display_name="team 2", metadata={"a": None, "c": "3"})
    assert updated.display_name == "team 2"
    assert updated.metadata == {"b": "2", "c": "3"}
    with pytest.raises(anthropic.NotFoundError):
        other.beta.vaults.retrieve(vault.id)
    assert vault.id not in [v.id for v in other.beta.vaults.list()]
    archived = client.beta.vaults.archive(vault.id)
    assert archived.archived_at is not None
    with pytest.raises(anthropic.ConflictError):
        client.beta.vaults.update(vault.id, display_name="no")
    assert vault.id not in [v.id for v in client.beta.vaults.list()]
    assert vault.id in [v.id for v in client.beta.vaults.list(include_archived=True)]
    deleted = client.beta.vaults.delete(vault.id)
    assert (deleted.id, deleted.type) == (vault.id, "vault_deleted")
    with pytest.raises(anthropic.NotFoundError):
        client.beta.vaults.retrieve(vault.id)


def test_vault_list_pages_and_limits(client: anthropic.Anthropic) -> None:
    made = [client.beta.vaults.create(display_name=f"page {i}").id for i in range(3)]
    seen = [v.id for v in client.beta.vaults.list(limit=1) if v.id in made]
    assert seen == made
    with pytest.raises(anthropic.BadRequestError):
        client.beta.vaults.list(limit=101)
    with pytest.raises(anthropic.BadRequestError):
        client.beta.vaults.create(display_name="")
    with pytest.raises(anthropic.BadRequestError):
        client.beta.vaults.create(display_name="x", metadata={f"k{i}": "v" for i in range(17)})


def test_credentials_are_write_only(client: anthropic.Anthropic, other: anthropic.Anthropic) -> None:
    vault = client.beta.vaults.create(display_name="creds")
    expires = datetime.now(UTC) + timedelta(hours=1)
    oauth = client.beta.vaults.credentials.create(
        vault.id,
        display_name="oauth",
        auth={
            "type": "mcp_oauth",
            "mcp_server_url": "https://mcp.example.com/mcp",
            "access_token": secret("access"),
            "expires_at": expires,
            "refresh": {
                "client_id": "client-1",
                "refresh_token": secret("refresh"),
                "token_endpoint": "https://auth.example.com/token",
                "token_endpoint_auth": {"type": "client_secret_post", "client_secret": secret("client")},
                "scope": "read",
            },
        },
    )
    assert oauth.type == "vault_credential"
    assert oauth.id.startswith("vcrd_")
    assert oauth.vault_id == vault.id
    assert oauth.auth.type == "mcp_oauth"
    assert oauth.auth.mcp_server_url == "https://mcp.example.com/mcp"
    assert oauth.auth.expires_at == expires.replace(microsecond=oauth.auth.expires_at.microsecond)
    assert oauth.auth.refresh is not None
    assert oauth.auth.refresh.token_endpoint_auth.type == "client_secret_post"
    assert oauth.auth.refresh.scope == "read"
    bearer = client.beta.vaults.credentials.create(
        vault.id,
        auth={"type": "static_bearer", "mcp_server_url": "https://other.example.com/mcp", "token": secret("bearer")},
    )
    assert bearer.auth.type == "static_bearer"
    assert bearer.display_name is None
    env = client.beta.vaults.credentials.create(
        vault.id,
        auth={
            "type": "environment_variable",
            "secret_name": "API_KEY",
            "secret_value": secret("env"),
            "networking": {"type": "limited", "allowed_hosts": ["api.example.com", "*.example.org", "192.0.2.1"]},
        },
    )
    assert env.auth.type == "environment_variable"
    assert (env.auth.injection_location.header, env.auth.injection_location.body) == (True, True)
    header_only = client.beta.vaults.credentials.create(
        vault.id,
        auth={
            "type": "environment_variable",
            "secret_name": "OTHER",
            "secret_value": secret("env2"),
            "networking": {"type": "unrestricted"},
            "injection_location": {"header": True},
        },
    )
    assert (header_only.auth.injection_location.header, header_only.auth.injection_location.body) == (True, False)
    for cred in (oauth, bearer, env, header_only):
        shown = client.beta.vaults.credentials.retrieve(cred.id, vault_id=vault.id)
        assert shown == cred
        assert not {"access_token", "refresh_token", "client_secret", "token", "secret_value"} & set(
            shown.auth.model_dump()
        )
    listed = [c.id for c in client.beta.vaults.credentials.list(vault.id, limit=2)]
    assert listed == [oauth.id, bearer.id, env.id, header_only.id]
    with pytest.raises(anthropic.NotFoundError):
        other.beta.vaults.credentials.retrieve(oauth.id, vault_id=vault.id)
    with pytest.raises(anthropic.NotFoundError):
        other.beta.vaults.credentials.list(vault.id).data  # noqa: B018


def test_duplicates_limits_and_archive(client: anthropic.Anthropic) -> None:
    vault = client.beta.vaults.create(display_name="dups")
    url = "https://dup.example.com/mcp"
    first = client.beta.vaults.credentials.create(
        vault.id, auth={"type": "static_bearer", "mcp_server_url": url, "token": secret("dup")}
    )
    with pytest.raises(anthropic.ConflictError):  # the same server, spelled differently
        client.beta.vaults.credentials.create(
            vault.id,
            auth={"type": "static_bearer", "mcp_server_url": "HTTPS://Dup.Example.com:443/mcp/", "token": secret("d")},
        )
    archived = client.beta.vaults.credentials.archive(first.id, vault_id=vault.id)
    assert archived.archived_at is not None
    with pytest.raises(anthropic.ConflictError):
        client.beta.vaults.credentials.update(first.id, vault_id=vault.id, display_name="no")
    again = client.beta.vaults.credentials.create(  # archiving freed the URL
        vault.id, auth={"type": "static_bearer", "mcp_server_url": url, "token": secret("again")}
    )
    active = [c.id for c in client.beta.vaults.credentials.list(vault.id)]
    assert active == [again.id]
    everything = [c.id for c in client.beta.vaults.credentials.list(vault.id, include_archived=True)]
    assert everything == [first.id, again.id]
    for i in range(19):
        client.beta.vaults.credentials.create(
            vault.id,
            auth={"type": "static_bearer", "mcp_server_url": f"https://n{i}.example.com", "token": secret("many")},
        )
    with pytest.raises(anthropic.ConflictError):
        client.beta.vaults.credentials.create(
            vault.id, auth={"type": "static_bearer", "mcp_server_url": "https://n99.example.com", "token": secret("x")}
        )
    deleted = client.beta.vaults.credentials.delete(first.id, vault_id=vault.id)
    assert (deleted.id, deleted.type) == (first.id, "vault_credential_deleted")
    with pytest.raises(anthropic.NotFoundError):
        client.beta.vaults.credentials.retrieve(first.id, vault_id=vault.id)


def test_updates(client: anthropic.Anthropic) -> None:
    vault = client.beta.vaults.create(display_name="updates")
    expires = datetime.now(UTC) + timedelta(hours=2)
    oauth = client.beta.vaults.credentials.create(
        vault.id,
        auth={
            "type": "mcp_oauth",
            "mcp_server_url": "https://up.example.com/mcp",
            "access_token": secret("up-access"),
            "expires_at": expires,
        },
    )
    renewed = client.beta.vaults.credentials.update(
        oauth.id, vault_id=vault.id, auth={"type": "mcp_oauth", "access_token": secret("up-access2")}
    )
    assert renewed.auth.expires_at == oauth.auth.expires_at  # a new token without expires_at keeps the old one
    assert renewed.updated_at >= oauth.updated_at
    with pytest.raises(anthropic.BadRequestError):
        client.beta.vaults.credentials.update(oauth.id, vault_id=vault.id, auth={"type": "static_bearer", "token": "t"})
    with pytest.raises(anthropic.BadRequestError):
        client.beta.vaults.credentials.update(
            oauth.id, vault_id=vault.id, auth={"type": "mcp_oauth", "expires_at": datetime.now(UTC) - timedelta(1)}
        )
    env = client.beta.vaults.credentials.create(
        vault.id,
        auth={
            "type": "environment_variable",
            "secret_name": "TOKEN",
            "secret_value": secret("up-env"),
            "networking": {"type": "unrestricted"},
        },
        metadata={"team": "a"},
    )
    merged = client.beta.vaults.credentials.update(
        env.id,
        vault_id=vault.id,
        auth={"type": "environment_variable", "injection_location": {"body": False}},
        metadata={"team": None, "owner": "b"},
    )
    assert (merged.auth.injection_location.header, merged.auth.injection_location.body) == (True, False)
    assert merged.metadata == {"owner": "b"}
    with pytest.raises(anthropic.BadRequestError):  # both locations off
        client.beta.vaults.credentials.update(
            env.id, vault_id=vault.id, auth={"type": "environment_variable", "injection_location": {"header": False}}
        )
    limited = client.beta.vaults.credentials.update(
        env.id,
        vault_id=vault.id,
        auth={
            "type": "environment_variable",
            "secret_value": secret("up-env2"),
            "networking": {"type": "limited", "allowed_hosts": ["x.example.com"]},
        },
    )
    assert limited.auth.networking.type == "limited"


def env_auth(**fields: object) -> dict[str, object]:
    return {"type": "environment_variable", "secret_name": "A", "secret_value": "v", **fields}


def hosts(*allowed: str) -> dict[str, object]:
    return {"networking": {"type": "limited", "allowed_hosts": list(allowed)}}


UNRESTRICTED: dict[str, object] = {"networking": {"type": "unrestricted"}}


@pytest.mark.parametrize(
    "auth",
    [
        {
            "type": "mcp_oauth",
            "mcp_server_url": "https://a.example.com",
            "access_token": "t",
            "expires_at": "2001-01-01T00:00:00Z",
        },
        {"type": "static_bearer", "mcp_server_url": "ftp://a.example.com", "token": "t"},
        {"type": "static_bearer", "mcp_server_url": "https://a.example.com", "token": ""},
        env_auth(secret_name="1BAD", **UNRESTRICTED),
        env_auth(**hosts("https://x.com/")),
        env_auth(**hosts("x.com:443")),
        env_auth(**hosts("::1")),
        env_auth(**hosts(*(f"h{i}.com" for i in range(17)))),
        env_auth(injection_location=None, **UNRESTRICTED),
        env_auth(injection_location={"header": False, "body": False}, **UNRESTRICTED),
        env_auth(injection_location={"header": None}, **UNRESTRICTED),
    ],
)
def test_bad_credentials_are_400(client: anthropic.Anthropic, auth: dict[str, object]) -> None:
    vault = client.beta.vaults.create(display_name="bad")
    with pytest.raises(anthropic.BadRequestError):
        client.beta.vaults.credentials.create(vault.id, auth=auth)  # type: ignore[arg-type]


def test_sessions_reference_vaults(client: anthropic.Anthropic) -> None:
    agent = client.beta.agents.create(name="with vaults", model="scripted")
    env = client.beta.environments.create(name=f"vaults-{random.token_hex(4)}")
    vault = client.beta.vaults.create(display_name="for sessions")
    session = client.beta.sessions.create(agent=agent.id, environment_id=env.id, vault_ids=[vault.id])
    assert session.vault_ids == [vault.id]
    with pytest.raises(anthropic.BadRequestError):
        client.beta.sessions.update(session.id, vault_ids=[])
    with pytest.raises(anthropic.NotFoundError):
        client.beta.sessions.create(agent=agent.id, environment_id=env.id, vault_ids=["vlt_nope"])
    client.beta.vaults.archive(vault.id)
    with pytest.raises(anthropic.ConflictError):
        client.beta.sessions.create(agent=agent.id, environment_id=env.id, vault_ids=[vault.id])


def test_validate_reports_unreachable_server(client: anthropic.Anthropic) -> None:
    vault = client.beta.vaults.create(display_name="validate")
    cred = client.beta.vaults.credentials.create(
        vault.id,
        auth={"type": "static_bearer", "mcp_server_url": "http://127.0.0.1:9/mcp", "token": secret("probe")},
    )
    result = client.beta.vaults.credentials.mcp_oauth_validate(cred.id, vault_id=vault.id)
    assert result.type == "vault_credential_validation"
    assert (result.credential_id, result.vault_id) == (cred.id, vault.id)
    assert result.status == "unknown"
    assert result.has_refresh_token is False
    assert result.mcp_probe is not None and result.mcp_probe.http_response is None
    env = client.beta.vaults.credentials.create(
        vault.id,
        auth=env_auth(secret_name="N", secret_value=secret("nv"), **UNRESTRICTED),  # type: ignore[arg-type]
    )
    with pytest.raises(anthropic.BadRequestError):
        client.beta.vaults.credentials.mcp_oauth_validate(env.id, vault_id=vault.id)


def test_key_file_beside_the_database(vault_server: LoggedServer) -> None:
    key_file = Path(f"{vault_server.database}.vault-key")
    assert key_file.exists()
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600


def test_zz_secret_sweep(vault_server: LoggedServer, recorder: Recorder) -> None:
    """Last in the module: every secret written by the tests above is nowhere to be read back."""
    assert len(WRITTEN) > 20
    with sqlite3.connect(f"file:{vault_server.database}?mode=ro", uri=True) as db:
        sealed = db.execute("SELECT COUNT(*) FROM vault_credentials WHERE secret IS NOT NULL").fetchone()[0]
    assert sealed > 20  # the secrets are there, encrypted
    assert_no_secret(WRITTEN, server=vault_server, recorder=recorder)
