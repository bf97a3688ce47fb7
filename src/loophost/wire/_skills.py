"""Skills and skill versions (spec part 2 §5.2; SDK `types/beta/beta_skill.py`, `types/beta/skills/*`).

`SkillInfo` is the `skill` resource (the name `Skill` is the agent's reference to one, `_agents.py`).
"""

from __future__ import annotations

from typing import Literal

from ._base import Timestamp, WireModel

SkillSourceType = Literal["custom", "anthropic", "anthropic_example", "plugin"]


class SkillSource(WireModel):
    type: SkillSourceType = "custom"


class SkillInfo(WireModel):
    type: Literal["skill"] = "skill"
    id: str
    display_name: str
    latest_version_id: str
    source: SkillSource
    created_at: Timestamp
    updated_at: Timestamp


class SkillVersion(WireModel):
    type: Literal["skill_version"] = "skill_version"
    id: str
    skill_id: str
    name: str
    description: str
    created_at: Timestamp
