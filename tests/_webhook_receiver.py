"""A real webhook receiver on loopback: a threaded HTTP server that records every POST and answers with the
statuses it is scripted with (then 200), over TLS when given a server context. Usable from sync tests (the SDK)
and async ones (`until`)."""

from __future__ import annotations

import asyncio
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Delivery:
    headers: dict[str, str]
    body: str
    status: int
    """What the receiver answered."""

    @property
    def id(self) -> str:
        return self.headers["webhook-id"]


class Receiver:
    def __init__(self, tls: ssl.SSLContext | None = None, *, keep_alive: bool = False) -> None:
        self.deliveries: list[Delivery] = []
        self.statuses: list[int] = []
        """Answers for the next requests, in order; 200 once it is empty."""
        self.redirect_to: str | None = None
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0"))).decode()
                with receiver._lock:
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    receiver.deliveries.append(Delivery(headers, body, status))
                self.send_response(status)
                if 300 <= status < 400 and receiver.redirect_to:
                    self.send_header("location", receiver.redirect_to)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        if keep_alive:  # HTTP/1.1: a client may send its next request on the same connection
            Handler.protocol_version = "HTTP/1.1"

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}/hook"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def snapshot(self) -> list[Delivery]:
        with self._lock:
            return list(self.deliveries)

    def ok(self) -> list[Delivery]:
        return [d for d in self.snapshot() if 200 <= d.status < 300]

    def types(self) -> list[str]:
        import json

        return [json.loads(d.body)["data"]["type"] for d in self.ok()]

    def wait(self, check: Callable[[list[Delivery]], bool], timeout: float = 20.0) -> list[Delivery]:
        """Block until `check(deliveries)` holds (sync tests); fail after `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.snapshot()
            if check(got):
                return got
            time.sleep(0.02)
        raise AssertionError(f"receiver: condition not met within {timeout}s; got {len(self.snapshot())} deliveries")

    async def until(self, check: Callable[[list[Delivery]], bool], timeout: float = 20.0) -> list[Delivery]:
        """`wait` for async tests: polls without blocking the event loop."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.snapshot()
            if check(got):
                return got
            await asyncio.sleep(0.02)
        raise AssertionError(f"receiver: condition not met within {timeout}s; got {len(self.snapshot())} deliveries")


@contextmanager
def running_receiver(tls: ssl.SSLContext | None = None, *, keep_alive: bool = False) -> Iterator[Receiver]:
    receiver = Receiver(tls, keep_alive=keep_alive)
    receiver._thread.start()
    try:
        yield receiver
    finally:
        receiver._server.shutdown()
        receiver._server.server_close()
