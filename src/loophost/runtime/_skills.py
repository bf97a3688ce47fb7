"""Skills: folders of instructions and scripts (a `SKILL.md` at the root) that agents reference, uploaded as files,
kept as immutable versions, mounted read-only into a session's sandbox at `/mnt/skills/<name>` and listed in its
system prompt with each `SKILL.md` description.

An upload is every file of one top folder (`my-skill/SKILL.md`, `my-skill/scripts/run.py`, ...). `SKILL.md` starts
with a YAML front matter holding `name` (a kebab-case slug; the folder's name when absent) and `description`.
The name is the skill's for good: every later version must have the same. Each version is stored as one zip
whose top folder is the name (what `versions/{v}/content` downloads, and what the sandbox unpacks).
"""

from __future__ import annotations

import io
import posixpath
import re
import zipfile
from collections.abc import Sequence

from .. import wire
from ._clock import now, rfc3339
from ._core import RuntimeConfig
from ._cursors import check_limit, cut_page, decode, keyset
from ._errors import InvalidRequest, NotFound
from ._ids import new_id
from .store import Store
from .store._skills import SkillRow, SkillVersionRow

SKILLS_ROOT = "/mnt/skills"
MAX_SKILL_BYTES = 8 * 1024 * 1024
MAX_SKILL_FILES = 1000
MAX_SKILLS_LIST = 1000
_NAME = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


def _front_matter(text: str) -> dict[str, str]:
    """The `key: value` lines of a `---`-fenced front matter (quotes stripped); empty when there is none."""
    lines = text.lstrip("\ufeff").splitlines()
    if not lines or lines[0].strip() != "---":
        return {}
    found: dict[str, str] = {}
    for line in lines[1:]:
        if line.strip() == "---":
            return found
        key, sep, value = line.partition(":")
        if sep and key.strip() and not key.startswith((" ", "\t")):
            found[key.strip()] = value.strip().strip("'\"")
    return {}


def _relative(filename: str) -> list[str]:
    parts = [p for p in filename.replace("\\", "/").split("/") if p not in ("", ".")]
    if filename.startswith("/") or ".." in parts or not parts:
        raise InvalidRequest(f"file name {filename!r} must be a relative path inside the skill's folder")
    return parts


