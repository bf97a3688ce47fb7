"""The persistent shell of a session (`bash` tool): one long-lived shell per session, so the working directory,
variables and functions survive between calls, exactly as an agent expects from a terminal.

Protocol: each command is sent as one line, `{ eval $'<command, byte-escaped>' ; } </dev/null 2>&1`, followed by
`printf` of a random end marker with the exit status. Escaping every byte makes any command text (quotes,
newlines, a syntax error) one well-formed line, so the shell never waits for "more input". When the call ends
(done, timed out, or cancelled) every process it left behind is killed: only the shell itself and the sandbox's
own infrastructure (recorded when the shell started) survive between calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..engine._tools import ToolContext, ToolOutput
from ._sandbox import Limits, descendants, enter_cgroup, gate_command, kill_tree, limit_command

DEFAULT_TIMEOUT_MS = 120_000
MAX_TIMEOUT_MS = 600_000
MAX_OUTPUT_CHARS = 30_000
_START_TIMEOUT = 20.0
_LIVE: weakref.WeakSet[Shell] = weakref.WeakSet()


def live_sandboxes() -> int:
    """Sandboxed shells whose process runs (the `loophost_sandbox_processes` gauge, read when scraped)."""
    return sum(1 for shell in list(_LIVE) if shell._proc is not None and shell._proc.returncode is None)


def ansi_c_quote(text: str) -> str:
    """`$'...'` with every byte that is not plainly safe written as `\\xHH`: one line, no interpretation."""
    out = []
    for byte in text.encode("utf-8", errors="surrogateescape"):
        char = chr(byte)
        out.append(char if char.isascii() and (char.isalnum() or char in " _-./:=,+@%") else f"\\x{byte:02x}")
    return "$'" + "".join(out) + "'"


class _Capture:
    """Output of one call: the first and the last `limit/2` bytes, with how many were dropped in between."""

    def __init__(self, marker: bytes, limit: int) -> None:
        self._pattern = re.compile(b"\n" + re.escape(marker) + rb"(-?\d+)\n")
        self._half = limit // 2
        self.head = bytearray()
        self.tail = bytearray()
        self.dropped = 0
        self._window = bytearray()
        self.status: int | None = None
        self.done = asyncio.Event()

    def feed(self, data: bytes) -> None:
        if self.status is not None:
            return
        self._window += data
        match = self._pattern.search(self._window)
        if match is not None:
            keep = len(data) - (len(self._window) - match.start())
            data = data[: max(0, keep)]
            self._trim(-keep)  # the marker's newline may have arrived with earlier data
            self.status = int(match.group(1))
        else:
            del self._window[: max(0, len(self._window) - 256)]
        room = self._half - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        self.tail += data
        if len(self.tail) > self._half:
            self.dropped += len(self.tail) - self._half
            del self.tail[: len(self.tail) - self._half]
        if self.status is not None:
            self.done.set()

    def _trim(self, count: int) -> None:
        for buffer in (self.tail, self.head):
            if count <= 0:
                return
            cut = min(count, len(buffer))
            del buffer[len(buffer) - cut :]
            count -= cut

    def text(self) -> str:
        head = self.head.decode("utf-8", errors="replace")
        if not self.dropped:
            return head + self.tail.decode("utf-8", errors="replace")
        tail = self.tail.decode("utf-8", errors="replace")
        return f"{head}\n\n... [output truncated: {self.dropped} bytes omitted] ...\n\n{tail}"


@dataclass(frozen=True, slots=True)
class ShellLaunch:
    argv: Sequence[str]
    """The sandbox's command (bwrap, or the fallback's init); limits and the cgroup gate go in front of it."""
    env: Mapping[str, str]
    cwd: str
    limits: Limits
    cgroup: Path | None = None
    """The session's pids cgroup: the process enters it, from this side, before anything of the sandbox runs."""
    args_fd: bool = False
    """Pass bwrap's options through `--args FD` (a memfd), so the sandbox's /proc/1/cmdline shows no host
    paths."""


