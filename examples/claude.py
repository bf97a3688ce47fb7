"""Claude Managed Agents on api.anthropic.com, with a local tool and structured output.

ANTHROPIC_API_KEY=sk-ant-... python examples/claude.py
"""

from __future__ import annotations

import os
import platform

from pydantic import BaseModel

import loophost


@loophost.tool
def machine_info() -> dict[str, str]:
    """Facts about the machine this client runs on."""
    return {"python": platform.python_version(), "system": platform.system(), "machine": platform.machine()}


class Report(BaseModel):
    """A short report about the user's machine."""

    summary: str
    python_version: str


def main() -> None:
    result = loophost.run(
        loophost.ClaudeManagedAgents(),  # ANTHROPIC_API_KEY from the environment
        model=os.environ.get("MODEL", "claude-sonnet-4-6"),
        system="You help users understand their machine. Use the tools you have.",
        handler=[machine_info],
        output_type=Report,
        prompt=os.environ.get("PROMPT", "Describe the machine I am on."),
        max_total_tokens=50_000,
    )
    print(result.output)
    print(f"{result.turns} turns, {result.usage.total_tokens} tokens, session {result.session_id}")


if __name__ == "__main__":
    main()
