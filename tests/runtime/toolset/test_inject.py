"""`environment_variable` credentials stay out of the sandbox: the shell sees placeholders, the egress proxy puts
the real values into plain-HTTP requests to the credentials' allowed hosts (header and/or body, as
`injection_location` says) and nowhere else. Real bash (bwrap and the fallback), a real loopback receiver."""

from __future__ import annotations

import asyncio
import base64
import http.server
import secrets as random
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loophost import wire
from loophost.runtime import Runtime
from loophost.runtime.toolset import HostPolicy
from loophost.runtime.toolset._inject import PREFIX, Secret, read_body, substitute_body, substitute_headers

from .conftest import WS, Factory, Sandbox

TOKEN = f"env-token-{random.token_hex(12)}"
HEADER_ONLY = f"env-header-{random.token_hex(12)}"
ANYWHERE = f"env-anywhere-{random.token_hex(12)}"

SEND = r"""
import json, os, sys, urllib.request as u
token, header_only = os.environ["API_TOKEN"], os.environ["HEADER_ONLY"]
body = json.dumps({"token": token, "header_only": header_only}).encode()
headers = {"Authorization": "Bearer " + token, "X-Header-Only": header_only, "Content-Type": "application/json"}
print(u.urlopen(u.Request(sys.argv[1], data=body, headers=headers, method="POST"), timeout=5).read().decode())
"""


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    port: int
    requests: list[Received] = field(default_factory=list)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def last(self, path: str) -> Received:
        return [r for r in self.requests if r.path == path][-1]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A real loopback HTTP server that records every request whole and answers `received` (never an echo)."""
    got: list[Received] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _record(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            got.append(Received(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(200)
            self.send_header("Content-Length", "8")
            self.end_headers()
            self.wfile.write(b"received")

        do_GET = do_POST = do_PUT = _record

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Receiver(server.server_address[1], got)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def env_credential(name: str, value: str, hosts: list[str] | None, **location: bool) -> dict[str, Any]:
    auth: dict[str, Any] = {
        "type": "environment_variable",
        "secret_name": name,
        "secret_value": value,
        "networking": {"type": "limited", "allowed_hosts": hosts} if hosts else {"type": "unrestricted"},
    }
    if location:
        auth["injection_location"] = location
    return {"auth": auth}


async def vault_with(rt: Runtime, *credentials: dict[str, Any]) -> tuple[str, list[str]]:
    vault = await rt.vaults.create_vault(WS, wire.VaultCreateParams(display_name="env"))
    made = [
        await rt.vaults.create_credential(WS, vault.id, wire.CredentialCreateParams.model_validate(c))
        for c in credentials
    ]
    return vault.id, [c.id for c in made]


async def secrets_box(sandbox_factory: Factory, networking: dict[str, Any]) -> tuple[Sandbox, str, list[str]]:
    ids: dict[str, Any] = {}

    async def prepare(rt: Runtime) -> dict[str, Any]:
        ids["vault"], ids["credentials"] = await vault_with(
            rt,
            env_credential("API_TOKEN", TOKEN, ["127.0.0.1"]),
            env_credential("HEADER_ONLY", HEADER_ONLY, ["127.0.0.1"], header=True),
            env_credential("ANYWHERE", ANYWHERE, None, body=True),
        )
        return {"vault_ids": [ids["vault"]]}

    box: Sandbox = await sandbox_factory(networking=networking, prepare=prepare)
    return box, ids["vault"], ids["credentials"]


def assert_no_secret(text: str) -> None:
    for secret in (TOKEN, HEADER_ONLY, ANYWHERE):
        assert secret not in text


async def check_injection(box: Sandbox, receiver: Receiver) -> None:
    # the sandbox sees placeholders only, whichever way it looks
    for command in ("env", "cat /proc/self/environ | tr '\\0' '\\n'", "printenv API_TOKEN", "set"):
        shown = (await box.bash(command)).text
        assert_no_secret(shown)
    placeholder = (await box.bash("printenv API_TOKEN")).text
    assert placeholder.startswith(PREFIX)
    await box.call("write", file_path="/workspace/send.py", content=SEND)
    # an allowed host: header and body substituted as each credential's injection_location says
    sent = await box.bash(f"python3 -S send.py {receiver.url('/allowed')}")
    assert sent.text == "received", sent.text
    got = receiver.last("/allowed")
    assert got.headers["authorization"] == f"Bearer {TOKEN}"
    assert got.headers["x-header-only"] == HEADER_ONLY
    assert f'"token": "{TOKEN}"' in got.body.decode()
    assert HEADER_ONLY not in got.body.decode() and '"header_only": "loophost_secret_' in got.body.decode()
    # another host (the same server under a name no credential allows): the placeholders go as they are
    sent = await box.bash(f"python3 -S send.py {receiver.url('/other', host='localhost')}")
    assert sent.text == "received", sent.text
    other = receiver.last("/other")
    assert other.headers["authorization"] == f"Bearer {placeholder}"
    assert_no_secret(repr(other))
    # Basic auth (curl -u) and a chunked body
    await box.bash(f'curl -s -u "user:$API_TOKEN" {receiver.url("/basic")}')
    basic = receiver.last("/basic").headers["authorization"].removeprefix("Basic ")
    assert base64.b64decode(basic).decode() == f"user:{TOKEN}"
    await box.bash(f'curl -s -H "Transfer-Encoding: chunked" --data-binary "k=$ANYWHERE" {receiver.url("/chunked")}')
    assert receiver.last("/chunked").body == f"k={ANYWHERE}".encode()
    # a substituted request keeps the Host of its URL (another Host could route it to another site)
    await box.bash(f'curl -s -H "Host: evil.example" -H "X-Token: $API_TOKEN" {receiver.url("/host")}')
    hosted = receiver.last("/host")
    assert hosted.headers["host"] == f"127.0.0.1:{receiver.port}" and hosted.headers["x-token"] == TOKEN
    # nothing of the secrets in what the tools returned, nor in the session's files on the host
    for path in box.toolset.workspaces.root.rglob("*"):
        if path.is_file():
            assert_no_secret(path.read_bytes().decode(errors="replace"))


async def test_unrestricted_networking_substitutes_for_allowed_hosts_only(
    sandbox_factory: Factory, receiver: Receiver
) -> None:
    box, _, _ = await secrets_box(sandbox_factory, {"type": "unrestricted"})
    await check_injection(box, receiver)


@pytest.mark.parametrize("mode", ["bwrap"], indirect=True)
async def test_limited_networking_substitutes_through_the_sandbox_proxy(
    sandbox_factory: Factory, receiver: Receiver
) -> None:
    box, _, _ = await secrets_box(sandbox_factory, {"type": "limited", "allowed_hosts": ["127.0.0.1", "localhost"]})
    await check_injection(box, receiver)


async def test_updates_and_archives_apply_to_the_next_request(sandbox_factory: Factory, receiver: Receiver) -> None:
    box, vault_id, (token_id, _, _) = await secrets_box(sandbox_factory, {"type": "unrestricted"})
    command = f'curl -s -H "Authorization: Bearer $API_TOKEN" {receiver.url("/x")}'
    assert (await box.bash(command)).text == "received"
    assert receiver.last("/x").headers["authorization"] == f"Bearer {TOKEN}"
    rotated = f"env-rotated-{random.token_hex(12)}"
    update = wire.CredentialUpdateParams.model_validate(
        {"auth": {"type": "environment_variable", "secret_value": rotated}}
    )
    await box.rt.vaults.update_credential(WS, vault_id, token_id, update)
    await box.bash(command)
    assert receiver.last("/x").headers["authorization"] == f"Bearer {rotated}"
    await box.rt.vaults.archive_credential(WS, vault_id, token_id)
    await box.bash(command)
    assert receiver.last("/x").headers["authorization"].startswith(f"Bearer {PREFIX}")


async def test_no_vaults_no_placeholders(box: Sandbox) -> None:
    assert PREFIX not in (await box.bash("env")).text


# --- the substitution itself --------------------------------------------------------------------------------

SECRET = Secret(PREFIX + "a" * 32, "real-value", HostPolicy.limited(["api.example.com"]), header=True, body=True)


def test_headers_substitute_values_only_and_never_a_line_break() -> None:
    lines = [f"X-{SECRET.placeholder}: a {SECRET.placeholder} b", "Host: api.example.com"]
    assert substitute_headers(lines, [SECRET]) == [f"X-{SECRET.placeholder}: a real-value b", "Host: api.example.com"]
    broken = Secret(SECRET.placeholder, "x\r\nEvil: 1", SECRET.hosts, header=True, body=True)
    assert substitute_headers(lines, [broken]) == lines
    header_off = Secret(SECRET.placeholder, "v", SECRET.hosts, header=False, body=True)
    assert substitute_headers(lines, [header_off]) == lines
    assert substitute_body(SECRET.placeholder.encode(), [header_off]) == b"v"


@given(st.binary(max_size=2000), st.lists(st.integers(1, 300), max_size=10))
def test_chunked_bodies_are_read_whole_and_substituted(payload: bytes, sizes: list[int]) -> None:
    body = payload + SECRET.placeholder.encode() + payload
    chunks, rest = [], body
    for size in sizes:
        chunks.append(rest[:size])
        rest = rest[size:]
    chunks.append(rest)
    wire_body = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks if c) + b"0\r\n\r\n"

    async def read() -> bytes:
        reader = asyncio.StreamReader()
        reader.feed_data(wire_body)
        reader.feed_eof()
        return await read_body(reader, ["Transfer-Encoding: chunked"])

    got = asyncio.run(read())
    assert got == body
    assert substitute_body(got, [SECRET]) == payload + b"real-value" + payload
