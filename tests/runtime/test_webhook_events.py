"""Every webhook event type an endpoint may subscribe to is emitted, at the change that causes it, signed so the
official SDK's `unwrap` verifies it, with the SDK's payload shape; the ones loophost never emits are refused.

A real Runtime on a SQLite file, and on PostgreSQL, delivers to a real HTTP receiver on loopback. The
deliverer's poll is set to an hour, so every delivery here was sent because the change woke the deliverer (no
type waits for a poll).
"""

from __future__ import annotations

import typing
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anthropic
import pydantic
import pytest
from anthropic.types.beta import BetaWebhookEventData

from loophost import wire
from loophost.runtime import NotFound, Runtime, RuntimeConfig
from loophost.runtime._vault_keys import new_vault_key
from tests.server._oauth_server import OAuthIssuer

from .._webhook_receiver import Delivery, Receiver, running_receiver
from .conftest import WS, make_session, user_message

SDK = anthropic.Anthropic(api_key="unused")
ORGANIZATION_ONLY = ("user_profile.", "external_key.")
"""Names of the union sent for organization-level events only (part 2 §6.3): not workspace subscriptions."""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as r:
        yield r


@pytest.fixture(params=["sqlite", "postgres"])
async def rt(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Runtime]:
    """On both backends: each writes the outbox rows in the change's own transaction its own way."""
    config = RuntimeConfig(webhooks_allow_private=True, vault_key=new_vault_key())
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else str(tmp_path / "runtime.db")
    runtime = Runtime.from_url(url, config=config)
    runtime.webhook_delivery.poll_interval = 3600.0  # only a wake-up sends
    async with runtime:
        await runtime.deployment_scheduler.close()  # the test owns the ticks
        yield runtime


def sdk_event(delivery: Delivery, secret: str) -> Any:
    """The SDK's own typed event (`BetaWebhookEvent`), verified with the endpoint's secret."""
    return SDK.beta.webhooks.unwrap(delivery.body, headers=delivery.headers, key=secret)


async def subscribe(rt: Runtime, receiver: Receiver, names: list[str]) -> wire.NewWebhookEndpoint:
    return await rt.webhooks.create(WS, wire.WebhookCreateParams(url=receiver.url, enabled_events=names))


async def received(receiver: Receiver, endpoint: wire.NewWebhookEndpoint, count: int) -> list[Any]:
    """The first `count` deliveries as the SDK's typed events (each verified), sorted by type then id."""
    got = await receiver.until(lambda d: len(d) >= count)
    events = [sdk_event(d, endpoint.signing_secret) for d in got]
    for delivery, event in zip(got, events, strict=True):
        assert delivery.id == event.id and event.type == "event"
        assert event.data.workspace_id == WS
        assert type(event.data).__name__ != "BaseModel", event.data  # one of the union's typed members
    return sorted(events, key=lambda e: (e.data.type, e.data.id))


def test_every_workspace_name_of_the_sdk_union_is_either_emitted_or_refused() -> None:
    union = typing.get_args(typing.get_args(BetaWebhookEventData)[0])
    names = {typing.get_args(m.model_fields["type"].annotation)[0] for m in union}
    workspace = {n for n in names if not n.startswith(ORGANIZATION_ONLY)}
    assert set(wire.WEBHOOK_EVENT_TYPES) | set(wire.UNEMITTED_WEBHOOK_EVENT_TYPES) == workspace
    assert not set(wire.WEBHOOK_EVENT_TYPES) & set(wire.UNEMITTED_WEBHOOK_EVENT_TYPES)


@pytest.mark.parametrize("name", sorted(wire.UNEMITTED_WEBHOOK_EVENT_TYPES))
def test_a_type_loophost_never_emits_is_refused_saying_why(name: str) -> None:
    with pytest.raises(pydantic.ValidationError, match="never emitted by loophost"):
        wire.WebhookCreateParams(url="https://example.com/hook", enabled_events=["session.created", name])
    with pytest.raises(pydantic.ValidationError, match=name):
        wire.WebhookUpdateParams(enabled_events=[name])


