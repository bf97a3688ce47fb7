"""Webhook event types over HTTP: session, vault, credential and memory store changes made with the official SDK
against a real `loophost serve --webhooks-allow-private` reach a real receiver on loopback, signed so the SDK's
`unwrap` verifies them, with the SDK's typed payload; a type loophost never emits is a 400 that says why."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from .._webhook_receiver import Receiver, running_receiver
from .conftest import ServerProcess, stop_server
from .test_events_api import is_idle, message, read_until, uid
from .test_webhooks_api import api, sdk, start_hooked_server, subscribe


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as r:
        yield r


@pytest.fixture(scope="module")
def hooked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_hooked_server(tmp_path_factory.mktemp("hooked-events") / "server.db")
    yield proc
    stop_server(proc)


@pytest.mark.parametrize("name", ["session.pending", "agent.deleted", "deployment.deleted"])
def test_a_type_loophost_never_emits_is_a_400_saying_why(hooked: ServerProcess, name: str) -> None:
    with api(hooked) as http:
        created = http.post("/v1/webhooks", json={"url": "https://93.184.215.14/hook", "enabled_events": [name]})
        assert created.status_code == 400
        assert created.json()["error"]["type"] == "invalid_request_error"
        assert "never emitted by loophost" in json.dumps(created.json()) and name in json.dumps(created.json())
        endpoint = http.post(
            "/v1/webhooks", json={"url": "https://93.184.215.14/hook", "enabled_events": ["vault.created"]}
        ).json()
        updated = http.post(f"/v1/webhooks/{endpoint['id']}", json={"enabled_events": [name]})
        assert updated.status_code == 400
        http.delete(f"/v1/webhooks/{endpoint['id']}")


def test_session_lifecycle_events_arrive(hooked: ServerProcess, receiver: Receiver) -> None:
    names = ["session.running", "session.idled", "session.updated", "session.deleted"]
    endpoint = subscribe(hooked, receiver.url, names)
    with sdk(hooked) as client:
        env = client.beta.environments.create(name=uid("env"))
        agent = client.beta.agents.create(name=uid("agent"), model="scripted")
        session = client.beta.sessions.create(agent=agent.id, environment_id=env.id)
        with client.beta.sessions.events.stream(session.id, timeout=60) as stream:
            client.beta.sessions.events.send(session.id, events=[message("hello")])
            read_until(stream, is_idle("end_turn"), timeout=60)
        client.beta.sessions.update(session.id, title="renamed")
        client.beta.sessions.delete(session.id)

        got = receiver.wait(lambda d: len(d) >= 4)
        events = [client.beta.webhooks.unwrap(d.body, headers=d.headers, key=endpoint["signing_secret"]) for d in got]
    assert sorted((e.data.type, e.data.id) for e in events) == [(n, session.id) for n in sorted(names)]
    assert {type(e.data).__name__ for e in events} == {
        "BetaWebhookSessionRunningEventData",
        "BetaWebhookSessionIdledEventData",
        "BetaWebhookSessionUpdatedEventData",
        "BetaWebhookSessionDeletedEventData",
    }


def test_vault_credential_and_memory_store_events_arrive(hooked: ServerProcess, receiver: Receiver) -> None:
    names = [
        "vault.created",
        "vault.deleted",
        "vault_credential.created",
        "vault_credential.archived",
        "memory_store.created",
        "memory_store.archived",
        "memory_store.deleted",
    ]
    endpoint = subscribe(hooked, receiver.url, names)
    with sdk(hooked) as client:
        vault = client.beta.vaults.create(display_name=uid("vault"))
        auth = {"type": "static_bearer", "mcp_server_url": "https://mcp.example.com/mcp", "token": "tok-123456789"}
        credential = client.beta.vaults.credentials.create(vault.id, auth=auth)  # type: ignore[arg-type]
        client.beta.vaults.credentials.archive(credential.id, vault_id=vault.id)
        client.beta.vaults.delete(vault.id)
        store = client.beta.memory_stores.create(name=uid("notes"))
        client.beta.memory_stores.archive(store.id)
        client.beta.memory_stores.delete(store.id)

        got = receiver.wait(lambda d: len(d) >= 7)
        events = [client.beta.webhooks.unwrap(d.body, headers=d.headers, key=endpoint["signing_secret"]) for d in got]
    assert sorted((e.data.type, e.data.id) for e in events) == sorted(
        [
            ("vault.created", vault.id),
            ("vault.deleted", vault.id),
            ("vault_credential.created", credential.id),
            ("vault_credential.archived", credential.id),
            ("memory_store.created", store.id),
            ("memory_store.archived", store.id),
            ("memory_store.deleted", store.id),
        ]
    )
    credential_events = [e.data for e in events if e.data.type.startswith("vault_credential.")]
    assert [getattr(d, "vault_id", None) for d in credential_events] == [vault.id] * 2  # the SDK's typed field
