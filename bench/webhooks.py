"""Webhook delivery: how long from a session's state change to a receiver on loopback, and how many deliveries a
second one receiver gets.

A `Runtime` on a SQLite file in this process (`webhooks_allow_private`: the receiver is on loopback) delivers to an
asyncio HTTP/1.1 receiver in the same process (keep-alive; answers 200 at once). Latency is the receiver's wall
clock at arrival minus the event's `created_at` (the processed_at of the status event the commit appended): outbox
write, wake-up, claim, signing, the POST. Throughput pushes a batch of outbox rows and times until the last
arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from datetime import datetime

from loophost import wire
from loophost.runtime import Runtime, RuntimeConfig
from loophost.runtime._webhook_events import outbox_event

from ._registry import Context, benchmark
from ._report import Metric, latency_ms, metric

WS = "bench"


class _Receiver:
    """Counts POSTs and records (arrival wall time, body)."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[float, bytes]] = []
        self.arrived = asyncio.Event()
        self.url = ""

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = await reader.readexactly(length)
                self.arrivals.append((time.time(), body))
                self.arrived.set()
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
        writer.close()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[_Receiver]:
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/hook"
        async with server:
            yield self

    async def wait_for(self, count: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.arrivals) < count:
            self.arrived.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{len(self.arrivals)} of {count} deliveries arrived")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await self.arrived.wait()


@contextlib.asynccontextmanager
async def _runtime(ctx: Context) -> AsyncIterator[Runtime]:
    async with Runtime.from_url(ctx.fresh_path(), config=RuntimeConfig(webhooks_allow_private=True)) as rt:
        yield rt


@benchmark("webhooks.delivery_latency")
async def delivery_latency(ctx: Context) -> AsyncIterator[Metric]:
    """State change (a turn's `session.status_idle` commit) to the receiver, one session turn at a time."""
    turns = ctx.size(200, 20)
    receiver = _Receiver()
    async with receiver.running(), _runtime(ctx) as rt:
        await rt.webhooks.create(
            WS, wire.WebhookCreateParams(url=receiver.url, enabled_events=["session.status_idled"])
        )
        agent = await rt.create_agent(WS, wire.AgentCreateParams.model_validate({"name": "b", "model": "scripted"}))
        env = await rt.create_environment(WS, wire.EnvironmentCreateParams(name="bench-webhooks"))
        session = await rt.start_session(WS, wire.SessionCreateParams(agent=agent.id, environment_id=env.id))
        message = wire.UserMessageParams.model_validate(
            {"type": "user.message", "content": [{"type": "text", "text": "hi"}]}
        )
        for i in range(turns):
            await rt.send_events(WS, session.id, [message])
            await receiver.wait_for(i + 1)
        samples = []
        for arrived, body in receiver.arrivals:
            created = datetime.fromisoformat(json.loads(body)["created_at"].replace("Z", "+00:00")).timestamp()
            samples.append(arrived - created)
    lat = latency_ms(samples)
    yield metric("webhook_delivery_latency", lat["p50"], "ms", p50=lat["p50"], p99=lat["p99"], samples=lat["samples"])


@benchmark("webhooks.deliveries_per_second")
async def deliveries_per_second(ctx: Context) -> AsyncIterator[Metric]:
    """A backlog of outbox rows (one endpoint) drained to one receiver."""
    count = ctx.size(5000, 300)
    receiver = _Receiver()
    async with receiver.running(), _runtime(ctx) as rt:
        await rt.webhooks.create(WS, wire.WebhookCreateParams(url=receiver.url, enabled_events=["agent.created"]))
        await rt.webhook_delivery.close()  # fill the outbox first, then time the drain
        events = [outbox_event("agent.created", f"agent_{i}", WS) for i in range(count)]
        for start in range(0, count, 500):
            await rt.store.webhooks.add_events(events[start : start + 500])
        began = time.perf_counter()
        rt.webhook_delivery.start()
        await receiver.wait_for(count, timeout=600)
        elapsed = time.perf_counter() - began
    yield metric("webhook_deliveries_per_second", count / elapsed, "deliveries/s", deliveries=count)
