"""`@tool`: schemas from type hints and docstrings, validation before the call, and the runner's rules."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from enum import Enum
from typing import Any, Literal

import pytest
from pydantic import BaseModel

import loophost
from loophost.client import ToolCallContext, ToolUse, tools_of
from loophost.client._runner import ToolRunner
from loophost.client._tools import Tool, ToolOutcome


class Unit(Enum):
    C = "C"
    F = "F"


class Place(BaseModel):
    city: str
    country: str | None = None


@loophost.tool
def forecast(place: Place, days: int = 1, unit: Unit = Unit.C, detail: Literal["short", "long"] = "short") -> str:
    """Forecast the weather.

    Args:
        place: Where to forecast.
        days: How many days ahead.
        unit: Temperature unit.
        detail: How much to say.
    """
    return f"{place.city} {days} {unit.value} {detail}"


def test_schema_from_type_hints_and_google_docstring() -> None:
    (declared,) = tools_of([forecast])
    assert declared.name == "forecast" and declared.description == "Forecast the weather."
    schema = declared.input_schema
    assert schema["required"] == ["place"]
    assert schema["additionalProperties"] is False
    props = schema["properties"]
    assert props["days"] == {"default": 1, "description": "How many days ahead.", "type": "integer"}
    assert props["detail"]["enum"] == ["short", "long"]
    assert props["place"]["description"] == "Where to forecast."
    assert "Place" in schema["$defs"] and "Unit" in schema["$defs"]
    assert forecast(Place(city="Oslo")) == "Oslo 1 C short"  # still a plain function


def test_sphinx_docstring_name_override_and_context_parameter_hidden() -> None:
    @loophost.tool(name="lookup_user")
    async def find(user_id: int, ctx: ToolCallContext) -> dict[str, Any]:
        """Find a user.

        :param user_id: The numeric id.
        """
        return {"id": user_id, "session": ctx.session_id}

    (declared,) = tools_of([find])
    assert declared.name == "lookup_user"
    assert list(declared.input_schema["properties"]) == ["user_id"]
    assert declared.input_schema["properties"]["user_id"]["description"] == "The numeric id."
    outcome = asyncio.run(declared.call({"user_id": "7"}, ToolCallContext("sesn_1", "u1", "local")))
    assert outcome.text == '{"id":7,"session":"sesn_1"}' and not outcome.is_error


def test_validation_errors_say_what_was_wrong() -> None:
    (declared,) = tools_of([forecast])
    outcome = asyncio.run(declared.call({"place": {}, "days": "x"}, ToolCallContext("s", "u", "local")))
    assert outcome.is_error
    assert "place.city: Field required" in outcome.text and "days: Input should be a valid integer" in outcome.text


def test_class_handler_marked_methods_only_and_hooks_excluded() -> None:
    class Mixed:
        @loophost.tool
        def visible(self, x: int) -> int:
            """Shown."""
            return x

        def helper(self) -> None:
            """Not a tool: another method is marked."""

        def confirm(self, name: str, tool_input: dict[str, Any], context: Any) -> bool:
            return True

    assert [t.name for t in tools_of(Mixed())] == ["visible"]

    class Plain:
        def one(self, a: str) -> str:
            """One."""
            return a

        def on_event(self, event: Any) -> None:
            """A hook, not a tool."""

    assert [t.name for t in tools_of(Plain)] == ["one"]


def test_a_non_function_in_a_tool_list_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="not a tool"):
        tools_of([42])


async def test_runner_runs_each_id_once_even_when_asked_concurrently() -> None:
    calls: list[str] = []

    async def work(tag: str) -> str:
        calls.append(tag)
        await asyncio.sleep(0.05)
        return tag

    runner = ToolRunner([work])
    use = ToolUse("toolu_1", "work", {"tag": "a"})
    first, second = await asyncio.gather(runner.run([use]), runner.run([use]))
    again = await runner.run([use])
    assert first == second == again
    assert calls == ["a"] and runner.executions == {"toolu_1": 1}


async def test_runner_bounds_concurrency_and_keeps_call_order() -> None:
    running = 0
    peak = 0

    async def step(n: int) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01 * (5 - n % 5))
        running -= 1
        return n

    runner = ToolRunner([step], max_concurrency=3)
    results = await runner.run([ToolUse(f"id{n}", "step", {"n": n}) for n in range(12)])
    assert [r.text for r in results] == [str(n) for n in range(12)]
    assert peak == 3


class _Broken(Tool):
    """A tool whose machinery itself fails (not the function: its exceptions are error outcomes already)."""

    async def call(self, tool_input: Mapping[str, Any], ctx: ToolCallContext) -> ToolOutcome:
        await asyncio.sleep(0.01)
        raise RuntimeError("broken below the tool")


async def test_runner_answers_a_call_that_raises_with_an_error_and_its_siblings_still_finish() -> None:
    finished: list[str] = []

    async def slow(tag: str) -> str:
        await asyncio.sleep(0.1)
        finished.append(tag)
        return tag

    runner = ToolRunner([slow, _Broken("broken", "Breaks.", lambda: None)])
    uses = [ToolUse("u1", "slow", {"tag": "a"}), ToolUse("u2", "broken", {}), ToolUse("u3", "slow", {"tag": "b"})]
    results = await asyncio.wait_for(runner.run(uses), 10)
    assert [(r.tool_use_id, r.is_error) for r in results] == [("u1", False), ("u2", True), ("u3", False)]
    assert results[1].text == "Tool 'broken' failed: RuntimeError: broken below the tool"
    assert sorted(finished) == ["a", "b"]  # the failure cancelled neither sibling
    assert await runner.run(uses[1:2]) == results[1:2]  # the error is the id's answer: it never runs again
    assert runner.executions == {"u1": 1, "u2": 1, "u3": 1}


async def test_cancelling_a_run_cancels_and_awaits_its_calls() -> None:
    started = asyncio.Event()
    cleaned: list[str] = []

    async def hang(tag: str) -> str:
        started.set()
        try:
            await asyncio.sleep(3600)
        finally:
            await asyncio.sleep(0.05)  # cleanup that takes a while: run() must not return before it is done
            cleaned.append(tag)
        return tag

    runner = ToolRunner([hang])
    run = asyncio.create_task(runner.run([ToolUse("u1", "hang", {"tag": "a"}), ToolUse("u2", "hang", {"tag": "b"})]))
    await asyncio.wait_for(started.wait(), 10)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert sorted(cleaned) == ["a", "b"]


async def test_a_joined_call_whose_owner_is_cancelled_answers_with_an_error() -> None:
    """Two requests name the same id; the one running it is cancelled: the other gets an answer, not a
    cancellation that was never its own."""
    started = asyncio.Event()

    async def hang() -> str:
        started.set()
        await asyncio.sleep(3600)
        return "never"

    runner = ToolRunner([hang])
    use = ToolUse("toolu_1", "hang", {})
    owner = asyncio.create_task(runner.run([use]))
    await asyncio.wait_for(started.wait(), 10)
    joiner = asyncio.create_task(runner.run([use]))
    await asyncio.sleep(0.05)  # the joiner waits on the running call
    owner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await owner
    (result,) = await asyncio.wait_for(joiner, 10)
    assert result.is_error and result.text == "Tool 'hang' was cancelled before it finished."
    assert runner.executions == {"toolu_1": 1}


async def test_confirm_hook_verdicts() -> None:
    from loophost.client import Confirmation

    verdicts: dict[str, Any] = {"a": True, "b": False, "c": "too risky", "d": Confirmation("x", False, "custom")}

    async def confirm(name: str, tool_input: dict[str, Any], context: Any) -> Any:
        return verdicts[name]

    answers = await ToolRunner(None, confirm=confirm).confirm([ToolUse(n, n) for n in "abcd"])
    assert [(a.tool_use_id, a.allow, a.message) for a in answers] == [
        ("a", True, None),
        ("b", False, None),
        ("c", False, "too risky"),
        ("d", False, "custom"),
    ]
    (unhooked,) = await ToolRunner(None).confirm([ToolUse("e", "bash")])
    assert not unhooked.allow and "no confirm hook" in (unhooked.message or "")
