"""The SSE stream (spec §5.3-5.4; checklist 27, 28, 31, 32, 40, 42 and the replay extension), and its teardown.

Against the shared server subprocess through the official SDK (sync and async) and raw HTTP; teardown (client
disconnect, graceful shutdown) against an in-process server whose runtime can be inspected; and `_sse` itself.
Every read has a deadline: heartbeats keep an idle stream busy, so read timeouts alone never fire.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import pytest
import uvicorn

from loophost.runtime import Runtime, StoredEvent
from loophost.runtime._bus import Preview, StreamItem
from loophost.server import ApiKeys, ServerSettings, create_app
from loophost.server._sse import PING, Closing, EventStreamResponse, frame

from .conftest import KEY_A, KEY_B, ServerProcess
from .test_events_api import BETA, is_idle, list_all, make_session, message, read_until, run_turn

# --- raw SSE reading ------------------------------------------------------------------------------------------


@dataclass
class Frame:
    event: str | None
    data: str
    id: str | None
    lines: list[str] = field(default_factory=list)

    def json(self) -> Any:
        return json.loads(self.data)


def parse_frame(raw: bytes) -> Frame:
    lines = raw.decode().split("\n")
    fields: dict[str, list[str]] = {}
    for line in lines:
        name, _, value = line.partition(":")
        fields.setdefault(name, []).append(value.removeprefix(" "))
    assert len(fields.get("data", [])) == 1, f"one data line per frame: {lines}"
    return Frame(
        event=fields.get("event", [None])[0], data=fields["data"][0], id=fields.get("id", [None])[0], lines=lines
    )


class FrameReader:
    """SSE frames of a streamed httpx2 response, read with deadlines."""

    def __init__(self, response: httpx2.Response) -> None:
        self._chunks = response.aiter_bytes()
        self._buffer = b""
        self.eof = False

    async def _next(self) -> Frame | None:
        while b"\n\n" not in self._buffer:
            try:
                self._buffer += await anext(self._chunks)
            except StopAsyncIteration:
                self.eof = True
                assert not self._buffer.strip(), f"a truncated frame at EOF: {self._buffer!r}"
                return None
        raw, self._buffer = self._buffer.split(b"\n\n", 1)
        return parse_frame(raw)

    async def until(self, stop: Callable[[Frame], bool], timeout: float = 20.0) -> list[Frame]:
        frames: list[Frame] = []
        async with asyncio.timeout(timeout):
            while (got := await self._next()) is not None:
                frames.append(got)
                if stop(got):
                    return frames
        raise AssertionError(f"EOF before the expected frame; got {[f.event for f in frames]}")

    async def rest(self, timeout: float = 20.0) -> list[Frame]:
        """Every frame up to EOF."""
        frames: list[Frame] = []
        async with asyncio.timeout(timeout):
            while (got := await self._next()) is not None:
                frames.append(got)
        return frames


def events_of(frames: list[Frame]) -> list[Frame]:
    return [f for f in frames if f.event != "ping"]


def raw_async(url: str, key: str = KEY_A) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {key}", **BETA}, timeout=httpx2.Timeout(10.0)
    )


async def aread_until(stream: Any, stop: Callable[[Any], bool], timeout: float = 20.0) -> list[Any]:
    got: list[Any] = []
    async with asyncio.timeout(timeout):
        async for event in stream:
            got.append(event)
            if stop(event):
                return got
    raise AssertionError(f"the stream ended early; got {[e.type for e in got]}")


# --- through the SDK ------------------------------------------------------------------------------------------


def test_stream_first_turn_yields_typed_events(client: anthropic.Anthropic) -> None:
    """Checklist 27 (sync client): running, then agent.message, then idle end_turn; typed models with ids."""
    sid = make_session(client)
    events = run_turn(client, sid, "hello")
    types = [e.type for e in events]
    assert types[0] == "user.message"
    assert types.index("session.status_running") < types.index("agent.message") < len(types) - 1
    assert types[-1] == "session.status_idle"
    assert events[-1].stop_reason.type == "end_turn"
    assert all(isinstance(e, anthropic.BaseModel) for e in events)
    assert all(e.id for e in events)
    assert all(e.processed_at is not None for e in events)  # the message had nothing ahead of it: processed at once
    assert [e.content[0].text for e in events if e.type == "agent.message"] == ["echo: hello"]


async def test_stream_first_turn_async(client: anthropic.Anthropic, async_client: anthropic.AsyncAnthropic) -> None:
    """Checklist 27 with the async client, previews requested."""
    sid = make_session(client)
    stream = await async_client.beta.sessions.events.stream(sid, event_deltas=["agent.message"])
    async with stream:
        sent = await async_client.beta.sessions.events.send(sid, events=[message("hello async")])
        events = await aread_until(stream, is_idle("end_turn"))
    assert events[0].id == sent.data[0].id
    types = [e.type for e in events]
    assert "session.status_running" in types
    assert types.index("event_start") < types.index("agent.message")
    listed = [e.id async for e in async_client.beta.sessions.events.list(sid)]
    assert listed == [e.id for e in events if e.type not in ("event_start", "event_delta")]


def test_previews_only_when_asked(client: anthropic.Anthropic) -> None:
    """Checklist 31: event_start.event.id is the later agent.message's id; deltas form a prefix of its text."""
    sid = make_session(client)
    events = run_turn(client, sid, "hello there general kenobi", deltas=["agent.message"])
    starts = [e for e in events if e.type == "event_start"]
    assert len(starts) == 1
    messages = [e for e in events if e.type == "agent.message"]
    assert len(messages) == 1
    assert starts[0].event.id == messages[0].id
    assert starts[0].event.type == "agent.message"
    position = [e.type for e in events]
    assert position.index("event_start") < position.index("agent.message")
    deltas = [e for e in events if e.type == "event_delta"]
    assert deltas
    assert all(d.event_id == messages[0].id for d in deltas)
    assert all(position.index("event_start") < events.index(d) < position.index("agent.message") for d in deltas)
    text = "".join(d.delta.content.text for d in deltas)
    assert text
    assert messages[0].content[0].text.startswith(text)

    plain = run_turn(client, sid, "hello again")
    assert not {e.type for e in plain} & {"event_start", "event_delta"}
    thinking_only = run_turn(client, sid, "and again", deltas=["agent.thinking"])
    assert not {e.type for e in thinking_only} & {"event_start", "event_delta"}  # no message previews


