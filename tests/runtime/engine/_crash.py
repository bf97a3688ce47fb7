"""Crash trials: a real process running tool-using sessions is SIGKILLed at a random moment; the database is then
reopened, every session driven to completion, and the promises checked.

Importing pydantic-ai takes seconds, so a *zygote* process imports everything once and forks one child per
trial; the child is a real process and dies by a real SIGKILL. Each child appends what it was told (`ack <id>`)
to `<db>.acks` and each tool execution's tool-use id to `<db>.exec`, with O_APPEND writes that survive the kill.
Used by tests/runtime/engine/test_crash.py and by the `agent.crash_trials` benchmark.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loophost import wire
from loophost.runtime import Runtime, ToolContext, ToolOutput
from loophost.runtime.engine._history import History

from ._history_checks import orphaned_calls

WS = "ws_crash"
SESSIONS = 3
LOOKUP = {"type": "custom", "name": "lookup", "description": "Looks up.", "input_schema": {"type": "object"}}


class ExecLogTool:
    """`bash` for the trials: logs each execution's tool-use id before doing anything, then takes a moment."""

    name = "bash"
    description = "Runs a command (crash-test double)."
    input_schema: dict[str, Any] = {"type": "object", "properties": {"command": {"type": "string"}}}

    def __init__(self, path: Path) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    async def run(self, ctx: ToolContext, tool_input: dict[str, Any]) -> ToolOutput:
        os.write(self._fd, f"{ctx.tool_use_id}\n".encode())
        await asyncio.sleep(random.uniform(0, 0.01))
        return ToolOutput(f"ran {tool_input.get('command')}")


def _message(text: str) -> wire.UserMessageParams:
    return wire.UserMessageParams.model_validate({"type": "user.message", "content": [{"type": "text", "text": text}]})


def _result(event_id: str, text: str) -> wire.UserCustomToolResultParams:
    return wire.UserCustomToolResultParams.model_validate(
        {"type": "user.custom_tool_result", "custom_tool_use_id": event_id, "content": [{"type": "text", "text": text}]}
    )


