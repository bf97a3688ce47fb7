"""Acceptance of [toolset] through the official SDK against a real `loophost serve` with the real toolset: a
session writes, edits and greps a file, runs a script with bash, leaves a report in outputs, and the client
downloads it; escape attempts (traversal, symlink out, host files, host processes, network under `limited`) fail.

The escape tests of the shell need bwrap (they skip without it, and fail with LOOPHOST_REQUIRE_BWRAP=1).
"""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import pytest

from loophost.runtime.toolset import find_bwrap

from .conftest import KEY_A, SERVER_BACKENDS, ServerProcess, backend_database, start_server, stop_server
from .test_events_api import is_idle, message, read_until, uid


def need_bwrap() -> None:
    if find_bwrap() is None:
        if os.environ.get("LOOPHOST_REQUIRE_BWRAP") == "1":
            pytest.fail("LOOPHOST_REQUIRE_BWRAP=1 but bwrap is not available (run scripts/fetch-bwrap.sh)")
        pytest.skip("bwrap is not available")


@pytest.fixture(scope="module", params=SERVER_BACKENDS)
def toolset_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    where = tmp_path_factory.mktemp(f"toolset-server-{request.param}")
    database = backend_database(request) or str(where / "db.sqlite")
    serve = [sys.executable, "-c", "from loophost.cli import main; main()", "serve", "--port", "0"]
    command = [*serve, "--database", database, "--workspaces", str(where / "ws"), "--heartbeat", "1"]
    proc = start_server(where / "db.sqlite", command=command)
    yield proc
    stop_server(proc)


@pytest.fixture
def sdk(toolset_server: ServerProcess) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=toolset_server.url, api_key=KEY_A, max_retries=0) as c:
        yield c


def new_session(client: anthropic.Anthropic, networking: dict[str, Any] | None = None) -> str:
    config = {"type": "cloud", "networking": networking or {"type": "unrestricted"}}
    env = client.beta.environments.create(name=uid("env"), config=config)  # type: ignore[arg-type]
    agent = client.beta.agents.create(
        name=uid("agent"),
        model="scripted",
        tools=[{"type": "agent_toolset_20260401"}],  # type: ignore[list-item]
    )
    return client.beta.sessions.create(agent=agent.id, environment_id=env.id).id


def call(client: anthropic.Anthropic, session_id: str, *calls: tuple[str, dict[str, Any]]) -> list[Any]:
    """One turn with these tool calls (parallel when several); the tool results in call order."""
    text = "\n".join(f"call {name} {json.dumps(args)}" for name, args in calls)
    with client.beta.sessions.events.stream(session_id, timeout=60) as stream:
        client.beta.sessions.events.send(session_id, events=[message(text)])
        events = read_until(stream, is_idle("end_turn"), timeout=60)
    uses = {e.id: e for e in events if e.type == "agent.tool_use"}
    results = [e for e in events if e.type == "agent.tool_result"]
    assert len(results) == len(calls), [e.type for e in events]
    order = list(uses)
    return sorted(results, key=lambda r: order.index(r.tool_use_id))


def text(result: Any) -> str:
    return "".join(block.text for block in result.content or [] if block.type == "text")


