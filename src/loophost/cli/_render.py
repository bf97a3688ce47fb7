"""Live rendering of a session for the terminal: the agent's text, tool calls and results, confirmations."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.prompt import Confirm

__all__ = ("LiveRenderer",)


def _short(value: Any, limit: int = 160) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = text.replace("\n", " ⏎ ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


class LiveRenderer:
    """`on_text_delta`, `on_event` and `confirm` hooks that print to a rich console as the session goes: the
    agent's text as it streams, then each tool call and its result."""

    def __init__(self, console: Console, *, assume_yes: bool = False, interactive: bool = True) -> None:
        self.console = console
        self.assume_yes = assume_yes
        self.interactive = interactive
        self._streaming = False

    def on_text_delta(self, text: str) -> None:
        if not self._streaming:
            self.console.print("[bold magenta]agent[/] ", end="")
            self._streaming = True
        self.console.print(text, end="", markup=False, highlight=False, soft_wrap=True)

    def _end_text(self) -> None:
        if self._streaming:
            self.console.print()
            self._streaming = False

    def on_event(self, event: Mapping[str, Any]) -> None:
        kind = event.get("type", "")
        out = self.console
        self._end_text()  # a message's text has streamed in full once its event (or any later one) arrives
        if kind == "agent.custom_tool_use":
            out.print(f"  [cyan]→ {event.get('name')}[/]({_short(event.get('input') or {})}) [dim](runs here)[/]")
        elif kind == "user.custom_tool_result":
            style = "red" if event.get("is_error") else "green"
            text = "".join(b.get("text", "") for b in event.get("content") or [])
            out.print(f"  [{style}]← {_short(text)}[/]")
        elif kind in ("agent.tool_use", "agent.mcp_tool_use"):
            note = " [yellow](asks for confirmation)[/]" if event.get("evaluated_permission") == "ask" else ""
            out.print(f"  [blue]⚙ {event.get('name')}[/]({_short(event.get('input') or {})}){note}")
        elif kind in ("agent.tool_result", "agent.mcp_tool_result"):
            style = "red" if event.get("is_error") else "dim"
            out.print(f"  [{style}]⚙ result: {_short(event.get('content') or '')}[/]")
        elif kind == "user.tool_confirmation":
            out.print(f"  [yellow]confirmation: {event.get('result')}[/]")
        elif kind == "session.error":
            out.print(f"[red]error[/] {_short(event.get('error') or event)}")
        elif kind == "session.status_idle":
            reason = (event.get("stop_reason") or {}).get("type")
            if reason != "requires_action":
                out.print(f"[dim]idle ({reason})[/]")
        elif kind == "session.status_terminated":
            out.print("[red]session terminated[/]")

    async def confirm(self, name: str, tool_input: Mapping[str, Any], context: Any) -> bool | str:
        """Ask at the terminal (or follow --yes); without a terminal, deny with a message saying why."""
        if self.assume_yes:
            self.console.print(f"  [yellow]allowing {name} (--yes)[/]")
            return True
        if not self.interactive:
            return f"{name} needs a confirmation and no one was at the terminal to give it"
        question = f"  Allow [bold]{name}[/]({_short(dict(tool_input))})?"
        allowed = await asyncio.to_thread(Confirm.ask, question, console=self.console, default=False)
        return True if allowed else f"The user denied {name}."
