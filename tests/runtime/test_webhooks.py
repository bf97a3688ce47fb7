"""Webhooks end to end in one process: a real Runtime on a SQLite file delivering to a real HTTP receiver on
loopback, verified with the official SDK's `unwrap`. The deliverer's clock is the test's: retries a day apart run
without sleeping."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anthropic
import pytest
from standardwebhooks import WebhookVerificationError

from loophost import wire
from loophost.runtime import InvalidRequest, Runtime, RuntimeConfig

from .._webhook_receiver import Delivery, Receiver, running_receiver
from .conftest import WS, make_session, user_message

SDK = anthropic.Anthropic(api_key="unused")
EVENTS = [
    "session.created",
    "session.status_run_started",
    "session.status_idled",
    "session.requires_action",
    "session.status_terminated",
]


class Clock:
    """Wall time plus an offset the test moves forward."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as r:
        yield r


@pytest.fixture
async def rt(tmp_path: Path) -> AsyncIterator[Runtime]:
    config = RuntimeConfig(webhooks_allow_private=True)
    async with Runtime.from_url(tmp_path / "runtime.db", config=config) as runtime:
        yield runtime


@pytest.fixture
def clock(rt: Runtime) -> Clock:
    c = Clock()
    rt.webhook_delivery.clock = c
    return c


def unwrap(delivery: Delivery, secret: str) -> wire.WebhookEvent:
    event = SDK.beta.webhooks.unwrap(delivery.body, headers=delivery.headers, key=secret)
    return wire.WebhookEvent.model_validate(event.model_dump(mode="json"))


def at_least(n: int) -> Callable[[list[Delivery]], bool]:
    return lambda got: len(got) >= n


async def disabled(rt: Runtime, endpoint_id: str, timeout: float = 20.0) -> wire.WebhookEndpoint:
    """The endpoint once loophost has disabled it; fails after `timeout`."""
    deadline = asyncio.get_running_loop().time() + timeout
    while (found := await rt.webhooks.get(WS, endpoint_id)).state != "disabled":
        assert asyncio.get_running_loop().time() < deadline, f"endpoint still {found.state}"
        await asyncio.sleep(0.02)
    return found


async def subscribe(rt: Runtime, receiver: Receiver, events: list[str] = EVENTS) -> wire.NewWebhookEndpoint:
    return await rt.webhooks.create(WS, wire.WebhookCreateParams(url=receiver.url, enabled_events=events))


async def test_session_status_changes_arrive_signed_and_verified_by_the_sdk(rt: Runtime, receiver: Receiver) -> None:
    endpoint = await subscribe(rt, receiver)
    tool = {"type": "custom", "name": "lookup", "description": "Look up.", "input_schema": {"type": "object"}}
    session = await make_session(rt, tools=[tool])
    await rt.send_events(WS, session.id, [user_message("call lookup {}")])

    got = await receiver.until(lambda d: len(d) >= 4)
    events = [unwrap(d, endpoint.signing_secret) for d in got]
    assert sorted(e.data.type for e in events) == [  # sent concurrently: no order is promised
        "session.created",
        "session.requires_action",
        "session.status_idled",
        "session.status_run_started",
    ]
    for delivery, event in zip(got, events, strict=True):
        assert delivery.id == event.id
        assert event.data.id == session.id and event.data.workspace_id == WS
    with pytest.raises(WebhookVerificationError):
        SDK.beta.webhooks.unwrap(got[0].body, headers=got[0].headers, key="whsec_" + "A" * 44)


async def test_a_failing_receiver_gets_the_same_event_until_it_answers_2xx(
    rt: Runtime, receiver: Receiver, clock: Clock
) -> None:
    receiver.statuses = [500, 500]
    endpoint = await subscribe(rt, receiver, ["session.status_idled"])
    session = await make_session(rt)
    await rt.send_events(WS, session.id, [user_message("hello")])

    for tries in (1, 2, 3):
        await receiver.until(at_least(tries))
        clock.offset += timedelta(hours=2)  # past any backoff: the next try is due
        rt.webhook_delivery.wake()
    got = receiver.snapshot()
    assert [d.status for d in got] == [500, 500, 200]
    assert len({d.id for d in got}) == 1 and len({d.body for d in got}) == 1
    assert unwrap(got[-1], endpoint.signing_secret).data.type == "session.status_idled"
    assert await rt.store.webhooks.delivery_state(endpoint.id, got[0].id) == ("delivered", 3, None)


