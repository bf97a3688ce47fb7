"""Loopback fakes of the Anthropic and OpenAI APIs, one server each per module, reset per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ._fake_anthropic import FakeAnthropic
from ._fake_http_server import LoopbackServer
from ._fake_openai import FakeOpenAI


@pytest.fixture(scope="module")
def _anthropic_server() -> Iterator[tuple[FakeAnthropic, LoopbackServer]]:
    fake = FakeAnthropic()
    server = LoopbackServer(fake.app).start()
    try:
        yield fake, server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def _openai_server() -> Iterator[tuple[FakeOpenAI, LoopbackServer]]:
    fake = FakeOpenAI()
    server = LoopbackServer(fake.app).start()
    try:
        yield fake, server
    finally:
        server.stop()


@pytest.fixture
def fake_anthropic(
    _anthropic_server: tuple[FakeAnthropic, LoopbackServer],
    _no_provider_env: None,
    monkeypatch: pytest.MonkeyPatch,
) -> FakeAnthropic:
    """The fake, empty, with `ANTHROPIC_BASE_URL` and `ANTHROPIC_API_KEY` pointing the SDK at it."""
    fake, server = _anthropic_server
    fake.reset()
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-fake")
    return fake


@pytest.fixture
def fake_openai(
    _openai_server: tuple[FakeOpenAI, LoopbackServer], _no_provider_env: None, monkeypatch: pytest.MonkeyPatch
) -> FakeOpenAI:
    """The fake, empty, with `OPENAI_BASE_URL` and `OPENAI_API_KEY` pointing the SDK at it."""
    fake, server = _openai_server
    fake.reset()
    monkeypatch.setenv("OPENAI_BASE_URL", f"{server.url}/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-fake")
    return fake


@pytest.fixture
def openai_server_url(_openai_server: tuple[FakeOpenAI, LoopbackServer]) -> str:
    """The OpenAI fake's base URL (with `/v1`), for named OpenAI-compatible endpoints."""
    return f"{_openai_server[1].url}/v1"


@pytest.fixture(autouse=True)
def _no_provider_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start every test without provider credentials or endpoints from the outer environment."""
    for var in (
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_BASE_URL",
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "LOOPHOST_OPENAI_ENDPOINTS",
    ):
        monkeypatch.delenv(var, raising=False)
