"""Following a session's log from the terminal: replay, then live, across drops; and one line per event.

`follow` yields every persisted event once, in log order, numbered by seq: it lists the log from the start, then
follows the stream from the last event held (`Last-Event-ID`, which a loophost server replays from). With nothing
held yet the stream has no cursor, so the log is listed again once the stream is open; ids dedupe the overlap.
A dropped stream (or a server restart) is reopened the same way after a short back-off. It ends after
`session.status_terminated` or `session.deleted`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.markup import escape

from ..client import ClaudeManagedAgents, ConnectionLost

__all__ = ("Seen", "describe", "follow", "list_log", "pending_calls", "print_event")

TERMINAL = frozenset({"session.status_terminated", "session.deleted"})


@dataclass(frozen=True, slots=True)
class Seen:
    seq: int
    event: Mapping[str, Any]


async def list_log(host: ClaudeManagedAgents, session_id: str) -> list[Mapping[str, Any]]:
    """The whole log as it is now, in order."""
    control = host.control()
    events: list[Mapping[str, Any]] = []
    page: str | None = None
    while True:
        data, page = await control.list_events(session_id, page)
        events.extend(data)
        if not page:
            return events


async def follow(
    host: ClaudeManagedAgents, session_id: str, *, replay: bool = True, on_reconnect: Callable[[], None] | None = None
) -> AsyncIterator[Seen]:
    """Every event of the session once, in order (see the module docstring). `replay=False` starts at the end of
    the log (the events before are counted, not yielded)."""
    control = host.control()
    ids: set[str] = set()
    last: str | None = None
    count = 0

    def fresh(events: list[Mapping[str, Any]]) -> list[Seen]:
        nonlocal last, count
        out = []
        for event in events:
            event_id = str(event.get("id"))
            if event_id in ids:
                continue
            ids.add(event_id)
            last = event_id
            count += 1
            out.append(Seen(count, event))
        return out

    for seen in fresh(await list_log(host, session_id)):
        if replay:
            yield seen
        if seen.event.get("type") in TERMINAL:
            return
    delay = 0.25
    while True:
        try:
            stream = await control.open_stream(session_id, last, previews=False)
        except ConnectionLost:
            await asyncio.sleep(delay)
            delay = min(delay * 2, 4.0)
            continue
        try:
            delay = 0.25
            if last is None:  # no cursor: what was committed before the stream attached comes from the log
                for seen in fresh(await list_log(host, session_id)):
                    yield seen
                    if seen.event.get("type") in TERMINAL:
                        return
            async for event in stream:
                if "id" not in event or event.get("type") in ("event_start", "event_delta"):
                    continue
                for seen in fresh([event]):
                    yield seen
                    if seen.event.get("type") in TERMINAL:
                        return
        except ConnectionLost:
            pass
        finally:
            await stream.aclose()
        if on_reconnect is not None:
            on_reconnect()
        await asyncio.sleep(delay)
        delay = min(delay * 2, 4.0)


def _short(value: Any, limit: int = 200) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = text.replace("\n", " ⏎ ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _text(content: Any) -> str:
    if not isinstance(content, list):
        return ""
    return "\n".join(str(b.get("text", "")) if b.get("type") == "text" else f"[{b.get('type')}]" for b in content)


def print_event(console: Console, seen: Seen, *, verbose: bool = False) -> None:
    line = describe(seen, verbose=verbose)
    if line is not None:
        console.print(line, highlight=False)


def describe(seen: Seen, *, verbose: bool = False) -> str | None:
    """One event as the terminal shows it (rich markup), or None for an event not worth a line."""
    e = seen.event
    kind = str(e.get("type", ""))
    seq = f"[dim]{seen.seq:>4}[/] "
    if kind == "user.message":
        return f"{seq}[bold]you[/] {escape(_text(e.get('content')))}"
    if kind == "agent.message":
        return f"{seq}[bold magenta]agent[/] {escape(_text(e.get('content')))}"
    if kind in ("agent.tool_use", "agent.mcp_tool_use", "agent.custom_tool_use"):
        note = " [yellow](asks for confirmation)[/]" if e.get("evaluated_permission") == "ask" else ""
        where = " [dim](custom: the client answers)[/]" if kind == "agent.custom_tool_use" else ""
        return f"{seq}  [blue]⚙ {escape(str(e.get('name')))}[/]({escape(_short(e.get('input') or {}))}){note}{where}"
    if kind in ("agent.tool_result", "agent.mcp_tool_result", "user.custom_tool_result", "user.tool_result"):
        style = "red" if e.get("is_error") else "green"
        return f"{seq}  [{style}]← {escape(_short(_text(e.get('content'))))}[/]"
    if kind == "user.tool_confirmation":
        reason = f": {e.get('deny_message')}" if e.get("deny_message") else ""
        return f"{seq}  [yellow]confirmation: {e.get('result')}{escape(reason)}[/]"
    if kind == "user.interrupt":
        return f"{seq}[bold red]interrupt[/]"
    if kind == "session.error":
        error = e.get("error") or {}
        return f"{seq}[red]error[/] {escape(_short(error.get('message') or error))}"
    if kind == "session.status_idle":
        reason = (e.get("stop_reason") or {}).get("type", "")
        return f"{seq}[dim]idle ({reason})[/]"
    if kind == "session.status_running":
        return f"{seq}[dim]running[/]" if verbose else None
    if kind == "session.status_rescheduled":
        return f"{seq}[yellow]rescheduled (retrying)[/]"
    if kind == "session.status_terminated":
        return f"{seq}[red]terminated[/]"
    if kind == "session.deleted":
        return f"{seq}[red]deleted[/]"
    if verbose:
        return f"{seq}[dim]{escape(kind)}[/]"
    return None


def pending_calls(events: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The tool uses the session waits on now: those named by the last `requires_action`, not answered since."""
    by_id = {str(e.get("id")): e for e in events}
    waiting: list[str] = []
    for e in events:
        kind = e.get("type")
        if kind == "session.status_idle":
            reason = e.get("stop_reason") or {}
            waiting = list(reason.get("event_ids") or []) if reason.get("type") == "requires_action" else []
        elif kind in ("session.status_running", "session.status_terminated"):
            waiting = []
        else:
            for key in ("tool_use_id", "custom_tool_use_id", "mcp_tool_use_id"):
                answered = e.get(key)
                if answered in waiting and kind != "agent.tool_use":
                    waiting.remove(answered)
    return [by_id[i] for i in waiting if i in by_id]
