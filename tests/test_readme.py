"""The README's python examples run as written (docs that drift from the code are a defect).

The server example runs against a real `loophost serve`, started with the key the README uses; only the
address it connects to is replaced by the test server's.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from .server.conftest import start_server, stop_server

README = Path(__file__).parents[1] / "README.md"
README_URL = "http://127.0.0.1:8420"


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def _run(code: str, where: Path) -> list[str]:
    script = where / "example.py"
    script.write_text(code)
    done = subprocess.run([sys.executable, str(script)], cwd=where, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_readme_runtime_example_runs(tmp_path: Path) -> None:
    (code,) = [b for b in _blocks() if "Runtime.from_url" in b]
    lines = _run(code, tmp_path)
    assert "agent.custom_tool_use" in lines and "user.custom_tool_result" in lines and "agent.message" in lines


def test_readme_server_example_runs(tmp_path: Path) -> None:
    (code,) = [b for b in _blocks() if README_URL in b]
    key = re.search(r'LOOPHOST_API_KEYS="([^"]+)"', README.read_text())
    assert key is not None
    server = start_server(tmp_path / "readme.db", keys=key.group(1))
    try:
        lines = _run(code.replace(README_URL, server.url), tmp_path)
    finally:
        stop_server(server)
    assert lines[0] == "user.message" and lines[-1] == "session.status_idle" and "agent.message" in lines


def test_readme_client_example_runs(tmp_path: Path) -> None:
    (code,) = [b for b in _blocks() if "loophost.run(" in b]
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["end_turn | lookup: 21C and sunny in Paris", "['lookup'] 2"]
