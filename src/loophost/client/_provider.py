"""The `Provider` protocol: what a loop host must offer for the one `Session` loop to drive it.

A provider is a small configuration object (where the host is, how to authenticate). `open_session`
attaches to or creates a host-side session and returns a `Connection`, through which the loop plays turns.
Whether the host streams (Claude Managed Agents, a loophost server, `Local`) or answers each request
(Bedrock AgentCore) is the connection's business: `turn()` yields one turn's raw events either way.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ._results import ToolSpec, ToolUse, TurnInput, TurnResult

if TYPE_CHECKING:
    from ._specs import AgentHandle, AgentSpec

__all__ = ("Connection", "OpenRequest", "Provider", "Recovery")


@dataclass(frozen=True, slots=True)
class OpenRequest:
    """Everything the loop knows when it opens a session; hosts use what applies to them.

    `tools` are the handler's local tools; `output_tool` the terminal tool of structured output. Hosts
    that keep tools on a host-side agent add them to the session (Claude: `agent_with_overrides`); hosts
    that take tools per request declare them on each one (Bedrock). `options` are provider-specific and
    passed through unchanged.
    """

    session_id: str | None = None
    agent_id: str | None = None
    agent_version: int | None = None
    environment_id: str | None = None
    model: str | None = None
    system: str | None = None
    tools: tuple[ToolSpec, ...] = ()
    output_tool: ToolSpec | None = None
    title: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)
    on_text_delta: Callable[[str], None] | None = None
    """Set when the caller renders text as it streams: hosts that stream previews deliver them here."""

    @property
    def all_tools(self) -> tuple[ToolSpec, ...]:
        return (*self.tools, self.output_tool) if self.output_tool is not None else self.tools


@dataclass(frozen=True, slots=True)
class Recovery:
    """What a reconnect found in the host's durable history.

    `missed`: events the client had not seen, in order. `answered`: tool-use ids that already have a
    result or confirmation on the host (never send those again). `pending`: custom tool uses still waiting
    for a result, oldest first; `awaiting_confirmation`: host tool uses waiting for allow/deny.
    """

    missed: tuple[Mapping[str, Any], ...] = ()
    answered: frozenset[str] = frozenset()
    pending: tuple[ToolUse, ...] = ()
    awaiting_confirmation: tuple[ToolUse, ...] = ()
    latest_status: str | None = None
    """The type of the newest status event in the history (e.g. `session.status_running`), if any."""


@runtime_checkable
class Connection(Protocol):
    """One attached host-side session."""

    @property
    def session_id(self) -> str: ...

    @property
    def resumed(self) -> bool:
        """Whether `open_session` attached to a session that existed before (`session_id=` given)."""
        ...

    @property
    def reconnectable(self) -> bool:
        """Whether `recover()` can pick the session up after a dropped connection."""
        ...

    def turn(self, turn_input: TurnInput | None) -> AsyncIterator[Mapping[str, Any]]:
        """Send `turn_input` (if any) and yield the raw events of the turn it starts, up to its boundary.

        Raises `ConnectionLost` when the transport fails; the loop may then `recover()` and call
        `turn(None)` to keep reading, or resend what the recovery shows was not received.
        """
        ...

    def normalize(self, events: Sequence[Mapping[str, Any]]) -> TurnResult:
        """Fold one turn's raw events into a `TurnResult`. Pure; the raw events are carried through."""
        ...

    def text_delta(self, event: Mapping[str, Any]) -> str | None:
        """The text an event adds to the agent's reply as it streams, for live rendering."""
        ...

    async def recover(self, seen: set[str]) -> Recovery:
        """Reattach after a drop: reopen the stream and read the durable history against `seen` ids."""
        ...

    async def close(self) -> None:
        """Release the connection (the host-side session stays)."""
        ...


@runtime_checkable
class Provider(Protocol):
    """A loop host. Use it as an async context manager to hold its resources across runs (optional)."""

    name: str

    async def __aenter__(self) -> Any: ...

    async def __aexit__(self, *exc_info: object) -> None: ...

    async def open_session(self, request: OpenRequest) -> Connection:
        """Create a host-side session (or attach to `request.session_id`) and connect to it."""
        ...

    async def provision(self, spec: AgentSpec) -> AgentHandle:
        """Create the host-side agent (and environment) for `spec`; `loophost.provision` caches the handle."""
        ...

    async def teardown(self, handle: AgentHandle) -> None:
        """Remove what `provision` created. Raises on failure (the cache keeps the entry then)."""
        ...

    def cache_scope(self) -> str:
        """Which host this is, for the provision cache: handles are only reused on the same host."""
        ...
