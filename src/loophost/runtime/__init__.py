"""The managed-agent runtime: durable sessions, event logs with replay, and (soon) the agent loop.

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
from ._interface import ManagedAgentRuntime
from ._runtime import Runtime
from ._sessions import SessionState
from .store import SQLiteStore, Store, StoredEvent, open_store

DEFAULT_WORKSPACE = "default"

__all__ = [
    "DEFAULT_WORKSPACE",
    "Conflict",
    "CursorOutOfRange",
    "EventPage",
    "InvalidRequest",
    "ManagedAgentRuntime",
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
    "open_store",
]
