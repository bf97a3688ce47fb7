"""A loopback fake of the Anthropic Messages API (`POST /v1/messages`), streaming and not.

It speaks the wire format the real API sends: the `message` JSON object, the SSE event sequence
(`message_start`, `content_block_start`, `ping`, `content_block_delta` with `text_delta` /
`input_json_delta`, `content_block_stop`, `message_delta` with `stop_reason` and usage, `message_stop`),
and the `{"type": "error", "error": {...}}` envelope. Replies are queued by the test; every request is
recorded for assertions.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ._fake_http_server import FakeReply, ScriptedFake, dumps


def _words(value: Any) -> int:
    """Words in every string of a request body: the fake's input token count."""
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, list):
        return sum(_words(v) for v in value)
    if isinstance(value, dict):
        return sum(_words(v) for k, v in value.items() if k in ("text", "content", "system", "messages"))
    return 0


class FakeAnthropic(ScriptedFake):
    """State and ASGI app of the fake."""

    def __init__(self) -> None:
        super().__init__()
        self.app = Starlette(routes=[Route("/v1/messages", self._messages, methods=["POST"])])

    async def _messages(self, request: Request) -> Response:
        body, reply, seq = await self.take(request)
        message_id = f"msg_fake{seq:06d}"
        headers = {"request-id": f"req_fake{seq:06d}"}
        if reply.error_status is not None:
            error = {
                "type": "error",
                "error": {"type": reply.error_type, "message": reply.error_message},
                "request_id": headers["request-id"],
            }
            if reply.error_status in (429, 500, 529):
                headers["x-should-retry"] = "true"
            return JSONResponse(error, status_code=reply.error_status, headers=headers)
        input_tokens = max(_words(body.get("messages", [])) + _words(body.get("system", "")), 1)
        model = body.get("model", "claude")
        if body.get("stream"):
            return StreamingResponse(
                self._events(message_id, model, reply, input_tokens),
                media_type="text/event-stream",
                headers={**headers, "cache-control": "no-cache"},
            )
        return JSONResponse(self._message(message_id, model, reply, input_tokens), headers=headers)

    @staticmethod
    def _blocks(reply: FakeReply) -> list[dict[str, Any]]:
        blocks: list[dict[str, Any]] = []
        if reply.text is not None:
            blocks.append({"type": "text", "text": reply.text})
        for call_id, name, args in reply.tool_calls:
            blocks.append({"type": "tool_use", "id": call_id, "name": name, "input": args})
        return blocks

    @staticmethod
    def _output_tokens(reply: FakeReply) -> int:
        words = len((reply.text or "").split())
        words += sum(len(name.split()) + len(dumps(args).split()) for _, name, args in reply.tool_calls)
        return max(words, 1)

    @staticmethod
    def _usage(input_tokens: int, output_tokens: int) -> dict[str, Any]:
        return {
            "input_tokens": input_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": output_tokens,
            "service_tier": "standard",
        }

    def _message(self, message_id: str, model: str, reply: FakeReply, input_tokens: int) -> dict[str, Any]:
        return {
            "id": message_id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": self._blocks(reply),
            "stop_reason": "tool_use" if reply.tool_calls else "end_turn",
            "stop_sequence": None,
            "usage": self._usage(input_tokens, self._output_tokens(reply)),
        }

    async def _events(self, message_id: str, model: str, reply: FakeReply, input_tokens: int) -> AsyncIterator[bytes]:
        def event(name: str, data: dict[str, Any]) -> bytes:
            return f"event: {name}\ndata: {dumps(data)}\n\n".encode()

        start: dict[str, Any] = {
            "id": message_id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": self._usage(input_tokens, 1),
        }
        yield event("message_start", {"type": "message_start", "message": start})
        index = 0
        if reply.text is not None:
            yield event(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": {"type": "text", "text": ""},
                },
            )
            yield event("ping", {"type": "ping"})
            for word in _split_words(reply.text):
                yield event(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "text_delta", "text": word},
                    },
                )
            yield event("content_block_stop", {"type": "content_block_stop", "index": index})
            index += 1
        for call_id, name, args in reply.tool_calls:
            block = {"type": "tool_use", "id": call_id, "name": name, "input": {}}
            yield event("content_block_start", {"type": "content_block_start", "index": index, "content_block": block})
            raw = dumps(args)
            for piece in ["", *_chunks(raw, 7)]:
                delta = {"type": "input_json_delta", "partial_json": piece}
                yield event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
            yield event("content_block_stop", {"type": "content_block_stop", "index": index})
            index += 1
        yield event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {
                    "stop_reason": "tool_use" if reply.tool_calls else "end_turn",
                    "stop_sequence": None,
                },
                "usage": {"output_tokens": self._output_tokens(reply)},
            },
        )
        yield event("message_stop", {"type": "message_stop"})


def _split_words(text: str) -> list[str]:
    """Text in word-sized deltas that join back to exactly `text`."""
    pieces: list[str] = []
    for word in text.split(" "):
        if pieces:
            pieces[-1] += " "
        pieces.append(word)
    return [p for p in pieces if p] or [text]


def _chunks(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]
