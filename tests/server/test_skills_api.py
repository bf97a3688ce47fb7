"""Skills through the official SDK over real HTTP: upload (multipart, one top folder with SKILL.md), list,
retrieve, versions and `latest`, the content archive, deletes; and a skill attached to an agent, read and run with
bash in the session's sandbox (read-only there)."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator

import anthropic
import pytest

from .conftest import KEY_A, SERVER_BACKENDS, ServerProcess, backend_database, start_server, stop_server
from .test_events_api import uid
from .test_memory_sessions import serve_command
from .test_toolset_sdk import call, need_bwrap, text

SKILL_MD = (
    b"---\nname: hello-skill\ndescription: Greets whoever asks, in one line\n---\n# Hello\nRun scripts/hello.sh\n"
)


def upload(*extra: tuple[str, bytes]) -> list[tuple[str, bytes, str]]:
    files = [("hello-skill/SKILL.md", SKILL_MD), ("hello-skill/scripts/hello.sh", b"echo hello from the skill\n")]
    return [(name, content, "application/octet-stream") for name, content in [*files, *extra]]


def test_skill_lifecycle(client: anthropic.Anthropic, other_client: anthropic.Anthropic) -> None:
    skill = client.beta.skills.create(files=upload(), display_name=uid("Hello"))
    assert skill.type == "skill" and skill.source.type == "custom" and skill.display_name.startswith("Hello")
    assert client.beta.skills.retrieve(skill.id) == skill
    assert skill.id in [s.id for s in client.beta.skills.list(limit=1000)]
    with pytest.raises(anthropic.NotFoundError):
        other_client.beta.skills.retrieve(skill.id)

    first = client.beta.skills.versions.retrieve("latest", skill_id=skill.id)
    assert first.id == skill.latest_version_id
    assert first.name == "hello-skill" and first.description == "Greets whoever asks, in one line"
    second = client.beta.skills.versions.create(skill.id, files=upload(("hello-skill/README.md", b"more")))
    assert client.beta.skills.retrieve(skill.id).latest_version_id == second.id
    assert [v.id for v in client.beta.skills.versions.list(skill.id)] == [second.id, first.id]  # newest first

    archive = client.beta.skills.versions.download(second.id, skill_id=skill.id).read()
    with zipfile.ZipFile(io.BytesIO(archive)) as zipped:
        assert sorted(zipped.namelist()) == [
            "hello-skill/README.md",
            "hello-skill/SKILL.md",
            "hello-skill/scripts/hello.sh",
        ]
        assert zipped.read("hello-skill/SKILL.md") == SKILL_MD

    assert client.beta.skills.versions.delete(second.id, skill_id=skill.id).type == "skill_version_deleted"
    assert client.beta.skills.retrieve(skill.id).latest_version_id == first.id
    with pytest.raises(anthropic.BadRequestError):  # a skill keeps one version
        client.beta.skills.versions.delete(first.id, skill_id=skill.id)
    assert client.beta.skills.delete(skill.id).type == "skill_deleted"
    with pytest.raises(anthropic.NotFoundError):
        client.beta.skills.versions.retrieve(first.id, skill_id=skill.id)


def test_bad_uploads_are_400(client: anthropic.Anthropic) -> None:
    def refused(files: list[tuple[str, bytes, str]]) -> None:
        with pytest.raises(anthropic.BadRequestError):
            client.beta.skills.create(files=files)

    refused([("SKILL.md", SKILL_MD, "text/markdown")])  # no top folder
    refused([("a/SKILL.md", SKILL_MD, "text/markdown"), ("b/x.txt", b"x", "text/plain")])  # two top folders
    refused([("hello-skill/notes.md", b"no skill file", "text/markdown")])
    refused([("hello-skill/SKILL.md", b"---\nname: Not Kebab\ndescription: d\n---\n", "text/markdown")])
    refused([("hello-skill/SKILL.md", b"---\nname: hello-skill\n---\nno description", "text/markdown")])
    refused([("../escape/SKILL.md", SKILL_MD, "text/markdown")])
    skill = client.beta.skills.create(files=upload())
    renamed = b"---\nname: other-name\ndescription: d\n---\n"
    with pytest.raises(anthropic.BadRequestError):  # the name is the skill's for good
        client.beta.skills.versions.create(skill.id, files=[("other-name/SKILL.md", renamed, "text/markdown")])


@pytest.fixture(scope="module", params=SERVER_BACKENDS[:1])
def skills_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    where = tmp_path_factory.mktemp("skills-server")
    database = backend_database(request) or str(where / "db.sqlite")
    proc = start_server(where / "db.sqlite", command=serve_command(database, where / "ws"))
    yield proc
    stop_server(proc)


def test_an_agent_reads_and_runs_its_skill_with_bash(skills_server: ServerProcess) -> None:
    need_bwrap()
    with anthropic.Anthropic(base_url=skills_server.url, api_key=KEY_A, max_retries=0) as sdk:
        skill = sdk.beta.skills.create(files=upload())
        env = sdk.beta.environments.create(name=uid("env"), config={"type": "cloud"})
        agent = sdk.beta.agents.create(
            name=uid("agent"),
            model="scripted",
            tools=[{"type": "agent_toolset_20260401"}],
            skills=[{"type": "custom", "skill_id": skill.id}],
        )
        session = sdk.beta.sessions.create(agent=agent.id, environment_id=env.id)
        read, ran, wrote = call(
            sdk,
            session.id,
            ("read", {"file_path": "/mnt/skills/hello-skill/SKILL.md"}),
            ("bash", {"command": "cd /mnt/skills/hello-skill && bash scripts/hello.sh && touch x"}),
            ("write", {"file_path": "/mnt/skills/hello-skill/SKILL.md", "content": "changed"}),
        )
        assert "Greets whoever asks" in text(read)
        assert "hello from the skill" in text(ran) and "Read-only file system" in text(ran)
        assert wrote.is_error
