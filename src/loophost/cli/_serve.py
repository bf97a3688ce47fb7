"""`loophost serve`: the runtime behind the Claude Managed Agents HTTP API, on uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI

from ..runtime import DEFAULT_WORKSPACE, VAULT_KEY_ENV, Runtime, RuntimeConfig, tune_gc
from ..runtime._clock import now_str
from ..runtime.store import DatabaseInUse
from ..server import ApiKeys, HttpProtocol, ServerSettings, create_app, key_hash, metrics_app, new_key
from ._logging import configure_logging
from ._telemetry import ServeTelemetry, TelemetryUnavailable, start_tracing


def default_database() -> str:
    from platformdirs import user_data_dir

    return str(Path(user_data_dir("loophost")) / "loophost.db")


class _Server(uvicorn.Server):
    """Says where it listens once it does, and ends live streams before shutting down."""

    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self._app = app

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets=sockets)
        if self.started and self.servers:
            host, port = self.servers[0].sockets[0].getsockname()[:2]
            print(f"loophost listening on http://{host}:{port}", flush=True)
            if self._app.state.settings.console:
                print(f"console at http://{host}:{port}/console/", flush=True)
            # the agent core loads while the server already answers; then start-up's objects leave the collector
            self._app.state.runtime.workers.warm_up(then=tune_gc)

    def handle_exit(self, sig: int, frame: Any) -> None:
        self._app.state.closing.set()  # streams close cleanly; the lifespan then checkpoints and closes the runtime
        super().handle_exit(sig, frame)
        # uvicorn re-raises the signal after shutting down; a clean, graceful shutdown exits 0 instead
        self._captured_signals.clear()


class _MetricsServer(uvicorn.Server):
    """The `/metrics` listener of `--metrics-port`: says where it listens; the API's server owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets=sockets)
        if self.started and self.servers:
            host, port = self.servers[0].sockets[0].getsockname()[:2]
            print(f"metrics at http://{host}:{port}/metrics", flush=True)


def default_workspaces(database: str) -> Path | None:
    """`workspaces/` next to a database file; None for an in-memory database (a temporary directory then)."""
    path = database.removeprefix("sqlite:///")
    if not path or path == ":memory:" or "://" in path:
        return None
    return Path(path).absolute().parent / "workspaces"


def make_toolset(workspaces: Path, *, unsafe_no_sandbox: bool = False) -> Any:
    """The sandboxed built-in tools (refused without a working sandbox unless `unsafe_no_sandbox`); web_search uses
    a SearXNG instance when LOOPHOST_SEARXNG_URL is set."""
    from ..runtime.toolset import SearxngBackend, Toolset

    searxng = os.environ.get("LOOPHOST_SEARXNG_URL", "").strip()
    return Toolset(
        workspaces,
        search_backend=SearxngBackend(searxng) if searxng else None,
        search_unavailable_reason="no search backend is configured (the operator sets LOOPHOST_SEARXNG_URL)",
        unsafe_no_sandbox=unsafe_no_sandbox,
    )


def work_lease_seconds() -> int:
    """The lease of a self-hosted work item (`LOOPHOST_WORK_LEASE_SECONDS`, default 60)."""
    raw = os.environ.get("LOOPHOST_WORK_LEASE_SECONDS", "").strip()
    return int(raw) if raw else 60


async def serve(
    host: str,
    port: int,
    database: str,
    heartbeat: float,
    workspaces: str | None = None,
    *,
    console: bool = True,
    lease_ttl: float = 15.0,
    unsafe_no_sandbox: bool = False,
    webhooks_allow_private: bool = False,
    telemetry: ServeTelemetry | None = None,
) -> None:
    telemetry = telemetry or ServeTelemetry()
    configure_logging(telemetry.log_format, telemetry.log_level)
    try:
        tracing = start_tracing(telemetry.otlp_endpoint)
    except TelemetryUnavailable as exc:
        print(f"loophost serve: {exc}", file=sys.stderr, flush=True)
        sys.exit(2)
    if database.startswith(("postgresql://", "postgres://")) and not os.environ.get(VAULT_KEY_ENV, "").strip():
        # a node has no file to keep a generated key beside, and every node must decrypt what another wrote
        print(
            f"loophost serve: a node on PostgreSQL needs {VAULT_KEY_ENV}, the key that encrypts vault secrets, the "
            "same on every node (make one with `loophost vault-key`; see docs/vaults.md). Without it, secrets one "
            "node writes could not be read by another node or after a restart.",
            file=sys.stderr,
            flush=True,
        )
        sys.exit(2)
    chosen = Path(workspaces) if workspaces else default_workspaces(database)
    scratch = None if chosen is not None else tempfile.TemporaryDirectory(prefix="loophost-workspaces-")
    runtime = Runtime.from_url(
        database,
        config=RuntimeConfig(
            lease_ttl=lease_ttl,
            work_lease_seconds=work_lease_seconds(),
            webhooks_allow_private=webhooks_allow_private,
        ),
        toolset=make_toolset(chosen or Path(scratch.name), unsafe_no_sandbox=unsafe_no_sandbox),  # type: ignore[union-attr]
    )
    try:
        await runtime.open()
    except DatabaseInUse as exc:
        print(f"loophost serve: {exc}", file=sys.stderr, flush=True)
        if scratch is not None:
            scratch.cleanup()
        sys.exit(1)
    configured = os.environ.get("LOOPHOST_API_KEYS", "").strip()
    keys = ApiKeys.parse(configured) if configured else ApiKeys(await runtime.store.api_keys())
    if not keys:
        key = new_key()
        await runtime.store.add_api_key(key_hash(key), DEFAULT_WORKSPACE, now_str())
        keys = keys.with_key(key_hash(key), DEFAULT_WORKSPACE)
        print(f"generated an API key for workspace '{DEFAULT_WORKSPACE}' (shown only now): {key}", flush=True)
    on_api_port = telemetry.metrics and telemetry.metrics_port is None
    settings = ServerSettings(heartbeat_interval=heartbeat, console=console, metrics=on_api_port)
    app = create_app(runtime, keys=keys, settings=settings)
    # the process's logging is ours (`configure_logging`): uvicorn's loggers propagate to it
    uvicorn_level = "debug" if telemetry.log_level.lower() == "debug" else "warning"
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        http=HttpProtocol,
        server_header=False,  # no `server: uvicorn` on every response (nothing for a client to parse, or to learn)
        log_level=uvicorn_level,
        log_config=None,
        lifespan="on",
        timeout_graceful_shutdown=10,
    )
    server = _Server(config, app)
    metrics = None
    if telemetry.metrics and telemetry.metrics_port is not None:
        metrics = _MetricsServer(
            uvicorn.Config(
                metrics_app(runtime),
                host=host,
                port=telemetry.metrics_port,
                log_level=uvicorn_level,
                log_config=None,
                lifespan="off",
            )
        )
    try:
        async with asyncio.TaskGroup() as group:
            if metrics is not None:
                metrics_task = group.create_task(metrics.serve())
            await server.serve()
            if metrics is not None:
                metrics.should_exit = True
                await metrics_task
    finally:
        await runtime.close()
        if tracing is not None:
            tracing.shutdown()  # exports what is left
        if scratch is not None:
            scratch.cleanup()
    if not server.started:
        sys.exit(1)
