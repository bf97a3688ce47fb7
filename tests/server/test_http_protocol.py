"""`HttpProtocol`'s transport: a response head leaves with the first bytes after it, or once the loop turns;
every other write leaves at once, in order."""

from __future__ import annotations

import asyncio
import socket

from loophost.server._http_protocol import _HeadJoiningTransport

HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n"


async def _pair() -> tuple[asyncio.Transport, socket.socket]:
    """A real transport over a real socket pair, and the peer socket to read what it sent."""
    ours, peer = socket.socketpair()
    peer.setblocking(False)
    loop = asyncio.get_running_loop()
    transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, ours)
    return transport, peer


def _sent(peer: socket.socket) -> list[bytes]:
    """Each recv of what has arrived (a write that arrived alone is its own entry only if read alone)."""
    try:
        return [peer.recv(65536)]
    except BlockingIOError:
        return []


async def test_a_head_and_its_body_leave_in_one_write() -> None:
    transport, peer = await _pair()
    joined = _HeadJoiningTransport(transport, asyncio.get_running_loop())
    joined.write(HEAD)
    assert _sent(peer) == []  # held: the body usually follows in the same step
    joined.write(b"{}")
    assert _sent(peer) == [HEAD + b"{}"]
    joined.close()
    peer.close()


async def test_a_head_alone_leaves_when_the_loop_turns() -> None:
    transport, peer = await _pair()
    joined = _HeadJoiningTransport(transport, asyncio.get_running_loop())
    joined.write(HEAD)  # a streamed response: its first chunk may be long in coming
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert _sent(peer) == [HEAD]
    joined.write(b"data: 1\n\n")  # stream chunks are not held
    assert _sent(peer) == [b"data: 1\n\n"]
    joined.write(HEAD)
    joined.writelines([b"{", b"}"])  # after a held head, in order
    assert _sent(peer) == [HEAD + b"{}"]
    joined.close()
    peer.close()


async def test_close_sends_a_held_head_and_abort_drops_it() -> None:
    transport, peer = await _pair()
    joined = _HeadJoiningTransport(transport, asyncio.get_running_loop())
    joined.write(HEAD)
    assert joined.get_write_buffer_size() >= len(HEAD)
    joined.close()
    await asyncio.sleep(0.01)
    assert peer.recv(65536) == HEAD
    peer.close()

    transport, peer = await _pair()
    joined = _HeadJoiningTransport(transport, asyncio.get_running_loop())
    joined.write(HEAD)
    joined.abort()
    await asyncio.sleep(0.01)
    assert peer.recv(65536) == b""  # closed, nothing sent
    peer.close()
