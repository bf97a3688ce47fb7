"""The Claude Managed Agents event vocabulary, folded for the loop. Shared by `ClaudeManagedAgents` and
`Local`: a loophost runtime speaks the same events whether it is reached over HTTP or in-process."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .._provider import Recovery
from .._results import (
    Confirmation,
    OutcomeEvaluation,
    ToolResult,
    ToolUse,
    TurnInput,
    TurnResult,
    Usage,
    joined_text,
)

__all__ = ("BOUNDARY_TYPES", "ends_turn", "input_events", "normalize", "recovery", "text_delta")

BOUNDARY_TYPES = frozenset({"session.status_idle", "session.status_terminated", "session.deleted"})
"""Events after which the host waits (idle) or can no longer go on (terminated, deleted)."""

_END_TURN = frozenset({"end_turn", "satisfied", "max_iterations_reached"})
_HOST_TOOL_USES = frozenset({"agent.tool_use", "agent.mcp_tool_use"})
_HOST_TOOL_RESULTS = {"agent.tool_result": "tool_use_id", "agent.mcp_tool_result": "mcp_tool_use_id"}
_ANSWERS = {
    "user.custom_tool_result": "custom_tool_use_id",
    "user.tool_confirmation": "tool_use_id",
    "user.tool_result": "tool_use_id",
}


def ends_turn(event: Mapping[str, Any]) -> bool:
    return event.get("type") in BOUNDARY_TYPES


def text_delta(event: Mapping[str, Any]) -> str | None:
    if event.get("type") == "agent.message":
        return joined_text(event.get("content") or [])
    return None


def preview_text(event: Mapping[str, Any]) -> str | None:
    """The text fragment of an `event_delta` preview (`event_start` carries none)."""
    delta = event.get("delta")
    if not isinstance(delta, Mapping):
        return None
    content = delta.get("content")
    if isinstance(content, Mapping) and content.get("type") == "text":
        return str(content.get("text", ""))
    return None


def _use(event: Mapping[str, Any]) -> ToolUse:
    server = event.get("mcp_server_name")
    thread = event.get("session_thread_id")  # a child thread's call, cross-posted on the primary stream
    return ToolUse(
        str(event["id"]),
        str(event.get("name", "")),
        dict(event.get("input") or {}),
        str(server) if server else None,
        str(thread) if thread else None,
    )


def _result(event: Mapping[str, Any]) -> ToolResult:
    content = event.get("content")
    text = joined_text(content) if isinstance(content, list) else ""
    return ToolResult(str(event.get(_HOST_TOOL_RESULTS[str(event["type"])], "")), text, bool(event.get("is_error")))


def normalize(events: Sequence[Mapping[str, Any]]) -> TurnResult:
    """The latest status event decides the terminal; a requires_action names the events to answer."""
    status: Mapping[str, Any] | None = None
    by_id: dict[str, Mapping[str, Any]] = {}
    texts: list[str] = []
    server_uses: list[ToolUse] = []
    server_results: list[ToolResult] = []
    usage: Usage | None = None
    evaluations: list[OutcomeEvaluation] = []
    for event in events:
        kind = event.get("type")
        if kind in BOUNDARY_TYPES:
            status = event
        elif kind == "span.outcome_evaluation_end":
            evaluations.append(_evaluation(event))
        elif kind == "agent.custom_tool_use" or kind in _HOST_TOOL_USES:
            by_id[str(event.get("id"))] = event
            if kind in _HOST_TOOL_USES:
                server_uses.append(_use(event))
        elif kind in _HOST_TOOL_RESULTS:
            server_results.append(_result(event))
        elif kind == "agent.message":
            texts.append(joined_text(event.get("content") or []))
        elif kind == "span.model_request_end":
            raw = event.get("model_usage") or event.get("usage")
            if isinstance(raw, Mapping):
                usage = usage or Usage()
                usage.add(Usage.from_raw(raw))
    text = "\n".join(t for t in texts if t)
    common: dict[str, Any] = {
        "text": text,
        "server_tool_uses": tuple(server_uses),
        "server_tool_results": tuple(server_results),
        "usage": usage,
        "outcome_evaluations": tuple(evaluations),
    }
    if status is None:
        return TurnResult("terminated", {"type": "no_status"}, events=tuple(events), **common)
    if status.get("type") != "session.status_idle":
        reason = status.get("stop_reason") or {"type": status.get("type")}
        return TurnResult("terminated", reason, events=tuple(events), **common)
    reason = status.get("stop_reason") or {}
    kind = reason.get("type")
    if kind in _END_TURN:
        return TurnResult("end_turn", reason, events=tuple(events), **common)
    if kind != "requires_action":
        return TurnResult("terminated", reason, events=tuple(events), **common)
    custom: list[ToolUse] = []
    confirm: list[ToolUse] = []
    for event_id in reason.get("event_ids") or []:
        named = by_id.get(str(event_id))
        if named is None:
            continue  # named by an idle but not in this batch: the loop recovers it from the history
        if named.get("type") == "agent.custom_tool_use":
            custom.append(_use(named))
        else:
            confirm.append(_use(named))
    return TurnResult(
        "requires_action",
        reason,
        tool_uses=tuple(custom),
        confirmations=tuple(confirm),
        events=tuple(events),
        **common,
    )


def input_events(turn_input: TurnInput) -> list[dict[str, Any]]:
    """The `user.*` events that carry a `TurnInput`: one request, results and confirmations together."""
    events: list[dict[str, Any]] = [_result_event(r) for r in turn_input.tool_results]
    events += [_confirmation_event(c) for c in turn_input.confirmations]
    if turn_input.text is not None:
        events.append({"type": "user.message", "content": [{"type": "text", "text": turn_input.text}]})
    if turn_input.outcome is not None:
        outcome = turn_input.outcome
        define: dict[str, Any] = {
            "type": "user.define_outcome",
            "description": outcome.description,
            "rubric": {"type": "text", "content": outcome.rubric},
        }
        if outcome.max_iterations is not None:
            define["max_iterations"] = outcome.max_iterations
        events.append(define)
    return events


def _evaluation(event: Mapping[str, Any]) -> OutcomeEvaluation:
    return OutcomeEvaluation(
        outcome_id=str(event.get("outcome_id", "")),
        iteration=int(event.get("iteration") or 0),
        result=str(event.get("result", "")),
        explanation=str(event.get("explanation") or ""),
    )


def _result_event(result: ToolResult) -> dict[str, Any]:
    return {
        "type": "user.custom_tool_result",
        "custom_tool_use_id": result.tool_use_id,
        "content": [{"type": "text", "text": result.text}],
        "is_error": result.is_error,
    }


def _confirmation_event(confirmation: Confirmation) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "user.tool_confirmation",
        "tool_use_id": confirmation.tool_use_id,
        "result": "allow" if confirmation.allow else "deny",
    }
    if not confirmation.allow and confirmation.message:
        event["deny_message"] = confirmation.message
    return event


def recovery(history: Sequence[Mapping[str, Any]], seen: set[str]) -> Recovery:
    """What a full history says after a drop: what was missed, what is answered, what still waits."""
    answered: set[str] = set()
    for event in history:
        key = _ANSWERS.get(str(event.get("type")))
        if key is not None and event.get(key):
            answered.add(str(event[key]))
    custom: dict[str, ToolUse] = {}
    gated: dict[str, ToolUse] = {}
    waiting: set[str] = set()
    latest: str | None = None
    for event in history:
        kind = event.get("type")
        if kind == "agent.custom_tool_use":
            custom[str(event["id"])] = _use(event)
        elif kind in _HOST_TOOL_USES and event.get("evaluated_permission") == "ask":
            gated[str(event["id"])] = _use(event)
        elif kind in BOUNDARY_TYPES or kind in ("session.status_running", "session.status_rescheduled"):
            # only the latest status counts: the host waits on exactly what its newest idle names
            reason = event.get("stop_reason") or {}
            latest = str(kind)
            waiting = set()
            if kind == "session.status_idle" and reason.get("type") == "requires_action":
                waiting = {str(i) for i in reason.get("event_ids") or []}
    missed = tuple(e for e in history if e.get("id") is None or str(e.get("id")) not in seen)
    return Recovery(
        missed=missed,
        answered=frozenset(answered),
        pending=tuple(u for i, u in custom.items() if i in waiting and i not in answered),
        awaiting_confirmation=tuple(u for i, u in gated.items() if i in waiting and i not in answered),
        latest_status=latest,
    )
