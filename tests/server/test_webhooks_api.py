"""Webhook endpoints over HTTP (loophost's own admin API, part 2 §6.1/§6.4), and deliveries from a real
`loophost serve --webhooks-allow-private` to a real receiver on loopback, verified with the official SDK's `unwrap`;
a server SIGKILLed with undelivered events delivers them after a restart."""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from .._webhook_receiver import Receiver, running_receiver
from .conftest import KEY_A, KEY_B, ServerProcess, start_server, stop_server
from .test_events_api import message, uid

PUBLIC = "https://93.184.215.14/hook"
"""A global address (never resolved by name, never sent to: the endpoints below ask for events nothing fires)."""
QUIET = ["memory_store.deleted"]


def api(server: ServerProcess, key: str = KEY_A) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"x-api-key": key}, timeout=10)


def test_create_answers_the_secret_once_and_the_endpoint_can_be_managed(server: ServerProcess) -> None:
    with api(server) as http, api(server, KEY_B) as other:
        created = http.post("/v1/webhooks", json={"url": PUBLIC, "enabled_events": QUIET, "name": "ops"})
        assert created.status_code == 200, created.text
        body = created.json()
        assert body["signing_secret"].startswith("whsec_") and len(body["signing_secret"]) == 6 + 44
        assert body["state"] == "enabled" and body["disabled_reason"] == "" and body["name"] == "ops"
        endpoint_id = body["id"]

        fetched = http.get(f"/v1/webhooks/{endpoint_id}").json()
        assert "signing_secret" not in fetched and fetched["url"] == PUBLIC
        assert other.get(f"/v1/webhooks/{endpoint_id}").status_code == 404
        assert endpoint_id not in [e["id"] for e in other.get("/v1/webhooks").json()["data"]]

        updated = http.post(
            f"/v1/webhooks/{endpoint_id}", json={"state": "disabled", "enabled_events": [], "description": "x"}
        ).json()
        assert (updated["state"], updated["enabled_events"], updated["description"]) == ("disabled", QUIET, "x")
        rotated = http.post(f"/v1/webhooks/{endpoint_id}/regenerate_signing_secret").json()
        assert rotated["signing_secret"].startswith("whsec_") and rotated["signing_secret"] != body["signing_secret"]
        assert other.post(f"/v1/webhooks/{endpoint_id}/regenerate_signing_secret").status_code == 404

        assert other.delete(f"/v1/webhooks/{endpoint_id}").status_code == 404
        deleted = http.delete(f"/v1/webhooks/{endpoint_id}")
        assert deleted.json() == {"id": endpoint_id, "type": "webhook_endpoint_deleted"}
        assert http.get(f"/v1/webhooks/{endpoint_id}").status_code == 404


def test_the_list_is_paged(server: ServerProcess) -> None:
    with api(server) as http:
        made = [
            http.post("/v1/webhooks", json={"url": PUBLIC, "enabled_events": QUIET, "name": uid("p")}).json()["id"]
            for _ in range(3)
        ]
        seen: list[str] = []
        page: str | None = None
        while True:
            got = http.get("/v1/webhooks", params={"limit": 2, **({"page": page} if page else {})}).json()
            assert len(got["data"]) <= 2
            seen += [e["id"] for e in got["data"]]
            page = got["next_page"]
            if not page:
                break
        assert [i for i in seen if i in made] == made
        for endpoint_id in made:
            http.delete(f"/v1/webhooks/{endpoint_id}")


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"url": "http://127.0.0.1:9/hook", "enabled_events": QUIET}, "--webhooks-allow-private"),
        ({"url": "https://127.0.0.1/hook", "enabled_events": QUIET}, "--webhooks-allow-private"),
        ({"url": "https://192.168.1.10/hook", "enabled_events": QUIET}, "private or loopback"),
        ({"url": PUBLIC, "enabled_events": ["session.nope"]}, "unknown event type"),
        ({"url": PUBLIC, "enabled_events": []}, "enabled_events"),
        ({"url": "not a url", "enabled_events": QUIET}, "not an absolute http(s) URL"),
    ],
)
def test_bad_endpoints_are_a_400_that_says_why(server: ServerProcess, body: dict[str, Any], needle: str) -> None:
    with api(server) as http:
        answer = http.post("/v1/webhooks", json=body)
    assert answer.status_code == 400, answer.text
    error = answer.json()
    assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    assert needle in json.dumps(error)


# deliveries from a server that allows private addresses ------------------------------------------------------------


