"""SIGKILL during a two-thread session: every thread resumes, nothing runs twice, nothing acknowledged is lost."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ._crash import Zygote, delays
from ._thread_crash import recover_and_check

TRIALS = 12


class ThreadZygote(Zygote):
    def __init__(self) -> None:  # the same protocol as `Zygote`, with the threads workload
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        self._proc = subprocess.Popen(
            [sys.executable, "-c", "from tests.runtime.engine._thread_crash import zygote_main; zygote_main()"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=Path(__file__).parents[3],
        )
        assert self._proc.stdout is not None
        assert self._proc.stdout.readline().strip() == "ready"


@pytest.fixture(scope="module")
def zygote() -> Iterator[Zygote]:
    z = ThreadZygote()
    yield z
    z.close()


@pytest.mark.parametrize("trial", range(TRIALS))
async def test_sigkill_during_delegations(zygote: Zygote, tmp_path: Path, trial: int) -> None:
    db = tmp_path / "threads.db"
    zygote.run_and_kill(db, delays(seed=15, count=TRIALS)[trial])
    result = await recover_and_check(db)
    assert result.lost == [], f"acknowledged events lost: {result.lost}"
    assert result.duplicated == [], f"tools executed twice: {result.duplicated}"
    assert result.orphaned_calls == 0, "a tool call without a result is left in a history"
    assert result.executions > 0
