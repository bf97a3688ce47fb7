"""Sending and listing events over real HTTP with the official SDK (spec §5; checklist 26, 29, 30, 33-39, 41, 42).

Streams here are opened first and read with a deadline (`read_until`): heartbeats keep an idle stream's socket
busy, so a read timeout alone would never fire.
"""

from __future__ import annotations

import base64
import json
import threading
import uuid
from collections.abc import Callable
from typing import Any

import anthropic
import httpx2
import pytest

from .conftest import KEY_A, ServerProcess, bash_executions

BETA = {"anthropic-beta": "managed-agents-2026-04-01"}
LOOKUP_TOOL = {"type": "custom", "name": "lookup", "description": "d", "input_schema": {"type": "object"}}
PREVIEW_TYPES = {"event_start", "event_delta"}


# --- helpers (also used by test_stream_api) -------------------------------------------------------------------


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def make_session(client: anthropic.Anthropic, *, tools: list[dict[str, Any]] | None = None) -> str:
    """A new session on a new scripted agent in a new environment (unique names: the server is shared)."""
    env = client.beta.environments.create(name=uid("env"))
    if tools is None:
        agent = client.beta.agents.create(name=uid("agent"), model="scripted")
    else:
        agent = client.beta.agents.create(name=uid("agent"), model="scripted", tools=tools)  # type: ignore[arg-type]
    return client.beta.sessions.create(agent=agent.id, environment_id=env.id).id


def message(text: str) -> Any:
    return {"type": "user.message", "content": [{"type": "text", "text": text}]}


def is_idle(kind: str) -> Callable[[Any], bool]:
    return lambda e: e.type == "session.status_idle" and e.stop_reason.type == kind


def read_until(stream: Any, stop: Callable[[Any], bool], timeout: float = 20.0) -> list[Any]:
    """Events from an SDK `Stream` up to and including the first one `stop` accepts, within `timeout` seconds.

    The blocking read runs in a daemon thread, so a missing event fails the test instead of hanging it."""
    got: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            while True:
                event = next(stream)
                got.append(event)
                if stop(event):
                    return
        except StopIteration:
            errors.append(AssertionError(f"the stream ended early; got {[e.type for e in got]}"))
        except BaseException as exc:
            errors.append(exc)

    reader = threading.Thread(target=run, daemon=True)
    reader.start()
    reader.join(timeout)
    if reader.is_alive():
        stream.close()
        pytest.fail(f"no matching event within {timeout}s; got {[e.type for e in got]}")
    if errors:
        raise errors[0]
    return got


def run_turn(client: anthropic.Anthropic, session_id: str, text: str, *, deltas: list[str] | None = None) -> list[Any]:
    """Stream-first: open the stream, send `text`, read until the turn ends (idle end_turn)."""
    kwargs: dict[str, Any] = {"event_deltas": deltas} if deltas else {}
    with client.beta.sessions.events.stream(session_id, timeout=30, **kwargs) as stream:
        client.beta.sessions.events.send(session_id, events=[message(text)])
        return read_until(stream, is_idle("end_turn"))


def raw_client(server: ServerProcess, key: str = KEY_A) -> httpx2.Client:
    return httpx2.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {key}", **BETA}, timeout=httpx2.Timeout(10.0)
    )


def list_all(client: anthropic.Anthropic, session_id: str, **params: Any) -> list[Any]:
    return list(client.beta.sessions.events.list(session_id, **params))


# --- send -----------------------------------------------------------------------------------------------------


def test_send_echoes_each_event_with_its_server_id(client: anthropic.Anthropic) -> None:
    sid = make_session(client)
    sent = client.beta.sessions.events.send(sid, events=[message("hi there")])
    assert len(sent.data) == 1
    echo = sent.data[0]
    assert echo.type == "user.message"
    assert echo.id
    assert echo.content[0].text == "hi there"  # type: ignore[union-attr]
    # the echo's id is the id the event has in history
    listed = list_all(client, sid, types=["user.message"])
    assert [e.id for e in listed] == [echo.id]


