"""Agents as code: `loophost apply -f agents.yaml` and `loophost agents export AGENT_ID`.

The file declares environments and agents by name, each as its create request:

    environments:
      - name: dev
        config: {type: cloud, networking: {type: unrestricted}}
    agents:
      - name: researcher
        model: claude-sonnet-4-6
        system: You research.

`apply` matches each by name (or by an `id:` it carries) among the host's live ones, creates what is missing and
updates what differs: an agent gets a new version only when something changed, and only the changed fields are
sent. Whether something changed is decided on the resolved form of both sides (loophost's wire rules fill every
default, e.g. a toolset's eight tool configs), so a file that leaves defaults out matches the agent it made.
`export` prints an agent in the same form, with what the server filled in left out again, so that
`export | apply -f -` changes nothing. Everything goes through the public API, so it works against a loophost
server and against api.anthropic.com alike.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from .. import wire
from ..client import ClaudeManagedAgents, ClientError

__all__ = ("agent_spec", "apply_file", "dump_yaml", "export_agent", "load_file")

AGENT_FIELDS = (
    "name",
    "description",
    "model",
    "system",
    "tools",
    "mcp_servers",
    "skills",
    "metadata",
    "multiagent",
    "execution_identity",
)
ENVIRONMENT_FIELDS = ("name", "description", "config", "metadata", "scope")


# --- the spec form ----------------------------------------------------------------------------------------------


def prune(value: Any) -> Any:
    """Without nulls, empty lists and empty mappings, recursively: what a spec leaves out, the host defaults."""
    if isinstance(value, list):
        return [prune(v) for v in value]
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            kept = prune(item)
            if kept is None or (isinstance(kept, list | dict) and not kept):
                continue
            out[key] = kept
        return out
    return value


def _compact_tool(tool: dict[str, Any]) -> dict[str, Any]:
    """A toolset without the configs its `default_config` already implies, nor a built-in tool's `type` when it
    is its name (the console's `spec.js` does the same)."""
    default = tool.get("default_config")
    configs = tool.get("configs")
    if not isinstance(default, dict) or not isinstance(configs, list):
        return tool
    kept = []
    for config in configs:
        rest = dict(config)
        if rest.get("type") == rest.get("name"):
            rest.pop("type", None)
        extra = set(rest) - {"name", "enabled", "permission_policy"}
        implied = rest.get("enabled") == default.get("enabled") and (
            rest.get("permission_policy") == default.get("permission_policy")
        )
        if implied and not extra:
            continue
        kept.append(rest)
    out = {k: v for k, v in tool.items() if k != "configs"}
    if kept:
        out["configs"] = kept
    return out


def agent_spec(agent: Mapping[str, Any]) -> dict[str, Any]:
    """An agent (or one version of it) as the create request that makes it."""
    spec: dict[str, Any] = {}
    for name in AGENT_FIELDS:
        value = prune(agent.get(name))
        if name == "tools" and value:
            value = [_compact_tool(t) for t in value]
        if name == "model" and isinstance(value, dict) and set(value) == {"id"}:
            value = value["id"]
        if name == "execution_identity" and isinstance(value, dict) and value.get("type") == "service_account":
            continue
        if value is None or (isinstance(value, list | dict) and not value):
            continue
        spec[name] = value
    return spec


def _agent_canon(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The resolved content a create request stands for, by field (every default filled, then pruned)."""
    params = wire.AgentCreateParams.model_validate({k: v for k, v in spec.items() if k in AGENT_FIELDS})
    resolved = wire.resolve_agent_create(params).model_dump(mode="json")
    if params.multiagent is not None:  # the server resolves rosters against its agents; compare as written
        resolved["multiagent"] = params.multiagent.model_dump(mode="json", exclude_unset=True)
    return {name: prune(resolved.get(name)) for name in AGENT_FIELDS}


def _roster_canon(value: Any, self_ref: tuple[str, int], latest: Mapping[str, int]) -> Any:
    """A `multiagent` value as the server stores it (spec-2 §3.1): an id string or `{type: agent, id}` is
    `{type: agent, id, version}` at the agent's latest live version, `self` (or the agent's own id) is the agent at
    its current version, and omitted members take their defaults. Both sides of a comparison go through this, so a
    file naming its roster by id matches the resolved roster the server returns."""
    if not isinstance(value, Mapping):
        return value
    own_id, own_version = self_ref

    def ref(entry: Any) -> Any:
        if isinstance(entry, str):
            entry = {"type": "agent", "id": entry}
        if not isinstance(entry, Mapping):
            return entry
        if entry.get("type") == "self" or (entry.get("type") == "agent" and entry.get("id") == own_id):
            return {"type": "agent", "id": own_id, "version": own_version}
        if entry.get("type") == "agent":
            version = entry.get("version") or latest.get(str(entry.get("id")))
            return {"type": "agent", "id": entry.get("id"), "version": version}  # (unknown here: None, a change)
        return dict(entry)

    if value.get("type") == "coordinator":
        return {"type": "coordinator", "agents": [ref(e) for e in value.get("agents") or []]}
    if value.get("type") != "multiagent_20261001":
        return dict(value)
    defaults = wire.Multiagent20261001().model_dump(mode="json")  # (the server's: workflows disabled until built)
    out: dict[str, Any] = {"type": value["type"], "advisor": value.get("advisor") or defaults["advisor"]}
    for name in ("subagents", "workflows"):
        member = value.get(name) or defaults[name]
        if member.get("type") == "enabled":
            member = {
                "type": "enabled",
                "inline_agents": member.get("inline_agents") or {"type": "enabled"},
                "predefined_agents": [ref(e) for e in member.get("predefined_agents") or []],
            }
        out[name] = member
    return out


def _environment_canon(spec: Mapping[str, Any]) -> dict[str, Any]:
    params = wire.EnvironmentCreateParams.model_validate({k: v for k, v in spec.items() if k in ENVIRONMENT_FIELDS})
    config = wire.resolve_environment_config(params.config).model_dump(mode="json")
    return {
        "name": params.name,
        "description": params.description or None,
        "config": prune(config),
        "metadata": dict(params.metadata or {}),
        "scope": params.scope,
    }


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings (system prompts) as literal blocks."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _str)


def dump_yaml(document: Any) -> str:
    return yaml.dump(document, Dumper=_BlockDumper, sort_keys=False, allow_unicode=True, default_flow_style=False)


# --- the file ---------------------------------------------------------------------------------------------------


@dataclass
class Declared:
    environments: list[dict[str, Any]] = field(default_factory=list)
    agents: list[dict[str, Any]] = field(default_factory=list)


def _problem(where: str, exc: ValidationError) -> ClientError:
    first = exc.errors()[0]
    at = ".".join(str(p) for p in first["loc"])
    return ClientError(f"{where}: {at + ': ' if at else ''}{first['msg']}")


def load_file(path: Path | str) -> Declared:
    """The declared environments and agents, each checked against the wire's create request (so a typo is an
    error here, before anything is sent). `-` reads standard input."""
    try:
        text = sys.stdin.read() if str(path) == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ClientError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ClientError(f"{path}: not valid YAML: {exc}") from None
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise ClientError(f"{path}: expected a mapping with `agents:` and/or `environments:`")
    unknown = sorted(set(document) - {"agents", "environments"})
    if unknown:
        raise ClientError(f"{path}: unknown top-level key {unknown[0]!r} (expected agents, environments)")
    declared = Declared()
    for kind, fields, canon in (
        ("environments", ENVIRONMENT_FIELDS, _environment_canon),
        ("agents", AGENT_FIELDS, _agent_canon),
    ):
        items = document.get(kind) or []
        if not isinstance(items, list):
            raise ClientError(f"{path}: `{kind}` must be a list")
        names: set[str] = set()
        for index, item in enumerate(items):
            where = f"{path}: {kind}[{index}]"
            if not isinstance(item, dict):
                raise ClientError(f"{where}: expected a mapping")
            extra = sorted(set(item) - set(fields) - {"id"})
            if extra:
                raise ClientError(f"{where}: unknown field {extra[0]!r}")
            try:
                canon(item)
            except ValidationError as exc:
                raise _problem(where, exc) from None
            except ValueError as exc:
                raise ClientError(f"{where}: {exc}") from None
            if item["name"] in names:
                raise ClientError(f"{where}: the name {item['name']!r} is declared twice")
            names.add(item["name"])
            getattr(declared, kind).append(item)
    return declared


# --- apply ------------------------------------------------------------------------------------------------------


async def _list_all(host: ClaudeManagedAgents, path: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    page: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 100}
        if page:
            params["page"] = page
        data = await host.request("GET", path, params=params)
        items.extend(data.get("data") or [])
        page = data.get("next_page")
        if not page:
            return items


def _match(kind: str, spec: Mapping[str, Any], live: list[dict[str, Any]]) -> dict[str, Any] | None:
    if "id" in spec:
        found = [item for item in live if item["id"] == spec["id"]]
        if not found:
            raise ClientError(f"{kind} {spec['name']!r}: no live {kind} has the id {spec['id']}")
        return found[0]
    found = [item for item in live if item.get("name") == spec["name"]]
    if len(found) > 1:
        ids = ", ".join(item["id"] for item in found)
        raise ClientError(
            f"{kind} {spec['name']!r}: several live {kind}s have this name ({ids}); add `id:` to say which"
        )
    return found[0] if found else None


def _metadata_patch(before: Mapping[str, str], after: Mapping[str, str]) -> dict[str, str | None]:
    """The key-wise metadata patch from `before` to `after` (a removed key is sent as null)."""
    patch: dict[str, str | None] = {k: v for k, v in after.items() if before.get(k) != v}
    patch.update({k: None for k in before if k not in after})
    return patch


def _field_diff(name: str, before: Any, after: Any) -> list[str]:
    old = dump_yaml({name: before}).splitlines() if before not in (None, [], {}) else []
    new = dump_yaml({name: after}).splitlines() if after not in (None, [], {}) else []
    return [line for line in difflib.unified_diff(old, new, lineterm="", n=1) if not line.startswith(("---", "+++"))]


@dataclass
class Tally:
    created: int = 0
    updated: int = 0
    unchanged: int = 0


class _Applier:
    def __init__(self, host: ClaudeManagedAgents, console: Console, dry_run: bool) -> None:
        self.host = host
        self.console = console
        self.dry_run = dry_run
        self.tally = Tally()

    def say(self, markup: str) -> None:
        self.console.print(markup, highlight=False)

    def show_diff(self, name: str, before: Any, after: Any) -> None:
        for line in _field_diff(name, before, after):
            style = "green" if line.startswith("+") else "red" if line.startswith("-") else "dim"
            self.say(f"    [{style}]{escape(line)}[/]")

    async def environment(self, spec: Mapping[str, Any], live: list[dict[str, Any]]) -> None:
        name = escape(spec["name"])
        body = {k: v for k, v in spec.items() if k in ENVIRONMENT_FIELDS}
        current = _match("environment", spec, live)
        if current is None:
            self.tally.created += 1
            if self.dry_run:
                self.say(f"[green]+[/] environment {name}: would be created")
                return
            made = await self.host.request("POST", "/v1/environments", body=body)
            self.say(f"[green]+[/] environment {name}: created {made['id']}")
            return
        want = _environment_canon(body)
        have = _environment_canon({k: current.get(k) for k in ENVIRONMENT_FIELDS})
        changed = [f for f in ENVIRONMENT_FIELDS if want[f] != have[f]]
        if not changed:
            self.tally.unchanged += 1
            self.say(f"[dim]= environment {name} ({current['id']}): unchanged[/]")
            return
        self.tally.updated += 1
        verb = "would be updated" if self.dry_run else "updated"
        self.say(f"[yellow]~[/] environment {name} ({current['id']}): {verb} ({', '.join(changed)})")
        for f in changed:
            self.show_diff(f, have[f], want[f])
        if not self.dry_run:
            patch: dict[str, Any] = {f: body.get(f) for f in changed if f != "metadata"}
            if "metadata" in changed:
                patch["metadata"] = _metadata_patch(have["metadata"], want["metadata"])
            await self.host.request("POST", f"/v1/environments/{current['id']}", body=patch)

    async def agent(self, spec: Mapping[str, Any], live: list[dict[str, Any]]) -> None:
        name = escape(spec["name"])
        body = {k: v for k, v in spec.items() if k in AGENT_FIELDS}
        current = _match("agent", spec, live)
        if current is None:
            self.tally.created += 1
            if self.dry_run:
                self.say(f"[green]+[/] agent {name}: would be created")
                return
            made = await self.host.request("POST", "/v1/agents", body=body)
            self.say(f"[green]+[/] agent {name}: created {made['id']} (v{made.get('version', 1)})")
            return
        want = _agent_canon(body)
        have = _agent_canon(agent_spec(current))
        version = int(current.get("version") or 1)
        latest = {str(a["id"]): int(a.get("version") or 1) for a in live}
        for side in (want, have):
            side["multiagent"] = prune(_roster_canon(side["multiagent"], (str(current["id"]), version), latest))
        changed = [f for f in AGENT_FIELDS if want[f] != have[f]]
        if not changed:
            self.tally.unchanged += 1
            self.say(f"[dim]= agent {name} ({current['id']}): unchanged (v{version})[/]")
            return
        self.tally.updated += 1
        if self.dry_run:
            fields = ", ".join(changed)
            self.say(f"[yellow]~[/] agent {name} ({current['id']}): v{version} would become v{version + 1} ({fields})")
        else:
            patch: dict[str, Any] = {f: body.get(f) for f in changed if f != "metadata"}
            if "metadata" in changed:
                patch["metadata"] = _metadata_patch(have["metadata"] or {}, want["metadata"] or {})
            patch["version"] = version  # optimistic lock: someone else's change in between is a 409, not lost
            made = await self.host.request("POST", f"/v1/agents/{current['id']}", body=patch)
            fields = ", ".join(changed)
            self.say(f"[yellow]~[/] agent {name} ({current['id']}): v{version} → v{made.get('version')} ({fields})")
        for f in changed:
            self.show_diff(f, agent_spec({f: have[f]}).get(f), agent_spec({f: want[f]}).get(f))


async def apply_file(host: ClaudeManagedAgents, console: Console, path: Path | str, *, dry_run: bool) -> int:
    declared = load_file(path)
    applier = _Applier(host, console, dry_run)
    if declared.environments:
        live_environments = await _list_all(host, "/v1/environments")
        for spec in declared.environments:
            await applier.environment(spec, live_environments)
    if declared.agents:
        live_agents = await _list_all(host, "/v1/agents")
        for spec in declared.agents:
            await applier.agent(spec, live_agents)
    t = applier.tally
    summary = f"{t.created} created, {t.updated} updated, {t.unchanged} unchanged"
    console.print(f"{summary}{' (dry run: nothing was changed)' if dry_run else ''}", highlight=False)
    return 0


async def export_agent(host: ClaudeManagedAgents, console: Console, agent_id: str, *, version: int | None) -> int:
    params = {"version": version} if version is not None else None
    agent = await host.request("GET", f"/v1/agents/{agent_id}", params=params)
    console.file.write(dump_yaml({"agents": [agent_spec(agent)]}))
    return 0