def test_bad_event_deltas_are_400s(client: anthropic.Anthropic) -> None:
    """Checklist 32, plus the 100-value cap; all before any stream bytes."""
    sid = make_session(client)
    with pytest.raises(anthropic.BadRequestError) as info:
        client.beta.sessions.events.stream(sid, event_deltas=["bogus"])  # type: ignore[list-item]
    assert info.value.body["error"]["details"]["error_code"] == "invalid_event_deltas"  # type: ignore[index]
    with pytest.raises(anthropic.BadRequestError):
        client.beta.sessions.events.stream(sid, event_deltas=["agent.message"] * 101)
    with client.beta.sessions.events.stream(sid, event_deltas=["agent.message"] * 100) as ok:
        assert ok.response.status_code == 200


def test_unknown_or_foreign_session_stream_is_a_json_404(
    client: anthropic.Anthropic, other_client: anthropic.Anthropic, server: ServerProcess
) -> None:
    sid = make_session(client)
    with pytest.raises(anthropic.NotFoundError) as info:
        client.beta.sessions.events.stream("sesn_nope")
    assert info.value.body["type"] == "error"  # type: ignore[index]
    with pytest.raises(anthropic.NotFoundError):
        other_client.beta.sessions.events.stream(sid)
    tid = next(iter(client.beta.sessions.threads.list(sid))).id
    with pytest.raises(anthropic.NotFoundError):
        other_client.beta.sessions.threads.events.stream(tid, session_id=sid)
    with httpx2.Client(base_url=server.url, headers={"Authorization": f"Bearer {KEY_B}", **BETA}) as http:
        r = http.get(f"/v1/sessions/{sid}/events/stream", headers={"Accept": "text/event-stream"})
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/json"
    assert r.json()["error"]["type"] == "not_found_error"


