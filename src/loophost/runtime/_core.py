"""What every part of the runtime shares: the store, the bus, the config and the session writer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from pydantic import BaseModel

from ._bus import EventBus
from ._ids import new_id
from ._writer import Change, LoadedSession, SessionLocks, SessionWriter
from .store import NewEvent, Store, StoredEvent


@dataclass(frozen=True, slots=True)
class RuntimeConfig:
    """Operator settings. Limits protect the log from events that would bloat every later replay."""

    max_event_bytes: int = 4 * 1024 * 1024
    max_file_bytes: int = 64 * 1024 * 1024
    enforce_downloadable: bool = False
    """Claude's Files API refuses to download uploads (`downloadable: false`); a self-hosted owner may read what
    it uploaded, so loophost serves them unless this is set."""
    default_page_size: int = 20
    max_page_size: int = 1000
    event_page_size: int = 1000
    vault_key: str | None = field(default=None, repr=False)
    """Vault key(s), base64url, comma-separated, the first encrypting (else `LOOPHOST_VAULT_KEY`, else the key
    file; see `_vault_keys.py`). Never logged."""
    vault_key_file: str | None = None
    """Where the vault key is kept (generated on first start, mode 0600); `Runtime.from_url` sets it beside a
    database file."""
    work_lease_seconds: int = 60
    """The lease of a self-hosted work item: a worker that does not heartbeat for this long has lost it (its item
    is queued again and the tool calls it held are answered as interrupted). A heartbeat may ask for 10-600 s."""
    work_reclaim_ms: int = 5000
    """A polled item that is not acknowledged for this long is handed out again (a poll may say otherwise)."""
    webhooks_allow_private: bool = False
    """Send webhooks to private, loopback and link-local addresses, and over plain http (`loophost serve
    --webhooks-allow-private`); off, such URLs are refused (SSRF)."""
    lease_ttl: float = 15.0
    """Seconds a node's lease on an active session lasts without renewal (several nodes on PostgreSQL): how long a
    dead node's sessions wait before another node resumes them. `Runtime.from_url` hands it to the store."""


class RuntimeCore:
    """Base of the runtime's services: owns nothing it did not open (the store is opened and closed by `Runtime`)."""

    def __init__(self, store: Store, *, config: RuntimeConfig | None = None) -> None:
        self.store = store
        self.config = config or RuntimeConfig()
        self.bus = EventBus()
        self.writer = SessionWriter(store, max_event_bytes=self.config.max_event_bytes)

    @property
    def locks(self) -> SessionLocks:
        return self.writer.locks

    def new_event(self, event: BaseModel, *, only_set: bool = True) -> NewEvent:
        return self.writer.new_event(event, only_set=only_set)

    @staticmethod
    def event_id() -> str:
        return new_id("sevt")

    async def load_session(self, workspace: str | None, session_id: str) -> LoadedSession:
        """For a writer holding the session's lock."""
        return await self.writer.load(workspace, session_id)

    async def read_session(self, workspace: str, session_id: str) -> LoadedSession:
        """For a reader: what the last commit left, once any commit in flight has settled."""
        return await self.writer.read(workspace, session_id)

    async def commit(self, loaded: LoadedSession, change: Change) -> Sequence[StoredEvent]:
        return await self.writer.commit(loaded, change)