async def test_session_lifecycle_events(rt: Runtime, receiver: Receiver) -> None:
    names = ["session.running", "session.idled", "session.updated", "session.deleted"]
    endpoint = await subscribe(rt, receiver, names)
    session = await make_session(rt)
    await rt.send_events(WS, session.id, [user_message("hello")])
    await receiver.until(lambda d: len(d) >= 2)  # running, then idle
    await rt.update_session(WS, session.id, wire.SessionUpdateParams(title="renamed"))
    await rt.delete_session(WS, session.id)

    events = await received(receiver, endpoint, 4)
    assert [(e.data.type, e.data.id) for e in events] == [(n, session.id) for n in sorted(names)]
    with pytest.raises(NotFound):  # gone: a second delete announces nothing
        await rt.delete_session(WS, session.id)
    await rt.webhook_delivery.run_once()
    assert len(receiver.snapshot()) == 4


async def test_vault_and_credential_events(rt: Runtime, receiver: Receiver) -> None:
    names = [
        "vault.created",
        "vault.archived",
        "vault.deleted",
        "vault_credential.created",
        "vault_credential.archived",
        "vault_credential.deleted",
    ]
    endpoint = await subscribe(rt, receiver, names)
    kept = await rt.vaults.create_vault(WS, wire.VaultCreateParams(display_name="kept"))
    auth = {"type": "static_bearer", "mcp_server_url": "https://m.example.com", "token": "tok-123456789"}
    archived = await rt.vaults.create_credential(
        WS, kept.id, wire.CredentialCreateParams.model_validate({"auth": auth})
    )
    await rt.vaults.archive_credential(WS, kept.id, archived.id)
    deleted = await rt.vaults.create_credential(WS, kept.id, wire.CredentialCreateParams.model_validate({"auth": auth}))
    await rt.vaults.delete_credential(WS, kept.id, deleted.id)
    await rt.vaults.archive_vault(WS, kept.id)
    gone = await rt.vaults.create_vault(WS, wire.VaultCreateParams(display_name="gone"))
    await rt.vaults.delete_vault(WS, gone.id)

    events = await received(receiver, endpoint, 8)
    assert [(e.data.type, e.data.id) for e in events] == sorted(
        [
            ("vault.created", kept.id),
            ("vault.created", gone.id),
            ("vault.archived", kept.id),
            ("vault.deleted", gone.id),
            ("vault_credential.created", archived.id),
            ("vault_credential.created", deleted.id),
            ("vault_credential.archived", archived.id),
            ("vault_credential.deleted", deleted.id),
        ]
    )
    for event in events:
        if event.data.type.startswith("vault_credential."):
            assert event.data.vault_id == kept.id


async def test_a_failed_credential_refresh_is_announced(rt: Runtime, receiver: Receiver) -> None:
    endpoint = await subscribe(rt, receiver, ["vault_credential.refresh_failed"])
    oauth = OAuthIssuer("c", None, "none").start()
    try:
        vault = await rt.vaults.create_vault(WS, wire.VaultCreateParams(display_name="v"))
        access, refresh = oauth.issue()
        auth = oauth.credential("https://mcp.example.com/mcp", access, refresh)
        created = await rt.vaults.create_credential(
            WS, vault.id, wire.CredentialCreateParams.model_validate({"auth": auth})
        )
        oauth.revoke_refresh_tokens()
        stale = await rt.vaults.mcp_credential(WS, [vault.id], "https://mcp.example.com/mcp")
        assert stale is not None
        assert await rt.vaults.refresh_mcp_credential(stale) is None
    finally:
        oauth.stop()
    (event,) = await received(receiver, endpoint, 1)
    assert (event.data.type, event.data.id, event.data.vault_id) == (
        "vault_credential.refresh_failed",
        created.id,
        vault.id,
    )


