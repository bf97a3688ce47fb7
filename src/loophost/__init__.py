"""loophost: one agent session loop, any loop host; your tools run locally.

    import loophost

    @loophost.tool
    def lookup(city: str) -> str:
        "The weather in a city."
        ...

    result = loophost.run(loophost.Local(), model="scripted", handler=[lookup], prompt="...")

The client API is re-exported here and imported on first use, so `import loophost` stays light. The
runtime (`loophost.runtime`), the server (`loophost.server`) and the wire models (`loophost.wire`) are
packages of their own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .client import (
        AgentHandle,
        AgentSpec,
        BedrockAgentCore,
        ClaudeManagedAgents,
        ClientError,
        Confirmation,
        ConnectionLost,
        EnvironmentSpec,
        GuardInfo,
        HostError,
        LiveSession,
        Local,
        MaxTurnsExceeded,
        Outcome,
        OutcomeEvaluation,
        OutputValidationError,
        Provider,
        ProvisionError,
        RunHalted,
        Session,
        SessionClosed,
        SessionResult,
        SessionTimeout,
        TokenLimitExceeded,
        ToolCallContext,
        ToolResult,
        ToolUse,
        UnresolvedRequiresAction,
        Usage,
        Worker,
        arun,
        provision,
        run,
        start,
        teardown,
        tool,
    )

__all__ = (
    "AgentHandle",
    "AgentSpec",
    "BedrockAgentCore",
    "ClaudeManagedAgents",
    "ClientError",
    "Confirmation",
    "ConnectionLost",
    "EnvironmentSpec",
    "GuardInfo",
    "HostError",
    "LiveSession",
    "Local",
    "MaxTurnsExceeded",
    "Outcome",
    "OutcomeEvaluation",
    "OutputValidationError",
    "Provider",
    "ProvisionError",
    "RunHalted",
    "Session",
    "SessionClosed",
    "SessionResult",
    "SessionTimeout",
    "TokenLimitExceeded",
    "ToolCallContext",
    "ToolResult",
    "ToolUse",
    "UnresolvedRequiresAction",
    "Usage",
    "Worker",
    "__version__",
    "arun",
    "provision",
    "run",
    "start",
    "teardown",
    "tool",
)


def __getattr__(name: str) -> Any:
    if name in __all__ and name != "__version__":
        from . import client

        return getattr(client, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
