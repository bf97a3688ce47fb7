"""Deployments and deployment runs over HTTP through the official SDK (part 2 §5.4)."""

from __future__ import annotations

import anthropic
import pytest

from .test_events_api import uid


def make(client: anthropic.Anthropic, **extra: object) -> tuple[str, str]:
    agent = client.beta.agents.create(name=uid("agent"), model="scripted")
    env = client.beta.environments.create(name=uid("env"))
    return agent.id, env.id


EVENTS = [{"type": "user.message", "content": [{"type": "text", "text": "report"}]}]


def test_a_deployment_is_created_paused_run_and_archived(
    client: anthropic.Anthropic, other_client: anthropic.Anthropic
) -> None:
    agent_id, env_id = make(client)
    created = client.beta.deployments.create(
        name="nightly",
        agent=agent_id,
        environment_id=env_id,
        initial_events=EVENTS,  # type: ignore[arg-type]
        schedule={"type": "cron", "expression": "0 3 * * *", "timezone": "Europe/Paris"},
    )
    assert created.status == "active" and created.agent.id == agent_id and created.agent.version == 1
    assert created.schedule is not None and len(created.schedule.upcoming_runs_at or []) == 5
    assert client.beta.deployments.retrieve(created.id).id == created.id
    with pytest.raises(anthropic.NotFoundError):
        other_client.beta.deployments.retrieve(created.id)

    paused = client.beta.deployments.pause(created.id)
    assert paused.status == "paused" and paused.paused_reason is not None and paused.paused_reason.type == "manual"
    assert created.id in [d.id for d in client.beta.deployments.list(status="paused", agent_id=agent_id)]
    assert client.beta.deployments.unpause(created.id).status == "active"

    run = client.beta.deployments.run(created.id)
    assert run.trigger_context.type == "manual" and run.session_id is not None and run.error is None
    assert client.beta.sessions.retrieve(run.session_id).deployment_id == created.id
    assert [s.id for s in client.beta.sessions.list(deployment_id=created.id)] == [run.session_id]
    assert list(other_client.beta.sessions.list(deployment_id=created.id)) == []
    assert client.beta.deployment_runs.retrieve(run.id).id == run.id
    assert [r.id for r in client.beta.deployment_runs.list(deployment_id=created.id)] == [run.id]
    assert list(client.beta.deployment_runs.list(deployment_id=created.id, has_error=True)) == []

    updated = client.beta.deployments.update(created.id, name="renamed", schedule=None)
    assert updated.name == "renamed" and updated.schedule is None
    archived = client.beta.deployments.archive(created.id)
    assert archived.archived_at is not None
    with pytest.raises(anthropic.ConflictError):
        client.beta.deployments.run(created.id)


def test_bad_deployments_are_a_400(client: anthropic.Anthropic) -> None:
    agent_id, env_id = make(client)
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.beta.deployments.create(
            name="bad",
            agent=agent_id,
            environment_id=env_id,
            initial_events=EVENTS,  # type: ignore[arg-type]
            schedule={"type": "cron", "expression": "0 3 * *", "timezone": "UTC"},
        )
    assert "5-field cron" in str(caught.value)
    with pytest.raises(anthropic.BadRequestError):
        client.beta.deployments.create(name="bad", agent=agent_id, environment_id=env_id, initial_events=[])
    with pytest.raises(anthropic.NotFoundError):
        client.beta.deployments.create(
            name="bad",
            agent="agent_missing",
            environment_id=env_id,
            initial_events=EVENTS,  # type: ignore[arg-type]
        )
