"""One turn of a session on pydantic-ai: run `agent.iter` over the checkpointed history, and turn every step into
durable wire events.

Checkpoints: before each model request (history + the request about to be sent) and after each model response;
a built-in tool's result is committed with its `agent.tool_result` event and recorded in the turn's ledger, so
a resumed turn returns it instead of running the tool again. A call found started but not done (the process died
while it ran) is answered with an error saying so, never run again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic_ai import Agent
from pydantic_ai._agent_graph import CallToolsNode, ModelRequestNode
from pydantic_ai.exceptions import ApprovalRequired, ToolFailed
from pydantic_ai.messages import (
    ModelMessage,
    ModelResponse,
    PartDeltaEvent,
    PartStartEvent,
    TextPart,
    TextPartDelta,
    ThinkingPart,
    ToolCallPart,
    UserContent,
)
from pydantic_ai.run import AgentRun
from pydantic_ai.tools import DeferredToolRequests, DeferredToolResults, RunContext, ToolDefinition
from pydantic_ai.toolsets import AbstractToolset, ExternalToolset
from pydantic_ai.toolsets.abstract import ToolsetTool
from pydantic_ai.usage import UsageLimits
from pydantic_core import SchemaValidator, core_schema

from ... import wire
from .._core import LedgerEntry, LoadedSession, PendingAction, SessionInternal, TurnState
from . import _outbound as out
from ._history import History
from ._tools import ToolContext, ToolOutput, ToolPolicy, builtin_policies, custom_tools

if TYPE_CHECKING:
    from ._worker import SessionWorkers

_ANY_ARGS = SchemaValidator(schema=core_schema.any_schema())
INTERRUPTED_BY_RESTART = (
    "The tool call was interrupted by a restart of the runtime before its result was recorded; "
    "it was not run again, to avoid repeating its side effects."
)


def input_hash(tool_input: Any) -> str:
    """Binds a confirmation to the exact input it approved."""
    return hashlib.sha256(json.dumps(tool_input, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _args(call: ToolCallPart) -> dict[str, Any]:
    try:
        args = call.args_as_dict()
    except Exception:
        return {"_raw": call.args}
    return args


def usage_of(response: ModelResponse) -> dict[str, int]:
    usage = response.usage
    return {
        "input_tokens": int(usage.input_tokens or 0),
        "output_tokens": int(usage.output_tokens or 0),
        "cache_read_input_tokens": int(usage.cache_read_tokens or 0),
        "cache_creation_input_tokens": int(usage.cache_write_tokens or 0),
    }


def add_usage(session: wire.Session, tokens: Mapping[str, int]) -> wire.Session:
    usage = session.usage
    cache = usage.cache_creation.model_copy() if usage.cache_creation else wire.CacheCreation()
    cache.ephemeral_5m_input_tokens = (cache.ephemeral_5m_input_tokens or 0) + tokens["cache_creation_input_tokens"]
    updated = usage.model_copy(
        update={
            "input_tokens": (usage.input_tokens or 0) + tokens["input_tokens"],
            "output_tokens": (usage.output_tokens or 0) + tokens["output_tokens"],
            "cache_read_input_tokens": (usage.cache_read_input_tokens or 0) + tokens["cache_read_input_tokens"],
            "cache_creation": cache,
        }
    )
    return session.model_copy(update={"usage": updated, "updated_at": wire.utcnow()})


class BuiltinToolset(AbstractToolset[None]):
    """The session's built-in tools as a pydantic-ai toolset; execution goes through the turn (ledger, events)."""

    def __init__(self, turn: Turn, policies: Mapping[str, ToolPolicy]) -> None:
        self._turn = turn
        self._policies = policies

    @property
    def id(self) -> str | None:
        return "loophost-builtins"

    async def get_tools(self, ctx: RunContext[None]) -> dict[str, ToolsetTool[None]]:
        return {
            name: ToolsetTool(
                toolset=self,
                tool_def=ToolDefinition(
                    name=name,
                    description=policy.tool.description,
                    parameters_json_schema=policy.tool.input_schema,
                ),
                max_retries=0,
                args_validator=_ANY_ARGS,
            )
            for name, policy in self._policies.items()
        }

    async def call_tool(
        self, name: str, tool_args: dict[str, Any], ctx: RunContext[None], tool: ToolsetTool[None]
    ) -> Any:
        policy = self._policies[name]
        if policy.permission != "allow" and not ctx.tool_call_approved:
            raise ApprovalRequired()
        output = await self._turn.run_builtin(policy, ctx.tool_call_id or "", tool_args)
        if output.is_error:
            raise ToolFailed(output.text)
        return output.text


