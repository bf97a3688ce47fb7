"""`/metrics` (`server/_metrics.py`) over real HTTP after a known webhook workload: the backlog gauge follows the
outbox, and each delivery attempt is counted by its outcome."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2
import uvicorn
from prometheus_client.parser import text_string_to_metric_families

from loophost import wire
from loophost.runtime import Runtime, RuntimeConfig
from loophost.server import metrics_app

from .._webhook_receiver import running_receiver

WS = "ws_metrics"


class Clock:
    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


@asynccontextmanager
async def scraping(runtime: Runtime) -> AsyncIterator[str]:
    """`metrics_app` on a loopback listener of its own (as `loophost serve --metrics-port`)."""
    server = uvicorn.Server(uvicorn.Config(metrics_app(runtime), host="127.0.0.1", port=0, log_level="warning"))
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(20):
        while not server.started:
            assert not task.done(), "the metrics listener did not start"
            await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}/metrics"
    finally:
        server.should_exit = True
        async with asyncio.timeout(20):
            await task


async def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with httpx2.AsyncClient() as client:
        answer = await client.get(url)
    assert answer.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def attempts(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], outcome: str) -> float:
    return samples.get(("loophost_webhook_delivery_attempts_total", (("outcome", outcome),)), 0.0)


async def test_the_webhook_backlog_and_delivery_attempts_by_outcome(tmp_path: Path) -> None:
    config = RuntimeConfig(webhooks_allow_private=True)
    with running_receiver() as receiver:
        async with Runtime.from_url(tmp_path / "m.db", config=config) as rt, scraping(rt) as url:
            clock = Clock()
            rt.webhook_delivery.clock = clock
            before = await scrape(url)  # (counters are per process: other tests may have counted before)
            assert before[("loophost_webhook_backlog", ())] == 0
            receiver.statuses = [500]
            params = wire.WebhookCreateParams(url=receiver.url, enabled_events=["session.status_idled"])
            endpoint = await rt.webhooks.create(WS, params)
            agent = await rt.create_agent(WS, wire.AgentCreateParams(name="a", model="scripted"))
            env = await rt.create_environment(WS, wire.EnvironmentCreateParams(name="e"))
            session = await rt.start_session(WS, wire.SessionCreateParams(agent=agent.id, environment_id=env.id))
            hello = {"type": "user.message", "content": [{"type": "text", "text": "hello"}]}
            await rt.send_events(WS, session.id, [wire.UserMessageParams.model_validate(hello)])
            (failed,) = await receiver.until(lambda got: len(got) == 1)
            async with asyncio.timeout(20):
                while await rt.store.webhooks.delivery_state(endpoint.id, failed.id) != ("pending", 1, "HTTP 500"):
                    await asyncio.sleep(0.01)
            await rt.webhook_delivery.close()  # the test makes the next try itself

            waiting = await scrape(url)
            assert waiting[("loophost_webhook_backlog", ())] == 1
            assert attempts(waiting, "retrying") == attempts(before, "retrying") + 1
            assert attempts(waiting, "delivered") == attempts(before, "delivered")

            clock.offset += timedelta(hours=2)  # past the backoff
            assert await rt.webhook_delivery.run_once() == 1
            done = await scrape(url)
            assert done[("loophost_webhook_backlog", ())] == 0
            assert attempts(done, "delivered") == attempts(before, "delivered") + 1
            assert attempts(done, "retrying") == attempts(waiting, "retrying")
            assert [d.status for d in receiver.snapshot()] == [500, 200]