def test_reconnect_with_stream_first_then_list(client: anthropic.Anthropic) -> None:
    """Checklist 40: close mid-turn, reopen, list, dedupe by id: the full sequence; no replay on reopen."""
    sid = make_session(client)
    with client.beta.sessions.events.stream(sid, timeout=30) as first:
        client.beta.sessions.events.send(sid, events=[message("sleep 800\nhello")])
        before = read_until(first, lambda e: e.type == "span.model_request_start")
    with client.beta.sessions.events.stream(sid, timeout=30) as second:
        history = list_all(client, sid)
        after = read_until(second, is_idle("end_turn"))
    final = [e.id for e in list_all(client, sid)]
    seen: dict[str, Any] = {}
    for event in [*before, *history, *after]:
        seen.setdefault(event.id, event)
    assert list(seen) == final
    assert not {e.id for e in before} & {e.id for e in after}  # nothing replayed
    assert [e.id for e in after] == final[-len(after) :]  # a contiguous tail: nothing missed either
    assert after[-1].type == "session.status_idle"


def test_thread_stream_path(client: anthropic.Anthropic) -> None:
    """Checklist 42: `threads.events.stream` (path `/threads/{tid}/stream`) streams the primary thread."""
    sid = make_session(client)
    tid = next(iter(client.beta.sessions.threads.list(sid))).id
    with client.beta.sessions.threads.events.stream(tid, session_id=sid, event_deltas=["agent.message"]) as stream:
        assert stream.response.url.path == f"/v1/sessions/{sid}/threads/{tid}/stream"
        client.beta.sessions.events.send(sid, events=[message("hello thread")])
        events = read_until(stream, is_idle("end_turn"))
    assert "event_start" in [e.type for e in events]
    persisted = [e.id for e in events if e.type not in ("event_start", "event_delta")]
    assert persisted == [e.id for e in client.beta.sessions.threads.events.list(tid, session_id=sid)]
    with pytest.raises(anthropic.NotFoundError):
        client.beta.sessions.threads.events.stream("sthr_nope", session_id=sid)


# --- raw frames -----------------------------------------------------------------------------------------------


async def test_raw_frames(client: anthropic.Anthropic, server: ServerProcess) -> None:
    """Checklist 28: every frame has `event:`; heartbeats are `event: ping`; `id:` on persisted events only;
    200 text/event-stream although the request says `Accept: application/json` (as the SDK does)."""
    sid = make_session(client)
    async with raw_async(server.url) as http:
        url = f"/v1/sessions/{sid}/events/stream"
        params = {"event_deltas[]": "agent.message"}
        async with http.stream("GET", url, params=params, headers={"Accept": "application/json"}) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            assert response.headers["cache-control"] == "no-cache"
            reader = FrameReader(response)
            idle = await reader.until(lambda f: f.event == "ping", timeout=5)  # idle: heartbeats flow
            await http.post(f"/v1/sessions/{sid}/events", json={"events": [message("hello raw")]})
            turn = await reader.until(lambda f: f.event == "session.status_idle")
            later = await reader.until(lambda f: f.event == "ping", timeout=5)
    frames = [*idle, *turn, *later]
    for f in frames:
        assert f.event, f.lines
        if f.event == "ping":
            assert f.lines == ["event: ping", 'data: {"type":"ping"}']
            continue
        data = f.json()
        assert data["type"] == f.event
        if f.event in ("event_start", "event_delta"):
            assert f.id is None
        else:
            assert f.id == data["id"]
    assert {"event_start", "event_delta", "agent.message"} <= {f.event for f in frames}
    listed = [e.id for e in list_all(client, sid)]
    assert [f.id for f in events_of(turn) if f.id] == listed


async def test_stream_ends_after_the_session_is_deleted(client: anthropic.Anthropic, server: ServerProcess) -> None:
    sid = make_session(client)
    run_turn(client, sid, "hello")
    async with raw_async(server.url) as http, http.stream("GET", f"/v1/sessions/{sid}/events/stream") as response:
        reader = FrameReader(response)
        await reader.until(lambda f: f.event == "ping", timeout=5)  # attached
        deleted = await http.delete(f"/v1/sessions/{sid}")
        assert deleted.json()["type"] == "session_deleted"
        rest = events_of(await reader.rest(timeout=5))
        assert reader.eof
    assert [f.event for f in rest] == ["session.deleted"]
    assert rest[0].json()["type"] == "session.deleted"
    assert rest[0].id == rest[0].json()["id"]


