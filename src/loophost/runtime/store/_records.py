"""Rows as the store hands them to the runtime.

Documents (`body`) are the wire JSON the runtime produced, stored as text and handed back as text: the store
never re-validates them, so replay can serve the stored JSON as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from ._webhooks import OutboxEvent


class NewEvent(NamedTuple):
    """An event the runtime has built and serialized, not yet given a `seq`. (A NamedTuple: built per event.)"""

    id: str
    type: str
    processed_at: str | None
    body: str


class StoredEvent(NamedTuple):
    """A committed event: `seq` is monotonic per session starting at 1, `id` is stable forever.
    (A NamedTuple: built per event on the hot path.)"""

    session_id: str
    seq: int
    id: str
    type: str
    processed_at: str | None
    body: str


@dataclass(frozen=True, slots=True)
class AgentRow:
    """One version of an agent; `archived_at` is agent-level and shared by every version."""

    workspace: str
    id: str
    version: int
    created_at: str
    archived_at: str | None
    body: str


@dataclass(frozen=True, slots=True)
class EnvironmentRow:
    workspace: str
    id: str
    name: str
    created_at: str
    archived_at: str | None
    body: str


class TokenCounts(NamedTuple):
    """Token counters of a session (or what one model response adds to them)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0


_NO_TOKENS = TokenCounts()


@dataclass(frozen=True, slots=True)
class SessionRow:
    """A session's document plus the columns the store filters and compares on.

    `revision` increases on every committed change of the row; writers compare-and-set on it.
    """

    workspace: str
    id: str
    agent_id: str
    agent_version: int
    environment_id: str
    status: str
    created_at: str
    archived_at: str | None
    revision: int
    last_seq: int
    body: str
    internal: str = "{}"
    """Runtime-owned state that is not on the wire (queued input, pending actions, pause), as JSON."""
    wants_worker: bool = False
    """The runtime's flag for sessions that have work to resume after a restart (queued input, a running turn)."""
    updated_at: str | None = None
    """Kept as a column, like `status` and `usage`: a step changes them without rewriting `body`."""
    usage: TokenCounts = _NO_TOKENS
    """The session's token counters; `body`'s `usage` is stale once a step has added to these."""


@dataclass(frozen=True, slots=True)
class CheckpointWrite:
    """An append to a session's checkpoint, an ordered list of opaque entries (the history is append-only).

    `append` goes at positions `keep`, `keep + 1`, ...: `keep` is the number of entries already stored, so a step
    that adds messages to a long history writes only the new ones (bytes per turn stay proportional to the turn).
    """

    keep: int
    append: tuple[bytes, ...] = ()


@dataclass(frozen=True, slots=True)
class SessionChange:
    """What one commit changes on a session row: any subset of these, all in the events' transaction."""

    body: str | None = None
    status: str | None = None
    archived_at: str | None = None
    internal: str | None = None
    wants_worker: bool | None = None
    checkpoint: CheckpointWrite | None = None
    """The agent core's state, committed with the events of the step that produced it."""
    updated_at: str | None = None
    usage: TokenCounts | None = None
    """Added to the session's counters (never a rewrite of the document)."""
    webhooks: tuple[OutboxEvent, ...] = ()
    """Webhook events this change causes: their outbox rows commit in its transaction (`_webhooks.py`)."""


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    """A client's idempotency key and the response first answered for it."""

    key: str
    response: str


@dataclass(frozen=True, slots=True)
class EventQuery:
    """A page request over one session's log (bounds are exclusive)."""

    after_seq: int = 0
    before_seq: int | None = None
    types: tuple[str, ...] = ()
    descending: bool = False
    limit: int = 1000
    processed_gt: str | None = None
    processed_gte: str | None = None
    processed_lt: str | None = None
    processed_lte: str | None = None


@dataclass(frozen=True, slots=True)
class ListQuery:
    """A keyset page request over a workspace's resources ordered by (created_at, id)."""

    limit: int = 20
    descending: bool = False
    after: tuple[str, str] | None = None
    include_archived: bool = False
    created_gt: str | None = None
    created_gte: str | None = None
    created_lt: str | None = None
    created_lte: str | None = None
    filters: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FileRow:
    """A stored file's metadata; its bytes are stored beside it and read only on download (`get_file_content`).

    `scope_type`/`scope_id` name the session that wrote the file (agent outputs), both None for uploads.
    """

    workspace: str
    id: str
    filename: str
    mime_type: str
    size_bytes: int
    created_at: str
    expires_at: str | None = None
    scope_type: str | None = None
    scope_id: str | None = None
    downloadable: bool = False


@dataclass(frozen=True, slots=True)
class FileQuery:
    """A page of a workspace's files, newest first: keyset on (created_at, id), filtered by scope or ids."""

    limit: int = 20
    before: tuple[str, str] | None = None
    """Only files strictly older than this (created_at, id) position (the previous page's last row)."""
    scope_id: str | None = None
    ids: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class SessionResourceRow:
    """A resource attached to a session: its wire JSON (`body`, never holding a secret) and the secret kept
    apart (a github_repository's authorization token), which no read path of the wire ever returns."""

    session_id: str
    id: str
    type: str
    created_at: str
    body: str
    secret: str | None = None


@dataclass(frozen=True, slots=True)
class VaultRow:
    workspace: str
    id: str
    created_at: str
    archived_at: str | None
    body: str


@dataclass(frozen=True, slots=True)
class CredentialRow:
    """A vault credential: its wire JSON (`body`, never holding a secret) and its secrets, encrypted by the
    runtime before they reach the store (`secret`; None once archived).

    `match_key` is what must be unique among a vault's active credentials (the normalized MCP server URL, or the
    environment variable's name); None once archived, which frees it. `revision` grows on every update, for
    compare-and-set (an OAuth refresh writes its new token back only over the revision it read)."""

    workspace: str
    id: str
    vault_id: str
    created_at: str
    archived_at: str | None
    match_key: str | None
    revision: int
    body: str
    secret: bytes | None