async def test_retries_back_off_and_stop_after_a_day(rt: Runtime, receiver: Receiver, clock: Clock) -> None:
    receiver.statuses = [503] * 100
    endpoint = await subscribe(rt, receiver, ["session.status_idled"])
    session = await make_session(rt)
    await rt.send_events(WS, session.id, [user_message("hello")])
    await receiver.until(lambda d: len(d) == 1)
    event_id = receiver.snapshot()[0].id
    while (await rt.store.webhooks.delivery_state(endpoint.id, event_id)) != ("pending", 1, "HTTP 503"):
        await asyncio.sleep(0.01)
    await rt.webhook_delivery.close()  # the test drives every later try itself

    # not due before the backoff has passed (1 s, with jitter at most 1.25 s): a wake sends nothing
    assert await rt.webhook_delivery.run_once() == 0
    clock.offset += timedelta(seconds=1.3)
    assert await rt.webhook_delivery.run_once() == 1
    clock.offset += timedelta(seconds=1.3)  # the second backoff is about 2 s: not due yet
    assert await rt.webhook_delivery.run_once() == 0
    for _ in range(8):  # four hours apart (the backoff is capped at an hour): one try each, until a day has passed
        clock.offset += timedelta(hours=4)
        await rt.webhook_delivery.run_once()
    state = await rt.store.webhooks.delivery_state(endpoint.id, event_id)
    assert state == ("failed", 8, "HTTP 503")  # the try at 24 h would retry after the day: it gave up instead
    assert len(receiver.snapshot()) == 8


async def test_twenty_consecutive_failures_disable_the_endpoint(rt: Runtime, receiver: Receiver, clock: Clock) -> None:
    receiver.statuses = [500] * 100
    endpoint = await subscribe(rt, receiver, ["session.status_run_started", "session.status_idled"])
    for _ in range(10):  # twenty events, one failure each
        session = await make_session(rt)
        await rt.send_events(WS, session.id, [user_message("hello")])
    await receiver.until(lambda d: len(d) >= 20)
    found = await disabled(rt, endpoint.id)  # the 20th failure is recorded just after the receiver answered
    assert found.disabled_reason.startswith("20 consecutive delivery failures") and "HTTP 500" in found.disabled_reason

    clock.offset += timedelta(hours=2)  # disabled: nothing more is sent, however due
    assert await rt.webhook_delivery.run_once() == 0
    receiver.statuses = []
    again = await rt.webhooks.update(WS, endpoint.id, wire.WebhookUpdateParams(state="enabled"))
    assert again.state == "enabled" and again.disabled_reason == ""
    await receiver.until(lambda d: len([x for x in d if x.status == 200]) == 20)


async def test_a_redirect_is_a_failure_and_is_not_followed(rt: Runtime, receiver: Receiver) -> None:
    receiver.statuses = [302]
    receiver.redirect_to = receiver.url + "/elsewhere"
    endpoint = await subscribe(rt, receiver, ["session.status_idled"])
    session = await make_session(rt)
    await rt.send_events(WS, session.id, [user_message("hello")])
    got = await receiver.until(lambda d: len(d) == 1)
    for _ in range(500):  # the deliverer records the answer once it has it
        state = await rt.store.webhooks.delivery_state(endpoint.id, got[0].id)
        if state is not None and state[1] == 1:
            break
        await asyncio.sleep(0.02)
    assert state == ("pending", 1, "HTTP 302 (redirects are not followed)")
    assert len(receiver.snapshot()) == 1  # no request followed the Location (its failure was recorded first)


async def test_a_rotated_secret_signs_every_later_delivery(rt: Runtime, receiver: Receiver) -> None:
    endpoint = await subscribe(rt, receiver, ["session.status_idled"])
    session = await make_session(rt)
    await rt.send_events(WS, session.id, [user_message("one")])
    first = (await receiver.until(lambda d: len(d) == 1))[0]
    rotated = await rt.webhooks.regenerate_signing_secret(WS, endpoint.id)
    assert rotated.signing_secret.startswith("whsec_") and rotated.signing_secret != endpoint.signing_secret
    await rt.send_events(WS, session.id, [user_message("two")])
    second = (await receiver.until(lambda d: len(d) == 2))[1]

    unwrap(first, endpoint.signing_secret)
    unwrap(second, rotated.signing_secret)
    with pytest.raises(WebhookVerificationError):
        unwrap(second, endpoint.signing_secret)


async def test_only_subscribed_events_of_the_endpoints_workspace_are_sent(rt: Runtime, receiver: Receiver) -> None:
    await rt.webhooks.create("ws_other", wire.WebhookCreateParams(url=receiver.url, enabled_events=EVENTS))
    endpoint = await subscribe(rt, receiver, ["session.status_run_started"])
    session = await make_session(rt)
    await rt.send_events(WS, session.id, [user_message("hello")])
    got = await receiver.until(lambda d: len(d) >= 1)
    await receiver.until(lambda d: True, timeout=0.3)
    assert [unwrap(d, endpoint.signing_secret).data.type for d in receiver.snapshot()] == ["session.status_run_started"]
    assert json.loads(got[0].body)["data"]["workspace_id"] == WS


