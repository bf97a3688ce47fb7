"""`loophost webhooks create|list|rotate-secret|delete` against a real server (one that allows loopback
receivers), and a delivery the printed secret verifies."""

from __future__ import annotations

import re
from collections.abc import Iterator

import anthropic
import pytest
from typer.testing import CliRunner

from loophost.cli import app
from tests._webhook_receiver import Receiver, running_receiver
from tests.server.conftest import KEY_A, ServerProcess, stop_server
from tests.server.test_webhooks_api import start_hooked_server

pytestmark = pytest.mark.timeout(90)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_hooked_server(tmp_path_factory.mktemp("cli-webhooks") / "server.db")
    yield proc
    stop_server(proc)


def loophost(server: ServerProcess, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        app, [*args, "--base-url", server.url, "--api-key", KEY_A], env={"COLUMNS": "200", "NO_COLOR": "1"}
    )
    return result.exit_code, result.output


def test_create_prints_the_secret_that_verifies_deliveries(server: ServerProcess) -> None:
    receiver: Receiver
    with running_receiver() as receiver:
        code, out = loophost(server, "webhooks", "create", receiver.url, "--event", "agent.created", "--name", "cli")
        assert code == 0, out
        endpoint_id = re.search(r"created (whep_\w+)", out)
        secret = re.search(r"(whsec_\S+)", out)
        assert endpoint_id and secret
        code, out = loophost(server, "webhooks", "list")
        assert code == 0 and endpoint_id.group(1) in out and "enabled" in out

        with anthropic.Anthropic(base_url=server.url, api_key=KEY_A, max_retries=0) as sdk:
            agent = sdk.beta.agents.create(name="cli-hooked", model="scripted")
            got = receiver.wait(lambda d: len(d) >= 1)[0]
            event = sdk.beta.webhooks.unwrap(got.body, headers=got.headers, key=secret.group(1))
        assert event.data.type == "agent.created" and event.data.id == agent.id

        code, out = loophost(server, "webhooks", "rotate-secret", endpoint_id.group(1))
        assert code == 0 and "whsec_" in out and secret.group(1) not in out
        code, out = loophost(server, "webhooks", "delete", endpoint_id.group(1))
        assert code == 0 and f"deleted {endpoint_id.group(1)}" in out
        code, out = loophost(server, "webhooks", "delete", endpoint_id.group(1))
        assert code != 0


def test_a_private_url_is_refused_by_a_default_server(tmp_path_factory: pytest.TempPathFactory) -> None:
    from tests.server.conftest import start_server

    strict = start_server(tmp_path_factory.mktemp("cli-strict") / "server.db")
    try:
        code, out = loophost(strict, "webhooks", "create", "http://127.0.0.1:9/hook", "--event", "agent.created")
    finally:
        stop_server(strict)
    assert code != 0 and "--webhooks-allow-private" in out
