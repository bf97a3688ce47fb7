"""Intercepted `CONNECT` tunnels: HTTPS requests to hosts that have an `environment_variable` credential.

For a `CONNECT host:port` that one of the session's credentials applies to, the egress proxy answers 200, does
the TLS handshake with a certificate for `host` from the runtime's CA (`_tls.py`; the sandbox trusts it), and
reads HTTP/1.1 requests from the decrypted stream, several per tunnel (keep-alive). Each request gets the same
substitution as a plain-HTTP one (`_inject.py`: header values and/or body, `Host` forced to the tunnel's host)
and goes to the real `host:port` over TLS, whose certificate the proxy verifies (system trust store, plus
`LOOPHOST_EGRESS_EXTRA_CA`). Responses come back as they are framed (`Content-Length`, chunked, or up to the
close), with every current secret value masked (same length, `*`) in their headers and bodies, so an echoing
server does not hand the secret to the sandbox; a compressed body is not inspected (best effort, documented).

HTTP/1.1 only: both handshakes offer ALPN `http/1.1` alone, and `Upgrade` is not forwarded.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from . import _inject
from ._inject import SecretSource
from ._tls import EgressCA

_HANDSHAKE_TIMEOUT = 30.0
_IDLE_TIMEOUT = 120.0
"""How long a tunnel waits for its client's next request."""
_RESPONSE_TIMEOUT = 300.0
"""How long the proxy waits for the head of the real server's response (its body is streamed, untimed)."""
_HOP_BY_HOP = ("connection", "keep-alive", "proxy-connection", "proxy-authorization", "te", "trailer", "upgrade")
_MIN_MASKED = 6
"""Shorter secret values are not masked in responses (they would mangle ordinary text)."""


def _status(code: int, reason: str, text: str) -> bytes:
    return (
        f"HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain\r\nConnection: close\r\n"
        f"Content-Length: {len(text)}\r\n\r\n{text}"
    ).encode()


class Redactor:
    """Masks secret values in a byte stream fed in pieces; a value split between two pieces is still masked
    (the last `longest - 1` bytes are held back until the next piece or `flush`)."""

    def __init__(self, values: Sequence[str]) -> None:
        self._values = sorted({v.encode() for v in values if len(v.encode()) >= _MIN_MASKED}, key=len, reverse=True)
        self._keep = max((len(v) for v in self._values), default=1) - 1
        self._pending = b""

    def mask(self, data: bytes) -> bytes:
        for value in self._values:
            if value in data:
                data = data.replace(value, b"*" * len(value))
        return data

    def feed(self, data: bytes) -> bytes:
        data = self.mask(self._pending + data)
        if self._keep == 0:
            self._pending = b""
            return data
        self._pending = data[-self._keep :]
        return data[: -self._keep]

    def flush(self) -> bytes:
        data, self._pending = self._pending, b""
        return data


async def tunnel(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    host: str,
    port: int,
    ca: EgressCA,
    secrets: SecretSource,
) -> None:
    """Serve one intercepted tunnel until either side closes it."""
    context = await asyncio.to_thread(ca.server_context, host)
    writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
    await writer.start_tls(context, ssl_handshake_timeout=_HANDSHAKE_TIMEOUT)
    upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    try:
        while True:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _IDLE_TIMEOUT)
            except asyncio.IncompleteReadError:
                return  # the client closed the tunnel between requests
            if upstream is not None and upstream[0].at_eof():  # the server closed its idle keep-alive connection
                await _close(upstream[1])
                upstream = None
            keep, upstream = await _exchange(head, reader, writer, host, port, ca, secrets, upstream)
            await writer.drain()
            if not keep:
                return
    finally:
        if upstream is not None:
            await _close(upstream[1])


