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
