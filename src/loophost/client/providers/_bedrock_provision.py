"""Harness provisioning for `BedrockAgentCore`: CreateHarness, wait until READY, roll back on failure; DeleteHarness.

A harness takes tens of seconds to become READY (it is backed by a managed AgentCore Runtime), so the whole
provision runs under one deadline, and a harness this call created is deleted again if anything fails, so a failed
provision leaves nothing billable behind. Names are content-addressed (spec name + digest), which makes a name
conflict mean "the same spec was provisioned before": a READY or CREATING harness of that name is adopted.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from .._errors import ProvisionError
from .._specs import AgentHandle, AgentSpec
from . import _bedrock_wire as wire
from ._bedrock_wire import AgentCoreError, ConflictError, ResourceNotFoundError

__all__ = ("ControlPlane", "ProvisionOptions", "create_body", "delete_harness", "harness_name", "provision_harness")

ROLLBACK_BUDGET = 30.0
_NAME = re.compile(r"[a-zA-Z][a-zA-Z0-9_]{0,39}")
_WAITING = frozenset({"CREATING", "UPDATING"})
_FIELDS = (
    ("max_iterations", "maxIterations"),
    ("max_tokens", "maxTokens"),
    ("timeout_seconds", "timeoutSeconds"),
    ("environment_variables", "environmentVariables"),
    ("allowed_tools", "allowedTools"),
    ("skills", "skills"),
    ("memory", "memory"),
    ("truncation", "truncation"),
    ("tags", "tags"),
    ("authorizer_configuration", "authorizerConfiguration"),
    ("environment_artifact", "environmentArtifact"),
)


class ControlPlane(Protocol):
    """Signed JSON calls to `bedrock-agentcore-control` (retries on throttling, 5xx and transport included)."""

    async def call(
        self, method: str, path: str, *, body: Mapping[str, Any] | None = None, query: Mapping[str, str] | None = None
    ) -> Any: ...


@dataclass(frozen=True, slots=True)
class ProvisionOptions:
    """`AgentSpec.options` for AgentCore: `execution_role_arn` (required), `timeout` (seconds for the whole
    provision, default 365), `poll_interval` (default 5 s, or timeout/12 when only a timeout is given), and the
    CreateHarness fields in snake case (`max_iterations`, `timeout_seconds`, `environment_variables`, `tags`...)."""

    execution_role_arn: str
    timeout: float
    poll_interval: float

    @classmethod
    def from_spec(cls, spec: AgentSpec) -> ProvisionOptions:
        options = spec.options
        role = options.get("execution_role_arn")
        if not isinstance(role, str) or not role.strip():
            raise ValueError("AgentSpec.options['execution_role_arn'] is required: the IAM role the harness runs as")
        timeout = options.get("timeout", 365.0)
        default_poll = 5.0 if "timeout" not in options else max(0.05, float(timeout) / 12)
        poll = options.get("poll_interval", default_poll)
        if not isinstance(timeout, int | float) or timeout <= 0 or not isinstance(poll, int | float) or poll < 0:
            raise ValueError("AgentSpec.options: timeout must be > 0 and poll_interval >= 0 (seconds)")
        return cls(role.strip(), float(timeout), float(poll))


def harness_name(spec: AgentSpec) -> str:
    """`[a-zA-Z][a-zA-Z0-9_]{0,39}` from the spec name (sanitized, cut) and the first 8 chars of its digest."""
    base = re.sub(r"[^a-zA-Z0-9_]+", "_", spec.name).strip("_") or "agent"
    if not base[0].isalpha():
        base = "a_" + base
    name = f"{base[:31]}_{spec.digest()[:8]}"
    assert _NAME.fullmatch(name), name
    return name


def create_body(spec: AgentSpec, name: str, options: ProvisionOptions) -> dict[str, Any]:
    """The CreateHarness request: local tools become inline functions, `host_tools` go verbatim.

    `spec.environment.config` is sent as the harness `environment` union (e.g. `agentCoreRuntimeEnvironment`);
    a Claude-style config (with a `type` key, the `EnvironmentSpec` default) has no AgentCore meaning and is skipped.
    """
    body: dict[str, Any] = {
        "harnessName": name,
        "executionRoleArn": options.execution_role_arn,
        "clientToken": str(uuid.uuid4()),
        "model": dict(spec.options.get("model_config") or {"bedrockModelConfig": {"modelId": spec.model}}),
    }
    if spec.system:
        body["systemPrompt"] = [{"text": spec.system}]
    tools = [dict(tool) for tool in spec.host_tools] + [wire.inline_tool(tool) for tool in spec.tools]
    if tools:
        body["tools"] = tools
    if spec.environment is not None and "type" not in spec.environment.config:
        body["environment"] = dict(spec.environment.config)
    for key, field in _FIELDS:
        if spec.options.get(key) is not None:
            body[field] = spec.options[key]
    return body


class _Deadline:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.start = time.monotonic()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.start

    @property
    def remaining(self) -> float:
        return self.seconds - self.elapsed


async def provision_harness(control: ControlPlane, spec: AgentSpec, *, region: str) -> AgentHandle:
    """Create (or adopt) the harness for `spec` and return its handle once READY, all within `timeout`.

    On a 409 conflict the same-named harness is looked up: READY/CREATING/UPDATING is adopted (never rolled back),
    DELETING is waited out and the create retried, anything else is a `ProvisionError`. Every failure is raised as
    `ProvisionError` (the AgentCore error as its cause), after deleting a harness this call created.
    """
    options = ProvisionOptions.from_spec(spec)
    name = harness_name(spec)
    deadline = _Deadline(options.timeout)
    created: dict[str, Any] | None = None
    try:
        harness, adopted = await _create_or_adopt(control, spec, name, options, deadline)
        created = None if adopted else harness
        ready = await _wait(control, harness, name, options, deadline, until="READY")
    except ProvisionError:
        await _rollback(control, created)
        raise
    except AgentCoreError as exc:
        await _rollback(control, created)
        raise ProvisionError(f"provisioning harness {name} failed: {exc}") from exc
    except BaseException:
        await _rollback(control, created)
        raise
    return AgentHandle(
        agent_id=str(ready.get("arn") or harness["arn"]),
        name=name,
        digest=spec.digest(),
        extra={"harness_id": str(harness["harnessId"]), "region": region, "adopted": adopted},
    )


async def _create_or_adopt(
    control: ControlPlane, spec: AgentSpec, name: str, options: ProvisionOptions, deadline: _Deadline
) -> tuple[dict[str, Any], bool]:
    while True:
        try:
            answer = await control.call("POST", "/harnesses", body=create_body(spec, name, options))
        except ConflictError:
            existing = await _find(control, name)
            status = existing.get("status") if existing else None
            if existing is not None and (status == "READY" or status in _WAITING):
                return existing, True
            if existing is not None and status != "DELETING":
                raise ProvisionError(f"harness name {name} is taken by a harness in status {status}") from None
            if existing is not None:
                await _wait(control, existing, name, options, deadline, until="GONE")
            elif deadline.remaining <= 0:
                raise ProvisionError(f"harness name {name} conflicts, but no such harness is listed") from None
            else:  # listed later than it conflicts (eventual consistency): try again
                await asyncio.sleep(min(options.poll_interval, deadline.remaining))
            continue
        harness = answer.get("harness") if isinstance(answer, Mapping) else None
        if not isinstance(harness, Mapping) or not harness.get("harnessId") or not harness.get("arn"):
            raise ProvisionError(f"CreateHarness answered without harness.harnessId and harness.arn: {answer!r}")
        return dict(harness), False


async def _find(control: ControlPlane, name: str) -> dict[str, Any] | None:
    """ListHarnesses, all pages, for the one named `name`."""
    token: str | None = None
    while True:
        query = {"maxResults": "100", **({"nextToken": token} if token else {})}
        page = await control.call("GET", "/harnesses", query=query)
        for item in page.get("harnesses", []):
            if item.get("harnessName") == name:
                return dict(item)
        token = page.get("nextToken")
        if not token:
            return None


async def _wait(
    control: ControlPlane,
    harness: Mapping[str, Any],
    name: str,
    options: ProvisionOptions,
    deadline: _Deadline,
    *,
    until: str,
) -> dict[str, Any]:
    """Poll GetHarness until READY (or, with `until="GONE"`, until a DELETING harness has disappeared)."""
    harness_id = str(harness["harnessId"])
    status, polls = harness.get("status"), 0
    while True:
        try:
            answer = await control.call("GET", f"/harnesses/{harness_id}")
        except ResourceNotFoundError:
            if until == "GONE":
                return {}
            raise
        polls += 1
        current = answer.get("harness", {}) if isinstance(answer, Mapping) else {}
        status = current.get("status")
        if until == "READY" and status == "READY":
            return dict(current)
        context = f"harness {name} ({harness_id}): status {status} after {deadline.elapsed:.1f}s and {polls} polls"
        if until == "GONE" and status != "DELETING":
            return dict(current)
        if until == "READY" and status == "DELETING":
            raise ProvisionError(f"{context}: it is being deleted")
        if until == "READY" and str(status).endswith("_FAILED"):
            raise ProvisionError(f"{context}: {current.get('failureReason') or 'no failure reason given'}")
        if until == "READY" and status not in _WAITING:
            raise ProvisionError(f"{context}: unknown status")
        if deadline.remaining <= 0:
            raise ProvisionError(f"{context}: not {until.lower()} within the {deadline.seconds:g}s provision timeout")
        await asyncio.sleep(min(options.poll_interval, deadline.remaining))


async def _rollback(control: ControlPlane, created: Mapping[str, Any] | None) -> None:
    """Delete what this provision created; a failure here must not hide the original error."""
    if created is None:
        return
    try:
        async with asyncio.timeout(ROLLBACK_BUDGET):
            await control.call("DELETE", f"/harnesses/{created['harnessId']}")
    except (Exception, asyncio.CancelledError):
        pass


async def delete_harness(control: ControlPlane, handle: AgentHandle) -> None:
    """DeleteHarness for a provisioned handle; one that is already gone counts as deleted."""
    harness_id = handle.extra.get("harness_id") or wire.arn_harness_id(handle.agent_id)
    try:
        await control.call("DELETE", f"/harnesses/{harness_id}")
    except ResourceNotFoundError:
        return
