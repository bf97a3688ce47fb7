"""`loophost sessions list|show|tail|connect`: sessions on any Claude Managed Agents host, from the terminal.

`connect` follows a session live (replay, then live) and steers it: Enter sends the typed line as a
`user.message`, Esc sends `user.interrupt`, and a tool call waiting for a confirmation is asked as allow/deny
(y/n). The typed line is kept at the bottom: an event arriving while typing is printed above it.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..client import ClaudeManagedAgents
from ._follow import follow, list_log, pending_calls, print_event
from ._terminal import Key, KeyInput

__all__ = ("connect_session", "list_sessions", "show_session", "tail_session")


def _tokens(session: Mapping[str, Any]) -> str:
    usage = session.get("usage") or {}
    return f"{usage.get('input_tokens') or 0} in / {usage.get('output_tokens') or 0} out"


async def list_sessions(
    host: ClaudeManagedAgents, console: Console, *, status: str | None, agent_id: str | None, limit: int
) -> int:
    params: dict[str, Any] = {"limit": limit}
    if status:
        params["statuses[]"] = status
    if agent_id:
        params["agent_id"] = agent_id
    page = await host.request("GET", "/v1/sessions", params=params)
    table = Table("session", "status", "agent", "title", "tokens", "created", box=None, pad_edge=False)
    for s in page.get("data") or []:
        agent = s.get("agent") or {}
        table.add_row(
            s["id"],
            s.get("status", ""),
            f"{agent.get('name', '')} v{agent.get('version', '')}",
            escape(s.get("title") or ""),
            _tokens(s),
            s.get("created_at", ""),
        )
    console.print(table)
    if page.get("next_page"):
        console.print("[dim](more: raise --limit)[/]")
    return 0


async def show_session(host: ClaudeManagedAgents, console: Console, session_id: str, *, as_json: bool) -> int:
    session = await host.request("GET", f"/v1/sessions/{session_id}")
    if as_json:
        console.print_json(json.dumps(session))
        return 0
    agent = session.get("agent") or {}
    usage = session.get("usage") or {}
    cost = usage.get("list_cost")
    rows = [
        ("session", session["id"]),
        ("title", session.get("title") or ""),
        ("status", session.get("status", "")),
        ("agent", f"{agent.get('name', '')} ({agent.get('id', '')} v{agent.get('version', '')})"),
        ("environment", session.get("environment_id", "")),
        ("tokens", _tokens(session)),
        ("list cost", f"{int(cost['amount']) / 100:.2f} {cost.get('currency', 'USD')}" if cost else "-"),
        ("created", session.get("created_at", "")),
        ("updated", session.get("updated_at", "")),
    ]
    events = await list_log(host, session_id)
    waiting = pending_calls(events)
    rows.append(("events", str(len(events))))
    if waiting:
        rows.append(("waiting for", ", ".join(f"{e.get('name')} ({e.get('id')})" for e in waiting)))
    for name, value in rows:
        console.print(f"[dim]{name:>12}[/]  {escape(str(value))}", highlight=False)
    return 0


async def tail_session(
    host: ClaudeManagedAgents, console: Console, session_id: str, *, replay: bool, verbose: bool
) -> int:
    """Print the log (all of it, or only what comes) until the session ends; Ctrl-C stops."""
    await host.request("GET", f"/v1/sessions/{session_id}")  # an unknown session is an error now, not a hang
    async for seen in follow(
        host, session_id, replay=replay, on_reconnect=lambda: console.print("[dim]reconnecting…[/]")
    ):
        print_event(console, seen, verbose=verbose)
    return 0


class _Steering:
    """The state of one `connect`: what is typed, which confirmation is being asked, what was printed."""

    def __init__(self, host: ClaudeManagedAgents, console: Console, session_id: str, interactive: bool) -> None:
        self.host = host
        self.console = console
        self.session_id = session_id
        self.interactive = interactive
        self.events: list[Mapping[str, Any]] = []
        self.line = ""
        self.asking: Mapping[str, Any] | None = None  # the tool use whose confirmation is being asked
        self.answered: set[str] = set()

    # -- the bottom line ------------------------------------------------------------------------------------------
    def _prompt(self) -> str:
        if self.asking is not None:
            name = self.asking.get("name")
            tool_input = json.dumps(self.asking.get("input") or {}, ensure_ascii=False)
            if self._answering_custom():
                return f"Result of {name}({tool_input}) (a leading ! marks an error): {self.line}"
            return f"Allow {name}({tool_input})? [y/n] "
        return "> " + self.line

    def _answering_custom(self) -> bool:
        return self.asking is not None and self.asking.get("type") == "agent.custom_tool_use"

    def redraw(self) -> None:
        if self.interactive:
            sys.stdout.write("\r\x1b[K" + self._prompt())
            sys.stdout.flush()

    def above(self, markup: str) -> None:
        """Print a line above the one being typed."""
        if self.interactive:
            sys.stdout.write("\r\x1b[K")
            sys.stdout.flush()
        self.console.print(markup, highlight=False)
        self.redraw()

    # -- events ---------------------------------------------------------------------------------------------------
    async def watch(self) -> None:
        def reconnecting() -> None:
            self.above("[dim]reconnecting…[/]")

        async for seen in follow(self.host, self.session_id, on_reconnect=reconnecting):
            self.events.append(seen.event)
            if self.interactive:
                sys.stdout.write("\r\x1b[K")
            print_event(self.console, seen)
            self._next_question()
            self.redraw()

    def _next_question(self) -> None:
        """Ask about the first tool use the session waits on: allow/deny a confirmation, or type the result of a
        custom tool by hand (its client may answer it first; then the question moves on)."""
        waiting = [e for e in pending_calls(self.events) if str(e.get("id")) not in self.answered]
        asking = waiting[0] if waiting else None
        if asking is not self.asking and self._answering_custom():
            self.line = ""  # the custom tool was answered elsewhere: what was typed for it goes
        self.asking = asking

    # -- keys -----------------------------------------------------------------------------------------------------
    async def _send(self, *events: Mapping[str, Any]) -> None:
        try:
            await self.host.request(
                "POST", f"/v1/sessions/{self.session_id}/events", body={"events": list(events)}, idempotent=False
            )
        except Exception as exc:  # shown, and the session goes on: a refused send is the user's to retry
            self.above(f"[red]not sent[/]: {escape(str(exc))}")

    async def type(self, keys: KeyInput) -> None:
        self.redraw()
        while True:
            key = await keys.next()
            if key.kind == "eof" and not self.line:
                return
            await self._on_key(key)

    async def _on_key(self, key: Key) -> None:
        if key.kind == "escape":
            await self._send({"type": "user.interrupt"})
        elif self._answering_custom() and key.kind in ("enter", "eof"):
            call, text, self.line = self.asking, self.line.strip(), ""
            assert call is not None
            self.answered.add(str(call.get("id")))
            self._next_question()
            self.redraw()
            is_error = text.startswith("!")
            content = text[1:].strip() if is_error else text
            await self._send(
                {
                    "type": "user.custom_tool_result",
                    "custom_tool_use_id": call.get("id"),
                    "content": [{"type": "text", "text": content}],
                    "is_error": is_error,
                }
            )
        elif self.asking is not None and not self._answering_custom():
            if key.kind == "char" and key.char.lower() in ("y", "n"):
                call = self.asking
                self.answered.add(str(call.get("id")))
                allow = key.char.lower() == "y"
                self.asking = None
                self._next_question()
                self.redraw()
                answer: dict[str, Any] = {
                    "type": "user.tool_confirmation",
                    "tool_use_id": call.get("id"),
                    "result": "allow" if allow else "deny",
                }
                if not allow:
                    answer["deny_message"] = "The user denied it from the terminal."
                await self._send(answer)
        elif key.kind in ("enter", "eof"):
            text, self.line = self.line.strip(), ""
            self.redraw()
            if text:
                await self._send({"type": "user.message", "content": [{"type": "text", "text": text}]})
        elif key.kind == "backspace":
            self.line = self.line[:-1]
            self.redraw()
        elif key.kind == "char":
            self.line += key.char
            self.redraw()


async def connect_session(host: ClaudeManagedAgents, console: Console, session_id: str) -> int:
    """Follow and steer until the session ends (exit 0) or input ends (Ctrl-D: detach, exit 0)."""
    await host.request("GET", f"/v1/sessions/{session_id}")
    async with KeyInput() as keys:
        steering = _Steering(host, console, session_id, keys.interactive)
        keys_help = (
            "Enter sends, Esc interrupts, y/n answers a confirmation, a typed line answers a custom tool, "
            "Ctrl-D detaches"
        )
        console.print(f"[dim]connected to {session_id}: {keys_help}[/]")
        watch = asyncio.create_task(steering.watch(), name="connect-watch")
        typing = asyncio.create_task(steering.type(keys), name="connect-keys")
        try:
            done, _ = await asyncio.wait({watch, typing}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (watch, typing):
                task.cancel()
            results = await asyncio.gather(watch, typing, return_exceptions=True)
        if keys.interactive:
            sys.stdout.write("\r\x1b[K")
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                raise result
    console.print("[dim]session ended[/]" if watch in done else "[dim]detached[/]")
    return 0
