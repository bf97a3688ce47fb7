"""The append-only history: each step writes only what it added, tool results are stored once (in their events),
and orphaned tool calls are closed."""

from __future__ import annotations

from typing import Any

from pydantic_ai.messages import ModelRequest, ModelResponse, TextPart, ToolCallPart, ToolReturnPart, UserPromptPart

from loophost.runtime import Runtime
from loophost.runtime.engine._history import History, Result, closing_request, open_calls
from loophost.runtime.store import CheckpointWrite

from ._driver import final_text, message, of_type, turn
from ._history_checks import orphaned_calls
from .conftest import TOOLSET, CountingTool, session_with


def _request(text: str) -> ModelRequest:
    return ModelRequest(parts=[UserPromptPart(text)])


def test_appending_writes_only_the_new_messages() -> None:
    history = History()
    write = history.append(_request("a"), ModelResponse(parts=[TextPart("b")]))
    assert write is not None and write.keep == 0 and len(write.append) == 2
    assert history.append() is None  # nothing added, nothing written
    write = history.append(_request("c"))
    assert write == CheckpointWrite(2, write.append) and len(write.append) == 1


def test_open_calls_are_closed_with_known_results_or_as_interrupted() -> None:
    calls = ModelResponse(parts=[ToolCallPart("a", {}, "c1"), ToolCallPart("b", {}, "c2"), ToolCallPart("c", {}, "c3")])
    messages = [_request("go"), calls, ModelRequest(parts=[ToolReturnPart("a", "done", "c1")])]
    assert [c.tool_call_id for c in open_calls(messages)] == ["c2", "c3"]
    closing = closing_request(messages, {"c2": Result("partial", True)})
    assert closing is not None
    closed = [*messages, closing]
    assert orphaned_calls(closed) == 0
    assert [(p.tool_call_id, p.outcome) for p in closing.parts] == [("c2", "failed"), ("c3", "interrupted")]  # type: ignore[union-attr]
    assert closing_request(closed) is None


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
    stored_before = [sum(len(w.append) for w in writes[:i]) for i in range(len(writes))]
    assert [w.keep for w in writes] == stored_before  # strictly appended: each write starts where the last ended
    stored = await loop_rt.store.get_checkpoint(sid)
    assert len(stored) == 60  # a request and a response per turn
    assert orphaned_calls((await History.load(loop_rt.store, sid)).messages) == 0


async def test_a_tool_result_is_stored_once_and_read_back_from_its_event(tmp_path: Any, bash: CountingTool) -> None:
    big = "x" * 50_000

    class Big(CountingTool):
        async def run(self, ctx: Any, tool_input: dict[str, Any]) -> Any:
            from loophost.runtime import ToolOutput

            return ToolOutput(big)

    async with Runtime.from_url(tmp_path / "once.db", builtin_tools={"bash": Big()}) as rt:
        sid = await session_with(rt, tools=[TOOLSET])
        events = await turn(rt, sid, message('call bash {"command": "a"}\ncall bash {"command": "b"}'))
        results = of_type(events, "agent.tool_result")
        assert len(results) == 2 and all(r["content"][0]["text"] == big for r in results)
        stored = await rt.store.get_checkpoint(sid)
        assert all(big not in entry.decode() for entry in stored)  # references to the events, not copies
        assert final_text(events) == f"bash: {big}\nbash: {big}"  # the answer (echoing both) is stored once too
        loaded = await History.load(rt.store, sid)
        returns = [p for m in loaded.messages if isinstance(m, ModelRequest) for p in m.parts]
        assert [p.content for p in returns if isinstance(p, ToolReturnPart)] == [big, big]
        answers = [p for m in loaded.messages if isinstance(m, ModelResponse) for p in m.parts]
        assert [p.content for p in answers if isinstance(p, TextPart)] == [f"bash: {big}\nbash: {big}"]
