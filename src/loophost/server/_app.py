"""The FastAPI application: the runtime behind the Claude Managed Agents HTTP API."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.types import ASGIApp

from .. import __version__
from ..runtime import Runtime
from ._console import mount_console
from ._deps import SECURITY_SCHEMES
from ._errors import install_error_handlers
from ._keys import ApiKeys
from ._metrics import MetricsRoute
from ._middleware import RequestContext
from ._send_events import SendEventsRoute
from ._settings import ServerSettings
from ._sse import Closing
from ._worker_auth import WorkerCredentials
from .routes import (
    agents,
    deployments,
    environments,
    events,
    files,
    memory_stores,
    sessions,
    skills,
    vaults,
    webhooks,
    work,
)

ROUTERS = (
    agents.router,
    environments.router,
    work.router,
    sessions.router,
    events.router,
    files.router,
    vaults.router,
    memory_stores.router,
    skills.router,
    webhooks.router,
    deployments.router,
)
"""Each with the prefix `API_PREFIX`. Their routes join the app's own router rather than being included:
FastAPI matches an included router's routes through a layer of its own, on every request, twice."""
API_PREFIX = "/v1"
_WITHOUT_FASTAPI_TELEMETRY: dict[str, Any] = (
    {"telemetry": {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}}
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters
    else {}
)
"""FastAPI's own automatic telemetry (in recent versions) is off: loophost makes the request spans itself, for the
send route served in front of FastAPI too (`_tracing.py`), and keeps exception texts out of exported logs."""


class _App(FastAPI):
    """FastAPI, with the request every turn makes (`POST /v1/sessions/{id}/events`) served in front of it."""

    def build_middleware_stack(self) -> ASGIApp:
        state = self.state
        served: ASGIApp = SendEventsRoute(super().build_middleware_stack(), state.runtime, state.keys, state.settings)
        if state.settings.metrics:
            served = MetricsRoute(served, state.runtime)  # `/metrics`, no key
        return WorkerCredentials(served, state.runtime)  # what a worker's credential may call, decided once


def create_app(runtime: Runtime, *, keys: ApiKeys, settings: ServerSettings | None = None) -> FastAPI:
    """An ASGI app serving `runtime`. The app opens the runtime on startup and closes it on shutdown; live streams
    end cleanly first (`app.state.closing`)."""
    settings = settings or ServerSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.open()
        try:
            yield
        finally:
            app.state.closing.set()
            await runtime.close()

    app = _App(
        title="loophost",
        version=__version__,
        summary="A self-hostable managed-agent runtime, wire-compatible with Claude Managed Agents.",
        lifespan=lifespan,
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
        **_WITHOUT_FASTAPI_TELEMETRY,
    )
    app.state.runtime = runtime
    app.state.keys = keys
    app.state.settings = settings
    app.state.closing = Closing()
    install_error_handlers(app)
    app.add_middleware(RequestContext, settings=settings)
    for router in ROUTERS:
        if router.prefix != API_PREFIX:
            raise ValueError(f"a router of the API has the prefix {API_PREFIX!r}, not {router.prefix!r}")
        app.router.routes.extend(router.routes)
    if settings.console:
        mount_console(app)

    def openapi() -> dict[str, Any]:
        """FastAPI's document of the app's routes and of those served in front of it (`OPENAPI_ONLY`), with how
        callers authenticate (checked by `workspace`, not a security dependency)."""
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                routes=[*app.routes, *events.OPENAPI_ONLY.routes],
                separate_input_output_schemas=app.separate_input_output_schemas,
            )
            schema.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
            schema["security"] = [{"bearer": []}, {"apiKey": []}]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
