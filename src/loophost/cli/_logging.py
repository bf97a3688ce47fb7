"""The logs of `loophost serve` on stderr: text for a terminal (the default), or one JSON object per line.

A JSON line holds `timestamp` (RFC 3339, UTC), `level`, `logger`, `event` (the message), and, when known, the
`request_id`, `workspace` and `session_id` the line is about (`runtime/_log_context.py`), and `exception`.
No secret is ever a log argument (API keys, vault secrets, environment keys and sessions tokens are hashed or
encrypted before anything could log them); `tests/cli/test_logging.py` sweeps a debug-level run for them.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Literal

from ..runtime import _log_context

__all__ = ("JsonFormatter", "configure_logging")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="microseconds")[:-6] + "Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        for name, var in (
            ("request_id", _log_context.request_id),
            ("workspace", _log_context.workspace),
            ("session_id", _log_context.session_id),
        ):
            value = var.get()
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure_logging(log_format: Literal["text", "json"], level: str) -> None:
    """The root logger's one handler, on stderr, at `level` (the libraries' loggers included)."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
