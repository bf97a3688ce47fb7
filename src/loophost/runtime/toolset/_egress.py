"""The egress proxy of `limited` networking: an HTTP proxy run by the runtime that admits only allowed hosts.

Under bwrap the sandbox has no network of its own (`--unshare-net`); its only way out is this proxy, reached
through a unix socket bound into the sandbox (and a loopback forwarder there, see `_sandbox.py`), so a program
that ignores the proxy variables simply has no route. It speaks `CONNECT host:port` (HTTPS and any TCP) and plain
`GET http://host/...` forwarding, one request per connection, and answers 403 to any other host. web_fetch applies
the same `HostPolicy` in the runtime process.

With `environment_variable` credentials the proxy also substitutes their placeholders in requests to their allowed
hosts (`_inject.py`); it then runs under `unrestricted` networking too (on a loopback port). Plain HTTP is
substituted here; a `CONNECT` to a host:port that a credential applies to is intercepted (TLS with a certificate
from the runtime's CA, `_tls.py`, `_intercept.py`) when the proxy has a CA; every other `CONNECT` is a blind tunnel.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from . import _inject, _intercept
from ._inject import SecretSource
from ._tls import EgressCA

log = logging.getLogger("loophost.toolset")

PACKAGE_MANAGER_HOSTS = (
    "pypi.org",
    "files.pythonhosted.org",
    "registry.npmjs.org",
    "registry.yarnpkg.com",
    "crates.io",
    "index.crates.io",
    "static.crates.io",
    "rubygems.org",
    "index.rubygems.org",
    "proxy.golang.org",
    "sum.golang.org",
    "deb.debian.org",
    "security.debian.org",
    "archive.ubuntu.com",
    "security.ubuntu.com",
)
"""Admitted under `limited` networking when `allow_package_managers` is true."""

_MAX_HEADER = 64 * 1024
_HEADER_TIMEOUT = 30.0


def _host_entry(entry: str) -> tuple[str, int | None]:
    """`host`, `host:port`, `*.domain` or a URL, as (lower-case host pattern, port or None)."""
    entry = entry.strip().lower()
    if "://" in entry:
        parts = urlsplit(entry)
        return (parts.hostname or ""), parts.port
    if entry.startswith("[") and "]" in entry:  # [v6]:port
        host, _, rest = entry[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else None
    host, sep, port = entry.rpartition(":")
    if sep and port.isdigit() and ":" not in host:
        return host, int(port)
    return entry, None


@dataclass(frozen=True, slots=True)
class HostPolicy:
    """Which hosts a session may reach. `None` entries: everything (unrestricted networking)."""

    entries: tuple[tuple[str, int | None], ...] | None

    @classmethod
    def unrestricted(cls) -> HostPolicy:
        return cls(None)

    @classmethod
    def limited(
        cls, allowed_hosts: Iterable[str], *, package_managers: bool = False, mcp_urls: Iterable[str] = ()
    ) -> HostPolicy:
        hosts = [*allowed_hosts, *(PACKAGE_MANAGER_HOSTS if package_managers else ()), *mcp_urls]
        return cls(tuple(_host_entry(h) for h in hosts if h.strip()))

    @property
    def is_unrestricted(self) -> bool:
        return self.entries is None

    def allows(self, host: str, port: int) -> bool:
        if self.entries is None:
            return True
        host = host.strip("[]").lower().rstrip(".")
        for pattern, only_port in self.entries:
            if only_port is not None and only_port != port:
                continue
            if pattern.startswith("*."):
                if host.endswith(pattern[1:]) and host != pattern[2:]:
                    return True
            elif host == pattern:
                return True
        return False


def _forbidden(host: str) -> bytes:
    body = f"loophost egress proxy: {host} is not an allowed host of this environment (networking: limited)\n"
    return (
        "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nConnection: close\r\n"
        f"Content-Length: {len(body)}\r\n\r\n{body}"
    ).encode()


def _bad_gateway(host: str, exc: OSError) -> bytes:
    body = f"loophost egress proxy: cannot connect to {host}: {exc.strerror or exc}\n"
    return f"HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\nContent-Length: {len(body)}\r\n\r\n{body}".encode()


def _too_large() -> bytes:
    body = f"loophost egress proxy: a request body over {_inject.MAX_BODY} bytes cannot carry a substituted secret\n"
    return f"HTTP/1.1 413 Content Too Large\r\nConnection: close\r\nContent-Length: {len(body)}\r\n\r\n{body}".encode()


def _bad(reason: str) -> bytes:
    return f"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: {len(reason)}\r\n\r\n{reason}".encode()


class EgressProxy:
    """One session's proxy. Owns its server and every connection task; `close` cancels and awaits them all."""

    def __init__(self, policy: HostPolicy, secrets: SecretSource | None = None, ca: EgressCA | None = None) -> None:
        self.policy = policy
        self.secrets = secrets
        self.ca = ca
        """Set with `secrets`: HTTPS to a credential's hosts is intercepted with certificates from this CA."""
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port: int | None = None
        self.socket_path: Path | None = None

    async def start_unix(self, path: Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        self._server = await asyncio.start_unix_server(self._accept, path=str(path))
        os.chmod(path, 0o600)
        self.socket_path = path

    async def start_tcp(self) -> None:
        self._server = await asyncio.start_server(self._accept, host="127.0.0.1", port=0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        cancelled = False
        try:
            await self._handle(reader, writer)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError):
            pass
        except asyncio.CancelledError:  # `close` cancels and awaits it: end quietly (asyncio logs a handler task
            cancelled = True  # that ends cancelled), and drop the connection without waiting for a TLS goodbye
        finally:
            self._tasks.discard(task)
            if cancelled:
                writer.transport.abort()
            else:
                writer.close()
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await writer.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _HEADER_TIMEOUT)
        if len(head) > _MAX_HEADER:
            writer.write(_bad("header too large\n"))
            return
        request_line, _, rest = head.decode("latin-1").partition("\r\n")
        parts = request_line.split()
        if len(parts) != 3:
            writer.write(_bad("malformed request line\n"))
            return
        method, target, version = parts
        if method.upper() == "CONNECT":
            host, _, port_text = target.rpartition(":")
            if not port_text.isdigit() or not host:
                writer.write(_bad("CONNECT needs host:port\n"))
                return
            host, port = host.strip("[]"), int(port_text)
            if not self.policy.allows(host, port):
                writer.write(_forbidden(host))
                return
            secrets = self.secrets
            if self.ca is not None and secrets is not None and _inject.for_host(await secrets(), host, port):
                await _intercept.tunnel(reader, writer, host, port, self.ca, secrets)
                return
            try:
                up_reader, up_writer = await asyncio.open_connection(host, port)
            except OSError as exc:
                writer.write(_bad_gateway(host, exc))
                return
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await self._relay(reader, writer, up_reader, up_writer)
            return
        url = urlsplit(target)
        if url.scheme != "http" or not url.hostname:
            writer.write(_bad("only absolute http:// URLs and CONNECT are proxied\n"))
            return
        port = url.port or 80
        if not self.policy.allows(url.hostname, port):
            writer.write(_forbidden(url.hostname))
            return
        path = url.path or "/"
        if url.query:
            path += "?" + url.query
        headers = [
            line
            for line in rest.split("\r\n")
            if line and not line.lower().startswith(("proxy-", "connection:", "keep-alive:"))
        ]
        body: bytes | None = None
        found = _inject.for_host(await self.secrets(), url.hostname, port) if self.secrets is not None else []
        if found:
            if any(s.body for s in found):
                if (_inject.header(headers, "expect") or "").lower() == "100-continue":
                    writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                try:
                    body = _inject.substitute_body(await _inject.read_body(reader, headers), found)
                except _inject.BodyTooLarge:
                    writer.write(_too_large())
                    return
                headers = _inject.without(headers, "expect", "transfer-encoding", "content-length")
                if body or method.upper() in ("POST", "PUT", "PATCH"):
                    headers.append(f"Content-Length: {len(body)}")
            headers = _inject.substitute_headers(headers, found)
            # the request goes where its URL says, and so does its Host: a different Host header could route a
            # substituted secret to another site served from the same address (virtual hosting, CDNs)
            headers = [*_inject.without(headers, "host"), f"Host: {url.netloc.rpartition('@')[2]}"]
        upstream_head = "\r\n".join([f"{method} {path} {version}", *headers, "Connection: close", "", ""])
        try:
            up_reader, up_writer = await asyncio.open_connection(url.hostname, port)
        except OSError as exc:
            writer.write(_bad_gateway(url.hostname, exc))
            return
        up_writer.write(upstream_head.encode("latin-1"))
        if body:
            up_writer.write(body)
        # the response (delimited by the close) comes back with the substituted values masked: an echo does not
        # hand them to the sandbox (same-length masks keep its framing)
        await self._relay(reader, writer, up_reader, up_writer, _intercept.Redactor([s.value for s in found]))

    async def _relay(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        up_reader: asyncio.StreamReader,
        up_writer: asyncio.StreamWriter,
        redactor: _intercept.Redactor | None = None,
    ) -> None:
        async def pump(
            src: asyncio.StreamReader, dst: asyncio.StreamWriter, redactor: _intercept.Redactor | None = None
        ) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(redactor.feed(data) if redactor is not None else data)
                    await dst.drain()
                if redactor is not None:
                    dst.write(redactor.flush())
            except OSError:
                pass
            finally:
                if dst.can_write_eof():
                    with contextlib.suppress(OSError):
                        dst.write_eof()

        try:
            up = asyncio.ensure_future(pump(reader, up_writer))
            down = asyncio.ensure_future(pump(up_reader, writer, redactor))
            try:
                await down  # the response is done when upstream closes
            finally:
                up.cancel()
                await asyncio.gather(up, return_exceptions=True)
        finally:
            up_writer.close()
            with contextlib.suppress(Exception):
                await up_writer.wait_closed()
