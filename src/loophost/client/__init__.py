"""The client: one `Session` loop that drives any loop host while the agent's tools run here.

`run` / `arun` run a prompt to its terminal and return a `SessionResult`; `start` keeps a live session for
follow-ups; `@tool` declares local tools; `provision` / `teardown` manage the host-side agent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._api import LiveSession, arun, run, start
from ._errors import (
    ClientError,
    ConnectionLost,
    HostError,
    MaxTurnsExceeded,
    OutputValidationError,
    ProvisionError,
    RunHalted,
    SessionClosed,
    SessionTimeout,
    TokenLimitExceeded,
    UnresolvedRequiresAction,
)
from ._provider import Connection, OpenRequest, Provider, Recovery
from ._provision import ProvisionCache, provision, teardown
from ._results import (
    Confirmation,
    Outcome,
    OutcomeEvaluation,
    SessionResult,
    Terminal,
    ToolResult,
    ToolSpec,
    ToolUse,
    TurnInput,
    TurnResult,
    Usage,
)
from ._session import GuardInfo, Limits, Session
from ._specs import AgentHandle, AgentSpec, EnvironmentSpec
from ._tools import Tool, ToolCallContext, make_tool, tool, tools_of

if TYPE_CHECKING:
    from ._worker import Worker
    from .providers import BedrockAgentCore, ClaudeManagedAgents, Local

__all__ = (
    "AgentHandle",
    "AgentSpec",
    "BedrockAgentCore",
    "ClaudeManagedAgents",
    "ClientError",
    "Confirmation",
    "Connection",
    "ConnectionLost",
    "EnvironmentSpec",
    "GuardInfo",
    "HostError",
    "Limits",
    "LiveSession",
    "Local",
    "MaxTurnsExceeded",
    "OpenRequest",
    "Outcome",
    "OutcomeEvaluation",
    "OutputValidationError",
    "Provider",
    "ProvisionCache",
    "ProvisionError",
    "Recovery",
    "RunHalted",
    "Session",
    "SessionClosed",
    "SessionResult",
    "SessionTimeout",
    "Terminal",
    "TokenLimitExceeded",
    "Tool",
    "ToolCallContext",
    "ToolResult",
    "ToolSpec",
    "ToolUse",
    "TurnInput",
    "TurnResult",
    "UnresolvedRequiresAction",
    "Usage",
    "Worker",
    "arun",
    "make_tool",
    "provision",
    "run",
    "start",
    "teardown",
    "tool",
    "tools_of",
)


def __getattr__(name: str) -> Any:
    """Providers load on first use (httpx2 for Claude, the runtime for Local, botocore for Bedrock)."""
    if name in ("BedrockAgentCore", "ClaudeManagedAgents", "Local"):
        from . import providers

        return getattr(providers, name)
    if name == "Worker":  # the worker imports the sandboxed toolset
        from ._worker import Worker

        return Worker
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