def start_hooked_server(database: Path) -> ServerProcess:
    serve = [sys.executable, "-c", "from loophost.cli import main; main()", "serve", "--port", "0"]
    command = [*serve, "--database", str(database), "--heartbeat", "0.5", "--webhooks-allow-private"]
    return start_server(database, command=command)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as r:
        yield r


@pytest.fixture(scope="module")
def hooked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_hooked_server(tmp_path_factory.mktemp("hooked") / "server.db")
    yield proc
    stop_server(proc)


def sdk(server: ServerProcess) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.url, api_key=KEY_A, max_retries=0)


def subscribe(server: ServerProcess, url: str, events: list[str]) -> dict[str, Any]:
    with api(server) as http:
        answer = http.post("/v1/webhooks", json={"url": url, "enabled_events": events})
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_session_and_agent_events_arrive_and_verify_with_the_sdk(hooked: ServerProcess, receiver: Receiver) -> None:
    names = ["session.requires_action", "session.status_idled", "session.status_terminated", "agent.created"]
    endpoint = subscribe(hooked, receiver.url, names)
    client = sdk(hooked)
    env = client.beta.environments.create(name=uid("env"))
    tool = {"type": "custom", "name": "lookup", "description": "Look up.", "input_schema": {"type": "object"}}
    agent = client.beta.agents.create(name=uid("agent"), model="scripted", tools=[tool])  # type: ignore[list-item]
    session = client.beta.sessions.create(agent=agent.id, environment_id=env.id)
    client.beta.sessions.events.send(session.id, events=[message("call lookup {}")])
    receiver.wait(lambda d: len(d) >= 3)
    client.beta.sessions.archive(session.id)

    got = receiver.wait(lambda d: len(d) >= 4)
    events = [client.beta.webhooks.unwrap(d.body, headers=d.headers, key=endpoint["signing_secret"]) for d in got]
    assert sorted((e.data.type, e.data.id) for e in events) == sorted(
        [
            ("agent.created", agent.id),
            ("session.requires_action", session.id),
            ("session.status_idled", session.id),
            ("session.status_terminated", session.id),
        ]
    )
    assert all(d.id == e.id for d, e in zip(got, events, strict=True))
    client.close()


def test_undelivered_events_survive_a_sigkill(tmp_path: Path, receiver: Receiver) -> None:
    database = tmp_path / "server.db"
    first = start_hooked_server(database)
    receiver.statuses = [500] * 1000  # nothing is accepted before the crash
    subscribe(first, receiver.url, ["agent.created", "environment.created"])
    with sdk(first) as client:
        agents = [client.beta.agents.create(name=uid("agent"), model="scripted").id for _ in range(3)]
        env = client.beta.environments.create(name=uid("env")).id
    tried = receiver.wait(lambda d: len({x.id for x in d}) >= 4)
    first.process.send_signal(signal.SIGKILL)
    first.process.wait(timeout=10)

    receiver.statuses = []
    second = start_hooked_server(database)
    try:
        got = receiver.wait(lambda d: len({x.id for x in d if x.status == 200}) >= 4, timeout=30)
        delivered = {x.id: json.loads(x.body)["data"]["id"] for x in got if x.status == 200}
        assert set(delivered) == {x.id for x in tried}  # the same event ids, sent again
        assert sorted(delivered.values()) == sorted([*agents, env])
    finally:
        stop_server(second)


def test_an_endpoints_deliveries_show_their_state_attempts_and_last_error(
    hooked: ServerProcess, receiver: Receiver
) -> None:
    receiver.statuses = [500]  # the first try fails, the retry (about a second later) succeeds
    endpoint = subscribe(hooked, receiver.url, ["environment.created"])
    with sdk(hooked) as client:
        client.beta.environments.create(name=uid("env"))
    receiver.wait(lambda d: any(x.status == 200 for x in d))
    with api(hooked) as http, api(hooked, KEY_B) as other:
        page = http.get(f"/v1/webhooks/{endpoint['id']}/deliveries").json()
        assert other.get(f"/v1/webhooks/{endpoint['id']}/deliveries").status_code == 404
        assert http.get(f"/v1/webhooks/{endpoint['id']}/deliveries", params={"limit": 0}).status_code == 400
    (delivery,) = page["data"]
    assert page["next_page"] is None
    assert delivery["type"] == "webhook_delivery" and delivery["event_type"] == "environment.created"
    assert (delivery["state"], delivery["attempts"]) == ("delivered", 2)
    assert delivery["delivered_at"] is not None and delivery["next_attempt_at"] is None
    assert delivery["event_id"] == receiver.ok()[0].id
