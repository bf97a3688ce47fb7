"""What `ClaudeManagedAgents` and `Local` share: one host logic over a `ControlPlane` of plain JSON calls.

The Claude provider implements the control plane over HTTP, `Local` over the embedded runtime; the session
creation, tool overrides, provisioning and the streaming connection are written once, here.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any, Protocol

from .._errors import ClientError, ConnectionLost, HostError, ProvisionError
from .._provider import OpenRequest, Recovery
from .._provision import provision
from .._results import TurnInput, TurnResult
from .._specs import AgentHandle, AgentSpec, EnvironmentSpec
from . import _cma

__all__ = ("CMAHost", "ControlPlane", "EventStream", "StreamingConnection")

log = logging.getLogger("loophost.client")

DEFAULT_ENVIRONMENT = EnvironmentSpec(name="loophost-default")


class EventStream(Protocol):
    """A session's live events (after a cursor, when given), as JSON objects."""

    def __aiter__(self) -> AsyncIterator[Mapping[str, Any]]: ...

    async def aclose(self) -> None: ...


class ControlPlane(Protocol):
    """The Claude Managed Agents calls the client needs, in their wire JSON. Transport errors raise
    `ConnectionLost`; error answers raise `HostError`."""

    async def create_agent(self, body: Mapping[str, Any]) -> dict[str, Any]: ...
    async def get_agent(self, agent_id: str) -> dict[str, Any]: ...
    async def archive_agent(self, agent_id: str) -> None: ...
    async def create_environment(self, body: Mapping[str, Any]) -> dict[str, Any]: ...
    async def list_environments(self, page: str | None) -> tuple[list[dict[str, Any]], str | None]: ...
    async def archive_environment(self, environment_id: str) -> None: ...
    async def create_session(self, body: Mapping[str, Any]) -> dict[str, Any]: ...
    async def send_events(self, session_id: str, events: Sequence[Mapping[str, Any]], key: str) -> None: ...
    async def list_events(self, session_id: str, page: str | None) -> tuple[list[Mapping[str, Any]], str | None]: ...
    async def open_stream(self, session_id: str, after_id: str | None, previews: bool) -> EventStream: ...


def bare_model(model: str) -> str:
    """`anthropic:claude-x` → `claude-x`: the host names models without a provider prefix."""
    prefix, sep, rest = model.partition(":")
    return rest if sep and prefix == "anthropic" else model


class CMAHost:
    """Provider logic for hosts that speak the Claude Managed Agents API."""

    name = "claude"
    supports_outcomes = True
    """`user.define_outcome` (`loophost.run(..., outcome=...)`) is part of this wire."""

    def control(self) -> ControlPlane:
        raise NotImplementedError

    def cache_scope(self) -> str:
        raise NotImplementedError

    # -- sessions ----------------------------------------------------------------------------------------------

    async def open_session(self, request: OpenRequest) -> StreamingConnection:
        control = self.control()
        if request.session_id is not None:
            return StreamingConnection(control, request.session_id, resumed=True, on_text_delta=request.on_text_delta)
        agent_id, environment_id = request.agent_id, request.environment_id
        if agent_id is None:
            if request.model is None:
                raise ClientError("say which agent runs the session: agent_id=, model= or session_id=")
            spec = AgentSpec(
                name=str(request.options.get("agent_name", "loophost-run")),
                model=request.model,
                system=request.system,
                tools=request.tools,
            )
            handle = await provision(self, spec)  # type: ignore[arg-type]
            agent_id, environment_id = handle.agent_id, environment_id or handle.environment_id
        if environment_id is None:
            environment_id = await self._environment_for(DEFAULT_ENVIRONMENT, "loophost")
        body: dict[str, Any] = {
            "agent": await self._session_agent(control, agent_id, request),
            "environment_id": environment_id,
        }
        if request.title is not None:
            body["title"] = request.title
        if request.metadata:
            body["metadata"] = dict(request.metadata)
        for key in ("vault_ids", "resources"):
            if key in request.options:
                body[key] = request.options[key]
        session = await control.create_session(body)
        conn = StreamingConnection(control, str(session["id"]), resumed=False, on_text_delta=request.on_text_delta)
        await conn.open_stream()  # before the first input: none of the session's events can be missed
        return conn

    async def _session_agent(self, control: ControlPlane, agent_id: str, request: OpenRequest) -> Any:
        """The session's `agent`: the agent as is, or with the client's missing tools added as overrides."""
        wanted = list(request.all_tools)
        reference: dict[str, Any] = {"type": "agent", "id": agent_id}
        if request.agent_version is not None:
            reference["version"] = request.agent_version
        if not wanted:
            return reference
        agent = await control.get_agent(agent_id)
        tools = list(agent.get("tools") or [])
        declared = {t.get("name") for t in tools if t.get("type") == "custom"}
        missing = [spec for spec in wanted if spec.name not in declared or spec is request.output_tool]
        if not missing:
            return reference
        names = {spec.name for spec in missing}
        tools = [t for t in tools if not (t.get("type") == "custom" and t.get("name") in names)]
        tools += [spec.to_custom_tool() for spec in missing]
        return {**reference, "type": "agent_with_overrides", "tools": tools}

    # -- provisioning ------------------------------------------------------------------------------------------

    async def provision(self, spec: AgentSpec) -> AgentHandle:
        control = self.control()
        digest = spec.digest()
        body: dict[str, Any] = {
            "name": spec.name,
            "model": bare_model(spec.model),
            "tools": [t.to_custom_tool() for t in spec.tools] + [dict(t) for t in spec.host_tools],
            "metadata": {"loophost_digest": digest},
        }
        if spec.system is not None:
            body["system"] = spec.system
        if spec.description is not None:
            body["description"] = spec.description
        body.update(spec.options)
        agent = await control.create_agent(body)
        agent_id = str(agent["id"])
        try:
            environment_id = await self._environment_for(spec.environment or DEFAULT_ENVIRONMENT, spec.name)
        except BaseException:
            try:
                await control.archive_agent(agent_id)
            except ClientError as exc:
                log.warning("could not archive agent %s after a failed provision: %s", agent_id, exc)
            raise
        return AgentHandle(
            agent_id=agent_id,
            name=spec.name,
            digest=digest,
            environment_id=environment_id,
            version=agent.get("version"),
        )

    async def _environment_for(self, env: EnvironmentSpec, base: str) -> str:
        """The environment for a spec: named `<name>-<digest8>`, created once; a duplicate name is adopted."""
        control = self.control()
        name = f"{env.name or base + '-env'}-{env.digest()[:8]}"
        try:
            created = await control.create_environment({"name": name, "config": dict(env.config)})
            return str(created["id"])
        except HostError as exc:
            if exc.status != 409:
                raise
        page: str | None = None
        for _ in range(100):
            data, page = await control.list_environments(page)
            for item in data:
                if item.get("name") == name and not item.get("archived_at"):
                    return str(item["id"])
            if not page:
                break
        raise ProvisionError(f"environment {name!r} exists but could not be found by name")

    async def teardown(self, handle: AgentHandle) -> None:
        """Archive the agent (its environment may serve other agents, so it stays)."""
        await self.control().archive_agent(handle.agent_id)


