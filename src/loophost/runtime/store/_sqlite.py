"""`SQLiteStore`: the embedded default `Store` (one file, WAL, group commit)."""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._errors import Conflict, StaleWrite
from ._cluster import Fence
from ._protocol import CommitListener
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
from ._sql import keyset, session_row
from ._sqlite_census import SQLiteCensus
from ._sqlite_deployments import SQLiteDeploymentStore
from ._sqlite_engine import SeqAllocator, SessionGone, SQLiteEngine, append_rows
from ._sqlite_memory import SQLiteMemoryStorage
from ._sqlite_schema import migrate
from ._sqlite_skills import SQLiteSkillStorage
from ._sqlite_webhooks import SQLiteWebhookStore, write_outbox
from ._sqlite_work import SQLiteWorkStore
from ._webhooks import OutboxEvent

_EVENT_COLS = "seq, id, type, processed_at, body"
_SESSION_COLS = (
    "workspace, id, agent_id, agent_version, environment_id, status, created_at, archived_at, revision,"
    " (SELECT COALESCE(MAX(seq), 0) FROM events WHERE events.session_id = sessions.id), body, internal, wants_worker,"
    " updated_at, input_tokens, output_tokens, cache_read_input_tokens, cache_creation_input_tokens"
)
# `content` is the last column of `files` and is never selected here: SQLite then never reads its overflow pages
_FILE_COLS = (
    "workspace, id, filename, mime_type, size_bytes, created_at, expires_at, scope_type, scope_id, downloadable"
)
_RESOURCE_COLS = "session_id, id, type, created_at, body, secret"
_VAULT_COLS = "workspace, id, created_at, archived_at, body"
_CREDENTIAL_COLS = "workspace, id, vault_id, created_at, archived_at, match_key, revision, body, secret"
_SESSION_INSERT_COLS = (
    "workspace, id, agent_id, agent_version, environment_id, status, created_at, archived_at, revision, body,"
    " internal, wants_worker, updated_at"
)


def _file(row: sqlite3.Row | tuple[Any, ...]) -> FileRow:
    workspace, file_id, filename, mime_type, size_bytes, created_at, expires_at, scope_type, scope_id, dl = row
    return FileRow(
        workspace, file_id, filename, mime_type, size_bytes, created_at, expires_at, scope_type, scope_id, bool(dl)
    )


def _credential(row: sqlite3.Row | tuple[Any, ...]) -> CredentialRow:
    workspace, credential_id, vault_id, created_at, archived_at, match_key, revision, body, secret = row
    sealed = bytes(secret) if secret is not None else None
    return CredentialRow(workspace, credential_id, vault_id, created_at, archived_at, match_key, revision, body, sealed)


def _credential_values(row: CredentialRow) -> tuple[Any, ...]:
    return (
        row.workspace,
        row.id,
        row.vault_id,
        row.created_at,
        row.archived_at,
        row.match_key,
        row.revision,
        row.body,
        row.secret,
    )


