"""The persistent shell: state across calls, restart, timeouts, truncation, stray processes, escapes (bwrap)."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from loophost.runtime.toolset._sandbox import descendants

from .conftest import Factory, Sandbox

BWRAP_ONLY = pytest.mark.parametrize("mode", ["bwrap"], indirect=True)


async def test_state_persists_between_calls(box: Sandbox) -> None:
    first = await box.bash("mkdir -p sub && cd sub && export GREETING=hello && f() { echo fn; }")
    assert not first.is_error, first.text
    second = await box.bash('pwd; echo "$GREETING"; f')
    lines = second.text.splitlines()
    assert lines[0].endswith("/workspace/sub")
    assert lines[1:] == ["hello", "fn"]


async def test_restart_gives_a_fresh_shell(box: Sandbox) -> None:
    await box.bash("export KEPT=1; cd /tmp || cd $TMPDIR")
    restarted = await box.call("bash", restart=True)
    assert restarted.text == "The shell was restarted."
    after = await box.bash('echo "[$KEPT]"; pwd')
    assert after.text.splitlines()[0] == "[]"
    assert after.text.splitlines()[1].endswith("/workspace")


async def test_exit_status_quotes_and_syntax_errors(box: Sandbox) -> None:
    failed = await box.bash("echo out; echo err >&2; false")
    assert failed.text.splitlines() == ["out", "err", "[exit status 1]"]
    quoted = await box.bash("printf '%s\\n' \"it's\" 'a \"b\"' $'tab\\there' 'ünï'")
    assert quoted.text.splitlines() == ["it's", 'a "b"', "tab\there", "ünï"]
    broken = await box.bash("echo 'unterminated")
    assert "unexpected EOF" in broken.text
    assert "[exit status 2]" in broken.text  # the syntax error is the command's, not the protocol's
    assert (await box.bash("echo still-here")).text == "still-here"


async def test_timeout_kills_the_command_and_restarts_the_shell(box: Sandbox) -> None:
    await box.bash("export LOST=1")
    started = time.monotonic()
    result = await box.bash("echo before; sleep 30; echo later", timeout_ms=400)
    assert time.monotonic() - started < 5
    assert result.is_error
    assert "before" in result.text and "later" not in result.text
    assert "timed out after 400 ms" in result.text
    assert (await box.bash('echo "alive [$LOST]"')).text == "alive []"


async def test_a_busy_shell_builtin_times_out_too(box: Sandbox) -> None:
    result = await box.bash("while :; do :; done", timeout_ms=300)
    assert result.is_error
    assert "restarted" in result.text
    assert (await box.bash("echo ok")).text == "ok"


async def test_output_is_truncated_with_a_marker(sandbox_factory: Factory) -> None:
    box = await sandbox_factory(toolset_options={"output_limit": 2000})
    result = await box.bash("seq 1 100000")
    assert "[output truncated:" in result.text
    assert result.text.startswith("1\n2\n3\n")
    assert result.text.rstrip().endswith("100000")
    assert len(result.text) < 2200


async def test_bad_input_is_an_error_result(box: Sandbox) -> None:
    for tool_input in ({}, {"command": 5}, {"command": "ls", "timeout_ms": "x"}, {"command": "ls", "timeout_ms": 0}):
        result = await box.toolset.tools()["bash"].run(box.ctx, tool_input)
        assert result.is_error, tool_input


async def test_the_shell_exiting_starts_a_new_one(box: Sandbox) -> None:
    gone = await box.bash("exit 3")
    assert "the shell exited" in gone.text
    assert (await box.bash("echo again")).text.endswith("again")


async def test_processes_do_not_outlive_their_call(box: Sandbox) -> None:
    await box.bash("echo warm")
    shell = box.shell_pid()
    assert shell is not None
    before = descendants(shell)
    result = await box.bash("sleep 1000 & (setsid sleep 1001 &) ; nohup sleep 1002 >/dev/null 2>&1 & echo started")
    assert "started" in result.text
    assert descendants(shell) == before  # the sandbox itself, and nothing the call started


async def test_closing_a_session_leaves_no_process(box: Sandbox) -> None:
    await box.bash("echo warm")
    shell = box.shell_pid()
    assert shell is not None
    tree = descendants(shell) | {shell}
    await box.rt.archive_session("ws_tools", box.session.id)
    for pid in tree:
        assert not Path(f"/proc/{pid}").exists(), f"process {pid} survived (or is a zombie)"
    assert box.host("/workspace").is_dir()  # archive keeps the files; delete removes them
    await box.rt.delete_session("ws_tools", box.session.id)
    assert not box.host("/workspace").exists()


@BWRAP_ONLY
async def test_sandbox_sees_no_host_files(box: Sandbox, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("host secret")
    result = await box.bash(f"cat {secret}; cat /root/.bashrc; ls /home /root; cat /etc/shadow; id -un")
    assert "host secret" not in result.text
    assert "No such file or directory" in result.text
    assert result.text.splitlines()[-1] == "sandbox"
    # system directories are read-only
    assert "Read-only file system" in (await box.bash("touch /usr/x")).text


@BWRAP_ONLY
async def test_sandbox_cannot_signal_host_processes(box: Sandbox) -> None:
    victim = subprocess.Popen(["sleep", "60"])  # noqa: ASYNC220 - a host process for the sandbox to aim at
    try:
        result = await box.bash(f"kill -9 {victim.pid}; ls /proc | grep -c '^[0-9]'; kill -9 -1")
        assert f"kill: ({victim.pid}) - No such process" in result.text
        assert victim.poll() is None  # still alive
        counts = [line for line in result.text.splitlines() if line.isdigit()]
        assert int(counts[0]) < 10  # only the sandbox's own processes are visible
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.wait()


@BWRAP_ONLY
async def test_proc_shows_only_the_sandbox(box: Sandbox) -> None:
    result = await box.bash("cat /proc/1/cmdline | tr '\\0' ' '; echo; ls /proc/1/root/; cat /proc/1/environ")
    assert str(box.toolset.workspaces.root) not in result.text  # bwrap's arguments are not visible either
    assert "workspace" in result.text.split()
    assert "home" not in result.text.split() and "root" not in result.text.split()
