from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from loophost.wire import (
    Agent,
    AgentReferenceParams,
    AgentWithOverridesParams,
    Budget,
    BudgetReachedStopReason,
    Effort,
    EndTurnStopReason,
    FileResource,
    GitHubRepositoryResource,
    GitHubRepositoryResourceParams,
    InlineThreadAgent,
    MemoryStoreResource,
    ModelConfig,
    RefusalStopReason,
    RequiresActionStopReason,
    RetriesExhaustedStopReason,
    Session,
    SessionAgent,
    SessionAgentUpdateParams,
    SessionCreateParams,
    SessionThread,
    SessionThreadAgent,
    SessionUpdateParams,
    SessionUsage,
    StopReason,
    UserDefineOutcomeParams,
    UserMessageParams,
    apply_agent_overrides,
    apply_session_agent_update,
)

from ._docs import AGENT_DOC, SNAPSHOT_DOC, USAGE_DOC
from ._helpers import T0, T1, as_json, roundtrip

SESSION_DOC: dict[str, Any] = {
    "id": "sesn_011",
    "type": "session",
    "status": "idle",
    "title": "Quarterly report",
    "metadata": {"ticket": "T-1"},
    "environment_id": "env_011",
    "agent": SNAPSHOT_DOC,
    "resources": [
        {
            "type": "file",
            "id": "sres_1",
            "file_id": "file_1",
            "mount_path": "/mnt/session/uploads/file_1",
            "created_at": T0,
            "updated_at": T0,
        },
        {
            "type": "github_repository",
            "id": "sres_2",
            "url": "https://github.com/o/r",
            "mount_path": "/workspace/r",
            "checkout": {"type": "branch", "name": "main"},
            "created_at": T0,
            "updated_at": T0,
        },
        {
            "type": "memory_store",
            "id": None,
            "memory_store_id": "memstore_1",
            "access": "read_only",
            "name": "prefs",
            "description": "",
            "instructions": None,
            "mount_path": "/mnt/memory/prefs",
        },
    ],
    "vault_ids": ["vlt_1"],
    "usage": USAGE_DOC,
    "stats": {"active_seconds": 12.5, "duration_seconds": 60.0},
    "outcome_evaluations": [
        {
            "type": "outcome_evaluation",
            "outcome_id": "outc_1",
            "description": "A report",
            "iteration": 1,
            "result": "satisfied",
            "explanation": "All criteria met",
            "completed_at": T1,
        }
    ],
    "budget": {"type": "limit", "max_list_cost": {"amount": "2500", "currency": "USD"}},
    "deployment_id": None,
    "created_at": T0,
    "updated_at": T1,
    "archived_at": None,
}


def _message(text: str = "hi") -> dict[str, Any]:
    return {"type": "user.message", "content": [{"type": "text", "text": text}]}


def test_session_round_trips() -> None:
    session = roundtrip(Session, SESSION_DOC)
    assert isinstance(session, Session)
    assert [type(r) for r in session.resources] == [
        FileResource,
        GitHubRepositoryResource,
        MemoryStoreResource,
    ]
    assert session.usage.list_cost is not None
    assert session.usage.list_cost.amount == "37"


def test_new_session_defaults_match_checklist_item_19() -> None:
    snapshot = SessionAgent.from_agent(Agent.model_validate(AGENT_DOC))
    session = Session(id="sesn_1", environment_id="env_1", agent=snapshot, created_at=T0, updated_at=T0)
    body = as_json(session)
    assert body["status"] == "idle"
    assert body["resources"] == []
    assert body["vault_ids"] == []
    assert body["usage"]["input_tokens"] == 0
    assert body["usage"]["output_tokens"] == 0
    assert body["agent"] == SNAPSHOT_DOC
    assert body["budget"] is None
    assert body["archived_at"] is None


def test_github_token_is_never_carried() -> None:
    doc = {**SESSION_DOC["resources"][1], "authorization_token": "ghp_secret"}
    resource = GitHubRepositoryResource.model_validate(doc)
    assert "ghp_secret" not in str(as_json(resource))
    params = GitHubRepositoryResourceParams(url="https://github.com/o/r", authorization_token="ghp_secret")
    assert "ghp_secret" not in repr(params)
    assert params.authorization_token == "ghp_secret"