def test_send_refuses_malformed_events_with_the_envelope(client: anthropic.Anthropic, server: ServerProcess) -> None:
    sid = make_session(client)
    with pytest.raises(anthropic.BadRequestError) as info:
        client.beta.sessions.events.send(sid, events=[{"type": "user.bogus"}])  # type: ignore[list-item]
    assert info.value.body["type"] == "error"  # type: ignore[index]
    assert info.value.type == "invalid_request_error"  # type: ignore[attr-defined]
    with pytest.raises(anthropic.BadRequestError):
        client.beta.sessions.events.send(sid, events=[])
    with pytest.raises(anthropic.BadRequestError):
        client.beta.sessions.events.send(sid, events=[{"type": "user.message", "content": "not a list"}])  # type: ignore[list-item]
    with raw_client(server) as http:
        for body in (b"{", b"[]", b'{"events": "x"}', b'{"events": [{"no_type": 1}]}'):
            r = http.post(f"/v1/sessions/{sid}/events", content=body, headers={"content-type": "application/json"})
            assert r.status_code == 400, (body, r.text)
            assert r.json()["type"] == "error"
    # nothing was written by the refused requests
    assert list_all(client, sid) == []


def test_send_answers_as_every_route_does(client: anthropic.Anthropic, server: ServerProcess) -> None:
    """The send endpoint is plain ASGI in front of FastAPI (`server/_send_events.py`): its refusals are the same
    envelopes, statuses and request ids as every other route's, and it changes nothing when it refuses."""
    sid = make_session(client)
    with raw_client(server) as http:
        bodyless = http.post(f"/v1/sessions/{sid}/events")
        assert bodyless.status_code == 400
        body = bodyless.json()
        assert body["error"]["details"]["error_code"] == "validation_error"
        assert body["error"]["message"].startswith("events:")
        assert body["request_id"] == bodyless.headers["request-id"]
        oversized = b'{"events": [{"type": "user.message", "content": "' + b"x" * (9 * 1024 * 1024) + b'"}]}'
        too_large = http.post(f"/v1/sessions/{sid}/events", content=oversized)
        assert too_large.status_code == 413 and too_large.json()["type"] == "error"
        message = {"events": [{"type": "user.message", "content": [{"type": "text", "text": "hi"}]}]}
        refusals = (({"Authorization": ""}, "missing_key"), ({"Authorization": "Bearer nope"}, "invalid_key"))
        for headers, code in refusals:
            refused = http.post(f"/v1/sessions/{sid}/events", json=message, headers=headers)
            assert refused.status_code == 401
            assert refused.json()["error"]["details"]["error_code"] == code
        unknown = http.post("/v1/sessions/sesn_unknown/events", json=message)
        assert unknown.status_code == 404 and unknown.json()["error"]["type"] == "not_found_error"
        assert http.post(f"/v1/sessions/{sid}/events/more", json=message).status_code == 404
        assert http.get(f"/v1/sessions/{sid}/events").json() == {"data": [], "next_page": None}
    assert list_all(client, sid) == []


def test_answers_to_nothing_pending_are_400s(client: anthropic.Anthropic) -> None:
    """Checklist 37 (the parts that need no built-in tool): unknown tool_use ids, deny_message with allow."""
    sid = make_session(client)
    with pytest.raises(anthropic.BadRequestError) as info:
        client.beta.sessions.events.send(
            sid, events=[{"type": "user.tool_confirmation", "tool_use_id": "sevt_nope", "result": "allow"}]
        )
    assert info.value.body["error"]["details"]["error_code"] == "unknown_tool_use_id"  # type: ignore[index]
    with pytest.raises(anthropic.BadRequestError):
        client.beta.sessions.events.send(
            sid,
            events=[
                {"type": "user.tool_confirmation", "tool_use_id": "sevt_nope", "result": "allow", "deny_message": "no"}
            ],
        )
    with pytest.raises(anthropic.BadRequestError):
        client.beta.sessions.events.send(
            sid, events=[{"type": "user.custom_tool_result", "custom_tool_use_id": "sevt_nope", "content": []}]
        )
    assert list_all(client, sid) == []


