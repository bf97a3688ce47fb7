"""HTTPS to a host that has an `environment_variable` credential is intercepted by the egress proxy (TLS with the
runtime's CA, which the sandbox trusts) and substituted like plain HTTP; every other `CONNECT` stays a blind tunnel.

A real HTTPS echo server on loopback with its own test CA (trusted by the proxy through LOOPHOST_EGRESS_EXTRA_CA),
real curl and python in real bwrap (and the fallback)."""

from __future__ import annotations

import asyncio
import datetime
import http.server
import ipaddress
import json
import secrets as random
import ssl
import stat
import threading
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import given
from hypothesis import strategies as st

from loophost.runtime import Runtime
from loophost.runtime.toolset import HostPolicy
from loophost.runtime.toolset._egress import EgressProxy
from loophost.runtime.toolset._inject import PREFIX, Secret
from loophost.runtime.toolset._intercept import Redactor
from loophost.runtime.toolset._sandbox import SANDBOX_BUNDLE
from loophost.runtime.toolset._tls import CA_DIR, EXTRA_CA_ENV, EgressCA

from .conftest import Factory, Sandbox
from .test_inject import env_credential, vault_with

TOKEN = f"https-token-{random.token_hex(12)}"
HEADER_ONLY = f"https-header-{random.token_hex(12)}"
TEST_CA_NAME = "loophost tests upstream CA"

SEND = r"""
import json, os, sys, urllib.request as u
token = os.environ["API_TOKEN"]
body = json.dumps({"token": token}).encode()
headers = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
print(u.urlopen(u.Request(sys.argv[1], data=body, headers=headers, method="POST"), timeout=10).read().decode())
"""