class Turn:
    """Runs one pydantic-ai run for a session and commits what happens as it happens."""

    def __init__(
        self,
        workers: SessionWorkers,
        loaded: LoadedSession,
        agent: Agent[None, str | DeferredToolRequests],
        history: History,
    ) -> None:
        """`agent` is shared by every turn on the same model: what differs per session is passed per run."""
        self._workers = workers
        self._agent = agent
        self._history = history
        self.session_id = loaded.row.id
        self._loaded = loaded
        snapshot = loaded.session.agent
        self._policies = builtin_policies(snapshot, workers.builtin_tools)
        self._custom = custom_tools(snapshot)

    # the pieces of a run ---------------------------------------------------------------------------------
    def _toolsets(self) -> list[AbstractToolset[None]]:
        toolsets: list[AbstractToolset[None]] = [BuiltinToolset(self, self._policies)]
        if self._custom:
            toolsets.append(
                ExternalToolset(
                    [
                        ToolDefinition(
                            name=tool.name,
                            description=tool.description,
                            parameters_json_schema=tool.input_schema.model_dump(mode="json", exclude_none=True),
                        )
                        for tool in self._custom.values()
                    ]
                )
            )
        return toolsets

    def _instructions(self, extra: str | None) -> str | None:
        snapshot = self._loaded.session.agent
        return "\n\n".join(x for x in (snapshot.system, extra) if x) or None

    # the run -------------------------------------------------------------------------------------------
    async def run(
        self,
        messages: list[ModelMessage],
        prompt: str | list[UserContent] | None,
        deferred: DeferredToolResults | None,
    ) -> None:
        """Run from `messages` (the history, possibly with open calls closed) to the end of the turn."""
        turn_state = self._loaded.internal.turn or TurnState()
        limits = UsageLimits(request_limit=self._workers.config.max_model_requests_per_turn)
        async with self._agent.iter(
            prompt,
            message_history=messages,
            deferred_tool_results=deferred,
            usage_limits=limits,
            instructions=self._instructions(turn_state.instructions),
            toolsets=self._toolsets(),
        ) as run:
            node = run.next_node
            while not Agent.is_end_node(node):
                if isinstance(node, ModelRequestNode):
                    node = await self._model_request(run, node)
                else:
                    node = await run.next(node)
            result = run.result
        assert result is not None
        if isinstance(result.output, DeferredToolRequests):
            await self._park(result.output, result.all_messages())
        else:
            await self._finish(result.all_messages())

    async def _model_request(self, run: AgentRun[None, Any], node: ModelRequestNode[None, Any]) -> Any:
        start_id = out.event_id()
        message_id = out.event_id()

        def before(loaded: LoadedSession) -> dict[str, Any]:
            internal = loaded.internal.model_copy(deep=True)
            internal.turn = (internal.turn or TurnState()).model_copy(
                update={"open_span": start_id, "prompt_sent": True}
            )
            return {
                "internal": internal,
                "events": [out.span_start(start_id)],
                "checkpoint": self._history.write([*run.all_messages(), node.request]),
            }

        await self._workers.apply(self.session_id, before)
        bus = self._workers.core.bus
        started = False
        async with node.stream(run.ctx) as stream:
            async for event in stream:
                text = None
                if isinstance(event, PartStartEvent) and isinstance(event.part, TextPart):
                    text = event.part.content
                elif isinstance(event, PartDeltaEvent) and isinstance(event.delta, TextPartDelta):
                    text = event.delta.content_delta
                if text is None:
                    continue
                if not started:
                    bus.preview(self.session_id, "event_start", out.preview_start(message_id))
                    started = True
                if text:
                    bus.preview(self.session_id, "event_delta", out.preview_delta(message_id, text))
        next_node = await run.next(node)
        assert isinstance(next_node, CallToolsNode)
        response = next_node.model_response
        await self._record_response(run, response, start_id, message_id)
        return next_node

    async def _record_response(
        self, run: AgentRun[None, Any], response: ModelResponse, start_id: str, message_id: str
    ) -> None:
        events: list[wire.SessionEvent] = []
        tool_events: dict[str, str] = {}
        if any(isinstance(p, ThinkingPart) for p in response.parts):
            events.append(out.thinking())
        text = "".join(p.content for p in response.parts if isinstance(p, TextPart))
        if text:
            events.append(out.agent_message(message_id, text))
        for call in response.parts:
            if not isinstance(call, ToolCallPart):
                continue
            args = _args(call)
            if call.tool_name in self._custom:
                event: Any = out.custom_tool_use(call.tool_name, args)
            elif call.tool_name in self._policies:
                policy = self._policies[call.tool_name]
                event = out.tool_use(call.tool_name, args, policy.permission, policy.evaluation)
            else:  # unknown or disabled: pydantic-ai answers the model with an error; the client sees a denial
                event = out.tool_use(call.tool_name, args, "deny", None)
            tool_events[call.tool_call_id] = event.id
            events.append(event)
        tokens = usage_of(response)
        events.append(out.span_end(start_id, tokens))
        messages = run.all_messages()

        def after(loaded: LoadedSession) -> dict[str, Any]:
            internal = loaded.internal.model_copy(deep=True)
            turn = internal.turn or TurnState()
            internal.turn = turn.model_copy(
                update={"open_span": None, "tool_events": {**turn.tool_events, **tool_events}, "attempts": 0}
            )
            return {
                "session": add_usage(loaded.session, tokens),
                "internal": internal,
                "events": events,
                "checkpoint": self._history.write(messages),
            }

        await self._workers.apply(self.session_id, after)

    # built-in tools ------------------------------------------------------------------------------------
    async def run_builtin(self, policy: ToolPolicy, tool_call_id: str, tool_input: dict[str, Any]) -> ToolOutput:
        loaded = await self._workers.core.load_session(None, self.session_id)
        turn = loaded.internal.turn or TurnState()
        entry = turn.ledger.get(tool_call_id)
        if entry is not None and entry.done:
            return ToolOutput(entry.text, entry.is_error)  # recorded before a crash: never run twice
        event_id = turn.tool_events.get(tool_call_id, tool_call_id)
        if entry is not None:  # started, never finished: the process died while it ran
            output = ToolOutput(INTERRUPTED_BY_RESTART, is_error=True)
        else:
            await self._record_ledger(tool_call_id, LedgerEntry(done=False))
            ctx = ToolContext(
                workspace=loaded.row.workspace,
                session_id=self.session_id,
                environment_id=loaded.row.environment_id,
                tool_use_id=event_id,
            )
            try:
                output = await policy.tool.run(ctx, tool_input)
            except Exception as exc:  # a tool that raises gives the model an error result; the session goes on
                output = ToolOutput(f"{type(exc).__name__}: {exc}", is_error=True)
        await self._record_ledger(
            tool_call_id,
            LedgerEntry(done=True, text=output.text, is_error=output.is_error),
            out.tool_result(event_id, output.text, is_error=output.is_error),
        )
        return output

    async def _record_ledger(self, tool_call_id: str, entry: LedgerEntry, event: Any = None) -> None:
        def change(loaded: LoadedSession) -> dict[str, Any]:
            internal = loaded.internal.model_copy(deep=True)
            turn = internal.turn or TurnState()
            internal.turn = turn.model_copy(update={"ledger": {**turn.ledger, tool_call_id: entry}})
            return {"internal": internal, "events": [event] if event is not None else []}

        await self._workers.apply(self.session_id, change)

    # ends of a turn ------------------------------------------------------------------------------------
    async def _finish(self, messages: list[ModelMessage]) -> None:
        def change(loaded: LoadedSession) -> dict[str, Any]:
            internal = loaded.internal.model_copy(update={"turn": None})
            return {
                "session": loaded.session.model_copy(update={"status": "idle", "updated_at": wire.utcnow()}),
                "internal": internal,
                "events": [out.idle({"type": "end_turn"})],
                "checkpoint": self._history.write(messages),
            }

        await self._workers.apply(self.session_id, change)

    async def _park(self, requests: DeferredToolRequests, messages: list[ModelMessage]) -> None:
        """Deferred calls (custom tools, ask-gated tools): persist them and idle with requires_action."""

        def change(loaded: LoadedSession) -> dict[str, Any]:
            turn = loaded.internal.turn or TurnState()
            pending: dict[str, PendingAction] = {}
            for kind, calls in (("custom", requests.calls), ("confirmation", requests.approvals)):
                for call in calls:
                    event_id = turn.tool_events.get(call.tool_call_id, call.tool_call_id)
                    pending[event_id] = PendingAction(
                        kind=kind,
                        tool_use_id=call.tool_call_id,
                        name=call.tool_name,
                        input_hash=input_hash(_args(call)),
                    )
            internal: SessionInternal = loaded.internal.model_copy(update={"turn": None, "pending": pending})
            # the ids in the order the calls were announced
            order = {event_id: i for i, event_id in enumerate(turn.tool_events.values())}
            ids = sorted(pending, key=lambda e: order.get(e, len(order)))
            return {
                "session": loaded.session.model_copy(update={"status": "idle", "updated_at": wire.utcnow()}),
                "internal": internal,
                "events": [out.idle({"type": "requires_action", "event_ids": ids})],
                "checkpoint": self._history.write(messages),
            }

        await self._workers.apply(self.session_id, change)
