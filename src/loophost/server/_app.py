"""The FastAPI application: the runtime behind the Claude Managed Agents HTTP API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from .. import __version__
from ..runtime import Runtime
from ._deps import SECURITY_SCHEMES
from ._errors import install_error_handlers
from ._keys import ApiKeys
from ._middleware import RequestContext
from ._settings import ServerSettings
from ._sse import Closing
from .routes import agents, environments, events, files, sessions

ROUTERS = (agents.router, environments.router, sessions.router, events.router, files.router)


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

    app = FastAPI(
        title="loophost",
        version=__version__,
        summary="A self-hostable managed-agent runtime, wire-compatible with Claude Managed Agents.",
        lifespan=lifespan,
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    app.state.runtime = runtime
    app.state.keys = keys
    app.state.settings = settings
    app.state.closing = Closing()
    install_error_handlers(app)
    app.add_middleware(RequestContext, settings=settings)
    for router in ROUTERS:
        app.include_router(router, prefix="/v1")
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        """FastAPI's document, with how callers authenticate (checked by `workspace`, not a security dependency)."""
        if app.openapi_schema is None:
            schema = generate()
            schema.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
            schema["security"] = [{"bearer": []}, {"apiKey": []}]
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]
    return app
