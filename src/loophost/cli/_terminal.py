"""Keys from the terminal, one at a time, on the event loop: for `loophost sessions connect` (Enter sends, Esc
interrupts, y/n answers a confirmation) while the session's events print.

On a terminal, input is put in cbreak mode (no line buffering, no echo; signals still work) and restored on exit;
the caller echoes what is typed. Anything else (a pipe) is read as it comes, a newline being Enter. Reads are
`loop.add_reader` callbacks, so nothing blocks a thread that could outlive the command.
"""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from types import TracebackType
from typing import Literal

__all__ = ("Key", "KeyInput")

KeyKind = Literal["char", "enter", "escape", "backspace", "eof"]


@dataclass(frozen=True, slots=True)
class Key:
    kind: KeyKind
    char: str = ""


def parse_keys(chunk: str) -> list[Key]:
    """The keys in one read. A lone ESC is the Escape key; ESC followed by `[` or `O` starts an escape sequence
    (arrows, function keys), which is dropped whole."""
    keys: list[Key] = []
    i = 0
    while i < len(chunk):
        ch = chunk[i]
        if ch == "\x1b":
            if i + 1 < len(chunk) and chunk[i + 1] in "[O":
                i += 2
                while i < len(chunk) and not ("@" <= chunk[i] <= "~"):
                    i += 1
            else:
                keys.append(Key("escape"))
        elif ch in "\r\n":
            keys.append(Key("enter"))
        elif ch in "\x7f\x08":
            keys.append(Key("backspace"))
        elif ch == "\x04":
            keys.append(Key("eof"))
        elif ch.isprintable():
            keys.append(Key("char", ch))
        i += 1
    return keys


class KeyInput:
    """`async with KeyInput() as keys: key = await keys.next()`; an `eof` key once input ends."""

    def __init__(self, fd: int | None = None) -> None:
        self.fd = sys.stdin.fileno() if fd is None else fd
        self.interactive = os.isatty(self.fd)
        self._queue: asyncio.Queue[Key] = asyncio.Queue()
        self._saved: list[object] | None = None
        self._reading = False

    async def __aenter__(self) -> KeyInput:
        if self.interactive:
            import termios
            import tty

            self._saved = termios.tcgetattr(self.fd)
            tty.setcbreak(self.fd)
        loop = asyncio.get_running_loop()
        try:
            loop.add_reader(self.fd, self._readable)
            self._reading = True
        except PermissionError:  # a regular file cannot be polled: it is all there already
            self._feed(os.read(self.fd, 1 << 20))
            self._queue.put_nowait(Key("eof"))
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._reading:
            asyncio.get_running_loop().remove_reader(self.fd)
            self._reading = False
        if self._saved is not None:
            import termios

            termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)  # type: ignore[arg-type]
            self._saved = None

    def _feed(self, data: bytes) -> None:
        for key in parse_keys(data.decode("utf-8", "replace")):
            self._queue.put_nowait(key)

    def _readable(self) -> None:
        try:
            data = os.read(self.fd, 4096)
        except OSError:
            data = b""
        if not data:
            asyncio.get_running_loop().remove_reader(self.fd)
            self._reading = False
            self._queue.put_nowait(Key("eof"))
            return
        self._feed(data)

    async def next(self) -> Key:
        return await self._queue.get()
