"""Local tools for the CLI tests (`--tools tests.cli.tools:TOOLS`)."""

from __future__ import annotations

import loophost


@loophost.tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


TOOLS = [add]
