"""The storage contract of skills: a skill row (its wire document) and its versions, each with the uploaded
files as one zip archive that only `skill_version_archive` reads.

`Store.skills` is a `SkillStorage`. Promises every backend keeps (tests/server/test_skills_api.py runs on both):
a version and the skill's new `latest_version_id` commit together; deleting a skill deletes its versions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class SkillRow:
    workspace: str
    id: str
    created_at: str
    source: str
    body: str
    """The wire `skill` JSON."""


@dataclass(frozen=True, slots=True)
class SkillVersionRow:
    workspace: str
    id: str
    skill_id: str
    created_at: str
    body: str
    """The wire `skill_version` JSON."""


class SkillStorage(Protocol):
    async def put_skill(self, row: SkillRow, version: SkillVersionRow | None = None, archive: bytes = b"") -> None:
        """Insert or replace the skill, and insert `version` (with its archive) in the same transaction."""
        ...

    async def get_skill(self, workspace: str, skill_id: str) -> SkillRow | None: ...
    async def list_skills(
        self, workspace: str, *, after: tuple[str, str] | None, limit: int, source: str | None
    ) -> list[SkillRow]:
        """Oldest first by (created_at, id)."""
        ...

    async def delete_skill(self, workspace: str, skill_id: str) -> bool: ...
    async def get_skill_version(self, workspace: str, skill_id: str, version_id: str) -> SkillVersionRow | None: ...
    async def skill_version_archive(self, workspace: str, skill_id: str, version_id: str) -> bytes | None: ...
    async def list_skill_versions(
        self, workspace: str, skill_id: str, *, before: tuple[str, str] | None, limit: int
    ) -> list[SkillVersionRow]:
        """Newest first by (created_at, id)."""
        ...

    async def delete_skill_version(self, row: SkillRow, version_id: str) -> bool:
        """Delete the version and store `row` (the skill with its new latest version) in one transaction."""
        ...
