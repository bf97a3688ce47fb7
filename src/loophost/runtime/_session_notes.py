"""What the runtime adds to an agent's system prompt about the session's surroundings: its memory stores
(`_memory_mounts.memory_note`) and its skills (`_skills.skills_note`)."""

from __future__ import annotations

from .. import wire
from ._memory_mounts import memory_note
from .store import Store


async def session_notes(store: Store, workspace: str, session: wire.Session) -> str | None:
    """The notes for `session`, or None when there is nothing to say."""
    from ._skills import skills_note  # the skills service imports the archive helpers; only sessions with skills

    notes = [memory_note(session), await skills_note(store, workspace, session) if session.agent.skills else None]
    return "\n\n".join(n for n in notes if n) or None
