"""What a log line is about: the request, the workspace and the session, as context variables.

Set where they become known (the server's request middleware, the key check, a session's worker task) and read by
the JSON log format (`loophost serve --log-format json`), so no call site passes them to a logger by hand.
"""

from __future__ import annotations

from contextvars import ContextVar

__all__ = ("request_id", "session_id", "workspace")

request_id: ContextVar[str | None] = ContextVar("loophost_request_id", default=None)
workspace: ContextVar[str | None] = ContextVar("loophost_workspace", default=None)
session_id: ContextVar[str | None] = ContextVar("loophost_session_id", default=None)
