"""What loophost writes must validate against the official SDK's own response models (authority #1)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter

from loophost.wire import (
    Agent,
    CursorPage,
    Deleted,
    Environment,
    EnvironmentCreateParams,
    FileMetadata,
    Session,
    SessionAgent,
    SessionThread,
    parse_event,
    resolve_environment_config,
)

from ._docs import AGENT_DOC
from ._helpers import T0, as_json
from .test_events import EVENTS
from .test_sessions import SESSION_DOC

beta = pytest.importorskip("anthropic.types.beta")
sessions = pytest.importorskip("anthropic.types.beta.sessions")


def _sdk(sdk_type: Any, body: Any) -> Any:
    return TypeAdapter(sdk_type).validate_python(body)


def test_agent_validates_as_sdk_agent() -> None:
    sdk_agent = _sdk(beta.BetaManagedAgentsAgent, as_json(Agent.model_validate(AGENT_DOC)))
    assert sdk_agent.tools[0].default_config.permission_policy.type == "always_allow"
    assert sdk_agent.tools[1].default_config.permission_policy.type == "always_ask"
    assert sdk_agent.model.effort.type == "high"
    assert sdk_agent.execution_identity.type == "service_account"


def test_environment_validates_as_sdk_environment() -> None:
    params = EnvironmentCreateParams(name="e")
    env = Environment(
        id="env_1", name="e", config=resolve_environment_config(params.config), created_at=T0, updated_at=T0
    )
    sdk_env = _sdk(beta.BetaEnvironment, as_json(env))
    assert sdk_env.config.packages.pip == []
    assert sdk_env.created_at == T0


def test_session_and_thread_validate_as_sdk_models() -> None:
    session = Session.model_validate(SESSION_DOC)
    sdk_session = _sdk(beta.BetaManagedAgentsSession, as_json(session))
    assert sdk_session.agent.id == session.agent.id
    assert sdk_session.resources[1].type == "github_repository"
    thread = SessionThread(
        id="sthr_1",
        session_id=session.id,
        agent=SessionAgent.from_agent(Agent.model_validate(AGENT_DOC)),
        created_at=T0,
        updated_at=T0,
    )
    assert _sdk(sessions.BetaManagedAgentsSessionThread, as_json(thread)).parent_thread_id is None


@pytest.mark.parametrize(("doc", "cls"), EVENTS, ids=[f"{d['type']}-{i}" for i, (d, _) in enumerate(EVENTS)])
def test_every_event_validates_as_sdk_event(doc: dict[str, Any], cls: type) -> None:
    sdk_event = _sdk(sessions.BetaManagedAgentsSessionEvent, as_json(parse_event(doc)))
    assert sdk_event.type == doc["type"]
    assert sdk_event.id == doc["id"]


def test_file_metadata_pages_and_deletes_validate_as_sdk_models() -> None:
    meta = FileMetadata(id="file_1", filename="a.txt", mime_type="text/plain", size_bytes=2, created_at=T0)
    page = _sdk(dict[str, Any], as_json(CursorPage[FileMetadata](data=[meta])))
    assert _sdk(beta.BetaFileMetadata, page["data"][0]).size_bytes == 2
    deleted = _sdk(beta.BetaEnvironmentDeleteResponse, as_json(Deleted(id="env_1", type="environment_deleted")))
    assert deleted.type == "environment_deleted"