def package(files: Sequence[tuple[str, bytes]]) -> tuple[str, str, bytes]:
    """(name, description, zip archive) of an upload; 400 unless it is one top folder with a valid `SKILL.md`."""
    if not files:
        raise InvalidRequest("upload the skill's files as `files[]`", code="no_files")
    if len(files) > MAX_SKILL_FILES:
        raise InvalidRequest(f"a skill has at most {MAX_SKILL_FILES} files", code="too_many_files")
    if sum(len(content) for _, content in files) > MAX_SKILL_BYTES:
        raise InvalidRequest(f"a skill is at most {MAX_SKILL_BYTES} bytes", code="skill_too_large")
    split = [(_relative(name), content) for name, content in files]
    tops = {parts[0] for parts, _ in split}
    if len(tops) != 1 or any(len(parts) < 2 for parts, _ in split):
        raise InvalidRequest(
            "all files must be in one top-level folder, with SKILL.md at its root", code="no_top_folder"
        )
    (top,) = tops
    by_path = {"/".join(parts[1:]): content for parts, content in split}
    if "SKILL.md" not in by_path:
        raise InvalidRequest(f"{top}/SKILL.md is missing", code="missing_skill_md")
    try:
        meta = _front_matter(by_path["SKILL.md"].decode("utf-8"))
    except UnicodeDecodeError:
        raise InvalidRequest("SKILL.md must be UTF-8 text", code="invalid_skill_md") from None
    name = meta.get("name") or top
    if not _NAME.match(name) or len(name) > 64:
        raise InvalidRequest(
            f"the skill's name {name!r} must be kebab-case (a-z, 0-9 and single hyphens), at most 64 characters",
            code="invalid_skill_name",
        )
    description = meta.get("description", "")
    if "\x00" in description:
        raise InvalidRequest("SKILL.md's description cannot contain NUL characters", code="invalid_skill_md")
    if not description:
        raise InvalidRequest("SKILL.md's front matter needs a `description`", code="missing_description")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(by_path):
            info = zipfile.ZipInfo(posixpath.join(name, path), date_time=(2026, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, by_path[path])
    return name, description[:1024], buffer.getvalue()


def _skill(row: SkillRow) -> wire.SkillInfo:
    return wire.SkillInfo.model_validate_json(row.body)


def _version(row: SkillVersionRow) -> wire.SkillVersion:
    return wire.SkillVersion.model_validate_json(row.body)


class Skills:
    """The skills service (`Runtime.skills`). Every call takes the caller's workspace first."""

    def __init__(self, store: Store, config: RuntimeConfig) -> None:
        self._store = store
        self._config = config

    async def create_skill(
        self, workspace: str, files: Sequence[tuple[str, bytes]], display_name: str | None = None
    ) -> wire.SkillInfo:
        if display_name is not None and (len(display_name) > 255 or "\n" in display_name or "\x00" in display_name):
            raise InvalidRequest("display_name is one line of at most 255 characters", code="invalid_display_name")
        name, description, archive = package(files)
        ts = now()
        skill_id = new_id("skill")
        version = wire.SkillVersion(
            id=new_id("skillver"), skill_id=skill_id, name=name, description=description, created_at=ts
        )
        skill = wire.SkillInfo(
            id=skill_id,
            display_name=display_name or name,
            latest_version_id=version.id,
            source=wire.SkillSource(type="custom"),
            created_at=ts,
            updated_at=ts,
        )
        await self._store.skills.put_skill(self._row(workspace, skill), self._version_row(workspace, version), archive)
        return skill

    def _row(self, workspace: str, skill: wire.SkillInfo) -> SkillRow:
        return SkillRow(workspace, skill.id, rfc3339(skill.created_at), skill.source.type, skill.model_dump_json())

    def _version_row(self, workspace: str, version: wire.SkillVersion) -> SkillVersionRow:
        return SkillVersionRow(
            workspace, version.id, version.skill_id, rfc3339(version.created_at), version.model_dump_json()
        )

    async def get_skill(self, workspace: str, skill_id: str) -> wire.SkillInfo:
        row = await self._store.skills.get_skill(workspace, skill_id)
        if row is None:
            raise NotFound(f"skill {skill_id!r} not found", resource="skill")
        return _skill(row)

    async def list_skills(
        self, workspace: str, *, limit: int | None = None, page: str | None = None, source: str | None = None
    ) -> wire.CursorPage[wire.SkillInfo]:
        size = check_limit(limit, default=self._config.default_page_size, maximum=MAX_SKILLS_LIST)
        rows = await self._store.skills.list_skills(
            workspace, after=keyset(decode(page, descending=False)), limit=size + 1, source=source
        )
        rows, next_page = cut_page(rows, size, descending=False)
        return wire.CursorPage[wire.SkillInfo](data=[_skill(r) for r in rows], next_page=next_page)

    async def delete_skill(self, workspace: str, skill_id: str) -> wire.Deleted:
        """Its versions go with it."""
        if not await self._store.skills.delete_skill(workspace, skill_id):
            raise NotFound(f"skill {skill_id!r} not found", resource="skill")
        return wire.Deleted(id=skill_id, type="skill_deleted")

    # versions --------------------------------------------------------------------------------------------------
    async def create_version(
        self, workspace: str, skill_id: str, files: Sequence[tuple[str, bytes]]
    ) -> wire.SkillVersion:
        skill = await self.get_skill(workspace, skill_id)
        name, description, archive = package(files)
        latest = await self.get_version(workspace, skill_id, "latest")
        if name != latest.name:
            raise InvalidRequest(
                f"this skill is named {latest.name!r}; a new version must have the same name, not {name!r}",
                code="skill_name_mismatch",
            )
        ts = now()
        version = wire.SkillVersion(
            id=new_id("skillver"), skill_id=skill_id, name=name, description=description, created_at=ts
        )
        updated = skill.model_copy(update={"latest_version_id": version.id, "updated_at": ts})
        await self._store.skills.put_skill(
            self._row(workspace, updated), self._version_row(workspace, version), archive
        )
        return version

    async def resolve(self, workspace: str, skill_id: str, version: str) -> str:
        """The version id `version` names (`latest` is the skill's newest)."""
        if version == "latest":
            return (await self.get_skill(workspace, skill_id)).latest_version_id
        return version

    async def get_version(self, workspace: str, skill_id: str, version: str) -> wire.SkillVersion:
        version_id = await self.resolve(workspace, skill_id, version)
        row = await self._store.skills.get_skill_version(workspace, skill_id, version_id)
        if row is None:
            await self.get_skill(workspace, skill_id)
            raise NotFound(f"version {version!r} of skill {skill_id!r} not found", resource="skill_version")
        return _version(row)

    async def list_versions(
        self, workspace: str, skill_id: str, *, limit: int | None = None, page: str | None = None
    ) -> wire.CursorPage[wire.SkillVersion]:
        """Newest first."""
        await self.get_skill(workspace, skill_id)
        size = check_limit(limit, default=self._config.default_page_size, maximum=MAX_SKILLS_LIST)
        rows = await self._store.skills.list_skill_versions(
            workspace, skill_id, before=keyset(decode(page, descending=True)), limit=size + 1
        )
        rows, next_page = cut_page(rows, size, descending=True)
        return wire.CursorPage[wire.SkillVersion](data=[_version(r) for r in rows], next_page=next_page)

    async def delete_version(self, workspace: str, skill_id: str, version: str) -> wire.Deleted:
        """A skill keeps at least one version (delete the skill instead); deleting the newest makes the one
        before it `latest`."""
        found = await self.get_version(workspace, skill_id, version)
        skill = await self.get_skill(workspace, skill_id)
        newest = await self._store.skills.list_skill_versions(workspace, skill_id, before=None, limit=2)
        remaining = [v for v in newest if v.id != found.id]
        if not remaining:
            raise InvalidRequest(
                f"version {found.id!r} is the skill's only version; delete the skill instead", code="last_version"
            )
        updated = skill
        if skill.latest_version_id == found.id:
            updated = skill.model_copy(update={"latest_version_id": remaining[0].id, "updated_at": now()})
        if not await self._store.skills.delete_skill_version(self._row(workspace, updated), found.id):
            raise NotFound(f"version {version!r} of skill {skill_id!r} not found", resource="skill_version")
        return wire.Deleted(id=found.id, type="skill_version_deleted")

    async def content(self, workspace: str, skill_id: str, version: str) -> tuple[str, bytes]:
        """(file name, zip bytes) of a version."""
        found = await self.get_version(workspace, skill_id, version)
        archive = await self._store.skills.skill_version_archive(workspace, skill_id, found.id)
        if archive is None:
            raise NotFound(f"version {version!r} of skill {skill_id!r} not found", resource="skill_version")
        return f"{found.name}.zip", archive

    # sessions --------------------------------------------------------------------------------------------------
    async def session_skills(self, workspace: str, session: wire.Session) -> list[tuple[wire.SkillVersion, bytes]]:
        """The archives of the session agent's custom skills that can be found (a deleted one is left out)."""
        found: list[tuple[wire.SkillVersion, bytes]] = []
        for ref in session.agent.skills:
            if ref.type != "custom":
                continue
            try:
                version = await self.get_version(workspace, ref.skill_id, ref.version)
                _, archive = await self.content(workspace, ref.skill_id, version.id)
            except NotFound:
                continue
            found.append((version, archive))
        return found


async def skills_note(store: Store, workspace: str, session: wire.Session) -> str | None:
    """The system prompt's list of the session's skills, each with its `SKILL.md` description."""
    skills = Skills(store, RuntimeConfig())
    lines: list[str] = []
    for ref in session.agent.skills:
        if ref.type != "custom":
            continue
        try:
            version = await skills.get_version(workspace, ref.skill_id, ref.version)
        except NotFound:
            continue
        lines.append(f"- {version.name} ({SKILLS_ROOT}/{version.name}/SKILL.md): {version.description}")
    if not lines:
        return None
    head = (
        "# Skills\nThese skills are installed read-only in the sandbox. When a task matches one, read its SKILL.md "
        "first and follow it; run its scripts with bash from their folder."
    )
    return "\n".join([head, *lines])