async def test_memory_store_events(rt: Runtime, receiver: Receiver) -> None:
    names = ["memory_store.created", "memory_store.archived", "memory_store.deleted"]
    endpoint = await subscribe(rt, receiver, names)
    store = await rt.memory.create_store(WS, wire.MemoryStoreCreateParams(name="notes"))
    await rt.memory.archive_store(WS, store.id)
    await rt.memory.archive_store(WS, store.id)  # idempotent: nothing changed, nothing announced
    await rt.memory.delete_store(WS, store.id)
    with pytest.raises(NotFound):
        await rt.memory.delete_store(WS, store.id)

    events = await received(receiver, endpoint, 3)
    assert [(e.data.type, e.data.id) for e in events] == [(n, store.id) for n in sorted(names)]
    await rt.webhook_delivery.run_once()
    assert len(receiver.snapshot()) == 3


async def test_scheduled_runs_announce_start_then_success_or_failure(rt: Runtime, receiver: Receiver) -> None:
    names = ["deployment_run.started", "deployment_run.succeeded", "deployment_run.failed"]
    endpoint = await subscribe(rt, receiver, names)
    # in the past: an event's first delivery is due at its `created_at`, the scheduler's time
    at = (datetime.now(UTC) - timedelta(minutes=10)).replace(second=30, microsecond=0)
    rt.deployments.clock = lambda: at
    agent = await rt.create_agent(WS, wire.AgentCreateParams.model_validate({"name": "a", "model": "scripted"}))
    env = await rt.create_environment(WS, wire.EnvironmentCreateParams(name="scheduled"))
    body = {
        "name": "nightly",
        "agent": agent.id,
        "environment_id": env.id,
        "initial_events": [{"type": "user.message", "content": [{"type": "text", "text": "report"}]}],
        "schedule": {"type": "cron", "expression": "* * * * *", "timezone": "UTC"},
    }
    deployment = await rt.deployments.create(WS, wire.DeploymentCreateParams.model_validate(body))
    await rt.deployments.run_now(WS, deployment.id)  # manual runs are not announced (scheduled runs only)

    at += timedelta(minutes=1)
    assert await rt.deployment_scheduler.run_once() == 1
    events = await received(receiver, endpoint, 2)
    (ok,) = [
        r
        for r in (await rt.deployments.list_runs(WS, deployment_id=deployment.id)).data
        if r.trigger_context.type == "schedule"
    ]
    assert ok.session_id is not None and ok.error is None
    assert [(e.data.type, e.data.id, e.data.deployment_id) for e in events] == [
        ("deployment_run.started", ok.id, deployment.id),
        ("deployment_run.succeeded", ok.id, deployment.id),
    ]

    await rt.archive_agent(WS, agent.id)  # the next run cannot start its session
    at += timedelta(minutes=1)
    assert await rt.deployment_scheduler.run_once() == 1
    events = await received(receiver, endpoint, 4)
    failed = [e for e in events if e.data.id != ok.id]
    assert sorted(e.data.type for e in failed) == ["deployment_run.failed", "deployment_run.started"]
    run = await rt.deployments.get_run(WS, failed[0].data.id)
    assert run.error is not None and run.session_id is None


async def test_agent_and_environment_changes_wake_the_deliverer(rt: Runtime, receiver: Receiver) -> None:
    """Their outbox rows commit with the change and the deliverer is woken at once (its poll is an hour here)."""
    endpoint = await subscribe(rt, receiver, ["agent.created", "agent.archived", "environment.created"])
    agent = await rt.create_agent(WS, wire.AgentCreateParams.model_validate({"name": "a", "model": "scripted"}))
    await rt.archive_agent(WS, agent.id)
    env = await rt.create_environment(WS, wire.EnvironmentCreateParams(name="woken"))
    events = await received(receiver, endpoint, 3)
    assert [(e.data.type, e.data.id) for e in events] == [
        ("agent.archived", agent.id),
        ("agent.created", agent.id),
        ("environment.created", env.id),
    ]
