"""`loophost apply -f agents.yaml [--dry-run]` and `loophost agents export`, against a real server: create, no-op,
change (a new version only then, with what changed printed), dry runs that change nothing, export → apply
round trips, and files refused before anything is sent."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import anthropic
import pytest
import yaml
from typer.testing import CliRunner

from loophost.cli import app
from tests.server.conftest import KEY_A, ServerProcess, start_server, stop_server

pytestmark = pytest.mark.timeout(90)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_server(tmp_path_factory.mktemp("apply") / "server.db")
    yield proc
    stop_server(proc)


@pytest.fixture
def sdk(server: ServerProcess) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=server.url, api_key=KEY_A, max_retries=0) as client:
        yield client


def loophost(server: ServerProcess, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        app, [*args, "--base-url", server.url, "--api-key", KEY_A], env={"COLUMNS": "200", "NO_COLOR": "1"}
    )
    return result.exit_code, result.output


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def declared(name: str, *, system: str = "You research.\nCite sources.", team: str = "search") -> str:
    block = "".join(f"      {line}\n" for line in system.splitlines())
    return f"""
environments:
  - name: {name}-env
    config: {{type: cloud, networking: {{type: unrestricted}}}}
agents:
  - name: {name}
    model: scripted
    system: |
{block}    tools:
      - type: agent_toolset_20260401
        default_config: {{enabled: false}}
        configs:
          - {{name: bash, enabled: true, permission_policy: {{type: always_ask}}}}
      - type: custom
        name: lookup
        description: Looks a thing up.
        input_schema: {{type: object, properties: {{q: {{type: string}}}}}}
    metadata: {{team: {team}, owner: docs}}
