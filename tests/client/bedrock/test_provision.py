"""Harness provisioning against the loopback control plane: create, wait READY, adopt, roll back, tear down."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import loophost.client as client
from loophost.client._errors import ProvisionError
from loophost.client._provider import OpenRequest
from loophost.client._results import ToolSpec, TurnInput
from loophost.client._specs import AgentSpec, EnvironmentSpec
from loophost.client.providers import _bedrock_wire as wire
from loophost.client.providers._bedrock import BedrockAgentCore
from loophost.client.providers._bedrock_provision import harness_name
from tests.client.bedrock._fake_harness import Fail, FakeHarness, Stream, final_turn
from tests.client.bedrock.conftest import Sleeps, make_provider

ROLE = "arn:aws:iam::123456789012:role/harness-exec"
TOOL = ToolSpec("lookup", "Look it up.", {"type": "object", "properties": {"q": {"type": "string"}}})
FAST = {"execution_role_arn": ROLE, "timeout": 3.0, "poll_interval": 0.01}


def spec(name: str = "support-bot", **options: object) -> AgentSpec:
    return AgentSpec(
        name=name,
        model="us.anthropic.claude-haiku-4-5-20251001-v1:0",
        system="Be helpful.",
        tools=(TOOL,),
        host_tools=({"type": "remote_mcp", "name": "docs", "config": {"remoteMcp": {"url": "https://mcp.example"}}},),
        environment=EnvironmentSpec(config={"agentCoreRuntimeEnvironment": {"lifecycleConfiguration": {}}}),
        options={**FAST, **options},
    )


async def test_provision_waits_until_ready_then_invokes_and_tears_down(
    fake: FakeHarness, provider: BedrockAgentCore
) -> None:
    fake.plans.append({"ready_after": 3})
    agent = spec(max_iterations=7)
    handle = await provider.provision(agent)
    name = harness_name(agent)
    assert fake.operations() == ["CreateHarness", "GetHarness", "GetHarness", "GetHarness"]
    create = fake.requests[0].body
    assert create["harnessName"] == name and create["executionRoleArn"] == ROLE and create["maxIterations"] == 7
    assert create["model"] == {"bedrockModelConfig": {"modelId": agent.model}}
    assert create["systemPrompt"] == [{"text": "Be helpful."}]
    assert [t["type"] for t in create["tools"]] == ["remote_mcp", "inline_function"]
    assert create["environment"] == {"agentCoreRuntimeEnvironment": {"lifecycleConfiguration": {}}}
    assert 33 <= len(create["clientToken"]) <= 256
    assert "x-amz-date" in fake.requests[0].signed_headers
    harness_id = handle.extra["harness_id"]
    assert handle.agent_id == fake.harnesses[harness_id].harness["arn"] and handle.name == name
    assert handle.digest == agent.digest() and handle.extra["adopted"] is False

    fake.push(Stream(final_turn("provisioned")))
    conn = await provider.open_session(OpenRequest(agent_id=handle.agent_id))
    assert conn.normalize([e async for e in conn.turn(TurnInput(text="hi"))]).text == "provisioned"
    assert fake.invokes()[0].query["harnessArn"] == handle.agent_id

    await provider.teardown(handle)
    assert fake.operations()[-1] == "DeleteHarness" and fake.harnesses[harness_id].harness["status"] == "DELETING"
    fake.harnesses.pop(harness_id)
    await provider.teardown(handle)  # already gone: still a success


async def test_execution_role_is_required(fake: FakeHarness, provider: BedrockAgentCore) -> None:
    for options in ({"execution_role_arn": "  "}, {"execution_role_arn": None}):
        with pytest.raises(ValueError, match="execution_role_arn"):
            await provider.provision(AgentSpec(name="x", model="m", options=options))
    with pytest.raises(ValueError, match="timeout"):
        await provider.provision(spec(timeout=-1))
    assert fake.requests == []


@pytest.mark.parametrize("status", ["READY", "CREATING"])
async def test_a_name_conflict_adopts_the_existing_harness(
    fake: FakeHarness, provider: BedrockAgentCore, status: str
) -> None:
    agent = spec()
    for index in range(3):  # ListHarnesses pages (2 per page) until the name is found
        fake.add_harness(f"a_other_{index}", "READY")
    existing = fake.add_harness(harness_name(agent), status, ready_after=1)
    handle = await provider.provision(agent)
    assert handle.agent_id == existing["arn"] and handle.extra["adopted"] is True
    assert fake.operations()[:3] == ["CreateHarness", "ListHarnesses", "ListHarnesses"]
    assert fake.operations()[-1] == "GetHarness" and "DeleteHarness" not in fake.operations()


async def test_an_adopted_harness_is_never_rolled_back(fake: FakeHarness, provider: BedrockAgentCore) -> None:
    agent = spec()
    fake.add_harness(harness_name(agent), "CREATING", ready_after=1, final_status="CREATE_FAILED")
    with pytest.raises(ProvisionError, match="cannot be assumed"):
        await provider.provision(agent)
    assert "DeleteHarness" not in fake.operations()


async def test_a_deleting_harness_is_waited_out_then_recreated(fake: FakeHarness, provider: BedrockAgentCore) -> None:
    agent = spec()
    old = fake.add_harness(harness_name(agent), "DELETING", gone_after=2)
    handle = await provider.provision(agent)
    assert handle.agent_id != old["arn"] and handle.extra["adopted"] is False
    assert fake.operations() == [
        "CreateHarness",
        "ListHarnesses",
        "GetHarness",
        "GetHarness",
        "GetHarness",
        "CreateHarness",
        "GetHarness",
    ]


async def test_a_conflict_with_a_failed_harness_is_an_error(fake: FakeHarness, provider: BedrockAgentCore) -> None:
    agent = spec()
    fake.add_harness(harness_name(agent), "UPDATE_FAILED")
    with pytest.raises(ProvisionError, match="UPDATE_FAILED"):
        await provider.provision(agent)


async def test_the_deadline_rolls_back_what_was_created(fake: FakeHarness, provider: BedrockAgentCore) -> None:
    fake.plans.append({"ready_after": -1})  # CREATING forever
    with pytest.raises(ProvisionError, match=r"not ready within the 0.3s provision timeout") as caught:
        await provider.provision(spec(timeout=0.3, poll_interval=0.02))
    assert "status CREATING" in str(caught.value)
    [record] = fake.harnesses.values()
    assert fake.operations()[-1] == "DeleteHarness" and record.harness["status"] == "DELETING"


async def test_a_failed_create_is_rolled_back(fake: FakeHarness, provider: BedrockAgentCore) -> None:
    fake.plans.append({"ready_after": 2, "final_status": "CREATE_FAILED"})
    with pytest.raises(ProvisionError, match=r"CREATE_FAILED.*cannot be assumed"):
        await provider.provision(spec())
    assert fake.operations()[-1] == "DeleteHarness"


async def test_control_plane_errors(fake: FakeHarness, provider: BedrockAgentCore) -> None:
    fake.fail_control("GetHarness", Fail(429, "ThrottlingException", "slow"), Fail(500, "InternalServerException"))
    handle = await provider.provision(spec())
    assert fake.operations().count("GetHarness") == 3 and handle.agent_id
    fake.fail_control("CreateHarness", Fail(402, "ServiceQuotaExceededException", "too many harnesses"))
    with pytest.raises(ProvisionError, match="too many harnesses") as caught:
        await provider.provision(spec("other"))
    assert isinstance(caught.value.__cause__, wire.ServiceQuotaExceededError)
    fake.fail_control("DeleteHarness", Fail(403, "AccessDeniedException", "no delete"))
    with pytest.raises(wire.AccessDeniedError):
        await provider.teardown(handle)


@given(st.text(min_size=0, max_size=80))
def test_harness_names_fit_the_pattern(name: str) -> None:
    agent = AgentSpec(name=name, model="m", options={"execution_role_arn": ROLE})
    composed = harness_name(agent)
    assert re.fullmatch(r"[a-zA-Z][a-zA-Z0-9_]{0,39}", composed) and composed.endswith(agent.digest()[:8])


async def test_the_client_api_provisions_inside_the_callers_block(
    fake: FakeHarness, sleeps: Sleeps, tmp_path: Path
) -> None:
    cache = tmp_path / "provision.json"
    async with make_provider(fake, sleeps) as provider:
        early = await provider.open_session(OpenRequest())  # on the shared pool, which must outlive provision
        handle = await client.provision(provider, spec("nested"), cache_file=cache)
        fake.push(Stream(final_turn("early")))
        assert early.normalize([e async for e in early.turn(TurnInput(text="hi"))]).text == "early"
        renamed = await client.provision(provider, spec("renamed"), cache_file=cache)  # same digest: cached
        assert renamed == handle and fake.operations().count("CreateHarness") == 1
        fake.push(Stream(final_turn("still open")))
        result = await client.arun(provider, prompt="hi", agent_id=handle.agent_id)  # the pool survived
        assert result.text == "still open" and fake.invokes()[1].query["harnessArn"] == handle.agent_id
        await client.teardown(provider, handle, cache_file=cache)
    assert fake.operations()[-1] == "DeleteHarness" and handle.agent_id not in cache.read_text()
