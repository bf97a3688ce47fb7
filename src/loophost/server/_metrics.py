"""`GET /metrics`: the runtime's metrics in the Prometheus text format, served as plain ASGI in front of the app.

Not behind the API key (a scraper has none; the numbers name no workspace, session or secret), and optionally on a
port of its own (`metrics_app`, `loophost serve --metrics-port`) so an operator can keep it off the public
listener. Counters are kept where things happen (`runtime/_metrics.py`); the gauges that describe state are read
here, once per scrape.
"""

from __future__ import annotations

import logging
import sys

from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from ..runtime import Runtime, Unavailable, _metrics

__all__ = ("MetricsRoute", "metrics_app", "render")

PATH = "/metrics"
log = logging.getLogger("loophost.server")


async def render(runtime: Runtime) -> bytes:
    """The exposition text, with the state gauges read now (the counts by state: three grouped queries, and the
    webhook backlog: one count)."""
    from prometheus_client import generate_latest

    gauges = _metrics.gauges()
    try:
        counts = await runtime.store.census.counts()
    except Unavailable as exc:  # the database is down: the rest is still worth a scrape
        log.warning("metrics: the counts by state are left out: %s", exc)
    else:
        for name, values in (("sessions", counts.sessions), ("work", counts.work_items), ("queue", counts.queued)):
            gauge = gauges[name]
            gauge.clear()  # a label with nothing left is dropped, not left at its last value
            for label, value in values.items():
                gauge.labels(label).set(value)
        gauges["webhooks"].set(counts.webhook_backlog)
    gauges["subscribers"].set(runtime.bus.subscriber_count())
    gauges["workers"].set(runtime.workers.active())
    gauges["leases"].set(runtime.workers.leases_held())
    bash = sys.modules.get("loophost.runtime.toolset._bash")  # no sandbox was ever started if it is not loaded
    gauges["sandboxes"].set(bash.live_sandboxes() if bash is not None else 0)
    return generate_latest(_metrics.registry())


async def _answer(runtime: Runtime, scope: Scope, receive: Receive, send: Send) -> None:
    from prometheus_client import CONTENT_TYPE_LATEST

    response = Response(await render(runtime), media_type=CONTENT_TYPE_LATEST)
    await response(scope, receive, send)


class MetricsRoute:
    """ASGI: `GET /metrics` answered here, without a key; anything else to `app`. Counting starts with it."""

    def __init__(self, app: ASGIApp, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime
        _metrics.enable()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == PATH and scope["method"] in ("GET", "HEAD"):
            await _answer(self.runtime, scope, receive, send)
        else:
            await self.app(scope, receive, send)


def metrics_app(runtime: Runtime) -> ASGIApp:
    """An ASGI app serving only `/metrics` (404 elsewhere), for a listener of its own (run without lifespan: the
    API's server owns the runtime)."""

    async def not_found(scope: Scope, receive: Receive, send: Send) -> None:
        await Response(b"not found\n", status_code=404)(scope, receive, send)

    return MetricsRoute(not_found, runtime)