async def test_private_addresses_are_refused_without_the_flag(tmp_path: Path) -> None:
    async with Runtime.from_url(tmp_path / "strict.db") as strict:
        for url in ("https://127.0.0.1/hook", "https://10.1.2.3/hook", "https://[::1]/hook", "https://localhost/"):
            with pytest.raises(InvalidRequest) as caught:
                await strict.webhooks.create(WS, wire.WebhookCreateParams(url=url, enabled_events=EVENTS))
            assert caught.value.code == "webhook_url_refused"
            assert "--webhooks-allow-private" in str(caught.value)
        with pytest.raises(InvalidRequest) as caught:
            await strict.webhooks.create(
                WS, wire.WebhookCreateParams(url="http://93.184.215.14/", enabled_events=EVENTS)
            )
        assert "not https" in str(caught.value)


async def test_a_host_found_private_at_send_time_disables_the_endpoint(rt: Runtime, receiver: Receiver) -> None:
    endpoint = await subscribe(rt, receiver, ["session.status_idled"])
    rt.webhooks.allow_private = False  # as if the name had resolved elsewhere when the endpoint was made
    session = await make_session(rt)
    await rt.send_events(WS, session.id, [user_message("hello")])
    found = await disabled(rt, endpoint.id)
    assert "--webhooks-allow-private" in found.disabled_reason
    assert receiver.snapshot() == []


async def test_agent_and_environment_changes_arrive(rt: Runtime, receiver: Receiver) -> None:
    names = ["agent.created", "agent.updated", "agent.archived", "environment.created", "environment.deleted"]
    endpoint = await subscribe(rt, receiver, names)
    agent = await rt.create_agent(WS, wire.AgentCreateParams.model_validate({"name": "a", "model": "scripted"}))
    update = wire.AgentUpdateParams.model_validate({"version": agent.version, "name": "b"})
    await rt.update_agent(WS, agent.id, update)
    await rt.archive_agent(WS, agent.id)
    env = await rt.create_environment(WS, wire.EnvironmentCreateParams(name="hooked"))
    await rt.delete_environment(WS, env.id)

    got = await receiver.until(lambda d: len(d) >= 5)
    events = [unwrap(d, endpoint.signing_secret) for d in got]
    assert sorted((e.data.type, e.data.id) for e in events) == sorted(
        [(n, agent.id) for n in names[:3]] + [(n, env.id) for n in names[3:]]
    )


async def test_a_budget_reached_pause_is_announced(rt: Runtime, receiver: Receiver) -> None:
    endpoint = await subscribe(rt, receiver, ["session.requires_action", "session.budget_reached"])
    tool = {"type": "custom", "name": "lookup", "description": "Look up.", "input_schema": {"type": "object"}}
    agent = await rt.create_agent(
        WS, wire.AgentCreateParams.model_validate({"name": "a", "model": "scripted", "tools": [tool]})
    )
    env = await rt.create_environment(WS, wire.EnvironmentCreateParams(name="budgeted"))
    params = wire.SessionCreateParams.model_validate(
        {
            "agent": agent.id,
            "environment_id": env.id,
            "budget": {"type": "limit", "max_list_cost": {"amount": "2", "currency": "USD"}},
        }
    )
    session = await rt.start_session(WS, params)
    await rt.send_events(WS, session.id, [user_message('call lookup {"q": "x"}')])
    await receiver.until(at_least(1))
    log = (await rt.list_events(WS, session.id, limit=100)).data
    use = next(e for e in log if e.type == "agent.custom_tool_use")
    answer = wire.UserCustomToolResultParams.model_validate(
        {"type": "user.custom_tool_result", "custom_tool_use_id": use.id, "content": [{"type": "text", "text": "ok"}]}
    )
    await rt.send_events(WS, session.id, [answer])
    got = await receiver.until(at_least(2))
    assert sorted(unwrap(d, endpoint.signing_secret).data.type for d in got) == [
        "session.budget_reached",
        "session.requires_action",
    ]


async def test_two_nodes_on_postgres_deliver_each_event_once(postgres_url: str, receiver: Receiver) -> None:
    config = RuntimeConfig(webhooks_allow_private=True, vault_key="u2sd0Bq2sFhJ8pN0XTu9D3G1Qkzv2b5cQwS1mQ9QJqg")
    async with (
        Runtime.from_url(postgres_url, config=config) as one,
        Runtime.from_url(postgres_url, config=config) as two,
    ):
        endpoint = await subscribe(one, receiver, ["agent.created"])
        made = []
        for i in range(20):
            node = (one, two)[i % 2]
            params = wire.AgentCreateParams.model_validate({"name": f"a{i}", "model": "scripted"})
            made.append((await node.create_agent(WS, params)).id)
        await receiver.until(at_least(20))
        for node in (one, two):  # both deliverers have had every chance to send again
            await node.webhook_delivery.run_once()
        got = receiver.snapshot()
        assert len(got) == len({d.id for d in got}) == 20
        assert sorted(unwrap(d, endpoint.signing_secret).data.id for d in got) == sorted(made)
