"""Durable storage for the runtime: the `Store` contract and its backends."""

from ._protocol import CommitListener, Store
from ._records import (
    AgentRow,
    CheckpointWrite,
    EnvironmentRow,
    EventQuery,
    FileQuery,
    FileRow,
    IdempotencyRecord,
    ListQuery,
    NewEvent,
    SessionChange,
    SessionResourceRow,
    SessionRow,
    StoredEvent,
    TokenCounts,
)
from ._sqlite import SQLiteStore
from ._sqlite_engine import DatabaseInUse


def open_store(url: str) -> Store:
    """A store for a database URL, SQLAlchemy style: `sqlite:///relative.db`, `sqlite:////abs/path.db`,
    `sqlite:///:memory:`, or a bare file path."""
    if url.startswith("sqlite://"):
        rest = url.removeprefix("sqlite://")
        path = rest[1:] if rest.startswith("/") else rest
        if not path:
            raise ValueError("a sqlite URL needs a path: sqlite:///file.db or sqlite:///:memory:")
        return SQLiteStore(path)
    if "://" in url:
        scheme = url.split("://", 1)[0]
        raise ValueError(f"unsupported database URL scheme {scheme!r}; use sqlite:///path/to/file.db")
    return SQLiteStore(url)


__all__ = [
    "AgentRow",
    "CheckpointWrite",
    "CommitListener",
    "DatabaseInUse",
    "EnvironmentRow",
    "EventQuery",
    "FileQuery",
    "FileRow",
    "IdempotencyRecord",
    "ListQuery",
    "NewEvent",
    "SQLiteStore",
    "SessionChange",
    "SessionResourceRow",
    "SessionRow",
    "Store",
    "StoredEvent",
    "TokenCounts",
    "open_store",
]
