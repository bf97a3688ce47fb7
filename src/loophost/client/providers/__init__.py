"""Loop hosts: `ClaudeManagedAgents` (HTTP + SSE), `Local` (in-process), `BedrockAgentCore` (SigV4 + event
stream). Each is imported when first named, so a program pays only for the host it uses."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._bedrock import BedrockAgentCore
    from ._claude import ClaudeManagedAgents
    from ._local import Local

__all__ = ("BedrockAgentCore", "ClaudeManagedAgents", "Local")

_WHERE = {"ClaudeManagedAgents": "._claude", "Local": "._local", "BedrockAgentCore": "._bedrock"}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(module, __name__), name)
