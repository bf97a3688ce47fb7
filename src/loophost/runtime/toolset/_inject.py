"""Secret substitution in the egress proxy: `environment_variable` credentials never enter the sandbox.

The sandbox's environment holds a placeholder for each credential (`placeholder()`); the proxy replaces it with
the real value in requests to the credential's allowed hosts (plain HTTP in `_egress.py`, HTTPS in the tunnels
`_intercept.py` opens for exactly those hosts), in the header values and/or the body as its `injection_location`
says, and nowhere else: a request to another host (a blind `CONNECT` tunnel for HTTPS) or a placeholder in the
URL carries the placeholder as it is. Nothing here logs, and the value does not go back towards the sandbox:
responses come back with it masked (`_intercept.Redactor`, best effort: not inside compressed bodies).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._egress import HostPolicy

PREFIX = "loophost_secret_"
MAX_BODY = 8 * 1024 * 1024
"""Largest request body the proxy buffers to substitute in (a larger one is refused with 413)."""


def placeholder() -> str:
    """A fresh opaque placeholder: letters, digits and underscores, so it survives any quoting or encoding."""
    return PREFIX + secrets.token_hex(16)


@dataclass(frozen=True, slots=True)
class Secret:
    """One credential as the proxy substitutes it. `repr` shows no value."""

    placeholder: str
    value: str
    hosts: HostPolicy
    header: bool
    body: bool

    def __repr__(self) -> str:
        return f"Secret({self.placeholder})"


SecretSource = Callable[[], Awaitable[Sequence[Secret]]]
"""The session's credentials as they are now (an update or an archive applies to the next request)."""


class BodyTooLarge(Exception):
    pass


def for_host(found: Sequence[Secret], host: str, port: int) -> list[Secret]:
    return [s for s in found if s.hosts.allows(host, port)]


def substitute_headers(lines: Sequence[str], found: Sequence[Secret]) -> list[str]:
    """Header lines (as the proxy reads them: latin-1 text of the raw bytes) with placeholders replaced in their
    values; names are left alone. `Authorization: Basic` credentials are decoded, substituted and encoded again,
    so `curl -u user:$TOKEN` works. A value holding a line break is never put in a header (it would split the
    request)."""
    usable = [s for s in found if s.header and not any(c in s.value for c in "\r\n\0")]
    if not usable:
        return list(lines)
    result: list[str] = []
    for line in lines:
        name, sep, value = line.partition(":")
        if not sep:
            result.append(line)
            continue
        value = _replace(value.encode("latin-1"), usable).decode("latin-1")
        if name.strip().lower() == "authorization":
            scheme, _, encoded = value.strip().partition(" ")
            if scheme.lower() == "basic":
                value = " " + scheme + " " + _basic(encoded.strip(), usable)
        result.append(f"{name}:{value}")
    return result


def _replace(data: bytes, found: Sequence[Secret]) -> bytes:
    for secret in found:
        mark = secret.placeholder.encode()
        if mark in data:
            data = data.replace(mark, secret.value.encode())
    return data


def _basic(encoded: str, found: Sequence[Secret]) -> str:
    try:
        decoded = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return encoded
    replaced = _replace(decoded, found)
    return encoded if replaced == decoded else base64.b64encode(replaced).decode()


def substitute_body(body: bytes, found: Sequence[Secret]) -> bytes:
    return _replace(body, [s for s in found if s.body])


def header(lines: Sequence[str], name: str) -> str | None:
    for line in lines:
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() == name:
            return value.strip()
    return None


def without(lines: Sequence[str], *names: str) -> list[str]:
    return [line for line in lines if line.partition(":")[0].strip().lower() not in names]


async def read_body(reader: asyncio.StreamReader, lines: Sequence[str]) -> bytes:
    """The whole request body (`Content-Length` or chunked), at most `MAX_BODY` bytes."""
    if (header(lines, "transfer-encoding") or "").lower().endswith("chunked"):
        body = bytearray()
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                    pass
                return bytes(body)
            if len(body) + size > MAX_BODY:
                raise BodyTooLarge
            body += await reader.readexactly(size)
            await reader.readexactly(2)
    length = int(header(lines, "content-length") or "0")
    if length > MAX_BODY:
        raise BodyTooLarge
    return await reader.readexactly(length) if length > 0 else b""
