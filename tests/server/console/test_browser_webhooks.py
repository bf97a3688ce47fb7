"""The console's webhooks view (headless Chromium, real servers, a real receiver on loopback): endpoints with
their events and state, recent deliveries with state and attempts, Disable / Enable, and the reason loophost
gives when it disables an endpoint itself."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx
import pytest
from playwright.sync_api import expect

from ..._webhook_receiver import Receiver, running_receiver
from ..conftest import KEY_A, ServerProcess, start_server, stop_server
from .conftest import ConsolePage
from .test_browser import CONTRAST_CHECK, _free_port

CLOSED = "http://127.0.0.1:9/hook"
"""The discard port, closed here: every try is a connection error, so the delivery stays pending."""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as r:
        yield r


def serve(database: Path, port: int, *, allow_private: bool) -> ServerProcess:
    command = [sys.executable, "-c", "from loophost.cli import main; main()", "serve", "--port", str(port)]
    command += ["--database", str(database), "--heartbeat", "0.5"]
    return start_server(database, command=command + (["--webhooks-allow-private"] if allow_private else []))


def test_webhooks_show_endpoints_deliveries_and_steer_their_state(
    console: ConsolePage, receiver: Receiver, tmp_path: Path
) -> None:
    port, database = _free_port(), tmp_path / "hooks.db"
    server = serve(database, port, allow_private=True)
    try:
        http = httpx.Client(base_url=server.url, headers={"x-api-key": KEY_A}, timeout=10)
        receiver.statuses = [500]  # the first try fails, the retry is delivered
        events = ["environment.created"]
        good = http.post("/v1/webhooks", json={"url": receiver.url, "enabled_events": events, "name": "ops"}).json()
        bad = http.post("/v1/webhooks", json={"url": CLOSED, "enabled_events": events, "name": "gone"}).json()
        with anthropic.Anthropic(base_url=server.url, api_key=KEY_A, max_retries=0) as sdk:
            sdk.beta.environments.create(name=f"hooked-{time.monotonic_ns()}")
        receiver.wait(lambda d: any(x.status == 200 for x in d))
        console.base_url = server.url
        console.open("/console/webhooks")
        console.sign_in()
        page = console.page
        ops = page.locator(f"li[data-webhook='{good['id']}']")
        gone = page.locator(f"li[data-webhook='{bad['id']}']")
        expect(ops.locator("summary .badge")).to_have_text("enabled")
        ops.locator("summary").click()
        expect(ops).to_contain_text(receiver.url)
        expect(ops.locator("ul.events")).to_have_text("environment.created")
        delivery = ops.get_by_test_id("delivery")
        expect(delivery).to_have_count(1)
        expect(delivery).to_contain_text("environment.created")
        expect(delivery.locator(".badge")).to_have_text("delivered")
        expect(delivery.locator("td.num")).to_have_text("2")  # attempts
        assert delivery.get_attribute("data-event") == receiver.ok()[0].id
        gone.locator("summary").click()
        failing = gone.get_by_test_id("delivery")
        expect(failing.locator(".badge")).to_have_text("pending")
        expect(failing).to_contain_text("last error:")
        expect(failing).to_contain_text("next try")
        low = page.evaluate(CONTRAST_CHECK)
        assert low == [], low
        # steer: disable, then enable again, through the API
        ops.get_by_role("button", name="Disable").click()
        expect(ops.locator("summary .badge")).to_have_text("disabled")
        assert http.get(f"/v1/webhooks/{good['id']}").json()["state"] == "disabled"
        ops.get_by_role("button", name="Enable").click()
        expect(ops.locator("summary .badge")).to_have_text("enabled")
        assert http.get(f"/v1/webhooks/{good['id']}").json()["state"] == "enabled"
        # restarted without --webhooks-allow-private: the next try of the pending delivery finds a loopback host,
        # and loophost disables that endpoint with a reason the page shows (it re-reads the list on its own)
        http.close()
        stop_server(server)
        server = serve(database, port, allow_private=False)
        expect(gone.locator("summary .badge")).to_have_text("disabled")
        expect(gone.get_by_test_id("disabled-reason")).to_contain_text("--webhooks-allow-private")
        expect(gone.get_by_role("button", name="Enable")).to_be_visible()
        expect(ops.locator("summary .badge")).to_have_text("enabled")
        assert KEY_A not in page.content()
    finally:
        stop_server(server)
