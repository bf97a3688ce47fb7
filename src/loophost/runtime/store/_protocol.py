"""The `Store` contract every backend (SQLite, PostgreSQL) implements.

Rules every backend keeps, and that the contract tests in tests/runtime/store check:
- an event is committed before the write that appends it (`insert_session`, `commit_session`) returns and before
  any commit listener sees it;
- events of one session get seqs 1, 2, 3 … with no hole, in commit order;
- a session change and the events announcing it commit in one transaction;
- commit listeners are called in commit order, on the event loop, once per committed batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from ._census import Census
from ._cluster import Cluster, Fence
from ._deployments import DeploymentStore
from ._memory import MemoryStorage
from ._records import (
    AgentRow,
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
    VaultRow,
)
from ._skills import SkillStorage
from ._webhooks import OutboxEvent, WebhookStore
from ._work import WorkStore

CommitListener = Callable[[Sequence[StoredEvent]], None]


class Store(Protocol):
    @property
    def work(self) -> WorkStore:
        """The work queue of self-hosted environments (`_work.py`)."""
        ...

    @property
    def memory(self) -> MemoryStorage:
        """Memory stores, memories and their versions (`_memory.py`)."""
        ...

    @property
    def skills(self) -> SkillStorage:
        """Skills and their versions (`_skills.py`)."""
        ...

    @property
    def deployments(self) -> DeploymentStore:
        """Deployments and their runs (`_deployments.py`)."""
        ...

    @property
    def webhooks(self) -> WebhookStore:
        """Webhook endpoints and the delivery outbox (`_webhooks.py`)."""
        ...

    @property
    def census(self) -> Census:
        """Sessions and work items counted by state, for `/metrics` (`_census.py`)."""
        ...

    @property
    def cluster(self) -> Cluster | None:
        """Leases, the cross-node session lock and wake-ups when several nodes share the store (`_cluster.py`);
        None when one process owns it."""
        ...

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    def add_commit_listener(self, listener: CommitListener) -> None: ...

    # agents
    # (`webhooks`: outbox rows committed in the same transaction, when the write changed a row; see `_webhooks.py`)
    async def insert_agent(self, row: AgentRow, *, webhooks: Sequence[OutboxEvent] = ()) -> None: ...
    async def add_agent_version(self, row: AgentRow, *, webhooks: Sequence[OutboxEvent] = ()) -> None:
        """Insert version `row.version`; `Conflict` if it exists or is not latest+1."""
        ...

    async def get_agent(self, workspace: str, agent_id: str, version: int | None = None) -> AgentRow | None: ...
    async def list_agents(self, workspace: str, query: ListQuery) -> list[AgentRow]: ...
    async def list_agent_versions(
        self, workspace: str, agent_id: str, *, before_version: int | None, limit: int
    ) -> list[AgentRow]: ...
    async def archive_agent(
        self, workspace: str, agent_id: str, archived_at: str, *, webhooks: Sequence[OutboxEvent] = ()
    ) -> None: ...

    # environments
    async def insert_environment(self, row: EnvironmentRow, *, webhooks: Sequence[OutboxEvent] = ()) -> None:
        """`Conflict` when the name is taken in the workspace."""
        ...

    async def update_environment(self, row: EnvironmentRow, *, webhooks: Sequence[OutboxEvent] = ()) -> None: ...
    async def get_environment(self, workspace: str, env_id: str) -> EnvironmentRow | None: ...
    async def list_environments(self, workspace: str, query: ListQuery) -> list[EnvironmentRow]: ...
    async def delete_environment(
        self, workspace: str, env_id: str, *, webhooks: Sequence[OutboxEvent] = ()
    ) -> bool: ...

    # sessions
    async def insert_session(
        self, row: SessionRow, events: Sequence[NewEvent] = (), *, webhooks: Sequence[OutboxEvent] = ()
    ) -> list[StoredEvent]: ...
    async def get_session(self, workspace: str | None, session_id: str) -> SessionRow | None:
        """`workspace=None` looks across workspaces (recovery only)."""
        ...

    async def list_sessions(self, workspace: str, query: ListQuery) -> list[SessionRow]: ...
    async def sessions_wanting_work(self) -> list[SessionRow]:
        """Sessions whose last commit set `wants_worker` (all workspaces; for recovery on open)."""
        ...

    async def commit_session(
        self,
        session_id: str,
        *,
        expected_revision: int | None,
        change: SessionChange | None = None,
        events: Sequence[NewEvent] = (),
        idempotency: IdempotencyRecord | None = None,
        processed: tuple[Sequence[str], str] | None = None,
        fence: Fence | None = None,
    ) -> tuple[int, list[StoredEvent]]:
        """Atomically: check the revision (`StaleWrite`) and, with a `cluster`, the session's lease against `fence`
        (`LeaseLost`), apply `change`, append `events`, mark the event ids in `processed` as processed at the given
        time, and record `idempotency` (`Conflict(code="idempotent_replay")` if the key exists). Returns the new
        revision and the stored events."""
        ...

    async def delete_session(
        self, workspace: str, session_id: str, *, webhooks: Sequence[OutboxEvent] = ()
    ) -> bool: ...

    # the event log
    async def list_events(self, session_id: str, query: EventQuery) -> list[StoredEvent]: ...
    async def get_event(self, session_id: str, event_id: str) -> StoredEvent | None: ...
    async def get_events(self, session_id: str, event_ids: Sequence[str]) -> list[StoredEvent]:
        """The events of the session's log with these ids (those that exist), in log order."""
        ...

    async def last_seq(self, session_id: str) -> int | None:
        """None when the session does not exist."""
        ...

    # API keys (hashes only; the server's generated key lives here)
    async def api_keys(self) -> dict[str, str]:
        """Key hash -> workspace."""
        ...

    async def add_api_key(self, key_hash: str, workspace: str, created_at: str) -> None: ...

    # idempotency and checkpoints
    async def get_idempotency(self, session_id: str, key: str) -> str | None: ...
    async def get_checkpoint(self, session_id: str) -> list[bytes]:
        """The session's checkpoint entries in order (written through `SessionChange.checkpoint`)."""
        ...

    # files (content is stored with the row but read only by `get_file_content`)
    async def insert_file(self, row: FileRow, content: bytes) -> None: ...
    async def get_file(self, workspace: str, file_id: str) -> FileRow | None: ...
    async def get_file_content(self, workspace: str, file_id: str) -> bytes | None: ...
    async def list_files(self, workspace: str, query: FileQuery) -> list[FileRow]:
        """Newest first by (created_at, id), strictly before `query.before`, filtered by scope id and ids."""
        ...

    async def delete_file(self, workspace: str, file_id: str) -> bool: ...

    # session resources (scoped through their session; `delete_session` removes them too)
    async def put_session_resource(self, row: SessionResourceRow) -> None:
        """Insert the resource, or replace the one with the same (session_id, id)."""
        ...

    async def get_session_resource(self, session_id: str, resource_id: str) -> SessionResourceRow | None: ...
    async def list_session_resources(self, session_id: str) -> list[SessionResourceRow]:
        """In attachment order: (created_at, id)."""
        ...

    async def delete_session_resource(self, session_id: str, resource_id: str) -> bool: ...

    # vaults and their credentials (secrets arrive encrypted; the store never sees a plain one)
    async def put_vault(self, row: VaultRow, *, webhooks: Sequence[OutboxEvent] = ()) -> None:
        """Insert the vault, or replace the one with the same id (with the outbox rows of `webhooks`)."""
        ...

    async def get_vault(self, workspace: str, vault_id: str) -> VaultRow | None: ...
    async def list_vaults(self, workspace: str, query: ListQuery) -> list[VaultRow]: ...
    async def delete_vault(self, workspace: str, vault_id: str, *, webhooks: Sequence[OutboxEvent] = ()) -> bool:
        """Remove the vault and every credential in it (`webhooks` are written only when it existed)."""
        ...

    async def insert_credential(
        self, row: CredentialRow, *, max_active: int, webhooks: Sequence[OutboxEvent] = ()
    ) -> None:
        """`Conflict(code="duplicate_credential")` when an active credential of the vault has the same
        `match_key`; `Conflict(code="credential_limit")` when the vault already holds `max_active` active ones."""
        ...

    async def update_credential(
        self, row: CredentialRow, *, expected_revision: int, webhooks: Sequence[OutboxEvent] = ()
    ) -> bool:
        """Replace the credential if its stored revision is `expected_revision` (compare-and-set); False if not
        (another writer got there first, or it is gone). `row.revision` is the new revision. `webhooks` are
        written only when it was replaced."""
        ...

    async def get_credential(self, workspace: str, vault_id: str, credential_id: str) -> CredentialRow | None: ...
    async def list_credentials(self, workspace: str, vault_id: str, query: ListQuery) -> list[CredentialRow]:
        """By (created_at, id), archived ones only with `query.include_archived`."""
        ...

    async def delete_credential(
        self, workspace: str, vault_id: str, credential_id: str, *, webhooks: Sequence[OutboxEvent] = ()
    ) -> bool: ...
