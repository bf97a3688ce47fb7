"""Property tests: whatever the server writes, it reads back as the same value (parse(dump(x)) == x)."""

from __future__ import annotations

import json
from datetime import UTC
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from loophost.wire import (
    AGENT_TOOL_NAMES,
    KNOWN_EVENT_TYPES,
    Agent,
    ModelConfig,
    ToolParams,
    UnknownEvent,
    dump_json,
    parse_event,
    resolve_tools,
)

_TOOL_PARAMS: TypeAdapter[list[ToolParams]] = TypeAdapter(list[ToolParams])

timestamps = st.datetimes(timezones=st.just(UTC))
short_text = st.text(max_size=12)
names = st.from_regex(r"[A-Za-z0-9_-]{1,16}", fullmatch=True)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | short_text
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(short_text, inner, max_size=3),
    max_leaves=10,
)
policies = st.sampled_from([{"type": "always_allow"}, {"type": "always_ask"}, {"type": "auto"}])
maybe_policy = st.none() | policies
maybe_bool = st.none() | st.booleans()


@st.composite
def tool_params(draw: st.DrawFn, servers: list[str]) -> list[dict[str, Any]]:
    tools: list[dict[str, Any]] = []
    if draw(st.booleans()):
        tool_names = draw(st.lists(st.sampled_from(AGENT_TOOL_NAMES), unique=True, max_size=4))
        configs: list[dict[str, Any]] = [
            {"name": n, "enabled": draw(maybe_bool), "permission_policy": draw(maybe_policy)} for n in tool_names
        ]
        default = {"enabled": draw(maybe_bool), "permission_policy": draw(maybe_policy)}
        tools.append({"type": "agent_toolset_20260401", "default_config": default, "configs": configs})
    for server in servers:
        mcp_names = draw(st.lists(names, unique=True, max_size=3))
        mcp_configs = [
            {"name": n, "enabled": draw(maybe_bool), "permission_policy": draw(maybe_policy)} for n in mcp_names
        ]
        tools.append({"type": "mcp_toolset", "mcp_server_name": server, "configs": mcp_configs})
    for custom in draw(st.lists(names, unique=True, max_size=2)):
        properties = draw(st.dictionaries(names, st.just({"type": "string"}), max_size=3))
        schema = {"type": "object", "properties": properties, "required": sorted(properties)[:1]}
        tools.append({"type": "custom", "name": custom, "description": draw(short_text), "input_schema": schema})
    return tools


@st.composite
def agents(draw: st.DrawFn) -> Agent:
    servers = draw(st.lists(names, unique=True, max_size=2))
    tools = resolve_tools(_TOOL_PARAMS.validate_python(draw(tool_params(servers))))
    model = ModelConfig.model_validate(
        {
            "id": draw(names),
            "effort": draw(st.none() | st.sampled_from(["low", "medium", "high", "xhigh", "max"]).map(_typed)),
            "speed": draw(st.none() | st.sampled_from(["standard", "fast"])),
            "inference_geo": draw(st.none() | short_text),
        }
    )
    return Agent(
        id="agent_" + draw(names),
        name=draw(st.text(min_size=1, max_size=20)),
        description=draw(st.none() | short_text),
        system=draw(st.none() | st.text(max_size=40)),
        model=model,
        tools=tools,
        mcp_servers=[{"type": "url", "name": s, "url": f"https://{s}.example"} for s in servers],
        skills=[{"type": "anthropic", "skill_id": s, "version": "1"} for s in draw(st.lists(names, max_size=2))],
        metadata=draw(st.dictionaries(names, short_text, max_size=4)),
        version=draw(st.integers(min_value=1, max_value=10_000)),
        created_at=draw(timestamps),
        updated_at=draw(timestamps),
        archived_at=draw(st.none() | timestamps),
    )


def _typed(level: str) -> dict[str, str]:
    return {"type": level}


@settings(max_examples=75, deadline=None)
@given(agents())
def test_agents_survive_a_dump_and_parse(agent: Agent) -> None:
    raw = dump_json(agent)
    parsed = Agent.model_validate_json(raw)
    assert parsed == agent
    assert dump_json(parsed) == raw


text_blocks = st.builds(lambda t: {"type": "text", "text": t}, short_text)


@st.composite
def known_events(draw: st.DrawFn) -> dict[str, Any]:
    base = {"id": "sevt_" + draw(names), "processed_at": draw(timestamps).isoformat()}
    kind = draw(
        st.sampled_from(
            [
                "user.message",
                "agent.message",
                "agent.tool_use",
                "session.status_idle",
                "span.model_request_end",
            ]
        )
    )
    if kind == "user.message":
        return {**base, "type": kind, "content": draw(st.lists(text_blocks, min_size=1, max_size=3))}
    if kind == "agent.message":
        return {**base, "type": kind, "content": draw(st.lists(text_blocks | st.just({"type": "redacted"})))}
    if kind == "agent.tool_use":
        return {
            **base,
            "type": kind,
            "name": draw(st.sampled_from(AGENT_TOOL_NAMES)),
            "input": draw(st.dictionaries(short_text, json_values, max_size=4)),
            "evaluated_permission": draw(st.sampled_from(["allow", "ask", "deny"])),
        }
    if kind == "session.status_idle":
        reason = draw(
            st.sampled_from([{"type": "end_turn"}, {"type": "retries_exhausted"}, {"type": "budget_reached"}])
            | st.builds(lambda ids: {"type": "requires_action", "event_ids": ids}, st.lists(names, max_size=3))
        )
        return {**base, "type": kind, "stop_reason": reason}
    counters = st.integers(min_value=0, max_value=10**9)
    usage = {
        "input_tokens": draw(counters),
        "output_tokens": draw(counters),
        "cache_read_input_tokens": draw(counters),
        "cache_creation_input_tokens": draw(counters),
    }
    return {**base, "type": kind, "model_request_start_id": "sevt_" + draw(names), "model_usage": usage}


@settings(max_examples=150, deadline=None)
@given(known_events())
def test_known_events_survive_a_dump_and_parse(doc: dict[str, Any]) -> None:
    event = parse_event(doc)
    assert event.type == doc["type"]
    assert not isinstance(event, UnknownEvent)
    raw = dump_json(event)
    assert parse_event(raw) == event
    assert parse_event(json.loads(raw)) == event


unknown_types = st.from_regex(r"[a-z_]{1,10}\.[a-z_]{1,12}", fullmatch=True).filter(
    lambda t: t not in KNOWN_EVENT_TYPES
)


@settings(max_examples=150, deadline=None)
@given(
    kind=unknown_types,
    event_id=names,
    extras=st.dictionaries(short_text.filter(lambda k: k not in {"id", "type"}), json_values, max_size=5),
)
def test_unknown_events_are_preserved_exactly(kind: str, event_id: str, extras: dict[str, Any]) -> None:
    doc = {"id": event_id, "type": kind, **extras}
    raw = json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()
    event = parse_event(raw)
    assert isinstance(event, UnknownEvent)
    assert event.id == event_id
    assert json.loads(dump_json(event)) == doc
    assert parse_event(dump_json(event)) == event