async def test_stream_ends_after_termination(client: anthropic.Anthropic, server: ServerProcess) -> None:
    """Archiving terminates the session: `session.status_terminated`, then EOF; a new stream ends at once."""
    sid = make_session(client)
    url = f"/v1/sessions/{sid}/events/stream"
    async with raw_async(server.url) as http:
        async with http.stream("GET", url) as response:
            reader = FrameReader(response)
            await reader.until(lambda f: f.event == "ping", timeout=5)
            archived = await http.post(f"/v1/sessions/{sid}/archive")
            assert archived.status_code == 200
            rest = events_of(await reader.rest(timeout=5))
            assert reader.eof
        assert [f.event for f in rest] == ["session.status_terminated"]
        async with http.stream("GET", url) as again:
            assert again.status_code == 200
            late = FrameReader(again)
            assert events_of(await late.rest(timeout=5)) == []
            assert late.eof


# --- the replay extension -------------------------------------------------------------------------------------


async def test_last_event_id_and_after_id_replay(client: anthropic.Anthropic, server: ServerProcess) -> None:
    """`Last-Event-ID` or `?after_id=`: the log after that event exactly once, in order, then live."""
    sid = make_session(client)
    run_turn(client, sid, "hello")
    history = [e.id for e in list_all(client, sid)]
    pivot = history[1]
    url = f"/v1/sessions/{sid}/events/stream"
    async with raw_async(server.url) as http:
        for how in ({"headers": {"Last-Event-ID": pivot}}, {"params": {"after_id": pivot}}):
            async with http.stream("GET", url, **how) as response:  # type: ignore[arg-type]
                assert response.status_code == 200
                reader = FrameReader(response)
                last = history[-1]
                replayed = events_of(await reader.until(lambda f, last=last: f.id == last))
                assert [f.id for f in replayed] == history[2:]
                # then live: a new turn arrives once, after the replay
                await http.post(f"/v1/sessions/{sid}/events", json={"events": [message("more")]})
                live = events_of(await reader.until(lambda f: f.event == "session.status_idle"))
            history = [e.id for e in list_all(client, sid)]
            assert [f.id for f in [*replayed, *live]] == history[2:]

        # resuming after the last event replays nothing and goes live
        async with http.stream("GET", url, headers={"Last-Event-ID": history[-1]}) as response:
            reader = FrameReader(response)
            assert events_of(await reader.until(lambda f: f.event == "ping", timeout=5)) == []

        other = make_session(client)
        for bad in ("sevt_nope", history[0]):
            r = await http.get(f"/v1/sessions/{other}/events/stream", headers={"Last-Event-ID": bad})
            assert r.status_code == 400
            assert r.headers["content-type"] == "application/json"
            assert r.json()["error"]["details"]["error_code"] == "unknown_event_id"
        r = await http.get(url, params={"after_id": "sevt_nope"})
        assert r.status_code == 400


# --- teardown, in process -------------------------------------------------------------------------------------

IN_KEY = "in-process-key"


@dataclass
class InProcess:
    url: str
    runtime: Runtime
    app: Any


@pytest.fixture
async def in_process(tmp_path: Path) -> AsyncIterator[InProcess]:
    """A server in this process, so the runtime's subscriptions and the loop's tasks can be counted."""
    runtime = Runtime.from_url(tmp_path / "in.db")
    app = create_app(runtime, keys=ApiKeys.parse(f"{IN_KEY}:ws_in"), settings=ServerSettings(heartbeat_interval=0.1))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on"))
    serving = asyncio.create_task(server.serve())
    async with asyncio.timeout(20):
        while not server.started:
            assert not serving.done(), "the in-process server did not start"
            await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield InProcess(f"http://127.0.0.1:{port}", runtime, app)
    finally:
        app.state.closing.set()
        server.should_exit = True
        async with asyncio.timeout(20):
            await serving


async def _in_process_session(url: str) -> str:
    sdk = anthropic.AsyncAnthropic(base_url=url, api_key=IN_KEY, max_retries=0)
    async with sdk:
        env = await sdk.beta.environments.create(name="in-process")
        agent = await sdk.beta.agents.create(name="in-process", model="scripted")
        session = await sdk.beta.sessions.create(agent=agent.id, environment_id=env.id)
    return session.id


async def _settled(check: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.02)


