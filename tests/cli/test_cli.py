"""`loophost run` and `loophost demo`, as a user runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anthropic
import pytest
from typer.testing import CliRunner

from loophost.cli import app
from tests.server.conftest import KEY_A, ServerProcess, start_tool_server, stop_server

pytestmark = pytest.mark.timeout(90)

TOOLS = "tests.cli.tools:TOOLS"


@pytest.fixture(scope="module")
def tool_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_tool_server(tmp_path_factory.mktemp("cli-server"))
    yield proc
    stop_server(proc)


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    return result.exit_code, result.output


def test_run_on_local_with_local_tools(tmp_path: Path) -> None:
    code, out = invoke(
        "run", "--local", str(tmp_path / "run.db"), "--model", "scripted", "--tools", TOOLS, 'call add {"a": 2, "b": 3}'
    )
    assert code == 0, out
    assert '→ add({"a": 2, "b": 3}) (runs here)' in out
    assert "← 5" in out and "agent add: 5" in out
    assert "end_turn after 2 turns" in out


def test_run_against_a_server_and_exit_codes(tool_server: ServerProcess) -> None:
    base = ("run", "--base-url", tool_server.url, "--api-key", KEY_A)
    code, out = invoke(*base, "--model", "scripted", "hello server")
    assert code == 0 and "agent echo: hello server" in out
    code, out = invoke(*base, "--model", "scripted", "fail fatal")
    assert code == 3 and "terminated" in out
    code, out = invoke(*base, "hello")
    assert code == 2 and "--agent ID, --model MODEL or --session ID" in out
    code, out = invoke(*base, "--model", "scripted", "--tools", "no_such_module:x", "hello")
    assert code == 1 and "cannot import 'no_such_module'" in out
    code, out = invoke("run", "--base-url", tool_server.url, "--api-key", "wrong-key", "--model", "scripted", "hi")
    assert code == 1 and "401" in out


def test_run_confirmation_with_yes_and_without_a_terminal(tool_server: ServerProcess) -> None:
    with anthropic.Anthropic(base_url=tool_server.url, api_key=KEY_A) as sdk:
        agent = sdk.beta.agents.create(
            name="cli-asker",
            model="scripted",
            tools=[
                {
                    "type": "agent_toolset_20260401",
                    "default_config": {"enabled": False},
                    "configs": [{"name": "bash", "enabled": True, "permission_policy": {"type": "always_ask"}}],
                }
            ],
        )
    base = ("run", "--base-url", tool_server.url, "--api-key", KEY_A, "--agent", agent.id)
    code, out = invoke(*base, "--yes", 'call bash {"command": "echo hi"}')
    assert code == 0, out
    assert "(asks for confirmation)" in out and "allowing bash (--yes)" in out and "agent bash: ran echo hi" in out
    code, out = invoke(*base, 'call bash {"command": "echo no"}')  # CliRunner's stdin is not a terminal
    assert code == 0 and "no one was at the terminal" in out


def test_make_demo_runs_with_no_api_key(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL")}
    env["COLUMNS"] = "200"
    done = subprocess.run(
        [sys.executable, "-c", "from loophost.cli import main; main()", "demo"],
        capture_output=True,
        text=True,
        timeout=80,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "a live session through the Claude provider" in out
    assert "→ machine_info" in out and "(runs here)" in out
    assert "ok: the server and Local gave the same result" in out
    assert "ANTHROPIC_API_KEY" in out
