"""One turn of a session, as a durable state machine that loophost owns.

    input accepted -> [model request] -> response committed -> tool calls?
        no: idle (end_turn) in the response's commit
        yes: the calls split by kind (`_calls.py`): allowed ones run now, the others park (requires_action);
             once every call has its result, the results join the next model request's commit.

Each model request goes through pydantic-ai's public model layer (`pydantic_ai.direct.model_request_stream`),
so every provider it supports works; nothing above it (no `Agent`, no graph) is pydantic-ai's.

Commits (each one `Change`, see `_writer.py`): before a request, its `span.model_request_start` with what the
history gained since the last response (the prompt, or the calls' results); after it, the response's events,
the response itself and the usage counters, together with the idle that ends the turn when no tool is called.
Where a turn stands is therefore always in the store: the history's tail plus the turn state say what a
restarted worker does next (send the prompt, resolve the last response's calls, or request again).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from pydantic_ai.direct import model_request_stream
from pydantic_ai.messages import (
    InstructionPart,
    ModelMessage,
    ModelRequest,
    ModelResponse,
    PartDeltaEvent,
    PartStartEvent,
    TextPart,
    TextPartDelta,
    ThinkingPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.models import Model, ModelRequestParameters
from pydantic_ai.tools import ToolDefinition

from ... import wire
from .. import _budgets as budgets
from .. import _telemetry
from .._bus import EventBus
from .._session_notes import session_notes
from .._state import SessionInternal, TurnState, start_next_turn
from .._writer import Change, LoadedSession, SessionWriter
from ..store import CheckpointWrite, Store, TokenCounts
from . import _grader, _spend
from . import _outbound as out
from ._calls import CallRunner, SessionTools, tool_use_event, with_turn
from ._config import AgentLoopConfig
from ._history import History, closing_request, open_calls, refer_text
from ._inputs import prompt_of, text_of
from ._threads import DELEGATION_TOOLS as DELEGATION
from ._threads import delegation_definitions


def turn_end(internal: SessionInternal, events: Sequence[Any], **change: Any) -> Change:
    """The commit that ends a turn: idle, unless queued input can start the next turn in the same commit."""
    started = start_next_turn(internal)
    if started is None:
        return Change(events=events, status="idle", internal=internal, **change)
    return Change(
        events=[*events, *started.events],
        status="running",
        internal=started.internal,
        processed=started.taken,
        processed_at=started.at,
        **change,
    )


def joined(first: CheckpointWrite | None, second: CheckpointWrite | None) -> CheckpointWrite | None:
    """Two consecutive appends to the history as one write."""
    if first is None or second is None:
        return first or second
    return CheckpointWrite(first.keep, first.append + second.append)


def tokens_of(response: ModelResponse) -> TokenCounts:
    usage = response.usage
    return TokenCounts(
        int(usage.input_tokens or 0),
        int(usage.output_tokens or 0),
        int(usage.cache_read_tokens or 0),
        int(usage.cache_write_tokens or 0),
    )


def session_tools(tools: SessionTools, agent: wire.SessionAgent) -> list[ToolDefinition]:
    """What the model is told it may call: the agent's built-in tools that have an implementation, its custom tools,
    the MCP tools of its connected servers."""
    definitions = [
        ToolDefinition(name=name, description=policy.tool.description, parameters_json_schema=policy.tool.input_schema)
        for name, policy in {**tools.builtin, **tools.worker}.items()
    ]
    definitions += [
        ToolDefinition(
            name=tool.name,
            description=tool.description,
            parameters_json_schema=tool.input_schema.model_dump(mode="json", exclude_none=True),
        )
        for tool in agent.tools
        if isinstance(tool, wire.CustomTool)
    ]
    definitions += [  # MCP tools (`_mcp.py`): their metadata names server and tool, for the scripted model
        ToolDefinition(
            name=name,
            description=policy.tool.description,
            parameters_json_schema=policy.tool.input_schema,
            metadata=getattr(policy.tool, "metadata", None),
        )
        for name, policy in tools.mcp.items()
    ]
    if tools.threads is not None:  # a coordinator's delegation tools (`_threads.py`)
        definitions += delegation_definitions()
    return definitions


class Turn:
    """Drives one session's turn from its committed position until it parks or ends."""

    def __init__(
        self,
        *,
        writer: SessionWriter,
        bus: EventBus,
        store: Store,
        session_id: str,
        history: History,
        model: Model,
        tools: SessionTools,
        config: AgentLoopConfig,
    ) -> None:
        self._writer = writer
        self._bus = bus
        self._store = store
        self._session_id = session_id
        self._history = history
        self._model = model
        self._tools = tools
        self._config = config
        self._calls = CallRunner(writer, store, session_id, tools)
        self._model_id = ""

    async def run(self) -> None:
        loaded = await self._writer.load(None, self._session_id)
        if loaded.internal.turn is None:
            return
        params = await self._parameters(loaded, loaded.internal.turn)
        self._model_id = loaded.document.agent.model.id
        while True:
            loaded = await self._writer.load(None, self._session_id)
            turn = loaded.internal.turn
            if turn is None or loaded.status != "running" or loaded.internal.interrupt_requested:
                return
            events: list[Any] = []
            new: list[ModelMessage] = []
            if not turn.prompt_sent:
                closing = closing_request(self._history.messages)
                new = [closing] if closing is not None else []
                new.append(await self._prompt(turn))
            elif (response := self._history.last_response()) is not None and open_calls(self._history.messages):
                resolution = await self._calls.resolve(loaded, response)
                if resolution.parts is None:
                    return  # parked: requires_action
                new, events = [ModelRequest(parts=resolution.parts)], resolution.events
            if loaded.internal.budget is not None and await _spend.cap_reached(self._writer, loaded):
                await self._pause(loaded)
                continue
            if await self._request(new, events, params):
                return

    async def _pause(self, loaded: LoadedSession) -> None:
        """Idle at the cap (re-checked on the current state); a child thread pauses at its coordinator's cap and
        its worker then pauses the coordinator (`_threads.notify_parent`)."""
        if loaded.internal.parent is not None:
            await self._writer.apply(self._session_id, lambda current: _spend.pause(current, child=True))
            return
        spent = await budgets.threads_spent(self._writer, loaded) if loaded.internal.threads else Decimal(0)
        await self._writer.apply(self._session_id, lambda current: _spend.pause(current, spent))

    async def _parameters(self, loaded: LoadedSession, turn: TurnState) -> ModelRequestParameters:
        agent = loaded.document.agent
        extra = None
        if turn.system_id is not None:
            body = await self._input_body(turn.system_id)
            extra = text_of(json.loads(body).get("content")) if body is not None else None
        notes = await session_notes(self._store, loaded.row.workspace, loaded.document)  # memory stores, skills
        instructions = "\n\n".join(x for x in (agent.system, extra, notes) if x)
        return ModelRequestParameters(
            function_tools=session_tools(self._tools, agent),
            allow_text_output=True,
            instruction_parts=[InstructionPart(content=instructions)] if instructions else None,
        )

    async def _input_body(self, event_id: str | None) -> str | None:
        """An input event's JSON: from memory when this process accepted it, else from the log."""
        if event_id is None:
            return None
        body = self._writer.input_body(event_id)
        if body is None:
            stored = await self._store.get_event(self._session_id, event_id)
            body = stored.body if stored is not None else None
        return body

    async def _prompt(self, turn: TurnState) -> ModelRequest:
        """The turn's input as a user prompt, tagged with the session and input it came from."""
        body = await self._input_body(turn.input_id)
        content = prompt_of(json.loads(body)) if body is not None else ""
        tag = {"loophost": {"session_id": self._session_id, "input_id": turn.input_id}}
        return ModelRequest(parts=[UserPromptPart(content)], metadata=tag)

    async def _request(self, new: list[ModelMessage], events: list[Any], params: ModelRequestParameters) -> bool:
        """One model request and its commits (the one that opens its span, unless the turn's start did; the one
        that stores the response); True when the turn ended (no tool was called)."""
        # the last response's calls get their results with this request: its ledger is done with
        answered = any(isinstance(p, ToolReturnPart) for m in new if isinstance(m, ModelRequest) for p in m.parts)
        loaded = await self._writer.load(None, self._session_id)
        turn = loaded.internal.turn or TurnState()
        if turn.requests >= self._config.max_model_requests_per_turn:
            limit = self._config.max_model_requests_per_turn
            message = f"The turn reached its limit of {limit} model requests."

            def stop(current: LoadedSession) -> Change:
                ended = [*events, out.error("tool_use_limit_reached_error", message, "exhausted"), out.idle(_END)]
                internal = current.internal.model_copy(update={"turn": None, "pending": {}})
                return turn_end(internal, ended, history=self._history.append(*new))

            await self._writer.apply(self._session_id, stop)
            return True
        carried: CheckpointWrite | None = None
        if not turn.prompt_sent and turn.open_span is not None:
            # the commit that started the turn opened this request's span: the prompt is stored with the response
            start_id = turn.open_span
            carried = self._history.append(*new)
        else:
            start_id = out.event_id()
            await self._writer.apply(self._session_id, self._opening(start_id, new, events, answered))
            events = []
        message_id = out.event_id()
        with _telemetry.chat_span(self._model, self._history.messages, attempt=turn.attempts) as span:
            response = await self._stream(params, message_id)
            span.response(response)
        calls = [p for p in response.parts if isinstance(p, ToolCallPart)]
        tokens = tokens_of(response)
        produced: list[Any] = list(events)  # (committed here only when no opening commit took them)
        if any(isinstance(p, ThinkingPart) for p in response.parts):
            produced.append(out.thinking())
        text = "".join(p.content for p in response.parts if isinstance(p, TextPart))
        if text:
            produced.append(out.agent_message(message_id, text))
            refer_text(response, message_id)
        if self._tools.threads is None:
            announced = {call.tool_call_id: tool_use_event(self._tools, call) for call in calls}
        else:  # delegations are never announced as tool uses: the thread events show them
            announced = {c.tool_call_id: tool_use_event(self._tools, c) for c in calls if c.tool_name not in DELEGATION}
        produced += announced.values()
        produced.append(out.span_end(start_id, tokens._asdict()))
        by_threads = Decimal(0)  # a coordinator's turn end reports the spend with its threads'
        if not calls and loaded.internal.budget is not None and loaded.internal.threads:
            by_threads = await budgets.threads_spent(self._writer, loaded)

        def after(current: LoadedSession) -> Change:
            history = joined(carried, self._history.append(response))
            if calls:
                tool_events = {call_id: event.id for call_id, event in announced.items()}
                if len(tool_events) < len(calls):  # delegations: known by their call id (`_threads.py`)
                    tool_events.update(
                        {c.tool_call_id: c.tool_call_id for c in calls if c.tool_call_id not in announced}
                    )
                internal = with_turn(
                    current.internal, open_span=None, prompt_sent=True, attempts=0, tool_events=tool_events, ledger={}
                )
                if internal.budget is not None:
                    internal = _spend.charged(internal, self._model_id, tokens, response)
                return Change(events=produced, internal=internal, history=history, usage=tokens)
            internal = current.internal.model_copy(update={"turn": None})
            ended = produced
            if internal.budget is not None:  # with a budget, the turn's end reports the spend
                internal = _spend.charged(internal, self._model_id, tokens, response)
                ended = [*produced, _spend.usage_event(current, tokens, internal, by_threads)]
            if internal.outcome is not None:  # an outcome's turn is graded next (`_grader.py`)
                graded = _grader.after_turn(current, internal, ended, history=history, usage=tokens)
                if graded is not None:
                    return graded
            return turn_end(internal, [*ended, out.idle(_END)], history=history, usage=tokens)

        await self._writer.apply(self._session_id, after)
        return not calls

    def _opening(
        self, start_id: str, new: list[ModelMessage], events: list[Any], answered: bool
    ) -> Callable[[LoadedSession], Change]:
        """The commit before a request: its span opens, with what the history gained since the last response."""

        def before(current: LoadedSession) -> Change:
            state = current.internal.turn or TurnState()
            update: dict[str, Any] = {"open_span": start_id, "prompt_sent": True, "requests": state.requests + 1}
            if answered:
                update.update(tool_events={}, ledger={})
            internal = with_turn(current.internal, **update)
            if answered and internal.pending:
                internal = internal.model_copy(update={"pending": {}})
            return Change(
                events=[*events, out.span_start(start_id)], internal=internal, history=self._history.append(*new)
            )

        return before

    async def _stream(self, params: ModelRequestParameters, message_id: str) -> ModelResponse:
        """Request the model, streaming text previews (of the `agent.message` to come) to live subscribers."""
        started = False
        async with model_request_stream(self._model, self._history.messages, model_request_parameters=params) as stream:
            async for event in stream:
                text = None
                if isinstance(event, PartStartEvent) and isinstance(event.part, TextPart):
                    text = event.part.content
                elif isinstance(event, PartDeltaEvent) and isinstance(event.delta, TextPartDelta):
                    text = event.delta.content_delta
                if text is None or not self._bus.wants_previews(self._session_id):
                    continue
                if not started:
                    self._bus.preview(self._session_id, "event_start", out.preview_start(message_id))
                    started = True
                if text:
                    self._bus.preview(self._session_id, "event_delta", out.preview_delta(message_id, text))
            return stream.get()


_END = {"type": "end_turn"}