async def test_disconnects_free_subscriptions_and_tasks(in_process: InProcess) -> None:
    """Reliability 11: a client that goes away (idle, mid-replay, with preview filtering) leaves nothing behind."""
    sid = await _in_process_session(in_process.url)
    bus = in_process.runtime.bus
    async with raw_async(in_process.url, IN_KEY) as http:
        await http.post(f"/v1/sessions/{sid}/events", json={"events": [message("hello")]})
        listed = await http.get(f"/v1/sessions/{sid}/events", params={"limit": "1"})
        first_event = listed.json()["data"][0]["id"]
    baseline = len(asyncio.all_tasks())
    url = f"/v1/sessions/{sid}/events/stream"
    variants: list[dict[str, Any]] = [
        {},
        {"params": {"event_deltas[]": "agent.thinking"}},
        {"params": {"event_deltas[]": "agent.message"}, "headers": {"Last-Event-ID": first_event}},
    ]
    for _ in range(3):
        async with raw_async(in_process.url, IN_KEY) as http:
            for variant in variants:
                async with http.stream("GET", url, **variant) as response:
                    assert response.status_code == 200
                    await FrameReader(response).until(lambda f: f.event == "ping", timeout=5)
                    assert bus.subscriber_count(sid) == 1
        await _settled(lambda: bus.subscriber_count(sid) == 0)
        await _settled(lambda: len(asyncio.all_tasks()) <= baseline)
    assert bus.subscriber_count() == 0


async def test_graceful_shutdown_ends_streams(in_process: InProcess) -> None:
    """`app.state.closing` (set when the server is told to exit) ends every live stream promptly."""
    sid = await _in_process_session(in_process.url)
    async with raw_async(in_process.url, IN_KEY) as http:
        url = f"/v1/sessions/{sid}/events/stream"
        async with http.stream("GET", url) as one, http.stream("GET", url) as two:
            readers = [FrameReader(one), FrameReader(two)]
            for reader in readers:
                await reader.until(lambda f: f.event == "ping", timeout=5)
            assert in_process.runtime.bus.subscriber_count(sid) == 2
            in_process.app.state.closing.set()
            for reader in readers:
                await reader.rest(timeout=3)
                assert reader.eof
    await _settled(lambda: in_process.runtime.bus.subscriber_count() == 0)


# --- _sse itself ----------------------------------------------------------------------------------------------


class Source:
    """A stand-in for `LogStream`: gives its items (an item, or a list of items ready together) as batches, then
    waits; records that it was closed."""

    def __init__(
        self, items: list[StreamItem | list[StreamItem]], *, fail: Exception | None = None, end: bool = False
    ) -> None:
        self.items = items
        self.fail = fail
        self.end = end
        self.closed = False

    def __call__(self) -> _Feed:
        return _Feed(self._batches())

    async def _batches(self) -> AsyncIterator[list[StreamItem]]:
        try:
            for item in self.items:
                yield item if isinstance(item, list) else [item]
            if self.fail is not None:
                raise self.fail
            if not self.end:
                await asyncio.Event().wait()
        finally:
            self.closed = True


class _Feed:
    def __init__(self, batches: AsyncIterator[list[StreamItem]]) -> None:
        self._batches = batches

    async def next_batch(self) -> list[StreamItem]:
        return await anext(self._batches)

    async def aclose(self) -> None:
        await self._batches.aclose()  # type: ignore[attr-defined]


EVENT = StoredEvent(
    "sesn_1", 1, "sevt_1", "agent.message", "2026-01-01T00:00:00Z", '{"id":"sevt_1","type":"agent.message"}'
)
PREVIEW = Preview("sesn_1", "event_start", '{"type":"event_start","event":{"type":"agent.message","id":"sevt_2"}}')


def test_frame_format() -> None:
    assert frame(EVENT) == b'id: sevt_1\nevent: agent.message\ndata: {"id":"sevt_1","type":"agent.message"}\n\n'
    assert (
        frame(PREVIEW)
        == b'event: event_start\ndata: {"type":"event_start","event":{"type":"agent.message","id":"sevt_2"}}\n\n'
    )
    multiline = EVENT._replace(body='{\n  "id": "sevt_1",\n  "text": "a\\nb"\n}')
    assert frame(multiline) == b'id: sevt_1\nevent: agent.message\ndata: {"id":"sevt_1","text":"a\\nb"}\n\n'