def test_idempotency_key_applies_a_send_once(client: anthropic.Anthropic) -> None:
    sid = make_session(client)
    key = uid("idem")
    first = client.beta.sessions.events.send(sid, events=[message("once")], extra_headers={"Idempotency-Key": key})
    again = client.beta.sessions.events.send(sid, events=[message("once")], extra_headers={"Idempotency-Key": key})
    assert [e.id for e in again.data] == [e.id for e in first.data]
    assert [e.id for e in list_all(client, sid, types=["user.message"])] == [first.data[0].id]


def test_unknown_and_foreign_sessions_are_404(client: anthropic.Anthropic, other_client: anthropic.Anthropic) -> None:
    sid = make_session(client)
    for c, session_id in ((client, "sesn_nope"), (other_client, sid)):
        with pytest.raises(anthropic.NotFoundError) as info:
            c.beta.sessions.events.send(session_id, events=[message("x")])
        assert info.value.body["type"] == "error"  # type: ignore[index]
        with pytest.raises(anthropic.NotFoundError):
            list_all(c, session_id)
        with pytest.raises(anthropic.NotFoundError):
            c.beta.sessions.events.stream(session_id)
    # the other workspace's attempts left no trace
    assert list_all(client, sid) == []


# --- list -----------------------------------------------------------------------------------------------------


def test_list_is_the_streamed_history_in_order(client: anthropic.Anthropic) -> None:
    """Checklist 29: same ids as the stream, ascending processed_at, user.message processed, no previews."""
    sid = make_session(client)
    streamed = run_turn(client, sid, "hello", deltas=["agent.message"])
    persisted = [e for e in streamed if e.type not in PREVIEW_TYPES]
    listed = list_all(client, sid)
    assert [e.id for e in listed] == [e.id for e in persisted]
    assert not {e.type for e in listed} & PREVIEW_TYPES
    times = [e.processed_at for e in listed]
    assert None not in times
    assert times == sorted(times)
    user = [e for e in listed if e.type == "user.message"]
    assert len(user) == 1
    assert user[0].processed_at is not None
    assert [e.content[0].text for e in listed if e.type == "agent.message"] == ["echo: hello"]


def test_list_filters_orders_and_paginates(client: anthropic.Anthropic) -> None:
    """Checklist 30: types[] filter, order=desc, limit=1 pagination without duplicates; created_at filters."""
    sid = make_session(client)
    run_turn(client, sid, "hello")
    run_turn(client, sid, "again")
    everything = list_all(client, sid)
    ids = [e.id for e in everything]
    assert len(ids) == len(set(ids)) >= 10

    only = list_all(client, sid, types=["agent.message"])
    assert [e.type for e in only] == ["agent.message", "agent.message"]
    both = list_all(client, sid, types=["agent.message", "user.message"])
    assert [e.type for e in both] == ["user.message", "agent.message"] * 2

    assert [e.id for e in list_all(client, sid, order="desc")] == ids[::-1]

    first = client.beta.sessions.events.list(sid, limit=1)
    assert len(first.data) == 1
    assert first.next_page
    walked = [e.id for e in client.beta.sessions.events.list(sid, limit=1)]  # auto-paginates
    assert walked == ids
    walked_desc = [e.id for e in client.beta.sessions.events.list(sid, limit=3, order="desc")]
    assert walked_desc == ids[::-1]

    start, end = everything[0].processed_at, everything[-1].processed_at
    assert [e.id for e in list_all(client, sid, created_at_gte=start)] == ids
    assert list_all(client, sid, created_at_gt=end) == []
    assert list_all(client, sid, created_at_lt=start) == []
    assert [e.id for e in list_all(client, sid, created_at_lte=end)] == ids


