"""A live session against a loophost server, through the Claude Managed Agents provider (the same wire).

Start a server first:   LOOPHOST_API_KEYS=my-key loophost serve --port 8420
Then:                   LOOPHOST_URL=http://127.0.0.1:8420 LOOPHOST_KEY=my-key python examples/loophost_server.py
"""

from __future__ import annotations

import asyncio
import os

import loophost


class Notes:
    """A handler class: its public methods are the agent's tools; `confirm` answers tools that ask first."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    def add_note(self, text: str) -> str:
        """Remember a note.

        Args:
            text: What to remember.
        """
        self.notes.append(text)
        return f"noted ({len(self.notes)} so far)"

    def confirm(self, name: str, tool_input: dict[str, object], context: object) -> bool | str:
        return "not from this example"


async def main() -> None:
    provider = loophost.ClaudeManagedAgents(
        api_key=os.environ.get("LOOPHOST_KEY", "my-key"),
        base_url=os.environ.get("LOOPHOST_URL", "http://127.0.0.1:8420"),
    )
    notes = Notes()
    # provision once per spec: the agent is reused by every later run (content-addressed, cached)
    handle = await loophost.provision(
        provider, loophost.AgentSpec(name="notes", model="scripted", tools=(notes.add_note,))
    )
    async with loophost.start(provider, agent_id=handle.agent_id, handler=notes) as live:
        for prompt in ['call add_note {"text": "buy milk"}', 'call add_note {"text": "call Bob"}', "that is all"]:
            await live.message(prompt)
            result = await live.next_result()
            print(f"{result.terminal}: {result.text}")
    print("notes kept on this machine:", notes.notes)


if __name__ == "__main__":
    asyncio.run(main())
