"""`ScriptedModel`: the deterministic built-in model (model id `scripted`).

It needs no API key and answers from directives in the newest user message, so the demo, the tests and
anyone's conformance checks can drive every path of the runtime (tool calls, parallel calls, deferred
tools, long turns, transient and fatal model failures) with plain text. See `docs/architecture.md`, "The
scripted model".
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, cast

import pydantic_core
from pydantic_ai import RunContext
from pydantic_ai import messages as _messages
from pydantic_ai.exceptions import ModelHTTPError, ModelOverloadedError, ModelRequestRejectedError
from pydantic_ai.messages import (
    FinishReason,
    ModelMessage,
    ModelRequest,
    ModelResponse,
    ModelResponsePart,
    ModelResponseStreamEvent,
    RetryFeedbackPart,
    RetryPromptPart,
    SystemPromptPart,
    TextContent,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.models import Model, ModelRequestParameters, StreamedResponse
from pydantic_ai.profiles import ModelProfile, ModelProfileSpec
from pydantic_ai.settings import ModelSettings
from pydantic_ai.usage import RequestUsage

from ._script import Script, ScriptedCall, count_words, grader_answer, parse_script, split_steps

__all__ = ("SCRIPTED_MODEL_NAME", "SCRIPTED_SYSTEM", "ScriptedModel", "ScriptedStreamedResponse")

SCRIPTED_MODEL_NAME = "scripted"
SCRIPTED_SYSTEM = "loophost"

_RETRY_FEEDBACK_FRAMING: str = getattr(
    _messages,
    "_RETRY_FEEDBACK_FRAMING",
    "Your previous response failed the application's validation",
)
"""How pydantic-ai opens retry feedback sent in the user voice; such a part is not the user's message."""

_DELTA = re.compile(r"\s*\S+\s*|\s+")

_METADATA_KEY = "loophost"
"""`ModelRequest.metadata[_METADATA_KEY]` holds `session_id` and `input_id` when the runtime sent the prompt."""


