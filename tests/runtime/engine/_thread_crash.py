"""Crash trials for multiagent threads: a process running a coordinator that delegates to two agents in parallel
(each running a built-in tool on its own thread) is SIGKILLed at a random moment; the database is reopened and
every thread must resume, no tool run twice, no acknowledged event be lost. Same zygote scheme as `_crash.py`."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from loophost import wire
from loophost.runtime import Runtime
from loophost.runtime._threads import thread_workspace
from loophost.runtime.engine._history import History

from ._crash import ExecLogTool, TrialResult, _message
from ._history_checks import orphaned_calls

WS = "ws_thread_crash"


def _delegations(i: int) -> str:
    calls = [{"agent": name, "message": f'call bash {{"command": "{i}-{name}"}}'} for name in ("alpha", "beta")]
    return "\n".join(f"call send_to_agent {json.dumps(c)}" for c in calls)


async def _workload(db: Path) -> None:
    acks = os.open(str(db) + ".acks", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    async with Runtime.from_url(db, builtin_tools={"bash": ExecLogTool(Path(str(db) + ".exec"))}) as rt:
        toolset = [{"type": "agent_toolset_20260401"}]
        roster = []
        for name in ("alpha", "beta"):
            params = wire.AgentCreateParams.model_validate({"name": name, "model": "scripted", "tools": toolset})
            roster.append((await rt.create_agent(WS, params)).id)
        lead = await rt.create_agent(
            WS,
            wire.AgentCreateParams.model_validate(
                {"name": "lead", "model": "scripted", "multiagent": {"type": "coordinator", "agents": roster}}
            ),
        )
        env = await rt.create_environment(WS, wire.EnvironmentCreateParams(name="crash"))
        session = await rt.start_session(WS, wire.SessionCreateParams(agent=lead.id, environment_id=env.id))
        os.write(acks, f"sessions {session.id}\n".encode())
        for i in range(1_000_000):
            for echo in await rt.send_events(WS, session.id, [_message(_delegations(i))]):
                os.write(acks, f"ack {echo.id}\n".encode())
            await _settle(rt, session.id)


async def _settle(rt: Runtime, session_id: str, timeout: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        state = await rt.status(WS, session_id)
        assert state.status != "terminated", f"{session_id} terminated"
        if state.status == "idle" and state.queued == 0 and not rt.workers.is_active(session_id):
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"{session_id} did not come to rest: {await rt.status(WS, session_id)}")


async def _warm_up(db: Path) -> None:
    async with Runtime.from_url(db) as rt:
        agent = await rt.create_agent(WS, wire.AgentCreateParams(name="warm", model="scripted"))
        env = await rt.create_environment(WS, wire.EnvironmentCreateParams(name="warm"))
        session = await rt.start_session(WS, wire.SessionCreateParams(agent=agent.id, environment_id=env.id))
        await rt.send_events(WS, session.id, [_message("hello")])
        await _settle(rt, session.id)


def zygote_main() -> None:
    import tempfile
    import threading

    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(_warm_up(Path(tmp) / "warm.db"))
    assert threading.active_count() == 1, "fork only from a single-threaded zygote"
    print("ready", flush=True)
    for line in sys.stdin:
        command, db = line.split()
        assert command == "run"
        pid = os.fork()
        if pid == 0:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            try:
                asyncio.run(_workload(Path(db)))
            finally:
                os._exit(0)
        print(f"pid {pid}", flush=True)
        _, status = os.waitpid(pid, 0)
        print(f"exit {status}", flush=True)


async def recover_and_check(db: Path) -> TrialResult:
    """Reopen, let every thread come to rest, run one more delegation, and check the promises."""
    result = TrialResult()
    lines = Path(str(db) + ".acks").read_text().splitlines()
    (session_id,) = next(line.split()[1:] for line in lines if line.startswith("sessions "))
    acked = [line.split()[1] for line in lines if line.startswith("ack ") and len(line.split()) == 2]
    result.acked, result.sessions = len(acked), 1
    async with Runtime.from_url(db, builtin_tools={"bash": ExecLogTool(Path(str(db) + ".exec"))}) as rt:
        await _settle(rt, session_id)
        threads = await rt.list_threads(WS, session_id)
        for thread in threads[1:]:
            assert thread.status == "idle", f"thread {thread.id} is {thread.status} after recovery"
        after = await rt.store.last_seq(session_id) or 0
        await rt.send_events(WS, session_id, [_message(_delegations(999))])
        await _settle(rt, session_id)
        tail = [e for e in (await rt.list_events(WS, session_id)).data if e.seq > after]
        final = [json.loads(e.body) for e in tail if e.type == "agent.message"]
        assert final, "no answer after the crash"
        text = final[-1]["content"][0]["text"]
        assert text == "send_to_agent: bash: ran 999-alpha\nsend_to_agent: bash: ran 999-beta", text
        logged = {e.id for e in (await rt.list_events(WS, session_id)).data}
        result.lost = [event_id for event_id in acked if event_id not in logged]
        for history_of in [session_id, *(t.id for t in threads[1:])]:
            history = await History.load(rt.store, history_of)
            result.orphaned_calls += orphaned_calls(history.messages)
        for thread in await rt.list_threads(WS, session_id):
            if thread.parent_thread_id is not None:
                events = (await rt.list_events(thread_workspace(WS), thread.id)).data
                assert [e.seq for e in events] == list(range(1, len(events) + 1))
    exec_path = Path(str(db) + ".exec")
    executions = exec_path.read_text().split() if exec_path.exists() else []
    result.executions = len(executions)
    result.duplicated = sorted({x for x in executions if executions.count(x) > 1})
    return result
