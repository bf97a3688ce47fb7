"""How turns run (a light module: `import loophost.runtime` must not load pydantic-ai)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AgentLoopConfig:
    max_retries: int = 4
    """Transient model failures retried per model request before the turn ends with retries_exhausted."""
    retry_backoff: float = 0.5
    retry_backoff_max: float = 8.0
    max_model_requests_per_turn: int = 200
    history_cache_size: int = 256
    """Decoded histories kept in memory, so consecutive turns of a session do not decode it again."""
    mcp_connect_timeout: float = 30.0
    """Seconds an MCP server has to answer `initialize` and `tools/list` before it counts as unreachable."""
    mcp_call_timeout: float = 300.0
    mcp_idle_timeout: float = 600.0
    """A session's MCP connection unused this long is closed (the next turn that needs it connects again)."""
