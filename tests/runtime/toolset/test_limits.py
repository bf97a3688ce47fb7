"""Resource limits of the sandbox, as a command inside it sees them: the configured rlimits (set by `prlimit` in
front of the sandbox, soft = hard) and the session's pids cgroup (entered from the runtime's side before anything of
the sandbox runs). Both modes: bwrap and the fallback."""

from __future__ import annotations

from pathlib import Path

import pytest

from loophost.runtime.toolset import Limits, _bash
from loophost.runtime.toolset._sandbox import descendants

from .conftest import Factory, Sandbox

BWRAP_ONLY = pytest.mark.parametrize("mode", ["bwrap"], indirect=True)

LIMITS = Limits(memory_bytes=3 << 30, cpu_seconds=1234, file_bytes=5 << 20, open_files=321, processes=24)


async def _limited(sandbox_factory: Factory) -> Sandbox:
    box: Sandbox = await sandbox_factory(toolset_options={"limits": LIMITS})
    return box


async def test_the_configured_rlimits_apply_to_the_shell_and_what_it_starts(sandbox_factory: Factory) -> None:
    box = await _limited(sandbox_factory)
    report = "ulimit -Sn; ulimit -Hn; ulimit -Sv; ulimit -Hv; ulimit -St; ulimit -Ht; ulimit -Sf; ulimit -Hc"
    shell = await box.bash(report)
    child = await box.bash(f"bash --noprofile --norc -c '{report}'")
    kib = LIMITS.memory_bytes // 1024
    expected = [str(LIMITS.open_files)] * 2 + [str(kib)] * 2 + [str(LIMITS.cpu_seconds)] * 2
    expected += [str(LIMITS.file_bytes // 1024), "0"]  # bash counts -f in 1024-byte blocks
    assert shell.text.split() == expected
    assert child.text.split() == expected


async def test_the_file_size_limit_stops_a_write(sandbox_factory: Factory) -> None:
    box = await _limited(sandbox_factory)
    big = await box.bash("head -c 6000000 /dev/zero > /tmp/big; stat -c %s /tmp/big")
    assert big.text.split()[-1] == str(LIMITS.file_bytes)


@BWRAP_ONLY
async def test_the_sandbox_cannot_raise_its_limits(sandbox_factory: Factory) -> None:
    """Soft = hard, and no capability inside bwrap to lift a hard limit (in the fallback, a runtime running as
    root with CAP_SYS_RESOURCE could: docs/toolset.md says the fallback is weaker)."""
    box = await _limited(sandbox_factory)
    raised = await box.bash("ulimit -n 100000 && echo RAISED; ulimit -v unlimited && echo RAISED; ulimit -n")
    assert "RAISED" not in raised.text and "cannot modify limit" in raised.text
    assert raised.text.split()[-1] == str(LIMITS.open_files)


def _cgroup(box: Sandbox) -> Path:
    state = box.toolset._sessions[box.session.id]
    if state.cgroup is None:
        pytest.skip("this runtime cannot create a pids cgroup (needs root and a pids controller)")
    return state.cgroup


async def test_every_process_of_the_sandbox_is_in_the_session_pids_cgroup(sandbox_factory: Factory) -> None:
    box = await _limited(sandbox_factory)
    result = await box.bash("sleep 30 & sleep 0.2; echo started")
    assert result.text.endswith("started")
    cgroup = _cgroup(box)
    shell = box.shell_pid()
    assert shell is not None
    members = {int(pid) for pid in (cgroup / "cgroup.procs").read_text().split()}
    assert {shell} | descendants(shell) <= members
    assert (cgroup / "pids.max").read_text().strip() == str(LIMITS.processes)


async def test_the_pids_cgroup_bounds_the_processes_of_the_sandbox(sandbox_factory: Factory) -> None:
    box = await _limited(sandbox_factory)
    await box.bash("echo warm")
    _cgroup(box)
    spawn = "i=0; while [ $i -lt 60 ]; do sleep 30 & i=$((i+1)); done; echo all-started"
    result = await box.bash(f"sh -c '{spawn}'")
    assert "Cannot fork" in result.text and "all-started" not in result.text
    assert (await box.bash("echo still usable")).text == "still usable"  # the call's processes were reaped


async def test_a_sandbox_that_cannot_enter_its_cgroup_never_runs(
    sandbox_factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    box = await _limited(sandbox_factory)
    await box.bash("echo warm")
    _cgroup(box)

    def refuse(cgroup: Path, pid: int) -> None:
        raise PermissionError(f"cannot move {pid}")

    monkeypatch.setattr(_bash, "enter_cgroup", refuse)
    await box.call("bash", restart=True)
    result = await box.bash("touch /workspace/ran")
    assert result.is_error and "could not be put in its pids cgroup" in result.text
    assert not box.host("/workspace/ran").exists()  # the held process exited without running anything