class SQLiteStore:
    """Durable store on one SQLite file.

    `path=":memory:"` keeps the file in a private temporary directory removed on close (WAL needs a real file;
    several connections need to share it).
    """

    cluster: None = None
    """No leases: the file lock makes one process the only writer (see `_cluster.py`)."""

    def __init__(self, path: str | os.PathLike[str], *, synchronous: str = "NORMAL") -> None:
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None
        raw = os.fspath(path)
        if raw == ":memory:":
            self._tmpdir = tempfile.TemporaryDirectory(prefix="loophost-")
            raw = str(Path(self._tmpdir.name) / "loophost.db")
        else:
            Path(raw).parent.mkdir(parents=True, exist_ok=True)
        if synchronous.upper() not in {"NORMAL", "FULL", "OFF"}:
            raise ValueError("synchronous must be NORMAL, FULL or OFF")
        self.path = raw
        self._engine = SQLiteEngine(raw, synchronous=synchronous.upper())
        self.work = SQLiteWorkStore(self._engine)
        self.census = SQLiteCensus(self._engine)
        self.webhooks = SQLiteWebhookStore(self._engine)
        self.deployments = SQLiteDeploymentStore(self._engine)
        self.memory = SQLiteMemoryStorage(self._engine)
        self.skills = SQLiteSkillStorage(self._engine)

    async def open(self) -> None:
        await self._engine.open(migrate)

    async def close(self) -> None:
        await self._engine.close()
        if self._tmpdir is not None:
            self._tmpdir.cleanup()

    def add_commit_listener(self, listener: CommitListener) -> None:
        self._engine.add_listener(listener)

    # agents ------------------------------------------------------------------------------------------------
    async def insert_agent(self, row: AgentRow, *, webhooks: Sequence[OutboxEvent] = ()) -> None:
        def fn(conn: sqlite3.Connection) -> tuple[None, Sequence[StoredEvent]]:
            conn.execute(
                "INSERT INTO agents (id, workspace, version, created_at, archived_at, body) VALUES (?,?,?,?,?,?)",
                (row.id, row.workspace, row.version, row.created_at, row.archived_at, row.body),
            )
            conn.execute(
                "INSERT INTO agent_versions (agent_id, version, body) VALUES (?,?,?)",
                (row.id, row.version, row.body),
            )
            write_outbox(conn, webhooks)
            return None, ()

        await self._engine.write(fn)

    async def add_agent_version(self, row: AgentRow, *, webhooks: Sequence[OutboxEvent] = ()) -> None:
        def fn(conn: sqlite3.Connection) -> tuple[None, Sequence[StoredEvent]]:
            cur = conn.execute(
                "UPDATE agents SET version = ?, body = ? WHERE id = ? AND workspace = ? AND version = ?",
                (row.version, row.body, row.id, row.workspace, row.version - 1),
            )
            if cur.rowcount != 1:
                raise Conflict(
                    f"agent {row.id} was changed concurrently; version {row.version - 1} is no longer the latest",
                    code="version_conflict",
                )
            conn.execute(
                "INSERT INTO agent_versions (agent_id, version, body) VALUES (?,?,?)",
                (row.id, row.version, row.body),
            )
            write_outbox(conn, webhooks)
            return None, ()

        await self._engine.write(fn)

    async def get_agent(self, workspace: str, agent_id: str, version: int | None = None) -> AgentRow | None:
        def fn(conn: sqlite3.Connection) -> AgentRow | None:
            head = conn.execute(
                "SELECT version, created_at, archived_at, body FROM agents WHERE id = ? AND workspace = ?",
                (agent_id, workspace),
            ).fetchone()
            if head is None:
                return None
            latest, created_at, archived_at, body = head
            if version is not None and version != latest:
                found = conn.execute(
                    "SELECT body FROM agent_versions WHERE agent_id = ? AND version = ?", (agent_id, version)
                ).fetchone()
                if found is None:
                    return None
                return AgentRow(workspace, agent_id, version, created_at, archived_at, found[0])
            return AgentRow(workspace, agent_id, latest, created_at, archived_at, body)

        return await self._engine.read(fn)

    async def list_agents(self, workspace: str, query: ListQuery) -> list[AgentRow]:
        def fn(conn: sqlite3.Connection) -> list[AgentRow]:
            where, args = ["workspace = ?"], [workspace]
            tail = keyset(query, where, args, mark="?")
            sql = "SELECT workspace, id, version, created_at, archived_at, body FROM agents WHERE "
            return [AgentRow(*r) for r in conn.execute(sql + " AND ".join(where) + tail, args)]

        return await self._engine.read(fn)

    async def list_agent_versions(
        self, workspace: str, agent_id: str, *, before_version: int | None, limit: int
    ) -> list[AgentRow]:
        def fn(conn: sqlite3.Connection) -> list[AgentRow]:
            head = conn.execute(
                "SELECT created_at, archived_at FROM agents WHERE id = ? AND workspace = ?",
                (agent_id, workspace),
            ).fetchone()
            if head is None:
                return []
            rows = conn.execute(
                "SELECT version, body FROM agent_versions WHERE agent_id = ? AND version < ? "
                "ORDER BY version DESC LIMIT ?",
                (agent_id, before_version if before_version is not None else 2**62, limit),
            )
            return [AgentRow(workspace, agent_id, v, head[0], head[1], body) for v, body in rows]

        return await self._engine.read(fn)

    async def archive_agent(
        self, workspace: str, agent_id: str, archived_at: str, *, webhooks: Sequence[OutboxEvent] = ()
    ) -> None:
        def fn(conn: sqlite3.Connection) -> tuple[None, Sequence[StoredEvent]]:
            cur = conn.execute(
                "UPDATE agents SET archived_at = ? WHERE id = ? AND workspace = ? AND archived_at IS NULL",
                (archived_at, agent_id, workspace),
            )
            if cur.rowcount == 1:
                write_outbox(conn, webhooks)
            return None, ()

        await self._engine.write(fn)

    # environments ------------------------------------------------------------------------------------------
    async def insert_environment(self, row: EnvironmentRow, *, webhooks: Sequence[OutboxEvent] = ()) -> None:
        def fn(conn: sqlite3.Connection) -> tuple[None, Sequence[StoredEvent]]:
            try:
                conn.execute(
                    "INSERT INTO environments (id, workspace, name, created_at, archived_at, body) "
                    "VALUES (?,?,?,?,?,?)",
                    (row.id, row.workspace, row.name, row.created_at, row.archived_at, row.body),
                )
            except sqlite3.IntegrityError as exc:
                raise Conflict(f"an environment named {row.name!r} already exists", code="duplicate_name") from exc
            write_outbox(conn, webhooks)
            return None, ()

        await self._engine.write(fn)

    async def update_environment(self, row: EnvironmentRow, *, webhooks: Sequence[OutboxEvent] = ()) -> None:
        def fn(conn: sqlite3.Connection) -> tuple[None, Sequence[StoredEvent]]:
            try:
                cur = conn.execute(
                    "UPDATE environments SET name = ?, archived_at = ?, body = ? WHERE id = ? AND workspace = ?",
                    (row.name, row.archived_at, row.body, row.id, row.workspace),
                )
            except sqlite3.IntegrityError as exc:
                raise Conflict(f"an environment named {row.name!r} already exists", code="duplicate_name") from exc
            if cur.rowcount == 1:
                write_outbox(conn, webhooks)
            return None, ()

        await self._engine.write(fn)

    async def get_environment(self, workspace: str, env_id: str) -> EnvironmentRow | None:
        def fn(conn: sqlite3.Connection) -> EnvironmentRow | None:
            r = conn.execute(
                "SELECT workspace, id, name, created_at, archived_at, body FROM environments "
                "WHERE id = ? AND workspace = ?",
                (env_id, workspace),
            ).fetchone()
            return EnvironmentRow(*r) if r else None

        return await self._engine.read(fn)

    async def list_environments(self, workspace: str, query: ListQuery) -> list[EnvironmentRow]:
        def fn(conn: sqlite3.Connection) -> list[EnvironmentRow]:
            where, args = ["workspace = ?"], [workspace]
            tail = keyset(query, where, args, mark="?")
            sql = "SELECT workspace, id, name, created_at, archived_at, body FROM environments WHERE "
            return [EnvironmentRow(*r) for r in conn.execute(sql + " AND ".join(where) + tail, args)]

        return await self._engine.read(fn)

    async def delete_environment(self, workspace: str, env_id: str, *, webhooks: Sequence[OutboxEvent] = ()) -> bool:
        def fn(conn: sqlite3.Connection) -> tuple[bool, Sequence[StoredEvent]]:
            cur = conn.execute("DELETE FROM environments WHERE id = ? AND workspace = ?", (env_id, workspace))
            if cur.rowcount == 1:
                write_outbox(conn, webhooks)
            return cur.rowcount == 1, ()

        return await self._engine.write(fn)

    # sessions ----------------------------------------------------------------------------------------------
    async def insert_session(
        self, row: SessionRow, events: Sequence[NewEvent] = (), *, webhooks: Sequence[OutboxEvent] = ()
    ) -> list[StoredEvent]:
        def fn(conn: sqlite3.Connection) -> tuple[list[StoredEvent], Sequence[StoredEvent]]:
            conn.execute(
                f"INSERT INTO sessions ({_SESSION_INSERT_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    row.workspace,
                    row.id,
                    row.agent_id,
                    row.agent_version,
                    row.environment_id,
                    row.status,
                    row.created_at,
                    row.archived_at,
                    row.revision,
                    row.body,
                    row.internal,
                    int(row.wants_worker),
                    row.updated_at,
                ),
            )
            stored = _append_guarded(conn, self._engine.seqs, row.id, events)
            write_outbox(conn, webhooks)
            return stored, stored

        return await self._engine.write(fn)

    async def get_session(self, workspace: str | None, session_id: str) -> SessionRow | None:
        def fn(conn: sqlite3.Connection) -> SessionRow | None:
            if workspace is None:
                r = conn.execute(f"SELECT {_SESSION_COLS} FROM sessions WHERE id = ?", (session_id,)).fetchone()
            else:
                r = conn.execute(
                    f"SELECT {_SESSION_COLS} FROM sessions WHERE id = ? AND workspace = ?",
                    (session_id, workspace),
                ).fetchone()
            return session_row(r) if r else None

        return await self._engine.read(fn)

    async def list_sessions(self, workspace: str, query: ListQuery) -> list[SessionRow]:
        def fn(conn: sqlite3.Connection) -> list[SessionRow]:
            where: list[str] = ["workspace = ?"]
            args: list[object] = [workspace]
            filters = query.filters
            if filters.get("agent_id") is not None:
                where.append("agent_id = ?")
                args.append(filters["agent_id"])
            if filters.get("agent_version") is not None:
                where.append("agent_version = ?")
                args.append(filters["agent_version"])
            statuses = filters.get("statuses")
            if statuses:
                assert isinstance(statuses, (list, tuple))
                where.append(f"status IN ({','.join('?' * len(statuses))})")
                args.extend(statuses)
            if filters.get("memory_store_id") is not None:
                where.append("id IN (SELECT session_id FROM memory_attachments WHERE store_id = ?)")
                args.append(filters["memory_store_id"])
            tail = keyset(query, where, args, mark="?")
            return [
                session_row(r)
                for r in conn.execute(f"SELECT {_SESSION_COLS} FROM sessions WHERE " + " AND ".join(where) + tail, args)
            ]

        return await self._engine.read(fn)

    async def sessions_wanting_work(self) -> list[SessionRow]:
        def fn(conn: sqlite3.Connection) -> list[SessionRow]:
            return [
                session_row(r)
                for r in conn.execute(
                    f"SELECT {_SESSION_COLS} FROM sessions WHERE wants_worker = 1 ORDER BY created_at"
                )
            ]

        return await self._engine.read(fn)

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
        """(`fence` is not checked: one process owns the file, so nobody else can hold a session's lease.)"""

        def fn(conn: sqlite3.Connection) -> tuple[tuple[int, list[StoredEvent]], Sequence[StoredEvent]]:
            revision = expected_revision
            if change is None or expected_revision is None:  # else the UPDATE below compares and sets
                revision = _check_revision(conn, session_id, expected_revision)
            if idempotency is not None:
                try:
                    conn.execute(
                        "INSERT INTO idempotency (session_id, key, response) VALUES (?,?,?)",
                        (session_id, idempotency.key, idempotency.response),
                    )
                except sqlite3.IntegrityError as exc:
                    raise Conflict("idempotency key already used", code="idempotent_replay") from exc
            if change is not None:
                sets: list[str] = ["revision = revision + 1"]
                args: list[object] = []
                for column, value in (
                    ("body", change.body),
                    ("status", change.status),
                    ("internal", change.internal),
                    ("updated_at", change.updated_at),
                ):
                    if value is not None:
                        sets.append(f"{column} = ?")
                        args.append(value)
                if change.archived_at is not None:
                    sets.append("archived_at = ?")
                    args.append(change.archived_at)
                if change.wants_worker is not None:
                    sets.append("wants_worker = ?")
                    args.append(int(change.wants_worker))
                if change.usage is not None:
                    for column, added in zip(TokenCounts._fields, change.usage, strict=True):
                        if added:
                            sets.append(f"{column} = {column} + ?")
                            args.append(added)
                if change.checkpoint is not None:
                    _write_checkpoint(conn, session_id, change.checkpoint)
                write_outbox(conn, change.webhooks)
                if expected_revision is None:
                    conn.execute(f"UPDATE sessions SET {', '.join(sets)} WHERE id = ?", (*args, session_id))
                else:
                    updated = conn.execute(
                        f"UPDATE sessions SET {', '.join(sets)} WHERE id = ? AND revision = ?",
                        (*args, session_id, expected_revision),
                    )
                    if updated.rowcount != 1:
                        _check_revision(conn, session_id, expected_revision)  # raises: gone, or changed
                revision = (revision or 0) + 1
            if processed is not None:
                ids, at = processed
                conn.executemany(
                    "UPDATE events SET processed_at = ?, body = json_set(body, '$.processed_at', ?) "
                    "WHERE session_id = ? AND id = ? AND processed_at IS NULL",
                    [(at, at, session_id, event_id) for event_id in ids],
                )
            stored = _append_guarded(conn, self._engine.seqs, session_id, events)
            assert revision is not None
            return (revision, stored), stored

        return await self._engine.write(fn)

    async def delete_session(self, workspace: str, session_id: str, *, webhooks: Sequence[OutboxEvent] = ()) -> bool:
        def fn(conn: sqlite3.Connection) -> tuple[bool, Sequence[StoredEvent]]:
            cur = conn.execute("DELETE FROM sessions WHERE id = ? AND workspace = ?", (session_id, workspace))
            if cur.rowcount != 1:
                return False, ()
            write_outbox(conn, webhooks)
            self._engine.seqs.forget(session_id)
            conn.execute("DELETE FROM events WHERE session_id = ?", (session_id,))
            conn.execute("DELETE FROM idempotency WHERE session_id = ?", (session_id,))
            conn.execute("DELETE FROM checkpoint_entries WHERE session_id = ?", (session_id,))
            conn.execute("DELETE FROM session_resources WHERE session_id = ?", (session_id,))
            return True, ()

        return await self._engine.write(fn)

    # the event log ----------------------------------------------------------------------------------------
    async def list_events(self, session_id: str, query: EventQuery) -> list[StoredEvent]:
        def fn(conn: sqlite3.Connection) -> list[StoredEvent]:
            where, args = ["session_id = ?", "seq > ?"], [session_id, query.after_seq]
            if query.before_seq is not None:
                where.append("seq < ?")
                args.append(query.before_seq)
            if query.types:
                where.append(f"type IN ({','.join('?' * len(query.types))})")
                args.extend(query.types)
            for op, value in (
                (">", query.processed_gt),
                (">=", query.processed_gte),
                ("<", query.processed_lt),
                ("<=", query.processed_lte),
            ):
                if value is not None:
                    where.append(f"processed_at {op} ?")
                    args.append(value)
            args.append(query.limit)
            order = "DESC" if query.descending else "ASC"
            sql = f"SELECT {_EVENT_COLS} FROM events WHERE {' AND '.join(where)} ORDER BY seq {order} LIMIT ?"
            return [StoredEvent(session_id, *r) for r in conn.execute(sql, args)]

        return await self._engine.read(fn)

    async def get_events(self, session_id: str, event_ids: Sequence[str]) -> list[StoredEvent]:
        def fn(conn: sqlite3.Connection) -> list[StoredEvent]:
            found: list[StoredEvent] = []
            for start in range(0, len(event_ids), 500):
                chunk = event_ids[start : start + 500]
                sql = f"SELECT {_EVENT_COLS} FROM events WHERE session_id = ? AND id IN ({','.join('?' * len(chunk))})"
                found.extend(StoredEvent(session_id, *r) for r in conn.execute(sql, (session_id, *chunk)))
            return sorted(found, key=lambda e: e.seq)

        return await self._engine.read(fn)

    async def get_event(self, session_id: str, event_id: str) -> StoredEvent | None:
        def fn(conn: sqlite3.Connection) -> StoredEvent | None:
            r = conn.execute(
                f"SELECT {_EVENT_COLS} FROM events WHERE session_id = ? AND id = ?", (session_id, event_id)
            ).fetchone()
            return StoredEvent(session_id, *r) if r else None

        return await self._engine.read(fn)

    async def last_seq(self, session_id: str) -> int | None:
        def fn(conn: sqlite3.Connection) -> int | None:
            r = conn.execute(
                "SELECT (SELECT 1 FROM sessions WHERE id = ?), (SELECT MAX(seq) FROM events WHERE session_id = ?)",
                (session_id, session_id),
            ).fetchone()
            return None if r[0] is None else int(r[1] or 0)

        return await self._engine.read(fn)

    # API keys ---------------------------------------------------------------------------------------------
    async def api_keys(self) -> dict[str, str]:
        def fn(conn: sqlite3.Connection) -> dict[str, str]:
            return {str(h): str(w) for h, w in conn.execute("SELECT key_hash, workspace FROM api_keys")}

        return await self._engine.read(fn)

    async def add_api_key(self, key_hash: str, workspace: str, created_at: str) -> None:
        def fn(conn: sqlite3.Connection) -> tuple[None, Sequence[StoredEvent]]:
            conn.execute(
                "INSERT OR REPLACE INTO api_keys (key_hash, workspace, created_at) VALUES (?,?,?)",
                (key_hash, workspace, created_at),
            )
            return None, ()

        await self._engine.write(fn)

    # idempotency and checkpoints --------------------------------------------------------------------------
    async def get_idempotency(self, session_id: str, key: str) -> str | None:
        def fn(conn: sqlite3.Connection) -> str | None:
            r = conn.execute(
                "SELECT response FROM idempotency WHERE session_id = ? AND key = ?", (session_id, key)
            ).fetchone()
            return str(r[0]) if r else None

        return await self._engine.read(fn)

    async def get_checkpoint(self, session_id: str) -> list[bytes]:
        def fn(conn: sqlite3.Connection) -> list[bytes]:
            rows = conn.execute("SELECT body FROM checkpoint_entries WHERE session_id = ? ORDER BY idx", (session_id,))
            return [bytes(r[0]) for r in rows]

        return await self._engine.read(fn)

    # files ------------------------------------------------------------------------------------------------
    async def insert_file(self, row: FileRow, content: bytes) -> None:
        def fn(conn: sqlite3.Connection) -> tuple[None, Sequence[StoredEvent]]:
            conn.execute(
                f"INSERT INTO files ({_FILE_COLS}, content) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    row.workspace,
                    row.id,
                    row.filename,
                    row.mime_type,
                    row.size_bytes,
                    row.created_at,
                    row.expires_at,
                    row.scope_type,
                    row.scope_id,
                    int(row.downloadable),
                    content,
                ),
            )
            return None, ()

        await self._engine.write(fn)

    async def get_file(self, workspace: str, file_id: str) -> FileRow | None:
        def fn(conn: sqlite3.Connection) -> FileRow | None:
            r = conn.execute(
                f"SELECT {_FILE_COLS} FROM files WHERE id = ? AND workspace = ?", (file_id, workspace)
            ).fetchone()
            return _file(r) if r else None

        return await self._engine.read(fn)

    async def get_file_content(self, workspace: str, file_id: str) -> bytes | None:
        def fn(conn: sqlite3.Connection) -> bytes | None:
            sql = "SELECT content FROM files WHERE id = ? AND workspace = ?"
            r = conn.execute(sql, (file_id, workspace)).fetchone()
            return bytes(r[0]) if r else None

        return await self._engine.read(fn)

    async def list_files(self, workspace: str, query: FileQuery) -> list[FileRow]:
        def fn(conn: sqlite3.Connection) -> list[FileRow]:
            where: list[str] = ["workspace = ?"]
            args: list[object] = [workspace]
            if query.scope_id is not None:
                where.append("scope_id = ?")
                args.append(query.scope_id)
            if query.ids is not None:
                if not query.ids:
                    return []
                where.append(f"id IN ({','.join('?' * len(query.ids))})")
                args.extend(query.ids)
            if query.before is not None:
                where.append("(created_at, id) < (?, ?)")
                args.extend(query.before)
            args.append(query.limit)
            sql = (
                f"SELECT {_FILE_COLS} FROM files WHERE {' AND '.join(where)} ORDER BY created_at DESC, id DESC LIMIT ?"
            )
            return [_file(r) for r in conn.execute(sql, args)]

        return await self._engine.read(fn)

    async def delete_file(self, workspace: str, file_id: str) -> bool:
        def fn(conn: sqlite3.Connection) -> tuple[bool, Sequence[StoredEvent]]:
            cur = conn.execute("DELETE FROM files WHERE id = ? AND workspace = ?", (file_id, workspace))
            return cur.rowcount == 1, ()

        return await self._engine.write(fn)

    # session resources ------------------------------------------------------------------------------------
    async def put_session_resource(self, row: SessionResourceRow) -> None:
        def fn(conn: sqlite3.Connection) -> tuple[None, Sequence[StoredEvent]]:
            conn.execute(
                f"INSERT OR REPLACE INTO session_resources ({_RESOURCE_COLS}) VALUES (?,?,?,?,?,?)",
                (row.session_id, row.id, row.type, row.created_at, row.body, row.secret),
            )
            return None, ()

        await self._engine.write(fn)

    async def get_session_resource(self, session_id: str, resource_id: str) -> SessionResourceRow | None:
        def fn(conn: sqlite3.Connection) -> SessionResourceRow | None:
            r = conn.execute(
                f"SELECT {_RESOURCE_COLS} FROM session_resources WHERE session_id = ? AND id = ?",
                (session_id, resource_id),
            ).fetchone()
            return SessionResourceRow(*r) if r else None

        return await self._engine.read(fn)

    async def list_session_resources(self, session_id: str) -> list[SessionResourceRow]:
        def fn(conn: sqlite3.Connection) -> list[SessionResourceRow]:
            rows = conn.execute(
                f"SELECT {_RESOURCE_COLS} FROM session_resources WHERE session_id = ? ORDER BY created_at, id",
                (session_id,),
            )
            return [SessionResourceRow(*r) for r in rows]

        return await self._engine.read(fn)

    async def delete_session_resource(self, session_id: str, resource_id: str) -> bool:
        def fn(conn: sqlite3.Connection) -> tuple[bool, Sequence[StoredEvent]]:
            cur = conn.execute(
                "DELETE FROM session_resources WHERE session_id = ? AND id = ?", (session_id, resource_id)
            )
            return cur.rowcount == 1, ()

        return await self._engine.write(fn)

    # vaults and credentials ---------------------------------------------------------------------------------
    async def put_vault(self, row: VaultRow, *, webhooks: Sequence[OutboxEvent] = ()) -> None:
        def fn(conn: sqlite3.Connection) -> tuple[None, Sequence[StoredEvent]]:
            conn.execute(
                f"INSERT OR REPLACE INTO vaults ({_VAULT_COLS}) VALUES (?,?,?,?,?)",
                (row.workspace, row.id, row.created_at, row.archived_at, row.body),
            )
            write_outbox(conn, webhooks)
            return None, ()

        await self._engine.write(fn)

    async def get_vault(self, workspace: str, vault_id: str) -> VaultRow | None:
        def fn(conn: sqlite3.Connection) -> VaultRow | None:
            sql = f"SELECT {_VAULT_COLS} FROM vaults WHERE id = ? AND workspace = ?"
            r = conn.execute(sql, (vault_id, workspace)).fetchone()
            return VaultRow(*r) if r else None

        return await self._engine.read(fn)

    async def list_vaults(self, workspace: str, query: ListQuery) -> list[VaultRow]:
        def fn(conn: sqlite3.Connection) -> list[VaultRow]:
            where, args = ["workspace = ?"], [workspace]
            tail = keyset(query, where, args, mark="?")
            sql = f"SELECT {_VAULT_COLS} FROM vaults WHERE " + " AND ".join(where) + tail
            return [VaultRow(*r) for r in conn.execute(sql, args)]

        return await self._engine.read(fn)

    async def delete_vault(self, workspace: str, vault_id: str, *, webhooks: Sequence[OutboxEvent] = ()) -> bool:
        def fn(conn: sqlite3.Connection) -> tuple[bool, Sequence[StoredEvent]]:
            cur = conn.execute("DELETE FROM vaults WHERE id = ? AND workspace = ?", (vault_id, workspace))
            if cur.rowcount != 1:
                return False, ()
            write_outbox(conn, webhooks)
            conn.execute("DELETE FROM vault_credentials WHERE vault_id = ?", (vault_id,))
            return True, ()

        return await self._engine.write(fn)

    async def insert_credential(
        self, row: CredentialRow, *, max_active: int, webhooks: Sequence[OutboxEvent] = ()
    ) -> None:
        def fn(conn: sqlite3.Connection) -> tuple[None, Sequence[StoredEvent]]:
            active = conn.execute(
                "SELECT COUNT(*) FROM vault_credentials WHERE vault_id = ? AND archived_at IS NULL", (row.vault_id,)
            ).fetchone()[0]
            if active >= max_active:
                raise Conflict(f"a vault holds at most {max_active} active credentials", code="credential_limit")
            try:
                conn.execute(
                    f"INSERT INTO vault_credentials ({_CREDENTIAL_COLS}) VALUES (?,?,?,?,?,?,?,?,?)",
                    _credential_values(row),
                )
            except sqlite3.IntegrityError as exc:
                raise Conflict(
                    "an active credential of this vault already has this MCP server URL or secret name",
                    code="duplicate_credential",
                ) from exc
            write_outbox(conn, webhooks)
            return None, ()

        await self._engine.write(fn)

    async def update_credential(
        self, row: CredentialRow, *, expected_revision: int, webhooks: Sequence[OutboxEvent] = ()
    ) -> bool:
        def fn(conn: sqlite3.Connection) -> tuple[bool, Sequence[StoredEvent]]:
            cur = conn.execute(
                "UPDATE vault_credentials SET archived_at = ?, match_key = ?, revision = ?, body = ?, secret = ? "
                "WHERE id = ? AND workspace = ? AND vault_id = ? AND revision = ?",
                (
                    row.archived_at,
                    row.match_key,
                    row.revision,
                    row.body,
                    row.secret,
                    row.id,
                    row.workspace,
                    row.vault_id,
                    expected_revision,
                ),
            )
            if cur.rowcount == 1:
                write_outbox(conn, webhooks)
            return cur.rowcount == 1, ()

        return await self._engine.write(fn)

    async def get_credential(self, workspace: str, vault_id: str, credential_id: str) -> CredentialRow | None:
        def fn(conn: sqlite3.Connection) -> CredentialRow | None:
            sql = f"SELECT {_CREDENTIAL_COLS} FROM vault_credentials WHERE id = ? AND workspace = ? AND vault_id = ?"
            r = conn.execute(sql, (credential_id, workspace, vault_id)).fetchone()
            return _credential(r) if r else None

        return await self._engine.read(fn)

    async def list_credentials(self, workspace: str, vault_id: str, query: ListQuery) -> list[CredentialRow]:
        def fn(conn: sqlite3.Connection) -> list[CredentialRow]:
            where: list[str] = ["vault_id = ?", "workspace = ?"]
            args: list[Any] = [vault_id, workspace]
            tail = keyset(query, where, args, mark="?")
            sql = f"SELECT {_CREDENTIAL_COLS} FROM vault_credentials WHERE " + " AND ".join(where) + tail
            return [_credential(r) for r in conn.execute(sql, args)]

        return await self._engine.read(fn)

    async def delete_credential(
        self, workspace: str, vault_id: str, credential_id: str, *, webhooks: Sequence[OutboxEvent] = ()
    ) -> bool:
        def fn(conn: sqlite3.Connection) -> tuple[bool, Sequence[StoredEvent]]:
            cur = conn.execute(
                "DELETE FROM vault_credentials WHERE id = ? AND workspace = ? AND vault_id = ?",
                (credential_id, workspace, vault_id),
            )
            if cur.rowcount == 1:
                write_outbox(conn, webhooks)
            return cur.rowcount == 1, ()

        return await self._engine.write(fn)