def test_usage_counters_default_to_zero_and_null_reads_as_zero() -> None:
    usage = SessionUsage.model_validate({"input_tokens": None, "cache_creation": None})
    assert usage.input_tokens == 0
    assert usage.cache_creation.ephemeral_5m_input_tokens == 0
    assert as_json(SessionUsage()) == {
        "input_tokens": 0,
        "output_tokens": 0,
        "cache_read_input_tokens": 0,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
        "active_seconds": None,
        "list_cost": None,
        "server_tool_use": None,
    }


@pytest.mark.parametrize(
    ("doc", "cls"),
    [
        ({"type": "end_turn"}, EndTurnStopReason),
        ({"type": "requires_action", "event_ids": ["sevt_1", "sevt_2"]}, RequiresActionStopReason),
        ({"type": "retries_exhausted"}, RetriesExhaustedStopReason),
        ({"type": "budget_reached"}, BudgetReachedStopReason),
        ({"type": "refusal"}, RefusalStopReason),
    ],
)
def test_stop_reasons_are_discriminated(doc: dict[str, Any], cls: type) -> None:
    reason = TypeAdapter(StopReason).validate_python(doc)
    assert type(reason) is cls
    assert as_json(reason) == doc


# --- create -----------------------------------------------------------------------------------------------


def test_agent_given_as_id_string_pins_latest() -> None:
    params = SessionCreateParams.model_validate({"agent": "agent_1", "environment_id": "env_1"})
    assert params.agent == AgentReferenceParams(id="agent_1")
    assert params.agent.version is None


def test_agent_given_as_versioned_reference() -> None:
    params = SessionCreateParams.model_validate(
        {"agent": {"type": "agent", "id": "agent_1", "version": 1}, "environment_id": "env_1"}
    )
    assert params.agent == AgentReferenceParams(id="agent_1", version=1)


def test_agent_with_overrides_applies_session_locally() -> None:
    params = SessionCreateParams.model_validate(
        {
            "agent": {
                "type": "agent_with_overrides",
                "id": "agent_011",
                "system": "S",
                "model": {"id": "claude-sonnet-4-6", "effort": "low", "inference_geo": "us"},
                "skills": [],
            },
            "environment_id": "env_1",
        }
    )
    overrides = params.agent
    assert isinstance(overrides, AgentWithOverridesParams)
    agent = Agent.model_validate(AGENT_DOC)
    snapshot = apply_agent_overrides(SessionAgent.from_agent(agent), overrides)
    assert snapshot.system == "S"
    assert snapshot.model == ModelConfig(id="claude-sonnet-4-6", effort=Effort(type="high"), inference_geo="us")
    assert snapshot.skills == []
    assert snapshot.tools == agent.tools  # not overridden
    assert agent.system == "You are careful."  # the stored agent is untouched
    cleared = apply_agent_overrides(snapshot, AgentWithOverridesParams(id="agent_011", system=None))
    assert cleared.system is None


def test_initial_events_only_messages_and_outcomes_at_most_50() -> None:
    outcome = {"type": "user.define_outcome", "description": "d", "rubric": {"type": "text", "content": "r"}}
    params = SessionCreateParams.model_validate(
        {"agent": "a", "environment_id": "e", "initial_events": [_message(), outcome]}
    )
    assert [type(e) for e in params.initial_events or []] == [UserMessageParams, UserDefineOutcomeParams]
    assert (
        len(
            SessionCreateParams.model_validate(
                {"agent": "a", "environment_id": "e", "initial_events": [_message()] * 50}
            ).initial_events
            or []
        )
        == 50
    )
    with pytest.raises(ValidationError):
        SessionCreateParams.model_validate({"agent": "a", "environment_id": "e", "initial_events": [_message()] * 51})
    with pytest.raises(ValidationError):
        SessionCreateParams.model_validate(
            {"agent": "a", "environment_id": "e", "initial_events": [{"type": "user.interrupt"}]}
        )


