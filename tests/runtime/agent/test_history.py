"""The incremental checkpoint and the closing of orphaned tool calls."""

from __future__ import annotations

from typing import Any

from pydantic_ai.messages import ModelRequest, ModelResponse, TextPart, ToolCallPart, ToolReturnPart, UserPromptPart

from loophost.runtime import Runtime
from loophost.runtime.agent._history import History, close_open_calls, open_calls, orphaned_calls
from loophost.runtime.store import CheckpointWrite

from ._driver import message, turn
from .conftest import session_with


def _request(text: str) -> ModelRequest:
    return ModelRequest(parts=[UserPromptPart(text)])


def test_appending_writes_only_the_new_messages() -> None:
    history = History()
    first = [_request("a"), ModelResponse(parts=[TextPart("b")])]
    write = history.write(first)
    assert write is not None and write.keep == 0 and len(write.append) == 2
    assert history.write(first) is None  # nothing changed, nothing written
    second = [*first, _request("c")]
    write = history.write(second)
    assert write == CheckpointWrite(2, write.append) and len(write.append) == 1
    assert [m.parts for m in History.from_entries([*first_bytes(history)]).messages] == [m.parts for m in second]


def first_bytes(history: History) -> list[bytes]:
    return list(history._bytes)


def test_a_tail_changed_in_place_is_rewritten() -> None:
    messages = [_request("a"), ModelResponse(parts=[TextPart("b")])]
    history = History()
    history.write(messages)
    messages[1].parts[0] = TextPart("changed")  # same object, new content
    write = history.write(messages)
    assert write is not None and write.keep == 1 and len(write.append) == 1


def test_open_calls_are_closed_with_known_results_or_as_interrupted() -> None:
    calls = ModelResponse(parts=[ToolCallPart("a", {}, "c1"), ToolCallPart("b", {}, "c2"), ToolCallPart("c", {}, "c3")])
    messages = [_request("go"), calls, ModelRequest(parts=[ToolReturnPart("a", "done", "c1")])]
    assert [c.tool_call_id for c in open_calls(messages)] == ["c2", "c3"]
    closed = close_open_calls(messages, {"c2": ("partial", True)})
    assert orphaned_calls(closed) == 0
    parts = closed[-1].parts
    assert [(p.tool_call_id, p.outcome) for p in parts] == [("c2", "failed"), ("c3", "interrupted")]  # type: ignore[union-attr]
    assert close_open_calls(closed) is closed


async def test_each_turn_writes_only_its_own_messages(loop_rt: Runtime) -> None:
    sid = await session_with(loop_rt)
    writes: list[CheckpointWrite] = []
    original = loop_rt.store.commit_session

    async def recording(session_id: str, **kwargs: Any) -> Any:
        change = kwargs.get("change")
        if change is not None and change.checkpoint is not None:
            writes.append(change.checkpoint)
        return await original(session_id, **kwargs)

    loop_rt.store.commit_session = recording  # type: ignore[method-assign]
    for i in range(30):
        await turn(loop_rt, sid, message(f"turn {i}"))
    assert max(len(w.append) for w in writes) <= 2  # never the whole history again
    stored = await loop_rt.store.get_checkpoint(sid)
    assert len(stored) == 60  # a request and a response per turn
    assert orphaned_calls(History.from_entries(stored).messages) == 0
