"""The scripts in examples/ run as documented: the Claude one against a loophost server (as its docstring says
it can), the Bedrock one in tests/client/bedrock against the loopback harness."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .server.conftest import start_server, stop_server

EXAMPLES = Path(__file__).parents[1] / "examples"


def _run(name: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_local_example() -> None:
    assert _run("local.py").splitlines() == ["end_turn: word_count: 4", "tool calls: ['word_count'], turns: 2"]


def test_structured_output_example() -> None:
    assert _run("structured_output.py").strip() == "Forecast(city='Paris', temperature_c=21)"


def test_loophost_server_example(tmp_path: Path) -> None:
    server = start_server(tmp_path / "examples.db", keys="my-key")
    try:
        out = _run("loophost_server.py", {"LOOPHOST_URL": server.url, "LOOPHOST_KEY": "my-key"})
    finally:
        stop_server(server)
    assert out.splitlines() == [
        "end_turn: add_note: noted (1 so far)",
        "end_turn: add_note: noted (2 so far)",
        "end_turn: echo: that is all",
        "notes kept on this machine: ['buy milk', 'call Bob']",
    ]


def test_claude_example_against_a_loophost_server(tmp_path: Path) -> None:
    server = start_server(tmp_path / "claude.db", keys="my-key")
    prompt = 'call machine_info {}\nthen\ncall final_result {"summary": "a test box", "python_version": "3"}'
    try:
        out = _run(
            "claude.py",
            {"ANTHROPIC_BASE_URL": server.url, "ANTHROPIC_API_KEY": "my-key", "MODEL": "scripted", "PROMPT": prompt},
        )
    finally:
        stop_server(server)
    lines = out.splitlines()
    assert lines[0] == "summary='a test box' python_version='3'"
    assert lines[1].startswith("3 turns, ")