class Client:
    """The ASGI side of one response: records what is sent; `leave()` makes `receive` report a disconnect."""

    def __init__(self, *, leave_after: int | None = None, stall_at: int | None = None) -> None:
        self.sent: list[dict[str, Any]] = []
        self.gone = asyncio.Event()
        self.leave_after = leave_after
        self.stall_at = stall_at

    async def receive(self) -> dict[str, Any]:
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)
        if self.leave_after is not None and len(self.sent) == self.leave_after:
            self.gone.set()
        if self.stall_at is not None and len(self.sent) == self.stall_at:
            await asyncio.sleep(1)  # a slow write: the client leaves meanwhile

    @property
    def bodies(self) -> list[bytes]:
        return [m["body"] for m in self.sent if m["type"] == "http.response.body"]

    @property
    def finished(self) -> bool:
        return bool(self.sent) and self.sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}


SCOPE = {"type": "http", "asgi": {"spec_version": "2.3"}, "method": "GET", "path": "/"}


async def _respond(response: EventStreamResponse, client: Client) -> None:
    async with asyncio.timeout(5):
        await response(SCOPE, client.receive, client.send)  # type: ignore[arg-type]


async def test_heartbeats_then_the_client_leaves() -> None:
    source = Source([EVENT])
    before = asyncio.all_tasks()
    client = Client(leave_after=4)
    await _respond(EventStreamResponse(source(), heartbeat=0.02, closing=Closing()), client)
    assert client.sent[0]["type"] == "http.response.start"
    assert (b"content-type", b"text/event-stream; charset=utf-8") in client.sent[0]["headers"]
    assert (b"cache-control", b"no-cache") in client.sent[0]["headers"]
    assert client.bodies == [frame(EVENT), PING, PING]
    assert not client.finished  # nobody left to finish for
    assert source.closed
    assert asyncio.all_tasks() == before


async def test_cancelled_while_waiting_releases_everything() -> None:
    source = Source([])
    before = asyncio.all_tasks()
    client = Client()
    serving = asyncio.create_task(_respond(EventStreamResponse(source(), heartbeat=0, closing=Closing()), client))
    await asyncio.sleep(0.05)
    serving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await serving
    assert source.closed
    assert asyncio.all_tasks() - before == set()


async def test_ends_on_closing_and_on_source_end() -> None:
    closing = Closing()
    source = Source([EVENT])
    client = Client()
    asyncio.get_running_loop().call_later(0.05, closing.set)
    await _respond(EventStreamResponse(source(), heartbeat=10, closing=closing), client)
    assert client.bodies == [frame(EVENT), b""] and client.finished
    assert source.closed

    already = Closing()
    already.set()  # a stream opened during shutdown ends at once
    client = Client()
    await _respond(EventStreamResponse(Source([EVENT])(), heartbeat=10, closing=already), client)
    assert client.bodies == [b""]

    finite = Source([EVENT, PREVIEW], end=True)
    client = Client()
    await _respond(EventStreamResponse(finite(), heartbeat=10, closing=Closing()), client)
    assert client.bodies == [frame(EVENT), frame(PREVIEW), b""] and client.finished
    assert finite.closed


async def test_items_ready_together_are_one_write() -> None:
    """A commit's events reach the stream together and leave as one chunk (one socket write, not one each)."""
    together = Source([[EVENT, PREVIEW], EVENT], end=True)
    client = Client()
    await _respond(EventStreamResponse(together(), heartbeat=10, closing=Closing()), client)
    assert client.bodies == [frame(EVENT) + frame(PREVIEW), frame(EVENT), b""]


async def test_failures_are_reported_in_band() -> None:
    failing = Source([EVENT], fail=RuntimeError("boom"))
    client = Client()
    response = EventStreamResponse(
        failing(), heartbeat=10, closing=Closing(), on_error=lambda exc: json.dumps(str(exc))
    )
    await _respond(response, client)
    assert client.bodies == [frame(EVENT), b'event: error\ndata: "boom"\n\n', b""]
    unreported = Source([], fail=RuntimeError("boom"))
    with pytest.raises(RuntimeError):
        await _respond(EventStreamResponse(unreported(), heartbeat=10, closing=Closing()), Client())
    assert unreported.closed


async def test_a_client_leaving_during_a_slow_write_closes_the_source() -> None:
    """The client goes away while a frame is being written: the source is closed when the response returns,
    not whenever the garbage collector gets to it."""
    source = Source([])
    client = Client(leave_after=3, stall_at=3)
    before = asyncio.all_tasks()
    await _respond(EventStreamResponse(source(), heartbeat=0.01, closing=Closing()), client)
    assert client.bodies[0] == PING
    assert source.closed
    assert asyncio.all_tasks() == before
