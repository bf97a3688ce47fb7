"""`AgentSpec` and `AgentHandle`: the host-side agent a client wants, and what provisioning made of it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from ._results import ToolSpec

__all__ = ("AgentHandle", "AgentSpec", "EnvironmentSpec")


@dataclass(frozen=True, slots=True)
class EnvironmentSpec:
    """The environment the agent's sessions run in; `config` goes to the host verbatim."""

    name: str | None = None
    config: Mapping[str, Any] = field(default_factory=lambda: {"type": "cloud", "networking": {"type": "unrestricted"}})

    def digest(self) -> str:
        return _digest({"config": self.config})


@dataclass(frozen=True, slots=True)
class AgentSpec:
    """A declarative agent. Two specs that differ only by `name` are the same agent (same digest).

    `tools` are the local tools the agent may call (`@tool` functions, `Tool`s or `ToolSpec`s); `host_tools` are
    host-side tool objects passed verbatim (e.g. `{"type": "agent_toolset_20260401"}`).
    """

    name: str
    model: str
    system: str | None = None
    tools: tuple[ToolSpec, ...] = ()
    host_tools: tuple[Mapping[str, Any], ...] = ()
    description: str | None = None
    environment: EnvironmentSpec | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    """Provider-specific settings (e.g. Bedrock's `execution_role_arn`), part of the digest."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "tools", tuple(_tool_spec(t) for t in self.tools))
        object.__setattr__(self, "host_tools", tuple(dict(t) for t in self.host_tools))

    def digest(self) -> str:
        """First 16 hex chars of a SHA-256 over everything but the name."""
        body = asdict(self)
        body.pop("name")
        return _digest(body)


@dataclass(frozen=True, slots=True)
class AgentHandle:
    """What provisioning made: the host-side ids, and the spec digest they were made for."""

    agent_id: str
    name: str
    digest: str
    environment_id: str | None = None
    version: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "extra": dict(self.extra)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AgentHandle:
        return cls(
            agent_id=str(data["agent_id"]),
            name=str(data["name"]),
            digest=str(data["digest"]),
            environment_id=data.get("environment_id"),
            version=data.get("version"),
            extra=dict(data.get("extra") or {}),
        )


def _tool_spec(item: Any) -> ToolSpec:
    if isinstance(item, ToolSpec):
        return item
    from ._tools import Tool, tools_of

    if isinstance(item, Tool):
        return item.spec
    found = tools_of([item])
    return found[0].spec


def _digest(value: Any) -> str:
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), default=_jsonable)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, tuple | frozenset | set):
        return list(value)
    raise TypeError(f"not JSON-serializable in a spec: {type(value).__name__}")
