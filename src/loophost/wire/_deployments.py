"""Deployments and their runs (part 2 §5.4; SDK `types/beta/beta_managed_agents_deployment*.py`): an agent bound to
an environment, initial events and an optional cron schedule; each fire is a recorded run."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator

from ._base import ParamsModel, Timestamp, WireModel
from ._event_params import InitialEventParams
from ._metadata import check_metadata
from ._resources import SessionResourceParams
from ._sessions import AgentReferenceParams
from ._usage import Budget

MAX_DEPLOYMENT_EVENTS = 50
MAX_DEPLOYMENT_VAULTS = 50
DeploymentStatus = Literal["active", "paused"]


def _id_as_reference(value: Any) -> Any:
    return {"type": "agent", "id": value} if isinstance(value, str) else value


DeploymentAgentParams = Annotated[AgentReferenceParams, BeforeValidator(_id_as_reference)]
"""The agent id (pins its latest version) or `{type:"agent", id, version}`."""


class ScheduleParams(ParamsModel):
    """5-field cron (minute hour day-of-month month day-of-week) in an IANA time zone; checked by the runtime."""

    type: Literal["cron"]
    expression: Annotated[str, Field(min_length=1, max_length=256)]
    timezone: Annotated[str, Field(min_length=1, max_length=64)]


class Schedule(WireModel):
    type: Literal["cron"] = "cron"
    expression: str
    timezone: str
    last_run_at: Timestamp | None = None
    upcoming_runs_at: list[Timestamp] = Field(default_factory=list)


class DeploymentAgent(WireModel):
    type: Literal["agent"] = "agent"
    id: str
    version: int


class DeploymentCreateParams(ParamsModel):
    name: Annotated[str, Field(min_length=1, max_length=256)]
    agent: DeploymentAgentParams
    environment_id: Annotated[str, Field(min_length=1)]
    initial_events: Annotated[list[InitialEventParams], Field(min_length=1, max_length=MAX_DEPLOYMENT_EVENTS)]
    schedule: ScheduleParams | None = None
    budget: Budget | None = None
    resources: list[SessionResourceParams] | None = None
    vault_ids: Annotated[list[str], Field(max_length=MAX_DEPLOYMENT_VAULTS)] | None = None
    description: Annotated[str, Field(max_length=2048)] | None = None
    metadata: dict[str, str] | None = None

    @field_validator("metadata")
    @classmethod
    def _limits(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is not None:
            check_metadata(value)
        return value


class DeploymentUpdateParams(ParamsModel):
    """Omitted fields are kept; `schedule`, `budget`, `resources`, `vault_ids`, `description: null` clear."""

    name: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    agent: DeploymentAgentParams | None = None
    environment_id: Annotated[str, Field(min_length=1)] | None = None
    initial_events: (
        Annotated[list[InitialEventParams], Field(min_length=1, max_length=MAX_DEPLOYMENT_EVENTS)] | None
    ) = None
    schedule: ScheduleParams | None = None
    budget: Budget | None = None
    resources: list[SessionResourceParams] | None = None
    vault_ids: Annotated[list[str], Field(max_length=MAX_DEPLOYMENT_VAULTS)] | None = None
    description: Annotated[str, Field(max_length=2048)] | None = None
    metadata: dict[str, str | None] | None = None


class DeploymentError(WireModel):
    """`{type: "agent_archived_error" | "environment_not_found_error" | …, message}`."""

    type: str
    message: str


class PausedReason(WireModel):
    """`{type:"manual"}`, or `{type:"error", error}` when a scheduled run failed and paused the deployment."""

    type: Literal["manual", "error"]
    error: DeploymentError | None = None


class Deployment(WireModel):
    type: Literal["deployment"] = "deployment"
    id: str
    name: str
    description: str | None = None
    agent: DeploymentAgent
    environment_id: str
    initial_events: list[dict[str, Any]]
    resources: list[dict[str, Any]] = Field(default_factory=list)
    vault_ids: list[str] = Field(default_factory=list)
    budget: Budget | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    schedule: Schedule | None = None
    status: DeploymentStatus = "active"
    paused_reason: PausedReason | None = None
    archived_at: Timestamp | None = None
    created_at: Timestamp
    updated_at: Timestamp


class TriggerContext(WireModel):
    type: Literal["schedule", "manual"]
    scheduled_at: Timestamp | None = None


class DeploymentRun(WireModel):
    type: Literal["deployment_run"] = "deployment_run"
    id: str
    deployment_id: str
    agent: DeploymentAgent
    session_id: str | None = None
    error: DeploymentError | None = None
    trigger_context: TriggerContext
    created_at: Timestamp