def forged(position: Any) -> str:
    raw = json.dumps({"p": position, "d": False}).encode()
    return "page_" + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_list_refuses_bad_parameters(client: anthropic.Anthropic, server: ServerProcess) -> None:
    sid = make_session(client)
    run_turn(client, sid, "hello")
    desc_cursor = client.beta.sessions.events.list(sid, limit=1, order="desc").next_page
    with raw_client(server) as http:
        for params in (
            {"limit": "0"},
            {"limit": "1001"},
            {"limit": "many"},
            {"order": "sideways"},
            {"page": "garbage"},
            {"page": desc_cursor or "", "order": "asc"},  # a cursor is bound to its order
            {"created_at[gte]": "yesterday"},
            # decodable cursors whose position is not a seq (forged): 400, not 500
            {"page": forged("x")},
            {"page": forged([1])},
            {"page": forged(None)},
            {"page": forged(10**30)},
        ):
            r = http.get(f"/v1/sessions/{sid}/events", params=params)
            assert r.status_code == 400, (params, r.text)
            assert r.json()["type"] == "error"
            assert r.headers["content-type"].startswith("application/json")


def test_list_serves_the_stored_json(client: anthropic.Anthropic, server: ServerProcess) -> None:
    sid = make_session(client)
    run_turn(client, sid, "hello")
    with raw_client(server) as http:
        r = http.get(f"/v1/sessions/{sid}/events", params={"limit": "2"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert set(body) == {"data", "next_page"}
    assert len(body["data"]) == 2
    assert isinstance(body["next_page"], str)
    assert all({"id", "type", "processed_at"} <= set(e) for e in body["data"])


# --- turns with tools, interrupts and queues ----------------------------------------------------------------


def test_custom_tool_round_trip(client: anthropic.Anthropic) -> None:
    """Checklist 33-34: custom_tool_use -> idle requires_action -> custom_tool_result -> running ... end_turn."""
    sid = make_session(client, tools=[LOOKUP_TOOL])
    with client.beta.sessions.events.stream(sid, timeout=30) as stream:
        client.beta.sessions.events.send(sid, events=[message('call lookup {"q": "x"}')])
        first = read_until(stream, lambda e: e.type == "session.status_idle")
        uses = [e for e in first if e.type == "agent.custom_tool_use"]
        assert len(uses) == 1
        assert uses[0].name == "lookup"
        assert uses[0].input == {"q": "x"}
        idle = first[-1]
        assert idle.stop_reason.type == "requires_action"
        assert idle.stop_reason.event_ids == [uses[0].id]
        assert client.beta.sessions.retrieve(sid).status == "idle"

        answer = client.beta.sessions.events.send(
            sid,
            events=[
                {
                    "type": "user.custom_tool_result",
                    "custom_tool_use_id": uses[0].id,
                    "content": [{"type": "text", "text": "found it"}],
                }
            ],
        )
        assert answer.data[0].type == "user.custom_tool_result"
        assert answer.data[0].processed_at is not None
        rest = read_until(stream, is_idle("end_turn"))
    types = [e.type for e in rest]
    assert types[0] == "user.custom_tool_result"
    assert rest[0].id == answer.data[0].id
    assert "session.status_running" in types
    assert types.index("session.status_running") < types.index("agent.message")
    assert [e.content[0].text for e in rest if e.type == "agent.message"] == ["lookup: found it"]


def test_partial_answer_re_emits_idle_with_the_remaining_id(client: anthropic.Anthropic) -> None:
    """Checklist 35: two parallel custom calls; answering one keeps the session blocked on the other."""
    sid = make_session(client, tools=[LOOKUP_TOOL])
    with client.beta.sessions.events.stream(sid, timeout=30) as stream:
        client.beta.sessions.events.send(sid, events=[message('call lookup {"q": 1}\ncall lookup {"q": 2}')])
        first = read_until(stream, lambda e: e.type == "session.status_idle")
        uses = [e.id for e in first if e.type == "agent.custom_tool_use"]
        assert len(uses) == 2
        assert first[-1].stop_reason.event_ids == uses

        def answer(tool_use_id: str, text: str) -> Any:
            return {
                "type": "user.custom_tool_result",
                "custom_tool_use_id": tool_use_id,
                "content": [{"type": "text", "text": text}],
            }

        client.beta.sessions.events.send(sid, events=[answer(uses[0], "one")])
        partial = read_until(stream, lambda e: e.type == "session.status_idle")
        assert partial[-1].stop_reason.type == "requires_action"
        assert partial[-1].stop_reason.event_ids == [uses[1]]
        assert "session.status_running" not in [e.type for e in partial]

        client.beta.sessions.events.send(sid, events=[answer(uses[1], "two")])
        rest = read_until(stream, is_idle("end_turn"))
    assert [e.content[0].text for e in rest if e.type == "agent.message"] == ["lookup: one\nlookup: two"]


def test_confirmation_allow_and_deny(tool_client: anthropic.Anthropic, tool_server: ServerProcess) -> None:
    """Checklist 36: an always_ask bash call waits for a confirmation; allow runs it once, deny runs nothing.
    (On the tool server: its built-in `bash` is a recording test double.)"""
    client = tool_client
    toolset = {
        "type": "agent_toolset_20260401",
        "configs": [{"name": "bash", "permission_policy": {"type": "always_ask"}}],
    }
    sid = make_session(client, tools=[toolset])
    with client.beta.sessions.events.stream(sid, timeout=30) as stream:
        client.beta.sessions.events.send(sid, events=[message('call bash {"command": "echo hi"}')])
        first = read_until(stream, lambda e: e.type == "session.status_idle")
        uses = [e for e in first if e.type == "agent.tool_use"]
        assert len(uses) == 1
        assert uses[0].evaluated_permission == "ask"
        assert not [line for line in bash_executions(tool_server) if line.startswith(uses[0].id)]
        assert first[-1].stop_reason.type == "requires_action"
        assert first[-1].stop_reason.event_ids == [uses[0].id]
        client.beta.sessions.events.send(
            sid, events=[{"type": "user.tool_confirmation", "tool_use_id": uses[0].id, "result": "allow"}]
        )
        allowed = read_until(stream, is_idle("end_turn"))
        assert [e.tool_use_id for e in allowed if e.type == "agent.tool_result"] == [uses[0].id]

        client.beta.sessions.events.send(sid, events=[message('call bash {"command": "echo no"}')])
        second = read_until(stream, lambda e: e.type == "session.status_idle")
        denied_use = next(e for e in second if e.type == "agent.tool_use")
        client.beta.sessions.events.send(
            sid,
            events=[
                {"type": "user.tool_confirmation", "tool_use_id": denied_use.id, "result": "deny", "deny_message": "no"}
            ],
        )
        denied = read_until(stream, is_idle("end_turn"))
        assert not [e for e in denied if e.type == "agent.tool_result" and not e.is_error]
    ran = bash_executions(tool_server)
    assert [line for line in ran if line.startswith(uses[0].id)] == [f"{uses[0].id} echo hi"]  # once
    assert not [line for line in ran if line.startswith(denied_use.id)]  # never


def test_interrupt_ends_a_long_turn(client: anthropic.Anthropic) -> None:
    """Checklist 38: user.interrupt during `sleep 3000` idles the session with end_turn, well before 3 s."""
    sid = make_session(client)
    with client.beta.sessions.events.stream(sid, timeout=30) as stream:
        client.beta.sessions.events.send(sid, events=[message("sleep 3000\nslow")])
        read_until(stream, lambda e: e.type == "span.model_request_start")
        echo = client.beta.sessions.events.send(sid, events=[{"type": "user.interrupt"}])
        assert echo.data[0].type == "user.interrupt"
        assert echo.data[0].processed_at is not None
        rest = read_until(stream, lambda e: e.type == "session.status_idle", timeout=2.5)
    assert rest[-1].stop_reason.type == "end_turn"
    assert echo.data[0].id in [e.id for e in rest]
    assert "agent.message" not in [e.type for e in rest]
    assert client.beta.sessions.retrieve(sid).status == "idle"
    # the session takes the next message normally
    after = run_turn(client, sid, "hello")
    assert [e.content[0].text for e in after if e.type == "agent.message"] == ["echo: hello"]


def test_interrupt_on_idle_is_accepted_and_changes_nothing(client: anthropic.Anthropic) -> None:
    sid = make_session(client)
    run_turn(client, sid, "hello")
    before = client.beta.sessions.retrieve(sid)
    echo = client.beta.sessions.events.send(sid, events=[{"type": "user.interrupt"}])
    assert echo.data[0].type == "user.interrupt"
    after = client.beta.sessions.retrieve(sid)
    assert after.status == before.status == "idle"
    assert after.usage == before.usage
    listed = list_all(client, sid)
    assert listed[-1].id == echo.data[0].id  # echoed and logged, and nothing after it
    assert [e.type for e in listed].count("session.status_running") == 1


def test_queued_messages_run_in_order(client: anthropic.Anthropic) -> None:
    """Checklist 39: two messages sent back to back while running are both answered, in order."""
    sid = make_session(client)
    with client.beta.sessions.events.stream(sid, timeout=30) as stream:
        client.beta.sessions.events.send(sid, events=[message("sleep 300\nfirst")])
        read_until(stream, lambda e: e.type == "session.status_running")
        one = client.beta.sessions.events.send(sid, events=[message("second")])
        two = client.beta.sessions.events.send(sid, events=[message("third")])
        seen: list[Any] = []
        while [e.type for e in seen if e.type == "agent.message"] != ["agent.message"] * 3:
            seen += read_until(stream, is_idle("end_turn"))
    texts = [e.content[0].text for e in seen if e.type == "agent.message"]
    assert texts == ["echo: first", "echo: second", "echo: third"]
    listed = {e.id: e for e in list_all(client, sid, types=["user.message"])}
    assert listed[one.data[0].id].processed_at <= listed[two.data[0].id].processed_at


def test_usage_is_counted(client: anthropic.Anthropic) -> None:
    """Checklist 41: session usage > 0 and growing; model_request_end carries four ints and its start's id."""
    sid = make_session(client)
    events = run_turn(client, sid, "hello there")
    first = client.beta.sessions.retrieve(sid).usage
    assert first.input_tokens is not None and first.input_tokens > 0
    assert first.output_tokens is not None and first.output_tokens > 0
    starts = [e.id for e in events if e.type == "span.model_request_start"]
    ends = [e for e in events if e.type == "span.model_request_end"]
    assert ends
    for end in ends:
        assert end.model_request_start_id in starts
        usage = end.model_usage
        for name in ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"):
            assert isinstance(getattr(usage, name), int), name
        assert usage.input_tokens > 0
    run_turn(client, sid, "and more words this time")
    second = client.beta.sessions.retrieve(sid).usage
    assert second.input_tokens is not None and second.input_tokens > first.input_tokens
    assert second.output_tokens is not None and second.output_tokens > first.output_tokens


# --- threads --------------------------------------------------------------------------------------------------


def test_thread_events_are_the_session_events(client: anthropic.Anthropic, other_client: anthropic.Anthropic) -> None:
    """Checklist 42: the primary thread's history is the session's; another thread id is a 404."""
    sid = make_session(client)
    run_turn(client, sid, "hello")
    threads = list(client.beta.sessions.threads.list(sid))
    assert len(threads) == 1
    tid = threads[0].id
    session_ids = [e.id for e in list_all(client, sid)]
    assert [e.id for e in client.beta.sessions.threads.events.list(tid, session_id=sid)] == session_ids
    assert [e.id for e in client.beta.sessions.threads.events.list(tid, session_id=sid, limit=2)] == session_ids
    with pytest.raises(anthropic.NotFoundError):
        list(client.beta.sessions.threads.events.list("sthr_nope", session_id=sid))
    with pytest.raises(anthropic.NotFoundError):
        list(other_client.beta.sessions.threads.events.list(tid, session_id=sid))
