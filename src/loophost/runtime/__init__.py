"""The managed-agent runtime: durable sessions, event logs with replay, and the turn engine on pydantic-ai's
model layer.

A library first: `async with Runtime.from_url("sqlite:///loophost.db") as rt: ...`. The HTTP server is a thin
layer over this package.
"""

from typing import TYPE_CHECKING, Any

from ._core import RuntimeConfig
from ._errors import (
    Conflict,
    CursorOutOfRange,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    RuntimeFailure,
    StoreClosed,
    Unavailable,
)
from ._events import EventPage
from ._gc import tune_gc
from ._runtime import Runtime
from ._sessions import SessionState
from ._stream import LogStream
from ._vault_keys import ENV_VAR as VAULT_KEY_ENV
from ._vault_keys import new_vault_key
from ._work import Caller, WorkQueue
from .engine import AgentLoopConfig, BuiltinTool, ToolContext, ToolOutput
from .store import SQLiteStore, Store, StoredEvent, open_store

if TYPE_CHECKING:
    from .store import PostgresStore


def __getattr__(name: str) -> Any:
    if name == "PostgresStore":  # on first use: psycopg takes a while to import
        from .store import PostgresStore

        return PostgresStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


DEFAULT_WORKSPACE = "default"

__all__ = [
    "DEFAULT_WORKSPACE",
    "VAULT_KEY_ENV",
    "AgentLoopConfig",
    "BuiltinTool",
    "Caller",
    "Conflict",
    "CursorOutOfRange",
    "EventPage",
    "InvalidRequest",
    "LogStream",
    "NotFound",
    "PayloadTooLarge",
    "PostgresStore",
    "PreconditionFailed",
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
    "Unavailable",
    "WorkQueue",
    "new_vault_key",
    "open_store",
    "tune_gc",
]
