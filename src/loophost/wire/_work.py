"""The work queue of self-hosted environments (spec part 2 §1; SDK `types/beta/environments/*`) and environment keys.

Timestamps here are plain RFC 3339 strings, as the SDK types them: a heartbeat's `last_heartbeat` must come back
byte for byte (`expected_last_heartbeat`), so the server hands out the string it stored and never reformats it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from ._base import ParamsModel, WireModel
from ._metadata import check_metadata

WorkState = Literal["queued", "starting", "active", "stopping", "stopped"]
NO_HEARTBEAT = "NO_HEARTBEAT"
"""The `expected_last_heartbeat` of a worker's first heartbeat: it claims a lease nobody has beaten yet."""


class WorkData(WireModel):
    """What the item is about: a session to serve (or a `healthcheck` probe, which has no session)."""

    type: Literal["session", "healthcheck"] = "session"
    id: str


class Work(WireModel):
    """`BetaSelfHostedWork`. `secret` is filled only in a poll's answer (null on every other read)."""

    type: Literal["work"] = "work"
    id: str
    environment_id: str
    data: WorkData
    metadata: dict[str, str] = Field(default_factory=dict)
    state: WorkState
    secret: str | None = None
    created_at: str
    acknowledged_at: str | None = None
    started_at: str | None = None
    latest_heartbeat_at: str | None = None
    stop_requested_at: str | None = None
    stopped_at: str | None = None


class WorkHeartbeat(WireModel):
    """`BetaSelfHostedWorkHeartbeatResponse`: `last_heartbeat` is what the next beat echoes ("" if none)."""

    type: Literal["work_heartbeat"] = "work_heartbeat"
    last_heartbeat: str
    lease_extended: bool
    state: WorkState
    ttl_seconds: int


class WorkLeaseState(WireModel):
    """The lease as the server holds it, in a 412's `error.details.current_state`."""

    state: WorkState
    last_heartbeat: str | None
    lease_extended: bool = False
    ttl_seconds: int


class WorkQueueStats(WireModel):
    type: Literal["work_queue_stats"] = "work_queue_stats"
    depth: int
    pending: int
    oldest_queued_at: str | None = None
    workers_polling: int | None = None


class WorkStopParams(ParamsModel):
    """`{}` asks the worker to stop at its next heartbeat (`stopping`); `force` stops the item now."""

    force: bool = False


class WorkUpdateParams(ParamsModel):
    """`metadata` is merged key-wise: a string upserts, null deletes."""

    metadata: dict[str, str | None]

    @field_validator("metadata")
    @classmethod
    def _limits(cls, value: dict[str, str | None]) -> dict[str, str | None]:
        check_metadata(value)
        return value


class EnvironmentKey(WireModel):
    """An environment key as listed: never its secret."""

    type: Literal["environment_key"] = "environment_key"
    id: str
    environment_id: str
    created_at: str


class EnvironmentKeyCreated(EnvironmentKey):
    """The answer to creating a key: the only time its secret `key` is shown."""

    key: str
