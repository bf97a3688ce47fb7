"""The pure half of the Bedrock provider: frame decoding (any split), turn folding, request bodies, error mapping."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loophost.client._results import ToolResult, ToolSpec, ToolUse, TurnInput
from loophost.client.providers import _bedrock_wire as wire
from tests.client.bedrock._fake_harness import Frame, Turn, encode_frame, exception, final_turn, tool_turn

FRAMES = [*tool_turn(), Frame("hookEvent", {"hookEventId": "h1", "name": "audit", "type": "before_tool_call"})]
FRAMES += final_turn("Grüße ", "aus ", "Paris ☀")
STREAM = b"".join(frame.encode() for frame in FRAMES)


def decode(chunks: list[bytes]) -> list[dict[str, Any]]:
    decoder = wire.StreamDecoder()
    return [event for chunk in chunks for event in decoder.feed(chunk)]


def split(data: bytes, offsets: list[int]) -> list[bytes]:
    edges = sorted(set(offsets))
    return [data[a:b] for a, b in zip([0, *edges], [*edges, len(data)], strict=True)]


WHOLE = decode([STREAM])


def test_frames_decode_to_typed_events() -> None:
    assert [e["type"] for e in WHOLE] == [f.name for f in FRAMES]
    assert WHOLE[-2] == {"type": "messageStop", "messageStop": {"stopReason": "end_turn"}}
    assert json.loads(json.dumps(WHOLE)) == WHOLE  # JSON-serializable, as TurnResult.events must be


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=len(STREAM) - 1), max_size=40))
def test_any_split_of_the_stream_decodes_the_same_events(offsets: list[int]) -> None:
    assert decode(split(STREAM, offsets)) == WHOLE


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=1, max_value=len(STREAM) - 1))
def test_a_partial_frame_waits_for_the_rest(cut: int) -> None:
    decoder = wire.StreamDecoder()
    first = list(decoder.feed(STREAM[:cut]))
    assert first == WHOLE[: len(first)]
    assert first + list(decoder.feed(STREAM[cut:])) == WHOLE


def test_a_bad_crc_is_a_corrupt_stream() -> None:
    frame = bytearray(FRAMES[0].encode())
    frame[-6] ^= 0x01
    with pytest.raises(wire.CorruptStreamError):
        decode([bytes(frame)])


def test_exception_frames_raise_typed_errors_never_retryable() -> None:
    with pytest.raises(wire.ContextOverflowError) as caught:
        decode([exception("validationException", "Input is too long for requested model", reason="x").encode()])
    assert caught.value.error_type == "validationException" and caught.value.retryable is False
    with pytest.raises(wire.InternalServerError):
        decode([exception("internalServerException", "boom").encode()])
    headers = {":message-type": "error", ":error-code": "ThrottlingException", ":error-message": "slow down"}
    with pytest.raises(wire.ThrottlingError, match="slow down"):
        decode([encode_frame(headers, b"")])


def events_of(frames: list[Frame]) -> list[dict[str, Any]]:
    return decode([b"".join(f.encode() for f in frames)])


def test_tool_blocks_are_keyed_by_id_even_when_an_index_is_reused() -> None:
    turn = Turn().start().tool(0, "tool_a", "lookup", '{"q":', ' "a"}').tool(0, "tool_b", "lookup", '{"q": "b"}')
    result = wire.turn_result(events_of(turn.stop("tool_use").frames))
    assert result.terminal == "requires_action"
    assert result.tool_uses == (ToolUse("tool_a", "lookup", {"q": "a"}), ToolUse("tool_b", "lookup", {"q": "b"}))


def test_interleaved_fragments_follow_the_open_block_of_their_index() -> None:
    starts = [
        ("contentBlockStart", {"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "t1", "name": "a"}}}),
        ("contentBlockStart", {"contentBlockIndex": 2, "start": {"toolUse": {"toolUseId": "t2", "name": "b"}}}),
        ("contentBlockDelta", {"contentBlockIndex": 2, "delta": {"toolUse": {"input": '{"n": '}}}),
        ("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": ""}}}),
        ("contentBlockDelta", {"contentBlockIndex": 2, "delta": {"toolUse": {"input": "2}"}}}),
        ("messageStop", {"stopReason": "tool_use"}),
        ("metadata", {"usage": {"inputTokens": 1, "outputTokens": 2}}),
    ]
    result = wire.turn_result([{"type": name, name: body} for name, body in starts])
    assert [(u.id, dict(u.input)) for u in result.tool_uses] == [("t1", {}), ("t2", {"n": 2})]


def test_server_tools_are_recorded_and_the_last_message_decides() -> None:
    turn = Turn().start().text(0, "Searching.").tool(1, "srv_1", "web_search", '{"q": "x"}', kind="server_tool_use")
    turn.stop("tool_use").start("user").result(0, "srv_1", "found").stop("tool_result")
    turn.metadata(1, 1).start().text(0, "Found ", "it.").tool(1, "mcp_1", "fs", "{}", kind="mcp_tool_use")
    turn.start("user").result(0, "mcp_1", "ok").stop("tool_result").start().text(0, "Done.").stop("end_turn")
    result = wire.turn_result(events_of(turn.metadata(30, 9).frames))
    assert (result.terminal, result.stop_reason, result.text) == ("end_turn", "end_turn", "Done.")
    assert [u.id for u in result.server_tool_uses] == ["srv_1", "mcp_1"] and result.tool_uses == ()
    assert result.usage is not None and result.usage.input_tokens == 30  # the last metadata of the invoke


def test_an_unresolved_server_tool_use_terminates() -> None:
    turn = Turn().start().tool(0, "srv_1", "web_search", "{}", kind="server_tool_use").stop("tool_use")
    result = wire.turn_result(events_of(turn.frames))
    assert (result.terminal, result.stop_reason, result.tool_uses) == ("terminated", "tool_use", ())


def test_a_missing_tool_type_is_inline_only_for_local_tools() -> None:
    frames = Turn().start().tool(0, "t1", "mine", "{}", kind=None).stop("tool_use").frames
    assert wire.turn_result(events_of(frames), frozenset({"mine"})).terminal == "requires_action"
    assert wire.turn_result(events_of(frames), frozenset({"other"})).terminal == "terminated"


@pytest.mark.parametrize(
    ("stop", "terminal"),
    [("end_turn", "end_turn"), ("stop_sequence", "end_turn"), ("max_iterations_exceeded", "terminated")]
    + [(s, "terminated") for s in ("max_tokens", "hook_stopped", "content_filtered", "partial_turn", "tool_result")],
)
def test_stop_reasons(stop: str, terminal: str) -> None:
    result = wire.turn_result(events_of(final_turn("partial", stop=stop)))
    assert (result.terminal, result.stop_reason, result.text) == (terminal, stop, "partial")


def test_metadata_before_message_stop_and_unknown_events_are_fine() -> None:
    turn = Turn().start().text(0, "a").metadata(3, 4).add("futureEvent", {"x": 1}).stop("end_turn")
    events = events_of(turn.frames)
    result = wire.turn_result(events)
    assert result.usage is not None and (result.usage.input_tokens, result.usage.output_tokens) == (3, 4)
    assert {"type": "futureEvent", "futureEvent": {"x": 1}} in result.events
    assert wire.text_delta(events[1]) == "a" and wire.text_delta(events[0]) is None


def test_a_retry_marker_starts_the_fold_over() -> None:
    events = [*events_of(Turn().start().text(0, "lost").frames), {"type": wire.RETRY_EVENT, "attempt": 1}]
    events += events_of(final_turn("kept"))
    assert wire.turn_result(events).text == "kept"
    assert not wire.stopped(events[:3]) and wire.stopped(events)


def test_reasoning_and_text_are_echoed_with_the_answered_tool_uses() -> None:
    turn = Turn().start()
    turn.add("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "think"}}})
    turn.add("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": {"signature": "sig"}}})
    turn.text(1, "Checking.").tool(2, "t1", "a", '{"x": 1}').tool(3, "t2", "b", "{}").stop("tool_use")
    pending = wire.assistant_content(events_of(turn.frames))
    uses = (ToolUse("t2", "b", {}), ToolUse("t1", "a", {"x": 1}))
    results = (ToolResult("t2", "two"), ToolResult("t1", "", is_error=True))
    assistant, user = wire.resume_messages(TurnInput(tool_uses=uses, tool_results=results), pending)
    assert assistant["content"][:2] == [
        {"reasoningContent": {"reasoningText": {"text": "think", "signature": "sig"}}},
        {"text": "Checking."},
    ]
    assert [b["toolUse"]["toolUseId"] for b in assistant["content"][2:]] == ["t2", "t1"]
    assert [b["toolResult"]["status"] for b in user["content"]] == ["success", "error"]
    assert user["content"][1]["toolResult"]["content"] == [{"text": "(empty result)"}]


def test_resume_without_a_known_use_is_refused_before_sending() -> None:
    with pytest.raises(ValueError, match="unknown tool uses"):
        wire.resume_messages(TurnInput(tool_results=(ToolResult("t9", "x"),)), None)
    use = ToolUse("t1", "a")
    with pytest.raises(ValueError, match="duplicate"):
        wire.resume_messages(TurnInput(tool_uses=(use,), tool_results=(ToolResult("t1", "x"),) * 2), None)


def test_http_errors_map_by_error_type_header_then_body_then_status() -> None:
    throttled = wire.http_error(429, "ThrottlingException:http://internal.amazon.com/coral/", b'{"message":"Rate"}')
    assert isinstance(throttled, wire.ThrottlingError) and throttled.retryable and throttled.status == 429
    body = b'{"__type": "com.amazon.coral#AccessDeniedException", "message": "no"}'
    denied = wire.http_error(403, None, body)
    assert isinstance(denied, wire.AccessDeniedError) and not denied.retryable
    assert isinstance(wire.http_error(503, None, b"<html>"), wire.InternalServerError)
    overflow = wire.http_error(400, "ValidationException", b'{"message": "prompt is too long: 250000 tokens"}')
    assert isinstance(overflow, wire.ContextOverflowError) and overflow.body["message"].startswith("prompt")
    assert isinstance(wire.http_error(403, "ExpiredTokenException", b"{}"), wire.AuthenticationError)
    assert isinstance(wire.http_error(424, "RuntimeClientError", b"{}"), wire.RuntimeClientError)


def test_session_ids_and_tools_are_checked() -> None:
    assert len(wire.new_session_id()) == 36 and wire.check_session_id("a" * 33)
    for bad in ("short", "-" + "a" * 40, "a" * 101, "a" * 32 + "!"):
        with pytest.raises(ValueError, match="session id"):
            wire.check_session_id(bad)
    with pytest.raises(ValueError, match="tool name"):
        wire.inline_tool(ToolSpec("has space", "d", {}))
    assert wire.arn_region("arn:aws:bedrock-agentcore:eu-west-1:123456789012:harness/x_y-AbCdE12345") == "eu-west-1"
    with pytest.raises(ValueError, match="harness ARN"):
        wire.arn_region("arn:aws:bedrock:eu-west-1:123456789012:agent/x")