@pytest.mark.parametrize(
    "body",
    [
        {"environment_id": "e"},
        {"agent": "a"},
        {"agent": "", "environment_id": "e"},
        {"agent": {"type": "deployment", "id": "d"}, "environment_id": "e"},
        {"agent": {"type": "agent", "id": "a", "version": 0}, "environment_id": "e"},
        {"agent": "a", "environment_id": "e", "resources": [{"type": "s3_bucket"}]},
        {"agent": "a", "environment_id": "e", "metadata": {f"k{i}": "v" for i in range(17)}},
        {
            "agent": "a",
            "environment_id": "e",
            "budget": {"type": "limit", "max_list_cost": {"amount": "2.5"}},
        },
    ],
)
def test_invalid_create_bodies_are_rejected(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        SessionCreateParams.model_validate(body)


def test_resources_and_budget_parse() -> None:
    params = SessionCreateParams.model_validate(
        {
            "agent": "a",
            "environment_id": "e",
            "resources": [
                {"type": "file", "file_id": "file_1"},
                {
                    "type": "github_repository",
                    "url": "https://github.com/o/r",
                    "checkout": {"type": "commit", "sha": "abc"},
                },
                {"type": "memory_store", "memory_store_id": "memstore_1", "access": "read_write"},
            ],
            "budget": {"type": "limit", "max_list_cost": {"amount": "2500", "currency": "USD"}},
            "vault_ids": ["vlt_1"],
        }
    )
    assert [r.type for r in params.resources or []] == ["file", "github_repository", "memory_store"]
    assert params.budget == Budget.model_validate({"max_list_cost": {"amount": "2500"}})


# --- update -----------------------------------------------------------------------------------------------


def test_update_distinguishes_omitted_from_null() -> None:
    omitted = SessionUpdateParams.model_validate({"title": "t"})
    removed = SessionUpdateParams.model_validate({"budget": None, "metadata": {"x": None}})
    assert "budget" not in omitted.model_fields_set
    assert "budget" in removed.model_fields_set
    assert removed.budget is None
    assert removed.metadata == {"x": None}


def test_update_keeps_vault_ids_so_the_runtime_can_reject_them() -> None:
    params = SessionUpdateParams.model_validate({"vault_ids": ["vlt_1"]})
    assert params.vault_ids == ["vlt_1"]
    with pytest.raises(ValidationError):
        SessionUpdateParams.model_validate({"agent": {"system": "no"}})


def test_session_agent_update_replaces_tools_only() -> None:
    snapshot = SessionAgent.model_validate(SNAPSHOT_DOC)
    params = SessionAgentUpdateParams.model_validate(
        {
            "tools": [{"type": "agent_toolset_20260401", "default_config": {"enabled": False}}],
            "mcp_servers": [],
        }
    )
    updated = apply_session_agent_update(snapshot, params)
    assert len(updated.tools) == 1
    assert updated.mcp_servers == []
    assert updated.system == snapshot.system
    assert updated.model == snapshot.model
    with pytest.raises(ValueError, match="not referenced"):
        apply_session_agent_update(snapshot, SessionAgentUpdateParams(tools=[]))


# --- threads ----------------------------------------------------------------------------------------------


def test_primary_thread_round_trips() -> None:
    doc = {
        "type": "session_thread",
        "id": "sthr_1",
        "session_id": "sesn_011",
        "agent": SNAPSHOT_DOC,
        "parent_thread_id": None,
        "status": "running",
        "created_at": T0,
        "updated_at": T1,
        "archived_at": None,
        "stats": {"active_seconds": 1.0, "duration_seconds": 2.0, "startup_seconds": 0.5},
        "usage": USAGE_DOC,
        "workflow_run_id": None,
    }
    thread = roundtrip(SessionThread, doc)
    assert isinstance(thread, SessionThread)
    assert isinstance(thread.agent, SessionThreadAgent)


def test_thread_agent_may_be_an_advisor_or_inline() -> None:
    advisor = SessionThread.model_validate(
        {
            "id": "sthr_2",
            "session_id": "s",
            "agent": {"type": "advisor", "model": "claude-opus-4-8"},
            "parent_thread_id": "sthr_1",
            "status": "idle",
            "created_at": T0,
            "updated_at": T0,
        }
    )
    assert advisor.agent.type == "advisor"
    inline = SessionThread.model_validate(
        {
            "id": "sthr_3",
            "session_id": "s",
            "agent": {"type": "inline", "name": "helper", "model": {"id": "m"}},
            "status": "terminated",
            "created_at": T0,
            "updated_at": T0,
        }
    )
    assert isinstance(inline.agent, InlineThreadAgent)
    assert as_json(inline)["agent"]["execution_identity"] == {"type": "service_account"}
