"""`loophost run`: one prompt on any host, rendered live, exit status from the outcome."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

from ..client import ClaudeManagedAgents, ClientError, Local, Provider, arun
from ._render import LiveRenderer


def load_handler(spec: str) -> Any:
    """`module:attribute` (or `path/to/file.py:attribute`) → the handler it names."""
    module_name, sep, attribute = spec.partition(":")
    if not sep or not attribute:
        raise ClientError(f"--tools takes MODULE:ATTRIBUTE, got {spec!r}")
    if module_name.endswith(".py"):
        path = Path(module_name).resolve()
        sys.path.insert(0, str(path.parent))
        module_name = path.stem
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ClientError(f"cannot import {module_name!r} for --tools: {exc}") from exc
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise ClientError(f"{module_name!r} has no attribute {attribute!r}") from None


def make_provider(base_url: str | None, api_key: str | None, local: str | None) -> Provider:
    if local is not None:
        return Local(local or ":memory:")
    return ClaudeManagedAgents(api_key=api_key, base_url=base_url)


async def run_prompt(
    prompt: str,
    *,
    provider: Provider,
    agent_id: str | None,
    model: str | None,
    system: str | None,
    environment_id: str | None,
    session_id: str | None,
    tools: str | None,
    timeout: float,
    max_turns: int,
    assume_yes: bool,
    console: Console,
) -> int:
    render = LiveRenderer(console, assume_yes=assume_yes, interactive=sys.stdin.isatty())
    handler = load_handler(tools) if tools else None
    console.print(f"[bold]user[/] {prompt}")
    result = await arun(
        provider,
        prompt=prompt,
        handler=handler,
        agent_id=agent_id,
        model=model,
        system=system,
        environment_id=environment_id,
        session_id=session_id,
        timeout=timeout,
        max_turns=max_turns,
        on_event=render.on_event,
        on_text_delta=render.on_text_delta,
        confirm=render.confirm,
    )
    console.print(
        f"[dim]session {result.session_id}: {result.terminal} after {result.turns} turns; "
        f"tokens {result.usage.input_tokens} in, {result.usage.output_tokens} out[/]"
    )
    return 0 if result.terminal == "end_turn" else 3
