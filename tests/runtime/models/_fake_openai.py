"""A loopback fake of OpenAI chat completions (`POST /v1/chat/completions`), streaming and not.

It speaks the wire format the real API (and vLLM, Ollama, OpenRouter) sends: the `chat.completion`
object; `data: {chat.completion.chunk}` lines with `choices[0].delta.content` / `tool_calls` deltas, a
final chunk carrying `finish_reason`, a usage chunk with empty `choices` when
`stream_options.include_usage` is set, then `data: [DONE]`; and the `{"error": {...}}` envelope. Replies
are queued by the test; every request is recorded for assertions.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ._fake_http_server import FakeReply, ScriptedFake, dumps

_CREATED = 1_763_600_000
_FINGERPRINT = "fp_fake0001"


def _words(messages: list[dict[str, Any]]) -> int:
    words = 0
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            words += len(content.split())
        elif isinstance(content, list):
            words += sum(len(str(part.get("text", "")).split()) for part in content if isinstance(part, dict))
    return words


class FakeOpenAI(ScriptedFake):
    """State and ASGI app of the fake."""

    def __init__(self) -> None:
        super().__init__()
        self.app = Starlette(routes=[Route("/v1/chat/completions", self._completions, methods=["POST"])])

    async def _completions(self, request: Request) -> Response:
        body, reply, seq = await self.take(request)
        completion_id = f"chatcmpl-fake{seq:06d}"
        headers = {"x-request-id": f"req_fake{seq:06d}"}
        if reply.error_status is not None:
            error = {
                "error": {
                    "message": reply.error_message,
                    "type": reply.error_type,
                    "param": None,
                    "code": None,
                }
            }
            return JSONResponse(error, status_code=reply.error_status, headers=headers)
        model = body.get("model", "gpt")
        prompt_tokens = max(_words(body.get("messages", [])), 1)
        completion_tokens = self._completion_tokens(reply)
        usage = self._usage(prompt_tokens, completion_tokens)
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return StreamingResponse(
                self._chunks(completion_id, model, reply, usage if include_usage else None),
                media_type="text/event-stream",
                headers=headers,
            )
        return JSONResponse(self._completion(completion_id, model, reply, usage), headers=headers)

    @staticmethod
    def _completion_tokens(reply: FakeReply) -> int:
        words = len((reply.text or "").split())
        words += sum(len(name.split()) + len(dumps(args).split()) for _, name, args in reply.tool_calls)
        return max(words, 1)

    @staticmethod
    def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
        return {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    @staticmethod
    def _finish_reason(reply: FakeReply) -> str:
        return "tool_calls" if reply.tool_calls else "stop"

    def _completion(self, completion_id: str, model: str, reply: FakeReply, usage: dict[str, Any]) -> dict[str, Any]:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": reply.text,
            "refusal": None,
            "annotations": [],
        }
        if reply.tool_calls:
            message["tool_calls"] = [
                {"id": call_id, "type": "function", "function": {"name": name, "arguments": dumps(args)}}
                for call_id, name, args in reply.tool_calls
            ]
        return {
            "id": completion_id,
            "object": "chat.completion",
            "created": _CREATED,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": self._finish_reason(reply),
                }
            ],
            "usage": usage,
            "service_tier": "default",
            "system_fingerprint": _FINGERPRINT,
        }

    async def _chunks(
        self, completion_id: str, model: str, reply: FakeReply, usage: dict[str, Any] | None
    ) -> AsyncIterator[bytes]:
        include_usage = usage is not None

        def chunk(choices: list[dict[str, Any]], chunk_usage: dict[str, Any] | None = None) -> bytes:
            data: dict[str, Any] = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": _CREATED,
                "model": model,
                "service_tier": "default",
                "system_fingerprint": _FINGERPRINT,
                "choices": choices,
            }
            if include_usage:
                data["usage"] = chunk_usage
            return f"data: {dumps(data)}\n\n".encode()

        def delta(payload: dict[str, Any], finish_reason: str | None = None) -> list[dict[str, Any]]:
            return [{"index": 0, "delta": payload, "logprobs": None, "finish_reason": finish_reason}]

        if reply.tool_calls and reply.text is None:
            first: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None}
        else:
            first = {"role": "assistant", "content": "", "refusal": None}
        yield chunk(delta(first))
        if reply.text is not None:
            for word in _split_words(reply.text):
                yield chunk(delta({"content": word}))
        for index, (call_id, name, args) in enumerate(reply.tool_calls):
            opening = {
                "index": index,
                "id": call_id,
                "type": "function",
                "function": {"name": name, "arguments": ""},
            }
            yield chunk(delta({"tool_calls": [opening]}))
            raw = dumps(args)
            for start in range(0, len(raw), 7):
                piece = {"index": index, "function": {"arguments": raw[start : start + 7]}}
                yield chunk(delta({"tool_calls": [piece]}))
        yield chunk(delta({}, self._finish_reason(reply)))
        if usage is not None:
            yield chunk([], usage)
        yield b"data: [DONE]\n\n"


def _split_words(text: str) -> list[str]:
    pieces: list[str] = []
    for word in text.split(" "):
        if pieces:
            pieces[-1] += " "
        pieces.append(word)
    return [p for p in pieces if p] or [text]
