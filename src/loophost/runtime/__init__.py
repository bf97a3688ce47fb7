"""The managed-agent runtime: durable sessions, event logs with replay, and the turn engine on pydantic-ai's
model layer.

A library first: `async with Runtime.from_url("sqlite:///loophost.db") as rt: ...`. The HTTP server is a thin
layer over this package.
"""

from ._core import RuntimeConfig
from ._errors import (
    Conflict,
    CursorOutOfRange,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    RuntimeFailure,
    StoreClosed,
)
from ._events import EventPage
from ._gc import tune_gc
from ._runtime import Runtime
from ._sessions import SessionState
from ._stream import LogStream
from .engine import AgentLoopConfig, BuiltinTool, ToolContext, ToolOutput
from .store import SQLiteStore, Store, StoredEvent, open_store

DEFAULT_WORKSPACE = "default"

__all__ = [
    "DEFAULT_WORKSPACE",
    "AgentLoopConfig",
    "BuiltinTool",
    "Conflict",
    "CursorOutOfRange",
    "EventPage",
    "InvalidRequest",
    "LogStream",
    "NotFound",
    "PayloadTooLarge",
    "Runtime",
    "RuntimeConfig",
    "RuntimeFailure",
    "SQLiteStore",
    "SessionState",
    "Store",
    "StoreClosed",
    "StoredEvent",
    "ToolContext",
    "ToolOutput",
    "open_store",
    "tune_gc",
]