class Shell:
    """One running shell. Owns its process and its reader task; `close` kills the whole tree and reaps it."""

    def __init__(self, launch: ShellLaunch, *, output_limit: int = MAX_OUTPUT_CHARS) -> None:
        self._launch = launch
        self._limit = output_limit
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._capture: _Capture | None = None
        self._keep: set[int] = set()
        self.lock = asyncio.Lock()
        self.exited = asyncio.Event()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    async def start(self) -> None:
        """Spawn the sandbox (limits and cgroup as the `_sandbox` module docstring says) and wait until its shell
        answers. Raises RuntimeError (or OSError) when it cannot be started as configured."""
        self._proc = await self._spawn()
        _LIVE.add(self)
        self._reader = asyncio.create_task(self._read(), name=f"loophost-shell-{self._proc.pid}")
        status, text = await self.run(":", _START_TIMEOUT)
        if status != 0:
            await self.close()
            raise RuntimeError(f"the sandbox shell did not start: {text.strip() or 'exit ' + str(status)}")
        # what exists now is the sandbox itself (its init, the shell, the egress forwarder): kept across calls
        self._keep = await asyncio.to_thread(descendants, self._proc.pid)

    async def _spawn(self) -> asyncio.subprocess.Process:
        launch = self._launch
        sandbox = list(launch.argv)
        fds: list[int] = []  # the child's copies: closed here once it is spawned
        gate: int | None = None  # the write end of the cgroup gate's pipe
        try:
            if launch.args_fd:
                fd = os.memfd_create("loophost-bwrap-args")
                fds.append(fd)
                split = sandbox.index("--")  # options through the fd; the command itself stays on the command line
                os.write(fd, b"".join(os.fsencode(a) + b"\0" for a in sandbox[1:split]))
                os.lseek(fd, 0, os.SEEK_SET)
                sandbox = [sandbox[0], "--args", str(fd), *sandbox[split:]]
            argv = [*limit_command(launch.limits), *sandbox]
            if launch.cgroup is not None:
                wait, gate = os.pipe()
                fds.append(wait)
                argv = [*gate_command(wait), *argv]
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env=dict(launch.env),
                cwd=launch.cwd,
                start_new_session=True,
                pass_fds=fds,
            )
        except BaseException:
            if gate is not None:
                os.close(gate)
            raise
        finally:
            for fd in fds:
                os.close(fd)
        if gate is not None and launch.cgroup is not None:
            await _release(proc, gate, launch.cgroup)
        return proc

    async def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        try:
            while data := await self._proc.stdout.read(65536):
                if self._capture is not None:
                    self._capture.feed(data)
        finally:
            self.exited.set()

    async def run(self, command: str, timeout: float) -> tuple[int | None, str]:
        """Run one command; (exit status, output). Status None: no status (timed out, or the shell exited)."""
        assert self._proc is not None and self._proc.stdin is not None
        marker = f"__loophost_end_{secrets.token_hex(12)}__"
        capture = self._capture = _Capture(marker.encode(), self._limit)
        line = f"{{ eval {ansi_c_quote(command)} ; }} </dev/null 2>&1\nprintf '\\n{marker}%d\\n' $?\n"
        try:
            self._proc.stdin.write(line.encode())
            await self._proc.stdin.drain()
            done = asyncio.ensure_future(capture.done.wait())
            exited = asyncio.ensure_future(self.exited.wait())
            try:
                await asyncio.wait({done, exited}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (done, exited):
                    task.cancel()
                await asyncio.gather(done, exited, return_exceptions=True)
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            self._capture = None
            if capture.status is None:
                await self.reap_strays()
        return capture.status, capture.text()

    async def reap_strays(self) -> int:
        """Kill every process of the sandbox that is not the sandbox itself (what a call left running)."""
        if self._proc is None or self._proc.returncode is not None:
            return 0
        return await asyncio.to_thread(kill_tree, self._proc.pid, self._keep)

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.returncode is None and not self.exited.is_set()

    async def close(self) -> None:
        """Kill the sandbox's whole process tree and reap it; idempotent."""
        proc = self._proc
        if proc is None:
            return
        if proc.returncode is None:
            # everything below the top process first: it (bwrap's monitor, or the fallback's init) reaps them and
            # then exits by itself, so no zombie is left to the host's init
            await asyncio.to_thread(kill_tree, proc.pid)
            try:
                await asyncio.wait_for(asyncio.shield(proc.wait()), 2)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(proc.wait(), 10)
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        if proc.stdin is not None:
            proc.stdin.close()


async def _release(proc: asyncio.subprocess.Process, gate: int, cgroup: Path) -> None:
    """Put the process its gate holds into `cgroup`, then let it go on. When it cannot be placed, the gate reads
    EOF instead of `go` and exits without running anything."""
    failure: OSError | None = None
    try:
        enter_cgroup(cgroup, proc.pid)
        os.write(gate, b"go\n")
    except OSError as exc:
        failure = exc
    finally:
        os.close(gate)
    if failure is not None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(proc.wait(), 10)
        raise RuntimeError(f"the sandbox could not be put in its pids cgroup {cgroup}: {failure}") from failure


BASH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "command": {"type": "string", "description": "The command to run (omit only with restart)."},
        "restart": {"type": "boolean", "description": "Kill the shell and start a fresh one."},
        "timeout_ms": {
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_TIMEOUT_MS,
            "description": f"Time limit of this command in ms (default {DEFAULT_TIMEOUT_MS}).",
        },
    },
}


class BashTool:
    """`bash`: runs commands in the session's persistent, sandboxed shell."""

    name = "bash"
    description = (
        "Run a command in a persistent bash shell inside the session's sandbox (working directory /workspace; "
        "the working directory and environment persist between calls). Output (stdout and stderr) is truncated "
        f"past {MAX_OUTPUT_CHARS} characters. Processes still running when a call ends are killed. Files written "
        "to /mnt/session/outputs/ become the session's output files. `restart: true` starts a fresh shell."
    )
    input_schema = BASH_SCHEMA

    def __init__(self, toolset: Any) -> None:
        self._toolset = toolset

    async def run(self, ctx: ToolContext, tool_input: dict[str, Any]) -> ToolOutput:
        command = tool_input.get("command")
        restart = tool_input.get("restart", False)
        timeout_ms = tool_input.get("timeout_ms", DEFAULT_TIMEOUT_MS)
        if not isinstance(restart, bool):
            return ToolOutput("restart must be a boolean", is_error=True)
        if command is not None and not isinstance(command, str):
            return ToolOutput("command must be a string", is_error=True)
        if not isinstance(timeout_ms, int) or isinstance(timeout_ms, bool) or not 1 <= timeout_ms <= MAX_TIMEOUT_MS:
            return ToolOutput(f"timeout_ms must be an integer from 1 to {MAX_TIMEOUT_MS}", is_error=True)
        if not restart and (command is None or not command.strip()):
            return ToolOutput("command is required (or restart: true)", is_error=True)
        result: ToolOutput = await self._toolset.run_bash(ctx, command, restart, timeout_ms)
        return result
