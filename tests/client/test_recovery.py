"""Property tests for what a reconnect reads out of a session's history (`recovery`) and for `normalize`."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from loophost.client.providers import _cma


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[dict[str, Any]], set[str]]:
    """A plausible session log: turns of tool uses, some answered, ending idle or running."""
    events: list[dict[str, Any]] = []
    counter = 0

    def new_id() -> str:
        nonlocal counter
        counter += 1
        return f"sevt_{counter}"

    for _ in range(draw(st.integers(0, 4))):
        events.append({"id": new_id(), "type": "session.status_running"})
        uses = [new_id() for _ in range(draw(st.integers(0, 3)))]
        for use in uses:
            events.append({"id": use, "type": "agent.custom_tool_use", "name": "t", "input": {}})
        if uses:
            events.append(
                {
                    "id": new_id(),
                    "type": "session.status_idle",
                    "stop_reason": {"type": "requires_action", "event_ids": uses},
                }
            )
            answered = draw(st.lists(st.sampled_from(uses), unique=True))
            for use in answered:
                events.append({"id": new_id(), "type": "user.custom_tool_result", "custom_tool_use_id": use})
            if len(answered) < len(uses):
                break  # the host still waits on this turn
        else:
            events.append({"id": new_id(), "type": "session.status_idle", "stop_reason": {"type": "end_turn"}})
    cut = draw(st.integers(0, len(events)))
    return events, {e["id"] for e in events[:cut]}


@given(histories())
def test_recovery_returns_exactly_the_missed_events_and_what_the_newest_idle_waits_on(
    case: tuple[list[dict[str, Any]], set[str]],
) -> None:
    history, seen = case
    found = _cma.recovery(history, seen)
    assert [e["id"] for e in found.missed] == [e["id"] for e in history if e["id"] not in seen]
    answered = {e["custom_tool_use_id"] for e in history if e["type"] == "user.custom_tool_result"}
    assert found.answered == answered
    statuses = [e for e in history if e["type"].startswith("session.status")]
    newest = statuses[-1] if statuses else {"type": None}
    if newest["type"] == "session.status_idle" and newest["stop_reason"]["type"] == "requires_action":
        waiting = newest["stop_reason"]["event_ids"]
        assert [u.id for u in found.pending] == [i for i in waiting if i not in answered]
    else:
        assert found.pending == ()
    assert found.latest_status == (statuses[-1]["type"] if statuses else None)


@given(histories())
def test_normalize_takes_the_latest_status_and_only_names_uses_in_the_batch(
    case: tuple[list[dict[str, Any]], set[str]],
) -> None:
    history, _ = case
    turn = _cma.normalize(history)
    statuses = [e for e in history if e["type"] in _cma.BOUNDARY_TYPES]
    if not statuses:
        assert turn.terminal == "terminated"
        return
    last = statuses[-1]
    expected = "requires_action" if last["stop_reason"]["type"] == "requires_action" else "end_turn"
    assert turn.terminal == expected
    if expected == "requires_action":
        assert [u.id for u in turn.tool_uses] == last["stop_reason"]["event_ids"]
    assert list(turn.events) == history