@dataclass(frozen=True, slots=True)
class _Prompt:
    """The newest user message, where it sits in the history, and whose it is."""

    index: int
    """Index of the `ModelRequest` holding it, or -1 when there is none."""
    text: str
    timestamp: datetime | None = None
    """The prompt part's timestamp (set when the part was built, kept by checkpoints)."""
    origin: tuple[str, str] | None = None
    """`(session_id, input_id)` from the request's `loophost` metadata, when the runtime set it."""

    def failure_key(self) -> str:
        """What failures are counted by: the session's input, else this exact prompt part in its history."""
        if self.origin is not None:
            session_id, input_id = self.origin
            identity: list[Any] = ["input", session_id, input_id]
        else:
            stamp = self.timestamp.isoformat() if self.timestamp is not None else None
            identity = ["prompt", self.index, self.text, stamp]
        return hashlib.sha256(json.dumps(identity).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class _Plan:
    """What the model answers to one request: the parts, why it stopped, and its usage."""

    parts: list[ModelResponsePart]
    finish_reason: FinishReason
    usage: RequestUsage


def _user_text(part: UserPromptPart) -> str:
    if isinstance(part.content, str):
        return part.content
    texts = [
        item if isinstance(item, str) else item.content for item in part.content if isinstance(item, str | TextContent)
    ]
    return "\n".join(texts)


def _is_users_own(part: UserPromptPart) -> bool:
    """Whether a user-prompt part is the user's message, not text pydantic-ai put in the user voice."""
    # Framework notes are private subclasses of `UserPromptPart`; retry feedback has a fixed opening.
    return type(part) is UserPromptPart and not _user_text(part).lstrip().startswith(_RETRY_FEEDBACK_FRAMING)


def _origin(request: ModelRequest) -> tuple[str, str] | None:
    """`(session_id, input_id)` from `request.metadata["loophost"]`, or `None` when it is absent or malformed."""
    loophost = (request.metadata or {}).get(_METADATA_KEY)
    if not isinstance(loophost, dict):
        return None
    fields = cast("dict[str, Any]", loophost)
    session_id, input_id = fields.get("session_id"), fields.get("input_id")
    if isinstance(session_id, str) and session_id and isinstance(input_id, str) and input_id:
        return session_id, input_id
    return None


def _grading_iteration(messages: Sequence[ModelMessage], index: int) -> int | None:
    """The grading iteration a grader's request carries in its `loophost` metadata, or None."""
    if index < 0:
        return None
    message = messages[index]
    meta = message.metadata if isinstance(message, ModelRequest) else None
    grader = ((meta or {}).get("loophost") or {}).get("grader")
    return int(grader["iteration"]) if isinstance(grader, dict) and "iteration" in grader else None


def _newest_prompt(messages: Sequence[ModelMessage]) -> _Prompt:
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if not isinstance(message, ModelRequest):
            continue
        for part in reversed(message.parts):
            if isinstance(part, UserPromptPart) and _is_users_own(part):
                return _Prompt(index, _user_text(part), part.timestamp, _origin(message))
    return _Prompt(-1, "")


def _result_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return pydantic_core.to_json(content).decode()


def _result_line(part: ToolReturnPart | RetryPromptPart) -> str:
    """`NAME: <result>` or `NAME failed: <text>` for one tool result."""
    if isinstance(part, RetryPromptPart):
        return f"{part.tool_name} failed: {_result_text(part.content)}"
    if part.outcome != "success":
        return f"{part.tool_name} failed: {_result_text(part.content)}"
    return f"{part.tool_name}: {_result_text(part.content)}"


def _input_words(messages: Sequence[ModelMessage], params: ModelRequestParameters) -> int:
    """Words in the prompt sent: instructions, system and user text, tool results."""
    words = 0
    if params.instruction_parts is not None:
        words += sum(count_words(part.content) for part in params.instruction_parts)
    else:
        last_request = next((m for m in reversed(messages) if isinstance(m, ModelRequest)), None)
        if last_request is not None and last_request.instructions:
            words += count_words(last_request.instructions)
    for message in messages:
        if not isinstance(message, ModelRequest):
            continue
        for part in message.parts:
            if isinstance(part, SystemPromptPart):
                words += count_words(part.content)
            elif isinstance(part, UserPromptPart):
                words += count_words(_user_text(part))
            elif isinstance(part, ToolReturnPart):
                words += count_words(part.model_response_str())
            elif isinstance(part, RetryPromptPart | RetryFeedbackPart):
                words += count_words(part.model_response())
    return max(words, 1)


def _output_words(parts: Sequence[ModelResponsePart]) -> int:
    words = 0
    for part in parts:
        if isinstance(part, TextPart):
            words += count_words(part.content)
        elif isinstance(part, ToolCallPart):
            args = part.args if isinstance(part.args, str) else json.dumps(part.args)
            words += count_words(part.tool_name) + count_words(args or "")
    return max(words, 1)


class ScriptedModel(Model):
    """A deterministic model that follows directives in the newest user message.

    Each line of the newest user message is one of:

    - `call NAME {json}`: call tool NAME with that input; several lines call in parallel, in one response.
      Tool call ids are `call_<index of the response in history>_<n>`, unique in a conversation.
    - `sleep MS`: wait MS milliseconds (`asyncio.sleep`, so cancellable) before answering, on every
      model request made for this message.
    - `fail transient N`: the next N model requests of this session for this message raise a retryable
      overloaded error, `ModelHTTPError` with status 529 (also a `ModelOverloadedError`).
    - `fail fatal`: the next model request of this session for this message raises an unrecoverable
      error, `ModelHTTPError` with status 400 (also a `ModelRequestRejectedError`).
    - `then`: the lines after it are the next step, played once the previous step's calls have their
      results (`call a {}` / `then` / `call b {}` calls a, then b, then answers `b: <result>`).
    - `output {json}`: when the run expects structured output, answer with it (through the first output
      tool, or as the text of a native/prompted output); otherwise it is text like any other line.
    - anything else: text.

    A message without `call` lines is answered `echo: <text>`. Once the calls' results arrive it answers
    one line per call in call order, `NAME: <result>` or `NAME failed: <text>` (a failed, retried, denied
    or interrupted call), and never calls the tools of that message again. Usage is deterministic: input
    tokens are the words of the instructions, system, user and tool-result text sent; output tokens the
    words of the reply (tool name plus JSON-dumped input for a call); both at least 1.

    Failures are counted in this instance (thread-safely) per user message. When the `ModelRequest`
    holding the newest user prompt carries `metadata={"loophost": {"session_id": ..., "input_id": ...}}`
    (the runtime sets it; pydantic-ai never sends metadata to a model), the message is that input of that
    session: two sessions sending the same text each get their own failures. Without it (pydantic-ai's
    `Agent`, `pydantic_ai.direct`), the message is the prompt part itself: its position in the history,
    its text and its timestamp, so only a re-send of the same history (the same objects, or a checkpoint
    of them) counts down; a freshly built prompt, even with the same text, starts a new count. Either way a
    retry of the same request counts down and the N+1st request proceeds. Share one instance (as
    `resolve_model` does) for the count to survive re-resolving the model between attempts.
    """

    _announces_lookalike_notes: ClassVar[bool] = False
    """No `<system>`-tag announcement: the script would read it, and nothing here needs it."""

    def __init__(
        self,
        *,
        model_name: str = SCRIPTED_MODEL_NAME,
        profile: ModelProfileSpec | None = None,
        settings: ModelSettings | None = None,
    ) -> None:
        """Create a scripted model; `model_name` only changes the name it reports."""
        self._model_name = model_name
        self._failures_seen: dict[str, int] = {}
        self._failures_lock = threading.Lock()
        if profile is None:
            # Inline system prompts keep mid-conversation system text out of the user voice, where the
            # script would otherwise take it for the user's message.
            profile = ModelProfile(
                supports_json_schema_output=True,
                supports_json_object_output=True,
                supports_inline_system_prompts=True,
            )
        super().__init__(settings=settings, profile=profile)

    @property
    def model_name(self) -> str:
        """The model name, `scripted` by default."""
        return self._model_name

    @property
    def system(self) -> str:
        """The provider name reported on responses and telemetry."""
        return SCRIPTED_SYSTEM

    @property
    def provider(self) -> None:
        """No provider: nothing leaves the process."""
        return None

    async def request(
        self,
        messages: list[ModelMessage],
        model_settings: ModelSettings | None,
        model_request_parameters: ModelRequestParameters,
    ) -> ModelResponse:
        """Answer one model request (see the class docstring)."""
        model_settings, model_request_parameters = self.prepare_request(model_settings, model_request_parameters)
        plan = await self._answer(messages, model_request_parameters)
        return ModelResponse(
            parts=plan.parts,
            usage=plan.usage,
            model_name=self._model_name,
            provider_name=self.system,
            finish_reason=plan.finish_reason,
        )

    @asynccontextmanager
    async def request_stream(
        self,
        messages: list[ModelMessage],
        model_settings: ModelSettings | None,
        model_request_parameters: ModelRequestParameters,
        run_context: RunContext[Any] | None = None,
    ) -> AsyncGenerator[StreamedResponse]:
        """Answer one model request as a stream: text in word deltas, each tool call as one part."""
        model_settings, model_request_parameters = self.prepare_request(model_settings, model_request_parameters)
        plan = await self._answer(messages, model_request_parameters)
        yield ScriptedStreamedResponse(
            model_request_parameters=model_request_parameters,
            _model_name=self._model_name,
            _provider_name=self.system,
            _planned_parts=plan.parts,
            _planned_finish_reason=plan.finish_reason,
            _planned_usage=plan.usage,
        )

    async def _answer(self, messages: list[ModelMessage], params: ModelRequestParameters) -> _Plan:
        """Fail, wait, then plan the reply, in that order, as the directives say."""
        prompt = _newest_prompt(messages)
        script = parse_script(prompt.text)
        if script.failures:
            self._maybe_fail(prompt, script)
        if script.sleep_ms:
            await asyncio.sleep(script.sleep_ms / 1000)
        parts = self._reply(messages, params, prompt, script)
        finish_reason: FinishReason = "tool_call" if any(isinstance(p, ToolCallPart) for p in parts) else "stop"
        usage = RequestUsage(input_tokens=_input_words(messages, params), output_tokens=_output_words(parts))
        return _Plan(parts=parts, finish_reason=finish_reason, usage=usage)

    def _maybe_fail(self, prompt: _Prompt, script: Script) -> None:
        key = prompt.failure_key()
        with self._failures_lock:
            seen = self._failures_seen.get(key, 0)
            failure = script.failure_at(seen)
            if failure is not None:
                self._failures_seen[key] = seen + 1
        if failure == "transient":
            raise ModelHTTPError.for_category(
                ModelOverloadedError,
                status_code=529,
                model_name=self._model_name,
                body={
                    "type": "error",
                    "error": {"type": "overloaded_error", "message": "Overloaded (scripted)"},
                },
                provider_error_type="overloaded_error",
            )
        if failure == "fatal":
            raise ModelHTTPError.for_category(
                ModelRequestRejectedError,
                status_code=400,
                model_name=self._model_name,
                body={
                    "type": "error",
                    "error": {
                        "type": "invalid_request_error",
                        "message": "Request rejected (scripted fail fatal)",
                    },
                },
                provider_error_type="invalid_request_error",
            )

    def _reply(
        self,
        messages: list[ModelMessage],
        params: ModelRequestParameters,
        prompt: _Prompt,
        script: Script,
    ) -> list[ModelResponsePart]:
        iteration = _grading_iteration(messages, prompt.index)
        if iteration is not None:  # a grader's request (engine/_grader.py): the rubric's verdict lines decide
            return [TextPart(grader_answer(prompt.text, iteration))]
        output_tool_names = {tool.name for tool in params.output_tools}
        steps = split_steps(prompt.text)
        rounds = _call_rounds(messages, prompt.index, output_tool_names)
        if rounds < len(steps):
            step = parse_script(steps[rounds]) if len(steps) > 1 else script
            if step.calls:
                return self._call_parts(messages, step.calls, params)
        calls_index, calls = _last_function_calls(messages, prompt.index, output_tool_names)
        if calls_index is None:
            return self._final_answer(messages, params, script, f"echo: {self._text(params, script)}")
        return self._final_answer(messages, params, script, _results_text(messages, calls_index, calls))

    @staticmethod
    def _expects_structured_output(params: ModelRequestParameters) -> bool:
        return bool(params.output_tools) or params.output_mode in ("native", "prompted")

    def _text(self, params: ModelRequestParameters, script: Script) -> str:
        return script.text(output_is_directive=self._expects_structured_output(params))

    def _call_parts(
        self, messages: list[ModelMessage], calls: Sequence[ScriptedCall], params: ModelRequestParameters
    ) -> list[ModelResponsePart]:
        position = len(messages)
        return [
            ToolCallPart(_tool_name(call.name, params), call.args, tool_call_id=f"call_{position}_{n}")
            for n, call in enumerate(calls)
        ]

    def _final_answer(
        self,
        messages: list[ModelMessage],
        params: ModelRequestParameters,
        script: Script,
        text: str,
    ) -> list[ModelResponsePart]:
        """The text answer, or the `output {json}` when the run expects structured output."""
        if script.output is not None and params.output_tools:
            tool = params.output_tools[0]
            args: dict[str, Any] | str
            try:
                value = json.loads(script.output) if script.output else {}
            except ValueError:
                args = script.output  # pydantic-ai rejects it and retries, as with a real model's bad JSON
            else:
                if tool.outer_typed_dict_key:
                    args = {tool.outer_typed_dict_key: value}
                elif isinstance(value, dict):
                    args = value
                else:
                    args = script.output
            return [ToolCallPart(tool.name, args, tool_call_id=f"call_{len(messages)}_0")]
        if script.output is not None and params.output_mode in ("native", "prompted"):
            return [TextPart(script.output)]
        return [TextPart(text)]


def _tool_name(name: str, params: ModelRequestParameters) -> str:
    """The tool a `call NAME` line means: a tool of that name, else `SERVER.TOOL` for an MCP tool whose name is
    shared by two servers (the runtime then offers it under a qualified name, given in its definition's metadata)."""
    if "." not in name or any(tool.name == name for tool in params.function_tools):
        return name
    server, _, tool_name = name.partition(".")
    for tool in params.function_tools:
        mcp = (tool.metadata or {}).get("loophost_mcp")
        if isinstance(mcp, dict) and mcp.get("server") == server and mcp.get("tool") == tool_name:
            return tool.name
    return name


def _call_rounds(messages: Sequence[ModelMessage], prompt_index: int, output_tool_names: set[str]) -> int:
    """How many responses since the prompt called function tools: the step of a `then` script to play."""
    return sum(
        1
        for message in messages[prompt_index + 1 :]
        if isinstance(message, ModelResponse)
        and any(isinstance(p, ToolCallPart) and p.tool_name not in output_tool_names for p in message.parts)
    )


def _last_function_calls(
    messages: Sequence[ModelMessage], prompt_index: int, output_tool_names: set[str]
) -> tuple[int | None, list[ToolCallPart]]:
    """The newest response after the prompt that called function tools, and those calls in order."""
    for index in range(len(messages) - 1, prompt_index, -1):
        message = messages[index]
        if isinstance(message, ModelResponse):
            calls = [
                part
                for part in message.parts
                if isinstance(part, ToolCallPart) and part.tool_name not in output_tool_names
            ]
            if calls:
                return index, calls
    return None, []


def _results_text(messages: Sequence[ModelMessage], calls_index: int, calls: Sequence[ToolCallPart]) -> str:
    """One line per call, in call order, from the results that came back after it."""
    results: dict[str, ToolReturnPart | RetryPromptPart] = {}
    for message in messages[calls_index + 1 :]:
        if isinstance(message, ModelRequest):
            for part in message.parts:
                if isinstance(part, ToolReturnPart | RetryPromptPart):
                    results[part.tool_call_id] = part
    lines = []
    for call in calls:
        result = results.get(call.tool_call_id)
        lines.append(_result_line(result) if result is not None else f"{call.tool_name} failed: no result")
    return "\n".join(lines)


class _StreamCancelled(Exception):
    """Raised inside the stream once `cancel()` was called; pydantic-ai swallows it as a cancellation."""


@dataclass
class ScriptedStreamedResponse(StreamedResponse):
    """The scripted reply, streamed: text in word-boundary deltas, then each tool call as one part."""

    _model_name: str = ""
    _provider_name: str = SCRIPTED_SYSTEM
    _planned_parts: list[ModelResponsePart] = field(default_factory=list[ModelResponsePart])
    _planned_finish_reason: FinishReason = "stop"
    _planned_usage: RequestUsage = field(default_factory=RequestUsage)
    _timestamp: datetime = field(default_factory=lambda: datetime.now(UTC), init=False)

    async def _get_event_iterator(self) -> AsyncIterator[ModelResponseStreamEvent]:
        self._usage = RequestUsage(input_tokens=self._planned_usage.input_tokens)
        for index, part in enumerate(self._planned_parts):
            if isinstance(part, TextPart):
                for delta in _DELTA.findall(part.content) or [""]:
                    await asyncio.sleep(0)
                    if self._cancelled:
                        raise _StreamCancelled()
                    for event in self._parts_manager.handle_text_delta(vendor_part_id=index, content=delta):
                        yield event
            elif isinstance(part, ToolCallPart):
                await asyncio.sleep(0)
                if self._cancelled:
                    raise _StreamCancelled()
                yield self._parts_manager.handle_tool_call_part(
                    vendor_part_id=index,
                    tool_name=part.tool_name,
                    args=cast("str | dict[str, Any] | None", part.args),
                    tool_call_id=part.tool_call_id,
                )
        self._usage = self._planned_usage
        self.finish_reason = self._planned_finish_reason

    async def close_stream(self) -> None:
        """Nothing to close: the stream is local."""

    def get_stream_cancel_errors(self) -> tuple[type[BaseException], ...]:
        return (_StreamCancelled,)

    @property
    def model_name(self) -> str:
        return self._model_name

    @property
    def provider_name(self) -> str:
        return self._provider_name

    @property
    def provider_url(self) -> None:
        return None

    @property
    def timestamp(self) -> datetime:
        return self._timestamp