async def _exchange(
    head: bytes,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    host: str,
    port: int,
    ca: EgressCA,
    secrets: SecretSource,
    upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None,
) -> tuple[bool, tuple[asyncio.StreamReader, asyncio.StreamWriter] | None]:
    """One request and its response. Returns (keep the tunnel open, the upstream connection to reuse)."""
    request_line, _, rest = head.decode("latin-1").partition("\r\n")
    parts = request_line.split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/1.") or parts[0].upper() == "CONNECT":
        writer.write(_status(400, "Bad Request", "loophost egress proxy: not an HTTP/1.1 request\n"))
        return False, upstream
    method, target, version = parts
    if "://" in target:  # absolute form: the tunnel decides where it goes, not the URL
        target = "/" + target.split("://", 1)[1].partition("/")[2]
    lines = [line for line in rest.split("\r\n") if line]
    client_close = (_inject.header(lines, "connection") or "").lower() == "close" or (
        version == "HTTP/1.0" and (_inject.header(lines, "connection") or "").lower() != "keep-alive"
    )
    current = await secrets()
    found = _inject.for_host(current, host, port)
    has_body = bool(_inject.header(lines, "content-length") or _inject.header(lines, "transfer-encoding"))
    if (_inject.header(lines, "expect") or "").lower() == "100-continue":
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    body: bytes | None = None
    headers = _inject.without(lines, "expect", "host", *_HOP_BY_HOP)
    if (_inject.header(lines, "transfer-encoding") or "").lower().endswith("chunked"):
        headers = _inject.without(headers, "content-length")  # chunked wins (as `_copy_body` reads it): one framing
    if has_body and any(s.body for s in found):
        try:
            body = _inject.substitute_body(await _inject.read_body(reader, lines), found)
        except _inject.BodyTooLarge:
            writer.write(_status(413, "Content Too Large", f"loophost egress proxy: body over {_inject.MAX_BODY}\n"))
            return False, upstream
        headers = [*_inject.without(headers, "transfer-encoding", "content-length"), f"Content-Length: {len(body)}"]
    headers = _inject.substitute_headers(headers, found)
    authority = f"[{host}]" if ":" in host else host
    headers.append(f"Host: {authority}" if port == 443 else f"Host: {authority}:{port}")
    request = "\r\n".join([f"{method} {target} HTTP/1.1", *headers, "", ""]).encode("latin-1")
    streamed = has_body and body is None
    while True:
        fresh = upstream is None
        if upstream is None:
            try:
                upstream = await asyncio.open_connection(
                    host, port, ssl=ca.upstream, server_hostname=host, ssl_handshake_timeout=_HANDSHAKE_TIMEOUT
                )
            except OSError as exc:  # includes a certificate that does not verify
                reason = getattr(exc, "verify_message", None) or exc.strerror or type(exc).__name__
                writer.write(_status(502, "Bad Gateway", f"loophost egress proxy: cannot reach {host}: {reason}\n"))
                return False, None
        up_reader, up_writer = upstream
        try:
            up_writer.write(request)
            if body is not None:
                up_writer.write(body)
            elif streamed:
                await _copy_body(reader, up_writer, lines, None)
            await up_writer.drain()
            head = await asyncio.wait_for(up_reader.readuntil(b"\r\n\r\n"), _RESPONSE_TIMEOUT)
            break
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            await _close(up_writer)
            upstream = None
            # a reused keep-alive connection the server had closed: once more on a new one, unless the body
            # was streamed (it is gone) or the server had begun to answer
            if fresh or streamed or (isinstance(exc, asyncio.IncompleteReadError) and exc.partial):
                raise
    redactor = Redactor([s.value for s in current])
    if not await _relay_response(head, up_reader, writer, method.upper() == "HEAD", redactor):
        await _close(up_writer)
        return False, None
    return not client_close, upstream


async def _relay_response(
    head: bytes, up_reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head_only: bool, redactor: Redactor
) -> bool:
    """Relay the response that begins with `head` (after any 1xx) to the client; True when the upstream connection
    can be reused."""
    while True:
        status_line, _, rest = head.decode("latin-1").partition("\r\n")
        fields = status_line.split(None, 2)
        if len(fields) < 2 or not fields[1].isdigit():
            writer.write(_status(502, "Bad Gateway", "loophost egress proxy: malformed response from upstream\n"))
            return False
        status = int(fields[1])
        writer.write(redactor.mask(head))
        if not 100 <= status < 200 or status == 101:
            break
        head = await asyncio.wait_for(up_reader.readuntil(b"\r\n\r\n"), _RESPONSE_TIMEOUT)
    lines = [line for line in rest.split("\r\n") if line]
    reusable = (_inject.header(lines, "connection") or "").lower() != "close"
    if head_only or 100 <= status < 200 or status in (204, 304):
        return reusable and status != 101
    if not await _copy_body(up_reader, writer, lines, redactor):
        return False  # delimited by the close: the client must see the close too
    return reusable


async def _copy_body(
    src: asyncio.StreamReader, dst: asyncio.StreamWriter, lines: Sequence[str], redactor: Redactor | None
) -> bool:
    """Copy one message body as it is framed; False when it ran to the end of the stream (no framing)."""
    feed = redactor.feed if redactor is not None else (lambda data: data)
    if (_inject.header(lines, "transfer-encoding") or "").lower().endswith("chunked"):
        while True:
            size_line = await src.readuntil(b"\r\n")
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                tail = redactor.flush() if redactor is not None else b""
                if tail:
                    dst.write(b"%x\r\n%s\r\n" % (len(tail), tail))
                dst.write(b"0\r\n")
                while (trailer := await src.readuntil(b"\r\n")) != b"\r\n":
                    dst.write(redactor.mask(trailer) if redactor is not None else trailer)
                dst.write(b"\r\n")
                return True
            data = feed(await src.readexactly(size))
            await src.readexactly(2)
            if data:
                dst.write(b"%x\r\n%s\r\n" % (len(data), data))
                await dst.drain()
    length_text = _inject.header(lines, "content-length")
    if length_text is not None:
        remaining = int(length_text)
        while remaining > 0:
            data = await src.read(min(remaining, 65536))
            if not data:
                raise asyncio.IncompleteReadError(b"", remaining)
            remaining -= len(data)
            dst.write(feed(data))
            await dst.drain()
        if redactor is not None:
            dst.write(redactor.flush())
        return True
    if redactor is None:  # a request without framing has no body
        return True
    while data := await src.read(65536):
        dst.write(feed(data))
        await dst.drain()
    dst.write(redactor.flush())
    return False


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()
