"""Fixtures: a fresh loopback harness per test, and a provider pointed at it with recorded (instant) backoff."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from loophost.client.providers._bedrock import BedrockAgentCore
from tests.client.bedrock._fake_harness import ACCESS_KEY, HARNESS_ARN, REGION, SECRET_KEY, FakeHarness


class Sleeps:
    """The provider's injected sleep: records each backoff delay and yields without waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        await asyncio.sleep(0)


@pytest.fixture
def fake() -> Iterator[FakeHarness]:
    with FakeHarness() as server:
        yield server


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def make_provider(fake: FakeHarness, sleeps: Sleeps, **kwargs: object) -> BedrockAgentCore:
    options: dict[str, object] = {
        "region": REGION,
        "harness_arn": HARNESS_ARN,
        "endpoint_url": fake.url,
        "credentials": {"access_key": ACCESS_KEY, "secret_key": SECRET_KEY, "token": fake.token},
        "sleep": sleeps,
        "idle_timeout": 5.0,
    }
    options.update(kwargs)
    return BedrockAgentCore(**options)  # type: ignore[arg-type]


@pytest.fixture
async def provider(fake: FakeHarness, sleeps: Sleeps) -> AsyncIterator[BedrockAgentCore]:
    async with make_provider(fake, sleeps) as bedrock:
        yield bedrock