def _append_guarded(
    conn: sqlite3.Connection, seqs: SeqAllocator, session_id: str, events: Sequence[NewEvent]
) -> list[StoredEvent]:
    try:
        return append_rows(conn, seqs, session_id, events)
    except SessionGone as exc:
        raise StaleWrite(f"session {session_id} no longer exists", code="session_gone") from exc


def _check_revision(conn: sqlite3.Connection, session_id: str, expected: int | None) -> int:
    """The session's revision; `StaleWrite` when it is gone or not the one expected."""
    row = conn.execute("SELECT revision FROM sessions WHERE id = ?", (session_id,)).fetchone()
    if row is None:
        raise StaleWrite(f"session {session_id} no longer exists", code="session_gone")
    if expected is not None and row[0] != expected:
        raise StaleWrite(f"session {session_id} changed concurrently (revision {row[0]})")
    return int(row[0])


def _write_checkpoint(conn: sqlite3.Connection, session_id: str, write: CheckpointWrite) -> None:
    """Append entries (the history is append-only: a position already taken means another writer got there)."""
    try:
        conn.executemany(
            "INSERT INTO checkpoint_entries (session_id, idx, body) VALUES (?,?,?)",
            [(session_id, write.keep + i, body) for i, body in enumerate(write.append)],
        )
    except sqlite3.IntegrityError as exc:
        raise StaleWrite(f"session {session_id}'s history already has an entry at {write.keep}") from exc
