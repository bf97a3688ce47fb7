"""The client's vocabulary: tool uses and results, usage, and what a turn and a run come to.

Every host speaks its own wire; providers fold it into these plain values, and the raw events ride along
unchanged on every result, so nothing the host said is lost.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from uuid import uuid4

__all__ = (
    "Confirmation",
    "Outcome",
    "OutcomeEvaluation",
    "SessionResult",
    "Terminal",
    "ToolResult",
    "ToolSpec",
    "ToolUse",
    "TurnInput",
    "TurnResult",
    "Usage",
)

Terminal = Literal["end_turn", "requires_action", "terminated"]
"""How a turn ended: the agent is done, it waits on the client, or the session cannot go on."""


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool declaration as hosts take it: a name, a description and a JSON Schema for the input."""

    name: str
    description: str
    input_schema: Mapping[str, Any]

    def to_custom_tool(self) -> dict[str, Any]:
        """The Claude Managed Agents `custom` tool object."""
        return {
            "type": "custom",
            "name": self.name,
            "description": self.description,
            "input_schema": dict(self.input_schema),
        }


@dataclass(frozen=True, slots=True)
class ToolUse:
    """One tool call the agent made: `id` is the host's id for it (the key of exactly-once execution)."""

    id: str
    name: str
    input: Mapping[str, Any] = field(default_factory=dict)
    server: str | None = None
    """The MCP server of an MCP tool use (`name` is the tool's name on that server); None for other tools."""
    thread: str | None = None
    """The child thread (`sthr_...`) that made the call, when a coordinator's thread needs the client; answered like
    any other (the host routes the answer to its thread). None for the session's own calls."""


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What the client answers to one tool use (or, in `server_tool_results`, what the host's own tool gave)."""

    tool_use_id: str
    text: str
    is_error: bool = False


@dataclass(frozen=True, slots=True)
class Confirmation:
    """The client's answer to an ask-gated host tool: allow it, or deny it with a message for the agent."""

    tool_use_id: str
    allow: bool
    message: str | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """Work toward `description` until a grader finds it meets `rubric` (text; hosts that speak Claude Managed
    Agents only). The host revises up to `max_iterations` times (its default: 3)."""

    description: str
    rubric: str
    max_iterations: int | None = None


@dataclass(frozen=True, slots=True)
class OutcomeEvaluation:
    """One grading of an outcome: `result` is satisfied, needs_revision, max_iterations_reached, failed or
    interrupted."""

    outcome_id: str
    iteration: int
    result: str
    explanation: str = ""


@dataclass(frozen=True, slots=True)
class TurnInput:
    """What the client sends to start or continue a turn: a user message, tool results, confirmations.

    `tool_uses` are the calls `tool_results` answer, in the same order (request/response hosts echo them).
    """

    text: str | None = None
    tool_uses: tuple[ToolUse, ...] = ()
    tool_results: tuple[ToolResult, ...] = ()
    confirmations: tuple[Confirmation, ...] = ()
    key: str = field(default_factory=lambda: uuid4().hex)
    """An idempotency key: resending the same input after a dropped connection is applied once."""
    outcome: Outcome | None = None
    """An outcome to define (in place of, or after, the text)."""

    def is_empty(self) -> bool:
        return self.text is None and not self.tool_results and not self.confirmations and self.outcome is None


@dataclass(slots=True)
class Usage:
    """Tokens summed over turns; `raw` keeps each host usage object as it came."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    raw: list[Mapping[str, Any]] = field(default_factory=list)

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def add(self, other: Usage | None) -> None:
        if other is None:
            return
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cache_creation_input_tokens += other.cache_creation_input_tokens
        self.cache_read_input_tokens += other.cache_read_input_tokens
        self.raw.extend(other.raw)

    @classmethod
    def from_raw(cls, raw: Mapping[str, Any]) -> Usage:
        """From a usage object that names its counts the Anthropic way (or Bedrock's camelCase)."""

        def count(*keys: str) -> int:
            for key in keys:
                value = raw.get(key)
                if isinstance(value, int):
                    return value
            return 0

        return cls(
            input_tokens=count("input_tokens", "inputTokens"),
            output_tokens=count("output_tokens", "outputTokens"),
            cache_creation_input_tokens=count("cache_creation_input_tokens", "cacheWriteInputTokens"),
            cache_read_input_tokens=count("cache_read_input_tokens", "cacheReadInputTokens"),
            raw=[raw],
        )


@dataclass(frozen=True, slots=True)
class TurnResult:
    """One turn folded by its provider: how it ended, and what the client must do about it.

    `tool_uses` are the custom tools the client runs; `confirmations` the host tools waiting for allow or
    deny; `server_tool_uses` what the host ran itself (observed, never executed here), and `server_tool_results`
    their results (built-in and MCP tools, and the denials of confirmations).
    """

    terminal: Terminal
    stop_reason: Any
    text: str = ""
    tool_uses: tuple[ToolUse, ...] = ()
    confirmations: tuple[ToolUse, ...] = ()
    server_tool_uses: tuple[ToolUse, ...] = ()
    server_tool_results: tuple[ToolResult, ...] = ()
    usage: Usage | None = None
    events: tuple[Mapping[str, Any], ...] = ()
    outcome_evaluations: tuple[OutcomeEvaluation, ...] = ()


@dataclass(slots=True)
class SessionResult:
    """One request to its terminal: the last turn's text and stop reason, the rest summed over the request.

    `events` are the host's raw events, in order, each once (the exactly-once record of the run).
    """

    terminal: Terminal
    stop_reason: Any
    session_id: str
    text: str = ""
    tool_uses: list[ToolUse] = field(default_factory=list)
    server_tool_uses: list[ToolUse] = field(default_factory=list)
    server_tool_results: list[ToolResult] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    turns: int = 0
    events: list[Mapping[str, Any]] = field(default_factory=list)
    output: Any = None
    outcome_evaluations: list[OutcomeEvaluation] = field(default_factory=list)
    """Every grading of an outcome during the request, in order (the last one is its verdict)."""

    @property
    def ok(self) -> bool:
        return self.terminal == "end_turn"

    @property
    def budget_reached(self) -> bool:
        """The host paused the session at its budget (raise the budget to go on; `terminal` is "terminated")."""
        reason = self.stop_reason
        return isinstance(reason, Mapping) and reason.get("type") == "budget_reached"


def joined_text(blocks: Sequence[Mapping[str, Any]]) -> str:
    """The text of content blocks, concatenated."""
    return "".join(str(block.get("text", "")) for block in blocks if block.get("type") == "text")