async def _workload(db: Path) -> None:
    """The child: create sessions and loop tool-using turns on them until killed."""
    acks = os.open(str(db) + ".acks", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    async with Runtime.from_url(db, builtin_tools={"bash": ExecLogTool(Path(str(db) + ".exec"))}) as rt:
        agent = await rt.create_agent(
            WS,
            wire.AgentCreateParams.model_validate(
                {"name": "crash", "model": "scripted", "tools": [{"type": "agent_toolset_20260401"}, LOOKUP]}
            ),
        )
        env = await rt.create_environment(WS, wire.EnvironmentCreateParams(name="crash"))
        sessions = [
            (await rt.start_session(WS, wire.SessionCreateParams(agent=agent.id, environment_id=env.id))).id
            for _ in range(SESSIONS)
        ]
        os.write(acks, f"sessions {' '.join(sessions)}\n".encode())

        async def loop(session_id: str) -> None:
            for i in range(1_000_000):
                text = f'call bash {{"command": "{i}-a"}}\ncall bash {{"command": "{i}-b"}}\ncall lookup {{"i": {i}}}'
                if i % 3 == 2:
                    text = f"plain turn {i}"
                for echo in await rt.send_events(WS, session_id, [_message(text)]):
                    os.write(acks, f"ack {echo.id}\n".encode())
                while True:
                    state = await rt.status(WS, session_id)
                    if state.pending_event_ids:
                        answers = [_result(e, f"looked up {i}") for e in state.pending_event_ids]
                        for echo in await rt.send_events(WS, session_id, answers):
                            os.write(acks, f"ack {echo.id}\n".encode())
                    elif state.status == "idle" and state.queued == 0 and not rt.workers.is_active(session_id):
                        break
                    await asyncio.sleep(0.002)

        await asyncio.gather(*(loop(s) for s in sessions))


async def _warm_up(db: Path) -> None:
    """One tool-using turn, so a forked child starts with pydantic-ai's lazy set-up already done."""
    async with Runtime.from_url(db, builtin_tools={"bash": ExecLogTool(Path(str(db) + ".exec"))}) as rt:
        agent = await rt.create_agent(
            WS,
            wire.AgentCreateParams.model_validate(
                {"name": "warm", "model": "scripted", "tools": [{"type": "agent_toolset_20260401"}, LOOKUP]}
            ),
        )
        env = await rt.create_environment(WS, wire.EnvironmentCreateParams(name="warm"))
        session = await rt.start_session(WS, wire.SessionCreateParams(agent=agent.id, environment_id=env.id))
        await rt.send_events(WS, session.id, [_message('call bash {"command": "x"}\ncall lookup {}')])
        await _settle(rt, session.id)


def zygote_main() -> None:
    """Read `run <db>` lines; fork a child per line, report `pid N`, reap it, report `exit STATUS`."""
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
        if pid == 0:  # the trial's process
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            try:
                asyncio.run(_workload(Path(db)))
            finally:
                os._exit(0)
        print(f"pid {pid}", flush=True)
        _, status = os.waitpid(pid, 0)
        print(f"exit {status}", flush=True)


class Zygote:
    def __init__(self) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        self._proc = subprocess.Popen(
            [sys.executable, "-c", "from tests.runtime.engine._crash import zygote_main; zygote_main()"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=Path(__file__).parents[3],
        )
        assert self._proc.stdout is not None
        assert self._proc.stdout.readline().strip() == "ready"

    def run_and_kill(self, db: Path, delay: float) -> None:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(f"run {db}\n")
        self._proc.stdin.flush()
        pid = int(self._proc.stdout.readline().split()[1])
        import time

        # the delay counts from when the child has its sessions (setup time varies with the machine's load)
        acks = Path(str(db) + ".acks")
        deadline = time.monotonic() + 60
        while not (acks.exists() and acks.read_text().startswith("sessions ")):
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                raise AssertionError("the trial's process never created its sessions")
            time.sleep(0.005)
        time.sleep(delay)
        os.kill(pid, signal.SIGKILL)
        status = int(self._proc.stdout.readline().split()[1])
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, status

    def close(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        self._proc.wait(timeout=10)


@dataclass
class TrialResult:
    acked: int = 0
    lost: list[str] = field(default_factory=list)
    executions: int = 0
    duplicated: list[str] = field(default_factory=list)
    orphaned_calls: int = 0
    sessions: int = 0
    recovered_ms: float = 0.0


async def recover_and_check(db: Path) -> TrialResult:
    """Reopen after the kill, drive every session to rest and through one more turn, and check the promises."""
    result = TrialResult()
    lines = Path(str(db) + ".acks").read_text().splitlines() if Path(str(db) + ".acks").exists() else []
    sessions = next((line.split()[1:] for line in lines if line.startswith("sessions ")), [])
    acked = [line.split()[1] for line in lines if line.startswith("ack ") and len(line.split()) == 2]
    result.acked, result.sessions = len(acked), len(sessions)
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with Runtime.from_url(db, builtin_tools={"bash": ExecLogTool(Path(str(db) + ".exec"))}) as rt:
        result.recovered_ms = (loop.time() - started) * 1000
        for session_id in sessions:
            await _settle(rt, session_id)
            after = await rt.store.last_seq(session_id) or 0
            await rt.send_events(WS, session_id, [_message("after the crash")])
            await _settle(rt, session_id)
            tail = (await rt.list_events(WS, session_id, page=None)).data
            assert any(e.seq > after and e.type == "agent.message" for e in tail), "no turn after the crash"
            events = (await rt.list_events(WS, session_id)).data
            assert [e.seq for e in events] == list(range(1, len(events) + 1))
            history = await History.load(rt.store, session_id)
            result.orphaned_calls += orphaned_calls(history.messages)
        logged = set()
        for session_id in sessions:
            page = await rt.list_events(WS, session_id)
            logged |= {e.id for e in page.data}
        result.lost = [event_id for event_id in acked if event_id not in logged]
    exec_path = Path(str(db) + ".exec")
    executions = exec_path.read_text().split() if exec_path.exists() else []
    result.executions = len(executions)
    result.duplicated = sorted({x for x in executions if executions.count(x) > 1})
    return result


async def _settle(rt: Runtime, session_id: str, timeout: float = 20) -> None:
    """Until the session rests: answer whatever it waits for, wait out what it runs."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        state = await rt.status(WS, session_id)
        assert state.status != "terminated", f"{session_id} terminated after the crash"
        if state.pending_event_ids:
            await rt.send_events(
                WS, session_id, [_result(e, "answered after the crash") for e in state.pending_event_ids]
            )
        elif state.status == "idle" and state.queued == 0 and not rt.workers.is_active(session_id):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{session_id} did not come to rest: {await rt.status(WS, session_id)}")


def delays(seed: int, count: int) -> list[float]:
    rng = random.Random(seed)
    return [rng.uniform(0.0, 0.7) for _ in range(count)]