"""


def agent_named(sdk: anthropic.Anthropic, name: str) -> anthropic.types.beta.BetaManagedAgentsAgent:
    return next(a for a in sdk.beta.agents.list() if a.name == name)


def test_create_then_no_op_then_change(server: ServerProcess, sdk: anthropic.Anthropic, tmp_path: Path) -> None:
    name = f"researcher-{uuid.uuid4().hex[:8]}"
    file = write(tmp_path / "agents.yaml", declared(name))
    code, out = loophost(server, "apply", "-f", str(file))
    assert code == 0, out
    assert f"+ environment {name}-env: created env_" in out
    assert f"+ agent {name}: created agent_" in out and "(v1)" in out
    assert "2 created, 0 updated, 0 unchanged" in out
    agent = agent_named(sdk, name)
    assert agent.system == "You research.\nCite sources.\n" and agent.metadata == {"team": "search", "owner": "docs"}
    assert [t.type for t in agent.tools] == ["agent_toolset_20260401", "custom"]

    # the same file again: nothing to do, no new version
    code, out = loophost(server, "apply", "-f", str(file))
    assert code == 0, out
    assert f"= agent {name} ({agent.id}): unchanged (v1)" in out
    assert f"= environment {name}-env" in out and "0 created, 0 updated, 2 unchanged" in out
    assert len(list(sdk.beta.agents.versions.list(agent.id))) == 1

    # a change, first as a dry run: said, not done
    write(file, declared(name, system="You research.\nCite every source.", team="research"))
    code, out = loophost(server, "apply", "-f", str(file), "--dry-run")
    assert code == 0, out
    assert f"~ agent {name} ({agent.id}): v1 would become v2 (system, metadata)" in out
    assert "-  Cite sources." in out and "+  Cite every source." in out
    assert "-  team: search" in out and "+  team: research" in out
    assert "0 created, 1 updated, 1 unchanged (dry run: nothing was changed)" in out
    assert sdk.beta.agents.retrieve(agent.id).version == 1

    code, out = loophost(server, "apply", "-f", str(file))
    assert code == 0, out
    assert f"~ agent {name} ({agent.id}): v1 → v2 (system, metadata)" in out
    after = sdk.beta.agents.retrieve(agent.id)
    assert after.version == 2 and after.system == "You research.\nCite every source.\n"
    assert after.metadata == {"team": "research", "owner": "docs"}
    assert after.tools == agent.tools  # what did not change was not sent, and is as it was

    code, out = loophost(server, "apply", "-f", str(file))
    assert code == 0 and "unchanged (v2)" in out


def test_removing_a_metadata_key_and_a_field_is_a_change(
    server: ServerProcess, sdk: anthropic.Anthropic, tmp_path: Path
) -> None:
    name = f"trimmed-{uuid.uuid4().hex[:8]}"
    file = write(
        tmp_path / "a.yaml",
        f"agents:\n  - {{name: {name}, model: scripted, system: Hi, metadata: {{a: '1', b: '2'}}}}\n",
    )
    assert loophost(server, "apply", "-f", str(file))[0] == 0
    write(file, f"agents:\n  - {{name: {name}, model: scripted, metadata: {{a: '1'}}}}\n")
    code, out = loophost(server, "apply", "-f", str(file))
    assert code == 0 and "v1 → v2 (system, metadata)" in out, out
    agent = agent_named(sdk, name)
    assert agent.system is None and agent.metadata == {"a": "1"}


def test_export_prints_yaml_that_apply_takes_back_unchanged(
    server: ServerProcess, sdk: anthropic.Anthropic, tmp_path: Path
) -> None:
    name = f"exported-{uuid.uuid4().hex[:8]}"
    assert loophost(server, "apply", "-f", str(write(tmp_path / "in.yaml", declared(name))))[0] == 0
    agent = agent_named(sdk, name)
    code, out = loophost(server, "agents", "export", agent.id)
    assert code == 0, out
    document = yaml.safe_load(out)
    spec = document["agents"][0]
    assert spec["name"] == name and spec["model"] == "scripted"
    assert spec["system"] == "You research.\nCite sources.\n" and "system: |" in out  # a literal block
    # defaults the server filled in are left out again: only bash differs from the toolset's default
    assert spec["tools"][0]["configs"] == [
        {"name": "bash", "enabled": True, "permission_policy": {"type": "always_ask"}}
    ]
    code, out = loophost(server, "apply", "-f", str(write(tmp_path / "out.yaml", out)))
    assert code == 0 and f"= agent {name} ({agent.id}): unchanged (v1)" in out, out
    # an older version exports too
    sdk.beta.agents.update(agent.id, version=1, system="Changed.")
    code, out = loophost(server, "agents", "export", agent.id, "--version", "1")
    assert code == 0 and "Cite sources." in out


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("agents:\n  - {name: x, model: scripted, sytem: typo}\n", "unknown field 'sytem'"),
        ("agents:\n  - {name: x}\n", "agents[0]: model: Field required"),
        ("agents:\n  - {name: x, model: scripted}\n  - {name: x, model: scripted}\n", "declared twice"),
        ("agent:\n  - {name: x, model: scripted}\n", "unknown top-level key 'agent'"),
        ("agents: {name: x}\n", "`agents` must be a list"),
        ("agents: [\n", "not valid YAML"),
        ("environments:\n  - {name: e, config: {type: moon}}\n", "environments[0]: config"),
    ],
)
def test_a_bad_file_is_refused_before_anything_is_sent(
    server: ServerProcess, sdk: anthropic.Anthropic, tmp_path: Path, text: str, message: str
) -> None:
    before = len(list(sdk.beta.agents.list()))
    code, out = loophost(server, "apply", "-f", str(write(tmp_path / "bad.yaml", text)))
    assert code == 1 and message in out, out
    assert len(list(sdk.beta.agents.list())) == before


def test_an_ambiguous_name_asks_for_an_id(server: ServerProcess, sdk: anthropic.Anthropic, tmp_path: Path) -> None:
    name = f"twin-{uuid.uuid4().hex[:8]}"
    first = sdk.beta.agents.create(name=name, model="scripted")
    sdk.beta.agents.create(name=name, model="scripted")
    file = write(tmp_path / "twin.yaml", f"agents:\n  - {{name: {name}, model: scripted}}\n")
    code, out = loophost(server, "apply", "-f", str(file))
    assert code == 1 and "several live agents have this name" in out and "add `id:`" in out
    write(file, f"agents:\n  - {{id: {first.id}, name: {name}, model: scripted, system: Pinned.}}\n")
    code, out = loophost(server, "apply", "-f", str(file))
    assert code == 0 and f"({first.id}): v1 → v2 (system)" in out, out


@pytest.mark.parametrize("variant", ["coordinator", "multiagent_20261001"])
def test_a_roster_named_by_ids_matches_the_resolved_roster(
    server: ServerProcess, sdk: anthropic.Anthropic, tmp_path: Path, variant: str
) -> None:
    """The server stores a roster resolved (`{type: agent, id, version}`); a file naming it by id strings and
    `self` is unchanged against it, and a changed roster is still a change."""
    members = [sdk.beta.agents.create(name=f"member-{uuid.uuid4().hex[:8]}", model="scripted") for _ in range(2)]
    name = f"lead-{uuid.uuid4().hex[:8]}"

    def roster(*ids: str) -> str:
        entries = ", ".join([*ids, "{type: self}"])
        if variant == "coordinator":
            return f"{{type: coordinator, agents: [{entries}]}}"
        return f"{{type: multiagent_20261001, subagents: {{type: enabled, predefined_agents: [{entries}]}}}}"

    file = write(
        tmp_path / "team.yaml", f"agents:\n  - {{name: {name}, model: scripted, multiagent: {roster(members[0].id)}}}\n"
    )
    code, out = loophost(server, "apply", "-f", str(file))
    assert code == 0 and f"+ agent {name}: created" in out, out
    code, out = loophost(server, "apply", "-f", str(file))
    assert code == 0 and "unchanged (v1)" in out, out
    assert "0 created, 0 updated, 1 unchanged" in out
    write(file, f"agents:\n  - {{name: {name}, model: scripted, multiagent: {roster(members[0].id, members[1].id)}}}\n")
    code, out = loophost(server, "apply", "-f", str(file))
    assert code == 0 and "v1 → v2 (multiagent)" in out, out
    code, out = loophost(server, "apply", "-f", str(file))
    assert code == 0 and "unchanged (v2)" in out, out