def test_write_edit_grep_bash_and_download_the_report(sdk: anthropic.Anthropic) -> None:
    sid = new_session(sdk)
    script = "import sys\ncount = sum(1 for line in open(sys.argv[1]) if 'TODO' in line)\nprint(f'todos={count}')\n"
    notes = "alpha TODO\nbeta\ngamma TODO\n"
    wrote = call(
        sdk,
        sid,
        ("write", {"file_path": "/workspace/notes.txt", "content": notes}),
        ("write", {"file_path": "/workspace/count.py", "content": script}),
    )
    assert [r.is_error for r in wrote] == [False, False]
    (edited,) = call(
        sdk, sid, ("edit", {"file_path": "/workspace/notes.txt", "old_string": "beta", "new_string": "beta TODO"})
    )
    assert not edited.is_error, text(edited)
    (grepped,) = call(sdk, sid, ("grep", {"pattern": "TODO$", "path": "/workspace"}))
    assert text(grepped).splitlines() == [
        "/workspace/notes.txt:1:alpha TODO",
        "/workspace/notes.txt:2:beta TODO",
        "/workspace/notes.txt:3:gamma TODO",
    ]
    (ran,) = call(
        sdk,
        sid,
        ("bash", {"command": 'cd "$WORKSPACE" && python3 count.py notes.txt | tee "$SESSION_OUTPUTS/report.txt"'}),
    )
    assert text(ran).strip() == "todos=3"
    files = list(sdk.beta.files.list(scope_id=sid))
    assert [f.filename for f in files] == ["report.txt"]
    assert files[0].downloadable and files[0].scope is not None and files[0].scope.id == sid
    assert sdk.beta.files.download(files[0].id).read() == b"todos=3\n"
    sdk.beta.sessions.delete(sid)
    assert sdk.beta.files.download(files[0].id).read() == b"todos=3\n"  # outputs outlive their session


def test_file_tool_escapes_fail(sdk: anthropic.Anthropic) -> None:
    sid = new_session(sdk)
    call(sdk, sid, ("bash", {"command": 'cd "$WORKSPACE" && ln -s /etc/passwd pw && ln -s / up'}))
    results = call(
        sdk,
        sid,
        ("read", {"file_path": "/workspace/../../../../etc/passwd"}),
        ("read", {"file_path": "/workspace/pw"}),
        ("read", {"file_path": "/workspace/up/etc/passwd"}),
        ("read", {"file_path": "/proc/self/environ"}),
        ("write", {"file_path": "/workspace/up/tmp/escaped-by-loophost-test", "content": "x"}),
    )
    assert all(r.is_error for r in results[:4]), [text(r) for r in results]
    assert not any("root:" in text(r) for r in results)
    # "/" through the link is the sandbox's root: the write lands in the session's own /tmp, not the host's
    assert text(results[4]) == "Wrote 1 bytes to /tmp/escaped-by-loophost-test"
    assert not Path("/tmp/escaped-by-loophost-test").exists()


def test_shell_escapes_fail(sdk: anthropic.Anthropic, toolset_server: ServerProcess, tmp_path: Path) -> None:
    need_bwrap()
    secret = tmp_path / "secret.txt"
    secret.write_text("host secret")
    victim = subprocess.Popen(["sleep", "60"])
    try:
        sid = new_session(sdk)
        host, processes = call(
            sdk,
            sid,
            ("bash", {"command": f"cat {secret}; cat /proc/{toolset_server.process.pid}/environ; ls /root"}),
            ("bash", {"command": f"kill -9 {victim.pid} {toolset_server.process.pid}; kill -9 -1; echo done"}),
        )
        assert "host secret" not in text(host) and "LOOPHOST_API_KEYS" not in text(host)
        assert "No such process" in text(processes)
        assert victim.poll() is None and toolset_server.process.poll() is None
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.wait()


def test_limited_networking_blocks_what_is_not_allowed(sdk: anthropic.Anthropic) -> None:
    need_bwrap()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "7")
            self.end_headers()
            self.wfile.write(b"reached")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        fetch = (
            "python3 -S -c \"import urllib.request as u; print(u.urlopen('http://{}:%d/', timeout=5).read())\"" % port
        )
        sid = new_session(sdk, {"type": "limited", "allowed_hosts": ["127.0.0.1"]})
        allowed, other_name, web = call(
            sdk,
            sid,
            ("bash", {"command": fetch.format("127.0.0.1")}),
            ("bash", {"command": fetch.format("localhost") + " 2>&1 | tail -1"}),
            ("web_fetch", {"url": f"http://localhost:{port}/"}),
        )
        assert "reached" in text(allowed)
        assert "reached" not in text(other_name) and "403" in text(other_name)
        assert web.is_error and "reached" not in text(web)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
