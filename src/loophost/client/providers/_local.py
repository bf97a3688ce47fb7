"""`Local`: the loophost runtime embedded in this process. The same sessions, events and behaviour as a
loophost server, without HTTP: the control plane calls the runtime directly and the stream is its log.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .._errors import ClientError, HostError
from ._cma_host import CMAHost, ControlPlane, EventStream

if TYPE_CHECKING:
    from ...runtime import Runtime, RuntimeFailure

__all__ = ("Local",)


class Local(CMAHost):
    """The runtime in-process: `Local()` (in memory), `Local("loophost.db")`, or `Local(runtime=rt)`.

    Opened on first use by a run and closed after it, or held open with `async with Local(...) as host`
    (an in-memory runtime keeps its sessions only while it is open).
    """

    name = "local"

    def __init__(
        self,
        database: str | os.PathLike[str] = ":memory:",
        *,
        runtime: Runtime | None = None,
        workspace: str = "default",
        **runtime_options: Any,
    ) -> None:
        self.database = os.fspath(database)
        self.workspace = workspace
        self._given = runtime
        self._runtime: Runtime | None = runtime
        self._options = runtime_options
        self._depth = 0

    def __repr__(self) -> str:
        return f"Local(database={self.database!r})"

    @property
    def runtime(self) -> Runtime:
        if self._runtime is None:
            raise ClientError("the provider is not open: use `async with` (loophost.run does it for you)")
        return self._runtime

    async def __aenter__(self) -> Local:
        if self._depth == 0 and self._given is None:
            from ...runtime import Runtime

            url = "sqlite:///:memory:" if self.database == ":memory:" else self.database
            runtime = Runtime.from_url(url, **self._options)
            await runtime.open()
            self._runtime = runtime
        elif self._depth == 0 and self._given is not None:
            await self._given.open()
        self._depth += 1
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._depth -= 1
        if self._depth == 0 and self._given is None and self._runtime is not None:
            runtime, self._runtime = self._runtime, None
            await runtime.close()

    def cache_scope(self) -> str:
        if self._given is not None:
            ident = f"runtime-{id(self._given)}"
        elif self.database == ":memory:":
            ident = f"memory-{id(self._runtime)}"  # each in-memory runtime is a host of its own
        else:
            ident = os.path.abspath(self.database)
        return f"local:{ident}:{self.workspace}"

    def control(self) -> ControlPlane:
        return _RuntimeControl(self.runtime, self.workspace)


class _RuntimeControl:
    """The control plane as runtime calls: wire params in, wire JSON out, runtime errors as `HostError`."""

    def __init__(self, runtime: Runtime, workspace: str) -> None:
        from ... import wire

        self._rt = runtime
        self._ws = workspace
        self._wire = wire

    async def _guard(self, call: Any) -> Any:
        from ...runtime import RuntimeFailure

        try:
            return await call
        except RuntimeFailure as exc:
            raise _host_error(exc) from exc

    @staticmethod
    def _json(model: Any) -> dict[str, Any]:
        return model.model_dump(mode="json")

    async def create_agent(self, body: Mapping[str, Any]) -> dict[str, Any]:
        params = self._validate(self._wire.AgentCreateParams, body)
        return self._json(await self._guard(self._rt.create_agent(self._ws, params)))

    async def get_agent(self, agent_id: str) -> dict[str, Any]:
        return self._json(await self._guard(self._rt.get_agent(self._ws, agent_id)))

    async def archive_agent(self, agent_id: str) -> None:
        await self._guard(self._rt.archive_agent(self._ws, agent_id))

    async def create_environment(self, body: Mapping[str, Any]) -> dict[str, Any]:
        params = self._validate(self._wire.EnvironmentCreateParams, body)
        return self._json(await self._guard(self._rt.create_environment(self._ws, params)))

    async def list_environments(self, page: str | None) -> tuple[list[dict[str, Any]], str | None]:
        result = await self._guard(self._rt.list_environments(self._ws, limit=100, page=page))
        return [self._json(item) for item in result.data], result.next_page

    async def archive_environment(self, environment_id: str) -> None:
        await self._guard(self._rt.archive_environment(self._ws, environment_id))

    async def create_session(self, body: Mapping[str, Any]) -> dict[str, Any]:
        params = self._validate(self._wire.SessionCreateParams, body)
        return self._json(await self._guard(self._rt.start_session(self._ws, params)))

    async def send_events(self, session_id: str, events: Sequence[Mapping[str, Any]], key: str) -> None:
        params = self._validate(self._wire.SendEventsParams, {"events": list(events)})
        await self._guard(self._rt.send_events(self._ws, session_id, params.events, idempotency_key=key))

    async def list_events(self, session_id: str, page: str | None) -> tuple[list[Mapping[str, Any]], str | None]:
        result = await self._guard(self._rt.list_events(self._ws, session_id, limit=1000, page=page))
        return [json.loads(item.body) for item in result.data], result.next_page

    async def open_stream(self, session_id: str, after_id: str | None, previews: bool) -> EventStream:
        stream = await self._guard(self._rt.open_stream(self._ws, session_id, after_id=after_id, previews=previews))
        return _LogEvents(stream)

    def _validate(self, model: Any, body: Mapping[str, Any]) -> Any:
        from pydantic import ValidationError

        try:
            return model.model_validate(dict(body))
        except ValidationError as exc:
            raise HostError(
                f"invalid request: {exc.errors(include_url=False)}", status=400, error_type="invalid_request_error"
            ) from exc


class _LogEvents:
    """The runtime's log stream as event objects."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def __aiter__(self) -> AsyncIterator[Mapping[str, Any]]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Mapping[str, Any]]:
        async for item in self._stream:
            yield json.loads(item.body)

    async def aclose(self) -> None:
        await self._stream.aclose()


def _host_error(exc: RuntimeFailure) -> HostError:
    from ...runtime import Conflict, InvalidRequest, NotFound, PayloadTooLarge

    status = 500
    for kind, code in ((NotFound, 404), (Conflict, 409), (PayloadTooLarge, 413), (InvalidRequest, 400)):
        if isinstance(exc, kind):
            status = code
            break
    return HostError(
        f"{exc.error_type}: {exc.message}",
        status=status,
        error_type=exc.error_type,
        body={"type": "error", "error": {"type": exc.error_type, "message": exc.message}},
    )