# --- a real HTTPS echo server with its own CA -----------------------------------------------------------------
def _cert(
    subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name, signer: ec.EllipticCurvePrivateKey, ca: bool
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        alt = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
    return builder.sign(signer, hashes.SHA256())


@dataclass
class Got:
    path: str
    headers: dict[str, str]
    body: bytes
    peer: tuple[str, int]


@dataclass
class Echo:
    port: int
    ca_file: Path
    requests: list[Got] = field(default_factory=list)

    def url(self, path: str, host: str = "localhost") -> str:
        return f"https://{host}:{self.port}{path}"

    def last(self, path: str) -> Got:
        return [r for r in self.requests if r.path == path][-1]


@dataclass
class PKI:
    ca_file: Path
    server: ssl.SSLContext
    """Serves a certificate for localhost and 127.0.0.1 issued by the CA in `ca_file`."""


@pytest.fixture
def pki(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> PKI:
    """A test CA and a server certificate from it; the egress proxy is told to trust the CA."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _cert(
        TEST_CA_NAME, ca_key, x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, TEST_CA_NAME)]), ca_key, True
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _cert("localhost", key, ca_cert.subject, ca_key, False)
    ca_file, chain = tmp_path / "test-ca.pem", tmp_path / "server.pem"
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    chain.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        + cert.public_bytes(serialization.Encoding.PEM)
    )
    monkeypatch.setenv(EXTRA_CA_ENV, str(ca_file))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(chain)
    return PKI(ca_file, context)


@pytest.fixture
def echo(pki: PKI) -> Iterator[Echo]:
    """HTTPS on 127.0.0.1 which answers every request with the Authorization header and body it got (chunked
    under /chunked, in small pieces)."""
    yield from serve_echo(pki.server, pki.ca_file)


def serve_echo(context: ssl.SSLContext | None, ca_file: Path) -> Generator[Echo, None, None]:
    got: list[Got] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _echo(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            got.append(Got(self.path, {k.lower(): v for k, v in self.headers.items()}, body, self.client_address))
            answer = json.dumps({"authorization": self.headers.get("authorization"), "body": body.decode()}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            if self.path == "/chunked":
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for start in range(0, len(answer), 5):
                    piece = answer[start : start + 5]
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.write(b"0\r\n\r\n")
            else:
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        do_GET = do_POST = _echo

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Echo(server.server_address[1], ca_file, got)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


async def https_box(sandbox_factory: Factory, networking: dict[str, Any]) -> Sandbox:
    async def prepare(rt: Runtime) -> dict[str, Any]:
        vault_id, _ = await vault_with(
            rt,
            env_credential("API_TOKEN", TOKEN, ["localhost"]),
            env_credential("HEADER_ONLY", HEADER_ONLY, ["localhost"], header=True),
        )
        return {"vault_ids": [vault_id]}

    box: Sandbox = await sandbox_factory(networking=networking, prepare=prepare)
    return box


def assert_no_secret(text: str) -> None:
    assert TOKEN not in text and HEADER_ONLY not in text


async def shown(box: Sandbox, command: str) -> str:
    """A command's output, which must never hold a secret."""
    text = (await box.bash(command)).text
    assert_no_secret(text)
    return text


async def check_https(box: Sandbox, echo: Echo, *, bwrap: bool) -> None:
    for command in ("env", "cat /proc/self/environ | tr '\\0' '\\n'", "set"):
        await shown(box, command)
    placeholder = await shown(box, "printenv API_TOKEN")
    assert placeholder.startswith(PREFIX)
    bundle = await shown(box, "printenv SSL_CERT_FILE")
    assert bundle == (SANDBOX_BUNDLE if bwrap else str(box.toolset.workspaces.root / CA_DIR / "bundle.pem"))
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS", "PIP_CERT"):
        assert await shown(box, f"printenv {name}") == bundle

    # curl: header and body substituted for the credential's host; the echo comes back masked
    curl = 'curl -sS -H "Authorization: Bearer $API_TOKEN" -H "X-Header-Only: $HEADER_ONLY"'
    out = await shown(box, f'{curl} --data-binary "t=$API_TOKEN&h=$HEADER_ONLY" {echo.url("/curl")}')
    got = echo.last("/curl")
    assert got.headers["authorization"] == f"Bearer {TOKEN}"
    assert got.headers["x-header-only"] == HEADER_ONLY
    assert got.headers["host"] == f"localhost:{echo.port}"
    assert got.body.decode().startswith(f"t={TOKEN}&h={PREFIX}")  # HEADER_ONLY is not substituted in bodies
    assert json.loads(out)["authorization"] == "Bearer " + "*" * len(TOKEN)

    # one tunnel, several requests (keep-alive): both reach the server over the proxy's one upstream connection
    out = await shown(box, f'{curl} -w "\\n" {echo.url("/first")} {echo.url("/second")}')
    assert echo.last("/first").peer == echo.last("/second").peer
    assert echo.last("/second").headers["authorization"] == f"Bearer {TOKEN}"
    assert out.count('"Bearer ****') == 2

    # HTTP/2 is not offered (ALPN http/1.1 only): a client that asks for it speaks HTTP/1.1, and is substituted
    version = await shown(box, f'{curl} --http2 -o /dev/null -w "%{{http_version}}" {echo.url("/h2")}')
    assert version == "1.1" and echo.last("/h2").headers["authorization"] == f"Bearer {TOKEN}"

    # a chunked response, the secret split across its chunks, is relayed and masked
    out = await shown(box, f"{curl} {echo.url('/chunked')}")
    assert json.loads(out)["authorization"] == "Bearer " + "*" * len(TOKEN)
    assert echo.last("/chunked").headers["authorization"] == f"Bearer {TOKEN}"

    # python's urllib, through https_proxy and SSL_CERT_FILE
    await box.call("write", file_path="/workspace/send.py", content=SEND)
    out = await shown(box, f"python3 -S send.py {echo.url('/python')}")
    assert json.loads(echo.last("/python").body) == {"token": TOKEN}
    assert echo.last("/python").headers["authorization"] == f"Bearer {TOKEN}"
    assert json.loads(out)["authorization"] == "Bearer " + "*" * len(TOKEN)

    # the same server under a name no credential allows: a blind tunnel, the server's own certificate
    await box.call("write", file_path="/workspace/test-ca.pem", content=echo.ca_file.read_text())
    blind = echo.url("/blind", host="127.0.0.1")
    out = await shown(box, f'curl -sS --cacert test-ca.pem -H "Authorization: Bearer $API_TOKEN" {blind}')
    assert json.loads(out)["authorization"] == f"Bearer {placeholder}"
    assert echo.last("/blind").headers["authorization"] == f"Bearer {placeholder}"
    issuers = await shown(box, f"curl -sv --cacert test-ca.pem {blind} -o /dev/null 2>&1 | grep -i issuer")
    assert TEST_CA_NAME in issuers
    issuers = await shown(box, f"curl -sv {echo.url('/issuer')} -o /dev/null 2>&1 | grep -i issuer")
    assert "loophost egress CA" in issuers and TEST_CA_NAME not in issuers

    # the sandbox has the CA's certificate, never its key; nothing of the secrets in the session's files
    ca_file = box.toolset.workspaces.root / CA_DIR / "ca.pem"
    assert stat.S_IMODE(ca_file.stat().st_mode) == 0o600
    assert "PRIVATE KEY" not in await shown(box, f"cat {bundle}")
    if bwrap:
        listing = await shown(box, f"ls -la {ca_file} {ca_file.parent} 2>&1; echo end")
        assert "No such file" in listing and "PRIVATE" not in listing
        assert "PRIVATE KEY" not in await shown(box, "grep -rl 'PRIVATE KEY' /run /tmp /workspace 2>&1; echo end")
    for path in box.toolset.workspaces.root.rglob("*"):
        if path.is_file() and CA_DIR not in path.parts:
            assert_no_secret(path.read_bytes().decode(errors="replace"))


@pytest.mark.parametrize("mode", ["bwrap"], indirect=True)
async def test_https_through_the_limited_sandbox_is_substituted_for_credential_hosts_only(
    sandbox_factory: Factory, echo: Echo
) -> None:
    box = await https_box(sandbox_factory, {"type": "limited", "allowed_hosts": ["localhost", "127.0.0.1"]})
    await check_https(box, echo, bwrap=True)


async def test_https_under_unrestricted_networking(sandbox_factory: Factory, echo: Echo, mode: str) -> None:
    box = await https_box(sandbox_factory, {"type": "unrestricted"})
    await check_https(box, echo, bwrap=mode == "bwrap")


# --- the proxy alone: the real server's certificate is verified -------------------------------------------------
async def test_an_upstream_certificate_that_does_not_verify_is_a_502(
    tmp_path: Path, echo: Echo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(EXTRA_CA_ENV)  # the proxy does not trust the echo server's CA now
    ca = await asyncio.to_thread(EgressCA.load_or_create, tmp_path / "root")
    secret = Secret(PREFIX + "b" * 32, TOKEN, HostPolicy.limited(["localhost"]), header=True, body=False)

    async def source() -> list[Secret]:
        return [secret]

    proxy = EgressProxy(HostPolicy.unrestricted(), source, ca)
    await proxy.start_tcp()
    try:
        assert proxy.port is not None
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(f"CONNECT localhost:{echo.port} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
        client = ssl.create_default_context(cafile=str(ca.bundle_path))
        await writer.start_tls(client, server_hostname="localhost")
        writer.write(
            f"GET /x HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {secret.placeholder}\r\n\r\n".encode()
        )
        answer = await reader.read()
        writer.close()
        await writer.wait_closed()
        assert answer.startswith(b"HTTP/1.1 502") and b"unable to get local issuer certificate" in answer
        assert echo.requests == []  # nothing was sent to a server the proxy could not verify
    finally:
        await proxy.close()


async def test_a_tunnel_carries_many_exchanges_whatever_their_framing(tmp_path: Path, pki: PKI) -> None:
    """A raw upstream that closes after each answer without saying so (the proxy retries on a new connection),
    a HEAD, and a response delimited by the close (which ends the tunnel)."""
    seen: list[str] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        seen.append(head)
        request_line = head.partition("\r\n")[0]
        if request_line.startswith("HEAD"):
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n")
        elif "/eof" in request_line:
            writer.write(b"HTTP/1.1 200 OK\r\n\r\nuntil the close " + TOKEN.encode())
        else:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nonce")
        await writer.drain()
        writer.close()

    upstream = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=pki.server)
    port = upstream.sockets[0].getsockname()[1]
    ca = await asyncio.to_thread(EgressCA.load_or_create, tmp_path / "root")
    secret = Secret(PREFIX + "d" * 32, TOKEN, HostPolicy.limited(["localhost"]), header=True, body=False)

    async def source() -> list[Secret]:
        return [secret]

    proxy = EgressProxy(HostPolicy.unrestricted(), source, ca)
    await proxy.start_tcp()
    try:
        assert proxy.port is not None
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(f"CONNECT localhost:{port} HTTP/1.1\r\n\r\n".encode())
        await reader.readuntil(b"\r\n\r\n")
        await writer.start_tls(ssl.create_default_context(cafile=str(ca.bundle_path)), server_hostname="localhost")
        auth = f"Authorization: Bearer {secret.placeholder}\r\n"
        for _ in range(3):
            writer.write(f"GET /once HTTP/1.1\r\nHost: x\r\n{auth}\r\n".encode())
            assert await reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n"
            assert await reader.readexactly(4) == b"once"
        writer.write(b"HEAD /head HTTP/1.1\r\nHost: x\r\n\r\n")
        assert await reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"
        writer.write(f"GET /eof HTTP/1.1\r\nHost: x\r\n{auth}\r\n".encode())
        rest = await reader.read()  # to the end: the tunnel closes with the response
        writer.close()
        assert rest == b"HTTP/1.1 200 OK\r\n\r\nuntil the close " + b"*" * len(TOKEN)
        assert len(seen) == 5 and all(f"Host: localhost:{port}\r\n" in head for head in seen)
        assert sum(f"Authorization: Bearer {TOKEN}\r\n" in head for head in seen) == 4
    finally:
        await proxy.close()
        upstream.close()
        await upstream.wait_closed()


async def test_plain_http_echoes_come_back_masked(tmp_path: Path) -> None:
    """The plain-HTTP path masks substituted values in the response too (the echo server here speaks HTTP)."""
    server = serve_echo(None, tmp_path / "unused")
    echo = next(server)
    secret = Secret(PREFIX + "c" * 32, TOKEN, HostPolicy.limited(["127.0.0.1"]), header=True, body=True)

    async def source() -> list[Secret]:
        return [secret]

    proxy = EgressProxy(HostPolicy.unrestricted(), source)
    await proxy.start_tcp()
    try:
        assert proxy.port is not None
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        body = f"k={secret.placeholder}"
        writer.write(
            f"POST http://127.0.0.1:{echo.port}/plain HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {secret.placeholder}\r\nContent-Length: {len(body)}\r\n\r\n{body}".encode()
        )
        answer = await reader.read()
        writer.close()
        await writer.wait_closed()
        got = echo.last("/plain")
        assert got.headers["authorization"] == f"Bearer {TOKEN}" and got.body == f"k={TOKEN}".encode()
        assert TOKEN.encode() not in answer
        assert json.loads(answer.partition(b"\r\n\r\n")[2]) == {
            "authorization": "Bearer " + "*" * len(TOKEN),
            "body": "k=" + "*" * len(TOKEN),
        }
    finally:
        await proxy.close()
        server.close()


def test_the_ca_is_made_once_with_a_private_key_file(tmp_path: Path) -> None:
    first = EgressCA.load_or_create(tmp_path)
    again = EgressCA.load_or_create(tmp_path)
    assert first.cert == again.cert
    assert stat.S_IMODE((tmp_path / CA_DIR / "ca.pem").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / CA_DIR).stat().st_mode) == 0o700
    bundle = first.bundle_path.read_bytes()
    assert first.cert.public_bytes(serialization.Encoding.PEM) in bundle and b"PRIVATE KEY" not in bundle
    assert first.server_context("example.com") is first.server_context("EXAMPLE.com.")  # cached per host
    assert {p.name for p in (tmp_path / CA_DIR).iterdir()} == {"ca.pem", "bundle.pem"}  # no leaf key left behind


@given(st.binary(max_size=300), st.binary(max_size=300), st.lists(st.integers(1, 40), max_size=20))
def test_responses_are_masked_whatever_the_pieces(before: bytes, after: bytes, cuts: list[int]) -> None:
    value = "s3cr3t-value-xyz"
    stream = before + value.encode() + after + value.encode()
    redactor = Redactor([value, "abc"])  # too short to mask
    out, rest = b"", stream
    for cut in cuts:
        out += redactor.feed(rest[:cut])
        rest = rest[cut:]
    out += redactor.feed(rest) + redactor.flush()
    assert len(out) == len(stream)
    assert value.encode() not in out
    assert out == redactor.mask(stream)
