"""Crash durability: SIGKILL a process in the middle of a burst of appends, reopen, and check the log."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from loophost.runtime.store import EventQuery, SQLiteStore

CHILD = Path(__file__).with_name("_append_child.py")
SESSIONS = 4


def _run_and_kill(db: Path, delay: float) -> dict[str, str]:
    """Start the appender, SIGKILL it after `delay` seconds of appending; return acknowledged id -> session."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, str(CHILD), str(db), str(SESSIONS)], stdout=subprocess.PIPE, env=env, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    acked: dict[str, str] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "ack":  # a line cut by the kill is not an acknowledgement
            acked[parts[2]] = f"sesn_{parts[1]}"
    return acked


async def test_acknowledged_appends_survive_sigkill(tmp_path: Path) -> None:
    rng = random.Random(1234)
    for trial in range(5):
        db = tmp_path / f"crash-{trial}.db"
        acked = _run_and_kill(db, delay=rng.uniform(0.05, 0.4))
        assert acked, "the child acknowledged nothing before the kill"
        store = SQLiteStore(db)
        await store.open()
        try:
            logged: dict[str, str] = {}
            for s in range(SESSIONS):
                events = await store.list_events(f"sesn_{s}", EventQuery(limit=1_000_000))
                seqs = [e.seq for e in events]
                assert seqs == list(range(1, len(events) + 1)), "holes in the seqs after a crash"
                assert len({e.id for e in events}) == len(events), "an event appears twice"
                assert await store.last_seq(f"sesn_{s}") == len(events)
                logged.update({e.id: f"sesn_{s}" for e in events})
            missing = {i for i in acked if logged.get(i) != acked[i]}
            assert not missing, f"{len(missing)} acknowledged appends lost"
        finally:
            await store.close()