class StreamingConnection:
    """A session on a streaming host: one event stream, opened before input is sent, read turn by turn."""

    reconnectable = True

    def __init__(
        self,
        control: ControlPlane,
        session_id: str,
        *,
        resumed: bool,
        on_text_delta: Callable[[str], None] | None = None,
    ) -> None:
        self._control = control
        self._on_text_delta = on_text_delta
        self._previews = on_text_delta is not None
        self._session_id = session_id
        self._resumed = resumed
        self._stream: EventStream | None = None
        self._events: AsyncIterator[Mapping[str, Any]] | None = None
        self._last_id: str | None = None

    @property
    def session_id(self) -> str:
        return self._session_id

    @property
    def resumed(self) -> bool:
        return self._resumed

    async def open_stream(self) -> None:
        await self._close_stream()
        self._stream = await self._control.open_stream(self._session_id, self._last_id, self._previews)
        self._events = aiter(self._stream)

    async def _close_stream(self) -> None:
        stream, self._stream, self._events = self._stream, None, None
        if stream is not None:
            try:
                await stream.aclose()
            except Exception as exc:  # a broken stream may fail to close; it is dropped either way
                log.debug("closing a broken stream: %s", exc)

    async def turn(self, turn_input: TurnInput | None) -> AsyncIterator[Mapping[str, Any]]:
        if self._events is None:
            await self.open_stream()
        if turn_input is not None:
            await self._control.send_events(self._session_id, _cma.input_events(turn_input), turn_input.key)
        events = self._events
        assert events is not None
        while True:
            try:
                event = await anext(events)
            except StopAsyncIteration:
                await self._close_stream()
                raise ConnectionLost(
                    "the event stream ended before the turn did", delivered=True, session_id=self._session_id
                ) from None
            except ConnectionLost as exc:
                await self._close_stream()
                exc.delivered = True
                raise
            kind = event.get("type")
            if kind == "event_delta" or kind == "event_start":  # stream-only previews of the agent's message
                text = _cma.preview_text(event)
                if text and self._on_text_delta is not None:
                    self._on_text_delta(text)
                continue
            if event.get("id") is not None:
                self._last_id = str(event["id"])
            yield event
            if _cma.ends_turn(event):
                return

    def ends_turn(self, event: Mapping[str, Any]) -> bool:
        return _cma.ends_turn(event)

    def normalize(self, events: Sequence[Mapping[str, Any]]) -> TurnResult:
        return _cma.normalize(events)

    def text_delta(self, event: Mapping[str, Any]) -> str | None:
        """A message's text, unless its previews already delivered it in fragments."""
        return None if self._previews else _cma.text_delta(event)

    async def recover(self, seen: set[str]) -> Recovery:
        """Reopen the stream (after the last event seen, where the host replays), then read the whole history:
        the stream first, so nothing that happens in between is missed."""
        await self.open_stream()
        history: list[Mapping[str, Any]] = []
        page: str | None = None
        pages: set[str] = set()
        while True:
            data, page = await self._control.list_events(self._session_id, page)
            history.extend(data)
            if not page or page in pages:
                break
            pages.add(page)
        recovered = _cma.recovery(history, seen)
        if recovered.missed and recovered.missed[-1].get("id") is not None:
            self._last_id = str(recovered.missed[-1]["id"])
        return recovered

    async def close(self) -> None:
        await self._close_stream()
