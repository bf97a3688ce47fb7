"""MCP tools through the client, on Local and on a loophost server: `SessionResult` carries the MCP tool uses
(with their server) and their results, and `confirm=` answers an MCP tool's confirmation as it answers a built-in
tool's. The MCP server is a real one (`tests/server/_mcp_server.py`, bearer auth) reached through a vault."""

from __future__ import annotations

import secrets as random
import uuid
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest

import loophost
from loophost import wire
from tests.server._mcp_server import McpTestServer
from tests.server.conftest import KEY_A

from .conftest import Host

pytestmark = pytest.mark.timeout(90)

TOKEN = f"client-mcp-{random.token_hex(12)}"


@pytest.fixture(scope="module")
def calc() -> Iterator[McpTestServer]:
    server = McpTestServer("calc", {TOKEN}).start()
    yield server
    server.stop()


async def mcp_agent(host: Host, url: str, policy: str) -> tuple[str, str]:
    """An agent whose MCP server `calc` is asked with `policy`, and a vault holding its token: (agent, vault)."""
    agent: dict[str, Any] = {
        "name": f"mcp-{uuid.uuid4().hex[:8]}",
        "model": "scripted",
        "mcp_servers": [{"type": "url", "name": "calc", "url": url}],
        "tools": [
            {
                "type": "mcp_toolset",
                "mcp_server_name": "calc",
                "default_config": {"permission_policy": {"type": policy}},
            }
        ],
    }
    credential = {"auth": {"type": "static_bearer", "mcp_server_url": url, "token": TOKEN}}
    if isinstance(host.provider, loophost.Local):
        rt, ws = host.provider.runtime, host.provider.workspace
        made = await rt.create_agent(ws, wire.AgentCreateParams.model_validate(agent))
        vault = await rt.vaults.create_vault(ws, wire.VaultCreateParams(display_name="v"))
        await rt.vaults.create_credential(ws, vault.id, wire.CredentialCreateParams.model_validate(credential))
        return made.id, vault.id
    assert isinstance(host.provider, loophost.ClaudeManagedAgents)
    sdk = anthropic.AsyncAnthropic(api_key=KEY_A, base_url=host.provider.base_url, max_retries=0)
    async with sdk:
        created = await sdk.beta.agents.create(**agent)
        vault_made = await sdk.beta.vaults.create(display_name="v")
        await sdk.beta.vaults.credentials.create(vault_made.id, **credential)  # type: ignore[arg-type]
        return created.id, vault_made.id


async def test_mcp_tool_uses_and_results_are_in_the_session_result(host: Host, calc: McpTestServer) -> None:
    agent_id, vault_id = await mcp_agent(host, calc.url, "always_allow")
    result = await loophost.arun(
        host.provider, agent_id=agent_id, vault_ids=[vault_id], prompt='call add {"a": 20, "b": 22}'
    )
    assert result.ok and result.text == "add: 42"
    (use,) = result.server_tool_uses
    assert (use.name, dict(use.input), use.server) == ("add", {"a": 20, "b": 22}, "calc")
    (out,) = result.server_tool_results
    assert (out.tool_use_id, out.text, out.is_error) == (use.id, "42", False)
    assert result.tool_uses == []


async def test_mcp_confirmations_go_through_the_confirm_hook(host: Host, calc: McpTestServer) -> None:
    agent_id, vault_id = await mcp_agent(host, calc.url, "always_ask")
    asked: list[tuple[str, dict[str, Any]]] = []

    def confirm(name: str, tool_input: dict[str, Any], context: Any) -> bool | str:
        asked.append((name, dict(tool_input)))
        return True if tool_input.get("text") == "yes" else "not this one"

    before = len(calc.calls)
    allowed = await loophost.arun(
        host.provider, agent_id=agent_id, vault_ids=[vault_id], confirm=confirm, prompt='call echo {"text": "yes"}'
    )
    assert allowed.ok and allowed.text == "echo: calc says yes"
    assert [(u.server, u.name) for u in allowed.server_tool_uses] == [("calc", "echo")]
    assert [r.text for r in allowed.server_tool_results] == ["calc says yes"]
    denied = await loophost.arun(
        host.provider, agent_id=agent_id, vault_ids=[vault_id], confirm=confirm, prompt='call echo {"text": "no"}'
    )
    assert denied.ok and denied.text == "echo failed: not this one"
    (result,) = denied.server_tool_results
    assert result.is_error and result.text == "not this one"
    assert asked == [("echo", {"text": "yes"}), ("echo", {"text": "no"})]
    assert calc.calls[before:] == [("echo", {"text": "yes"})]
