"""Durable storage for the runtime: the `Store` contract and its backends.

`PostgresStore` is imported on first use (psycopg takes a while to import, and a SQLite user never needs it).
"""

from typing import TYPE_CHECKING, Any

from ._cluster import Cluster, Fence, HeldSession, Lease, Notice
from ._deployments import DeploymentQuery, DeploymentRow, DeploymentStore, RunQuery, RunRow
from ._protocol import CommitListener, Store
from ._records import (
    AgentRow,
    CheckpointWrite,
    CredentialRow,
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
    VaultRow,
)
from ._sqlite import SQLiteStore
from ._sqlite_engine import DatabaseInUse
from ._webhooks import DeliveryRecord, DeliveryRow, OutboxEvent, WebhookEndpointRow, WebhookStore
from ._work import EnvironmentKeyRow, QueueCounts, WorkRow, WorkStore

if TYPE_CHECKING:
    from ._postgres import PostgresStore


def __getattr__(name: str) -> Any:
    if name == "PostgresStore":
        from ._postgres import PostgresStore

        return PostgresStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def open_store(url: str, *, lease_ttl: float = 15.0) -> Store:
    """A store for a database URL, SQLAlchemy style: `sqlite:///relative.db`, `sqlite:////abs/path.db`,
    `sqlite:///:memory:`, or a bare file path; or PostgreSQL: `postgresql://user@host:port/db` (any libpq URL,
    plus `pool_min_size`/`pool_max_size`), which several nodes may share (`lease_ttl`: see `PostgresStore`)."""
    if url.startswith(("postgresql://", "postgres://")):
        from ._postgres import PostgresStore

        return PostgresStore(url, lease_ttl=lease_ttl)
    if url.startswith("sqlite://"):
        rest = url.removeprefix("sqlite://")
        path = rest[1:] if rest.startswith("/") else rest
        if not path:
            raise ValueError("a sqlite URL needs a path: sqlite:///file.db or sqlite:///:memory:")
        return SQLiteStore(path)
    if "://" in url:
        scheme = url.split("://", 1)[0]
        raise ValueError(
            f"unsupported database URL scheme {scheme!r}; use sqlite:///path/to/file.db or postgresql://host/db"
        )
    return SQLiteStore(url)


__all__ = [
    "AgentRow",
    "CheckpointWrite",
    "Cluster",
    "CommitListener",
    "CredentialRow",
    "DatabaseInUse",
    "EnvironmentKeyRow",
    "EnvironmentRow",
    "EventQuery",
    "Fence",
    "FileQuery",
    "FileRow",
    "HeldSession",
    "IdempotencyRecord",
    "Lease",
    "ListQuery",
    "NewEvent",
    "Notice",
    "PostgresStore",
    "QueueCounts",
    "SQLiteStore",
    "SessionChange",
    "SessionResourceRow",
    "SessionRow",
    "Store",
    "StoredEvent",
    "TokenCounts",
    "VaultRow",
    "WorkRow",
    "WorkStore",
    "open_store",
]
__all__ += ["DeliveryRecord", "DeliveryRow", "OutboxEvent", "WebhookEndpointRow", "WebhookStore"]
__all__ += ["DeploymentQuery", "DeploymentRow", "DeploymentStore", "RunQuery", "RunRow"]
