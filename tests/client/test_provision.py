"""`provision` / `teardown`: content-addressed reuse, the JSON cache file, eviction only on success."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import loophost
from loophost.client import _provision

from .conftest import Host


@loophost.tool
def ping(text: str) -> str:
    """Answer a ping."""
    return f"pong {text}"


def spec(name: str, system: str = "You answer pings.") -> loophost.AgentSpec:
    return loophost.AgentSpec(name=name, model="scripted", system=system, tools=(ping,))


async def test_same_spec_is_reused_whatever_its_name_and_a_changed_spec_is_not(host: Host) -> None:
    first = await loophost.provision(host.provider, spec("pinger"))
    renamed = await loophost.provision(host.provider, spec("renamed-pinger"))
    changed = await loophost.provision(host.provider, spec("pinger", system="You answer pings loudly."))
    assert renamed == first
    assert changed.agent_id != first.agent_id and changed.digest != first.digest
    agent = await host.provider.control().get_agent(first.agent_id)  # type: ignore[attr-defined]
    assert agent["metadata"]["loophost_digest"] == first.digest
    assert [t["name"] for t in agent["tools"]] == ["ping"]
    result = await loophost.arun(
        host.provider, agent_id=first.agent_id, handler=[ping], prompt='call ping {"text": "x"}'
    )
    assert result.text == "ping: pong x"


async def test_the_cache_file_survives_the_process_and_teardown_evicts(host: Host, tmp_path: Path) -> None:
    cache = tmp_path / "agents.json"
    made = await loophost.provision(host.provider, spec("cached"), cache_file=cache)
    assert made.agent_id in cache.read_text()
    _provision._caches.clear()  # as a new process would start: only the file remembers
    _provision._default_cache._entries.clear()
    again = await loophost.provision(host.provider, spec("cached"), cache_file=cache)
    assert again == made

    await loophost.teardown(host.provider, made, cache_file=cache)
    agent = await host.provider.control().get_agent(made.agent_id)  # type: ignore[attr-defined]
    assert agent["archived_at"] is not None
    assert json.loads(cache.read_text()) == {}
    fresh = await loophost.provision(host.provider, spec("cached"), cache_file=cache)
    assert fresh.agent_id != made.agent_id


async def test_a_failed_teardown_keeps_the_cache_entry(host: Host, tmp_path: Path) -> None:
    cache = tmp_path / "agents.json"
    made = await loophost.provision(host.provider, spec("kept", system="unique to this test"), cache_file=cache)
    bogus = loophost.AgentHandle(agent_id="agent_doesnotexist", name="x", digest=made.digest)
    entries = json.loads(cache.read_text())
    entries["provision:other"] = bogus.to_json()
    cache.write_text(json.dumps(entries))
    _provision._caches.clear()
    with pytest.raises(loophost.HostError) as caught:
        await loophost.teardown(host.provider, bogus, cache_file=cache)
    assert caught.value.status == 404
    assert "agent_doesnotexist" in cache.read_text()


async def test_a_nameless_spec_is_refused(host: Host) -> None:
    with pytest.raises(loophost.ProvisionError, match="name"):
        await loophost.provision(host.provider, loophost.AgentSpec(name="", model="scripted"))


def test_the_digest_leaves_out_the_name_only() -> None:
    assert spec("a").digest() == spec("b").digest()
    assert spec("a").digest() != spec("a", system="other").digest()
    assert spec("a").digest() != loophost.AgentSpec(name="a", model="scripted", system="You answer pings.").digest()
