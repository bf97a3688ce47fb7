"""uvicorn's httptools protocol with one change: a response's head and the first bytes of its body leave in one
send.

uvicorn writes a response's status line and headers as soon as the app sends `http.response.start`, and the body
in a second write. Over loopback every write is a system call and a wake-up of the reader, and a client that reads
the head and the body in two reads pays its read path twice: for the small JSON answers of this API (a posted
event's echo) that is a measurable part of a turn. So a head is held until the next write (joined to it) or until
the loop turns (`call_soon`: a streamed response's head is not delayed past the current step). Every other write
goes out at once, so stream chunks are not delayed; order is kept, `close()` flushes, `abort()` drops the head.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class _HeadJoiningTransport:
    """A transport that holds a response head (`HTTP/1.1 ...`) until the next write or the end of the loop step."""

    __slots__ = ("_head", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._head: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        head, self._head = self._head, None
        if head is not None:
            self._transport.write(head + data)
        elif data[:5] == b"HTTP/":
            self._head = bytes(data)
            self._loop.call_soon(self._flush)
        else:
            self._transport.write(data)

    def writelines(self, chunks: Any) -> None:  # through `write`, so a held head keeps its place
        for chunk in chunks:
            self.write(chunk)

    def _flush(self) -> None:
        head, self._head = self._head, None
        if head is not None and not self._transport.is_closing():
            self._transport.write(head)

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + len(self._head or b"")

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def abort(self) -> None:
        self._head = None
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:  # everything else is the real transport's
        return getattr(self._transport, name)


class HttpProtocol(HttpToolsProtocol):
    """The protocol `loophost serve` gives uvicorn (`uvicorn.Config(http=HttpProtocol)`)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(_HeadJoiningTransport(transport, asyncio.get_running_loop()))  # type: ignore[arg-type]
