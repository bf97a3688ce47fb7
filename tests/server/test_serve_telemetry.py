"""`loophost serve`'s telemetry, as an operator meets it: spans exported over OTLP to a collector, `/metrics` after
a known workload (on the API's port without a key, on a port of its own, or off), JSON logs, and no secret in any
log line at debug level."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from prometheus_client.parser import text_string_to_metric_families

from .conftest import KEY_A, ServerProcess, start_server, stop_server

LOOKUP = {"type": "custom", "name": "lookup", "description": "d", "input_schema": {"type": "object"}}
BETA = {"anthropic-beta": "managed-agents-2026-04-01"}


def serve_command(database: Path, *extra: str) -> list[str]:
    serve = [sys.executable, "-c", "from loophost.cli import main; main()", "serve", "--port", "0"]
    return [*serve, "--database", str(database), "--heartbeat", "0.5", *extra]


@contextmanager
def collector() -> Iterator[tuple[str, list[tuple[str, bytes]]]]:
    """A loopback OTLP/HTTP receiver: the URL, and the (path, body) of every export it got."""
    got: list[tuple[str, bytes]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            got.append((self.path, self.rfile.read(int(self.headers["content-length"]))))
            self.send_response(200)
            self.send_header("content-type", "application/x-protobuf")
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", got
    finally:
        server.shutdown()
        thread.join()


def turn_with_custom_tool(client: anthropic.Anthropic) -> str:
    """One echo turn, then one turn that calls the custom tool `lookup` (answered): 3 runs of a turn, 3 model
    requests, 1 custom tool call."""
    env = client.beta.environments.create(name="env")
    agent = client.beta.agents.create(name="metered", model="scripted", tools=[LOOKUP])  # type: ignore[list-item]
    sid = client.beta.sessions.create(agent=agent.id, environment_id=env.id).id
    with client.beta.sessions.events.stream(sid, timeout=30) as stream:
        client.beta.sessions.events.send(sid, events=[_message("hello")])
        _until(stream, "end_turn")
        client.beta.sessions.events.send(sid, events=[_message("call lookup {}")])
        use = next(e for e in _until(stream, "requires_action") if e.type == "agent.custom_tool_use")
        answer = {"type": "user.custom_tool_result", "custom_tool_use_id": use.id, "content": []}
        client.beta.sessions.events.send(sid, events=[answer])  # type: ignore[list-item]
        _until(stream, "end_turn")
    return sid


def _message(text: str) -> Any:
    return {"type": "user.message", "content": [{"type": "text", "text": text}]}


def _until(stream: Any, stop: str) -> list[Any]:
    got = []
    for event in stream:
        got.append(event)
        if event.type == "session.status_idle" and event.stop_reason.type == stop:
            return got
    raise AssertionError("the stream ended early")


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.mark.parametrize("configured_by", ["flag", "environment"])
def test_otlp_endpoint_exports_the_servers_spans(
    tmp_path: Path, configured_by: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with collector() as (url, exports):
        if configured_by == "flag":
            command = serve_command(tmp_path / "o.db", "--otlp-endpoint", url)
        else:  # the standard variables, no flag
            monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", url)
            monkeypatch.setenv("OTEL_SERVICE_NAME", "loophost-node-1")
            command = serve_command(tmp_path / "o.db")
        server = start_server(tmp_path / "o.db", command=command)
        try:
            with anthropic.Anthropic(base_url=server.url, api_key=KEY_A, max_retries=0) as client:
                turn_with_custom_tool(client)
        finally:
            stop_server(server)  # a graceful stop exports what is left
    assert exports and {path for path, _ in exports} == {"/v1/traces"}, [path for path, _ in exports]
    names: set[str] = set()
    services: set[str] = set()
    for _, body in exports:
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            services.add(attributes["service.name"])
            names |= {span.name for scope in resource_spans.scope_spans for span in scope.spans}
    assert services == {"loophost" if configured_by == "flag" else "loophost-node-1"}
    assert {"invoke_agent metered", "chat scripted", "execute_tool lookup"} <= names, sorted(names)
    assert "POST /v1/sessions/{session_id}/events" in names


def test_metrics_count_a_known_workload_without_a_key(tmp_path: Path) -> None:
    server = start_server(tmp_path / "m.db")  # a fresh server: the counters start at zero
    try:
        with anthropic.Anthropic(base_url=server.url, api_key=KEY_A, max_retries=0) as client:
            sid = turn_with_custom_tool(client)
            events = list(client.beta.sessions.events.list(sid))
            with client.beta.sessions.events.stream(sid, timeout=30):
                answer = httpx2.get(f"{server.url}/metrics", timeout=10)  # no key
    finally:
        stop_server(server)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    found = samples(answer.text)
    assert found[("loophost_turns_total", (("model", "scripted"), ("outcome", "ok")))] == 3
    assert found[("loophost_model_requests_total", (("model", "scripted"), ("outcome", "ok")))] == 3
    assert found[("loophost_model_request_duration_seconds_count", (("model", "scripted"),))] == 3
    assert found[("loophost_tool_calls_total", (("kind", "custom"), ("outcome", "ok")))] == 1
    assert found[("loophost_events_appended_total", ())] == len(events)
    assert found[("loophost_stream_subscribers", ())] == 1
    assert found[("loophost_sessions", (("status", "idle"),))] == 1
    assert found[("loophost_model_tokens_total", (("model", "scripted"), ("type", "output")))] > 0


def test_metrics_on_a_port_of_their_own_or_off(tmp_path: Path) -> None:
    env = {**os.environ, "LOOPHOST_API_KEYS": f"{KEY_A}:ws_a", "PYTHONPATH": os.pathsep.join(sys.path)}
    process = subprocess.Popen(
        serve_command(tmp_path / "p.db", "--metrics-port", "0"),
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=Path(__file__).parents[2],
    )
    try:
        assert process.stdout is not None
        urls: dict[str, str] = {}
        for line in process.stdout:
            if line.startswith("loophost listening on "):
                urls["api"] = line.split()[-1]
            elif line.startswith("metrics at "):
                urls["metrics"] = line.split()[-1]
            if len(urls) == 2:
                break
        assert httpx2.get(urls["metrics"], timeout=10).status_code == 200
        assert "loophost_turns" in httpx2.get(urls["metrics"], timeout=10).text
        assert httpx2.get(f"{urls['api']}/metrics", timeout=10).status_code == 404
    finally:
        stop_server(ServerProcess("", process, tmp_path / "p.db"))
    off = start_server(tmp_path / "n.db", command=serve_command(tmp_path / "n.db", "--no-metrics"))
    try:
        assert httpx2.get(f"{off.url}/metrics", timeout=10).status_code == 404
    finally:
        stop_server(off)


def test_json_logs_at_debug_level_hold_no_secret(tmp_path: Path) -> None:
    """Promise 7: API keys, vault secrets, environment keys and sessions tokens never reach a log line."""
    api_key = "sk-loophost-sweep-" + base64.b32encode(os.urandom(10)).decode()
    wrong_key = "sk-wrong-sweep-" + base64.b32encode(os.urandom(10)).decode()
    vault_secret = "vault-secret-sweep-" + base64.b32encode(os.urandom(10)).decode()
    log_path = tmp_path / "serve.log"
    env = {**os.environ, "LOOPHOST_API_KEYS": f"{api_key}:ws_s", "PYTHONPATH": os.pathsep.join(sys.path)}
    with log_path.open("w") as log:
        process = subprocess.Popen(
            serve_command(tmp_path / "s.db", "--log-format", "json", "--log-level", "debug"),
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=env,
            cwd=Path(__file__).parents[2],
        )
        assert process.stdout is not None
        url = next(line.split()[-1] for line in process.stdout if line.startswith("loophost listening on "))
        server = ServerProcess(url, process, tmp_path / "s.db")
        try:
            secrets = [api_key, wrong_key, vault_secret, *_exercise(url, api_key, wrong_key, vault_secret)]
        finally:
            stop_server(server)
    lines = log_path.read_text().splitlines()
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"timestamp", "level", "logger", "event"} <= set(r) for r in records)
    assert any(r["level"] == "debug" for r in records)
    requests = [r for r in records if r["logger"] == "loophost.server" and "answered" in r["event"]]
    assert any(r.get("session_id") and r.get("workspace") == "ws_s" and r.get("request_id") for r in requests)
    text = log_path.read_text()
    for secret in secrets:
        assert secret not in text


def _exercise(url: str, api_key: str, wrong_key: str, vault_secret: str) -> list[str]:
    """Requests that carry every kind of secret (and a refused key); the environment key and sessions token made."""
    with anthropic.Anthropic(base_url=url, api_key=api_key, max_retries=0) as client:
        vault = client.beta.vaults.create(display_name="v")
        client.beta.vaults.credentials.create(
            vault.id,
            auth={"type": "static_bearer", "mcp_server_url": "https://mcp.example.com/mcp", "token": vault_secret},
        )
        turn_with_custom_tool(client)
        env = client.beta.environments.create(name="hosted", config={"type": "self_hosted"})  # type: ignore[arg-type]
        with httpx2.Client(base_url=url, headers={"Authorization": f"Bearer {api_key}", **BETA}) as http:
            environment_key = http.post(f"/v1/environments/{env.id}/keys").json()["key"]
            assert http.get("/v1/agents", headers={"Authorization": f"Bearer {wrong_key}"}).status_code == 401
        agent = client.beta.agents.create(name="w", model="scripted")
        sid = client.beta.sessions.create(agent=agent.id, environment_id=env.id).id
    with anthropic.Anthropic(base_url=url, api_key=None, auth_token=environment_key, max_retries=0) as worker:
        item = worker.beta.environments.work.poll(env.id, block_ms=900, anthropic_worker_id="w-1")
        assert item is not None and item.secret is not None
        payload = json.loads(base64.urlsafe_b64decode(item.secret + "=" * (-len(item.secret) % 4)))
        sessions_token = payload["sessions_token"]
        worker.beta.environments.work.ack(item.id, environment_id=env.id)
    with anthropic.Anthropic(base_url=url, api_key=None, auth_token=sessions_token, max_retries=0) as session:
        session.beta.environments.work.heartbeat(item.id, environment_id=env.id, expected_last_heartbeat="NO_HEARTBEAT")
        assert session.beta.sessions.retrieve(sid).id == sid
    return [environment_key, sessions_token]
