"""Crash recovery under a real SIGKILL at randomized points of tool-using sessions (50 trials)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ._crash import Zygote, delays, recover_and_check

TRIALS = 50


@pytest.fixture(scope="module")
def zygote() -> Iterator[Zygote]:
    z = Zygote()
    yield z
    z.close()


@pytest.mark.parametrize("trial", range(TRIALS))
async def test_sigkill_loses_nothing_and_runs_no_tool_twice(zygote: Zygote, tmp_path: Path, trial: int) -> None:
    db = tmp_path / "crash.db"
    zygote.run_and_kill(db, delays(seed=7, count=TRIALS)[trial])
    result = await recover_and_check(db)
    assert result.sessions == 3, "the child was killed before it created its sessions; raise the minimum delay"
    assert result.lost == [], f"acknowledged events lost: {result.lost}"
    assert result.duplicated == [], f"tools executed twice: {result.duplicated}"
    assert result.orphaned_calls == 0, "a tool call without a result is left in the history sent to the model"
