"""`PostgresStore`: the `Store` on PostgreSQL, for one node or several sharing a database (psycopg 3, async, pooled).

Promises, beside the contract's (see `_protocol.py`):
- every write is one statement in autocommit mode, or one explicit transaction; no connection is held between
  two calls (`_postgres_db.py`);
- commits of one session through one store apply in the order they were made, and its commit listeners are
  called after COMMIT in that order; commits from several stores (several nodes) queue on the session row's
  lock, which keeps the log's seqs gap-free and monotonic (`_postgres_log.py`);
- the schema is created and migrated on open, under an advisory lock, so nodes may start at once
  (`_postgres_schema.py`).

The store takes no lock of its own on the database: several nodes share it, and `cluster` (`_postgres_cluster.py`)
leases each active session to one of them, fences the writes of its turn, and carries wake-ups between them.
`single_node=True` refuses a second runtime on the same database (for a deployment that wants to be sure).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg import errors

from .._errors import Conflict
from . import _postgres_log as log
from ._cluster import Fence
from ._postgres_census import PostgresCensus
from ._postgres_cluster import PostgresCluster
from ._postgres_db import Database, has_nul, nul_is_invalid
from ._postgres_deployments import PostgresDeploymentStore
from ._postgres_memory import PostgresMemoryStorage
from ._postgres_skills import PostgresSkillStorage
from ._postgres_webhooks import PostgresWebhookStore, outbox_part
from ._postgres_work import PostgresWorkStore
from ._protocol import CommitListener
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
from ._sql import keyset, session_row
from ._webhooks import OutboxEvent

_FILE_COLS = (
    "workspace, id, filename, mime_type, size_bytes, created_at, expires_at, scope_type, scope_id, downloadable"
)
_RESOURCE_COLS = "session_id, id, type, created_at, body, secret"
_VAULT_COLS = "workspace, id, created_at, archived_at, body"
_CREDENTIAL_COLS = "workspace, id, vault_id, created_at, archived_at, match_key, revision, body, secret"


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


def _credential(r: Sequence[Any]) -> CredentialRow:
    workspace, credential_id, vault_id, created_at, archived_at, match_key, revision, body, secret = r
    sealed = bytes(secret) if secret is not None else None
    return CredentialRow(workspace, credential_id, vault_id, created_at, archived_at, match_key, revision, body, sealed)


class PostgresStore:
    """Durable store on a PostgreSQL database (`postgresql://user@host:port/db`, any libpq URL or conninfo).

    `pool_min_size`/`pool_max_size` size the connection pool (query parameters of the URL of the same names
    win); `pool_timeout` is how long a call waits for a connection before it is `Unavailable`; `lease_ttl` is how
    long a session's lease lasts without renewal (see `_postgres_cluster.py`), and also how long the server lets
    a transaction sit idle; see `_postgres_db.py` for `single_node`.
    """

    def __init__(
        self,
        url: str,
        *,
        pool_min_size: int = 1,
        pool_max_size: int = 10,
        pool_timeout: float = 5.0,
        single_node: bool = False,
        lease_ttl: float = 15.0,
    ) -> None:
        self._db = Database(
            url,
            min_size=pool_min_size,
            max_size=pool_max_size,
            single_node=single_node,
            timeout=pool_timeout,
            idle_in_transaction_timeout=max(lease_ttl, 2.0),
        )
        self.url = self._db.url
        self._locks = self._db.locks
        self._listeners: list[CommitListener] = []
        self.cluster = PostgresCluster(self._db, self, ttl=lease_ttl)
        self.work = PostgresWorkStore(self._db)
        self.census = PostgresCensus(self._db)
        self.webhooks = PostgresWebhookStore(self._db)
        self.deployments = PostgresDeploymentStore(self._db)
        self.memory = PostgresMemoryStorage(self._db)
        self.skills = PostgresSkillStorage(self._db)

    async def open(self) -> None:
        await self._db.open()

    async def close(self) -> None:
        await self.cluster.close()
        await self._db.close()

    def add_commit_listener(self, listener: CommitListener) -> None:
        self._listeners.append(listener)

    def _publish(self, stored: Sequence[StoredEvent]) -> None:
        if stored:
            for listener in self._listeners:
                listener(stored)

    async def _store_with_outbox(
        self, sql: str, args: tuple[Any, ...], webhooks: Sequence[OutboxEvent], *, keyed: bool = False
    ) -> int:
        """`sql` and, when it touched a row, the outbox rows of `webhooks`, in one transaction. `keyed`: the
        arguments only find rows (a NUL in them finds none, as `Database.run`)."""
        if not webhooks:
            return await (self._db.run if keyed else self._db.store)(sql, args)
        outbox, params = outbox_part(webhooks, gate=None)
        async with self._db.connection() as conn, conn.transaction():
            if keyed and has_nul(args):
                return 0
            with nul_is_invalid(args):
                cur = await conn.execute(sql, args)
            if cur.rowcount:
                await conn.execute(outbox, params)
            return cur.rowcount

    # agents ------------------------------------------------------------------------------------------------
    async def insert_agent(self, row: AgentRow, *, webhooks: Sequence[OutboxEvent] = ()) -> None:
        await self._store_with_outbox(
            "WITH a AS (INSERT INTO agents (id, workspace, version, created_at, archived_at, body)"
            " VALUES (%s, %s, %s, %s, %s, %s) RETURNING id)"
            " INSERT INTO agent_versions (agent_id, version, body) SELECT id, %s, %s FROM a",
            (row.id, row.workspace, row.version, row.created_at, row.archived_at, row.body, row.version, row.body),
            webhooks,
        )

    async def add_agent_version(self, row: AgentRow, *, webhooks: Sequence[OutboxEvent] = ()) -> None:
        inserted = await self._store_with_outbox(
            "WITH a AS (UPDATE agents SET version = %s, body = %s WHERE id = %s AND workspace = %s AND version = %s"
            " RETURNING id)"
            " INSERT INTO agent_versions (agent_id, version, body) SELECT id, %s, %s FROM a",
            (row.version, row.body, row.id, row.workspace, row.version - 1, row.version, row.body),
            webhooks,
        )
        if inserted != 1:
            raise Conflict(
                f"agent {row.id} was changed concurrently; version {row.version - 1} is no longer the latest",
                code="version_conflict",
            )

    async def get_agent(self, workspace: str, agent_id: str, version: int | None = None) -> AgentRow | None:
        head = await self._db.one(
            "SELECT version, created_at, archived_at, body FROM agents WHERE id = %s AND workspace = %s",
            (agent_id, workspace),
        )
        if head is None:
            return None
        latest, created_at, archived_at, body = head
        if version is not None and version != latest:
            found = await self._db.one(
                "SELECT body FROM agent_versions WHERE agent_id = %s AND version = %s", (agent_id, version)
            )
            if found is None:
                return None
            return AgentRow(workspace, agent_id, version, created_at, archived_at, found[0])
        return AgentRow(workspace, agent_id, latest, created_at, archived_at, body)

    async def list_agents(self, workspace: str, query: ListQuery) -> list[AgentRow]:
        where, args = ["workspace = %s"], [workspace]
        tail = keyset(query, where, args, mark="%s")
        sql = "SELECT workspace, id, version, created_at, archived_at, body FROM agents WHERE "
        return [AgentRow(*r) for r in await self._db.all(sql + " AND ".join(where) + tail, args)]

    async def list_agent_versions(
        self, workspace: str, agent_id: str, *, before_version: int | None, limit: int
    ) -> list[AgentRow]:
        rows = await self._db.all(
            "SELECT a.created_at, a.archived_at, v.version, v.body FROM agents AS a"
            " JOIN agent_versions AS v ON v.agent_id = a.id"
            " WHERE a.id = %s AND a.workspace = %s AND v.version < %s ORDER BY v.version DESC LIMIT %s",
            (agent_id, workspace, before_version if before_version is not None else 2**62, limit),
        )
        return [
            AgentRow(workspace, agent_id, v, created_at, archived_at, body) for created_at, archived_at, v, body in rows
        ]

    async def archive_agent(
        self, workspace: str, agent_id: str, archived_at: str, *, webhooks: Sequence[OutboxEvent] = ()
    ) -> None:
        await self._store_with_outbox(
            "UPDATE agents SET archived_at = %s WHERE id = %s AND workspace = %s AND archived_at IS NULL",
            (archived_at, agent_id, workspace),
            webhooks,
            keyed=True,
        )

    # environments ------------------------------------------------------------------------------------------
    async def insert_environment(self, row: EnvironmentRow, *, webhooks: Sequence[OutboxEvent] = ()) -> None:
        try:
            await self._store_with_outbox(
                "INSERT INTO environments (id, workspace, name, created_at, archived_at, body)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                (row.id, row.workspace, row.name, row.created_at, row.archived_at, row.body),
                webhooks,
            )
        except errors.UniqueViolation as exc:
            raise Conflict(f"an environment named {row.name!r} already exists", code="duplicate_name") from exc

    async def update_environment(self, row: EnvironmentRow, *, webhooks: Sequence[OutboxEvent] = ()) -> None:
        try:
            await self._store_with_outbox(
                "UPDATE environments SET name = %s, archived_at = %s, body = %s WHERE id = %s AND workspace = %s",
                (row.name, row.archived_at, row.body, row.id, row.workspace),
                webhooks,
            )
        except errors.UniqueViolation as exc:
            raise Conflict(f"an environment named {row.name!r} already exists", code="duplicate_name") from exc

    async def get_environment(self, workspace: str, env_id: str) -> EnvironmentRow | None:
        r = await self._db.one(
            "SELECT workspace, id, name, created_at, archived_at, body FROM environments"
            " WHERE id = %s AND workspace = %s",
            (env_id, workspace),
        )
        return EnvironmentRow(*r) if r else None

    async def list_environments(self, workspace: str, query: ListQuery) -> list[EnvironmentRow]:
        where, args = ["workspace = %s"], [workspace]
        tail = keyset(query, where, args, mark="%s")
        sql = "SELECT workspace, id, name, created_at, archived_at, body FROM environments WHERE "
        return [EnvironmentRow(*r) for r in await self._db.all(sql + " AND ".join(where) + tail, args)]

    async def delete_environment(self, workspace: str, env_id: str, *, webhooks: Sequence[OutboxEvent] = ()) -> bool:
        sql = "DELETE FROM environments WHERE id = %s AND workspace = %s"
        return await self._store_with_outbox(sql, (env_id, workspace), webhooks, keyed=True) == 1

    # sessions ----------------------------------------------------------------------------------------------
    async def insert_session(
        self, row: SessionRow, events: Sequence[NewEvent] = (), *, webhooks: Sequence[OutboxEvent] = ()
    ) -> list[StoredEvent]:
        sql, params = log.insert_session(row, events, webhooks)
        async with self._locks.hold(row.id):
            await self._db.store(sql, params)
            stored = log.stored_events(row.id, len(events), events)
            self._publish(stored)
            return stored

    async def get_session(self, workspace: str | None, session_id: str) -> SessionRow | None:
        if workspace is None:
            r = await self._db.one(f"SELECT {log.SESSION_COLS} FROM sessions WHERE id = %s", (session_id,))
        else:
            r = await self._db.one(
                f"SELECT {log.SESSION_COLS} FROM sessions WHERE id = %s AND workspace = %s", (session_id, workspace)
            )
        return session_row(r) if r else None

    async def list_sessions(self, workspace: str, query: ListQuery) -> list[SessionRow]:
        where: list[str] = ["workspace = %s"]
        args: list[Any] = [workspace]
        filters = query.filters
        if filters.get("agent_id") is not None:
            where.append("agent_id = %s")
            args.append(filters["agent_id"])
        if filters.get("agent_version") is not None:
            where.append("agent_version = %s")
            args.append(filters["agent_version"])
        statuses = filters.get("statuses")
        if statuses:
            assert isinstance(statuses, (list, tuple))
            where.append("status = ANY(%s::text[])")
            args.append(list(statuses))
        if filters.get("memory_store_id") is not None:
            where.append("id IN (SELECT session_id FROM memory_attachments WHERE store_id = %s)")
            args.append(filters["memory_store_id"])
        tail = keyset(query, where, args, mark="%s")
        rows = await self._db.all(f"SELECT {log.SESSION_COLS} FROM sessions WHERE " + " AND ".join(where) + tail, args)
        return [session_row(r) for r in rows]

    async def sessions_wanting_work(self) -> list[SessionRow]:
        rows = await self._db.all(f"SELECT {log.SESSION_COLS} FROM sessions WHERE wants_worker ORDER BY created_at, id")
        return [session_row(r) for r in rows]

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
        async with self._locks.hold(session_id):  # first, before any await: commits keep the order they were made in
            async with self._db.connection() as conn:
                revision, stored = await log.run_commit(
                    conn,
                    session_id,
                    expected_revision=expected_revision,
                    change=change,
                    events=events,
                    idempotency=idempotency,
                    processed=processed,
                    fence=fence,
                    ttl=self.cluster.ttl,
                )
            self._publish(stored)
            return revision, stored

    async def delete_session(self, workspace: str, session_id: str, *, webhooks: Sequence[OutboxEvent] = ()) -> bool:
        if has_nul((workspace, session_id)):
            return False
        async with self._locks.hold(session_id), self._db.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "SELECT 1 FROM sessions WHERE id = %s AND workspace = %s FOR UPDATE", (session_id, workspace)
            )
            if await cur.fetchone() is None:
                return False
            return await log.delete_session(conn, session_id, webhooks) == 1

    # the event log ----------------------------------------------------------------------------------------
    async def list_events(self, session_id: str, query: EventQuery) -> list[StoredEvent]:
        where, args = ["session_id = %s", "seq > %s"], [session_id, query.after_seq]
        if query.before_seq is not None:
            where.append("seq < %s")
            args.append(query.before_seq)
        if query.types:
            where.append("type = ANY(%s::text[])")
            args.append(list(query.types))
        for op, value in (
            (">", query.processed_gt),
            (">=", query.processed_gte),
            ("<", query.processed_lt),
            ("<=", query.processed_lte),
        ):
            if value is not None:
                where.append(f"processed_at {op} %s")
                args.append(value)
        args.append(query.limit)
        order = "DESC" if query.descending else "ASC"
        sql = f"SELECT {log.EVENT_COLS} FROM events WHERE {' AND '.join(where)} ORDER BY seq {order} LIMIT %s"
        return [StoredEvent(session_id, *r) for r in await self._db.all(sql, args)]

    async def get_events(self, session_id: str, event_ids: Sequence[str]) -> list[StoredEvent]:
        rows = await self._db.all(
            f"SELECT {log.EVENT_COLS} FROM events WHERE session_id = %s AND id = ANY(%s::text[]) ORDER BY seq",
            (session_id, [i for i in event_ids if "\x00" not in i]),  # no stored id holds a NUL
        )
        return [StoredEvent(session_id, *r) for r in rows]

    async def get_event(self, session_id: str, event_id: str) -> StoredEvent | None:
        r = await self._db.one(
            f"SELECT {log.EVENT_COLS} FROM events WHERE session_id = %s AND id = %s", (session_id, event_id)
        )
        return StoredEvent(session_id, *r) if r else None

    async def last_seq(self, session_id: str) -> int | None:
        r = await self._db.one("SELECT last_seq FROM sessions WHERE id = %s", (session_id,))
        return None if r is None else int(r[0])

    # API keys ---------------------------------------------------------------------------------------------
    async def api_keys(self) -> dict[str, str]:
        return {str(h): str(w) for h, w in await self._db.all("SELECT key_hash, workspace FROM api_keys")}

    async def add_api_key(self, key_hash: str, workspace: str, created_at: str) -> None:
        await self._db.store(
            "INSERT INTO api_keys (key_hash, workspace, created_at) VALUES (%s, %s, %s) ON CONFLICT (key_hash)"
            " DO UPDATE SET workspace = EXCLUDED.workspace, created_at = EXCLUDED.created_at",
            (key_hash, workspace, created_at),
        )

    # idempotency and checkpoints --------------------------------------------------------------------------
    async def get_idempotency(self, session_id: str, key: str) -> str | None:
        r = await self._db.one("SELECT response FROM idempotency WHERE session_id = %s AND key = %s", (session_id, key))
        return str(r[0]) if r else None

    async def get_checkpoint(self, session_id: str) -> list[bytes]:
        rows = await self._db.all(
            "SELECT body FROM checkpoint_entries WHERE session_id = %s ORDER BY idx", (session_id,)
        )
        return [bytes(r[0]) for r in rows]

    # files ------------------------------------------------------------------------------------------------
    async def insert_file(self, row: FileRow, content: bytes) -> None:
        await self._db.store(
            f"INSERT INTO files ({_FILE_COLS}, content) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
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
                row.downloadable,
                content,
            ),
        )

    async def get_file(self, workspace: str, file_id: str) -> FileRow | None:
        r = await self._db.one(f"SELECT {_FILE_COLS} FROM files WHERE id = %s AND workspace = %s", (file_id, workspace))
        return FileRow(*r) if r else None

    async def get_file_content(self, workspace: str, file_id: str) -> bytes | None:
        r = await self._db.one("SELECT content FROM files WHERE id = %s AND workspace = %s", (file_id, workspace))
        return bytes(r[0]) if r else None

    async def list_files(self, workspace: str, query: FileQuery) -> list[FileRow]:
        where: list[str] = ["workspace = %s"]
        args: list[Any] = [workspace]
        if query.scope_id is not None:
            where.append("scope_id = %s")
            args.append(query.scope_id)
        if query.ids is not None:
            if not query.ids:
                return []
            where.append("id = ANY(%s::text[])")
            args.append([i for i in query.ids if "\x00" not in i])  # no stored id holds a NUL
        if query.before is not None:
            where.append("(created_at, id) < (%s, %s)")
            args.extend(query.before)
        args.append(query.limit)
        sql = f"SELECT {_FILE_COLS} FROM files WHERE {' AND '.join(where)} ORDER BY created_at DESC, id DESC LIMIT %s"
        return [FileRow(*r) for r in await self._db.all(sql, args)]

    async def delete_file(self, workspace: str, file_id: str) -> bool:
        return await self._db.run("DELETE FROM files WHERE id = %s AND workspace = %s", (file_id, workspace)) == 1

    # session resources ------------------------------------------------------------------------------------
    async def put_session_resource(self, row: SessionResourceRow) -> None:
        await self._db.store(
            f"INSERT INTO session_resources ({_RESOURCE_COLS}) VALUES (%s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (session_id, id) DO UPDATE SET type = EXCLUDED.type, created_at = EXCLUDED.created_at,"
            " body = EXCLUDED.body, secret = EXCLUDED.secret",
            (row.session_id, row.id, row.type, row.created_at, row.body, row.secret),
        )

    async def get_session_resource(self, session_id: str, resource_id: str) -> SessionResourceRow | None:
        r = await self._db.one(
            f"SELECT {_RESOURCE_COLS} FROM session_resources WHERE session_id = %s AND id = %s",
            (session_id, resource_id),
        )
        return SessionResourceRow(*r) if r else None

    async def list_session_resources(self, session_id: str) -> list[SessionResourceRow]:
        rows = await self._db.all(
            f"SELECT {_RESOURCE_COLS} FROM session_resources WHERE session_id = %s ORDER BY created_at, id",
            (session_id,),
        )
        return [SessionResourceRow(*r) for r in rows]

    async def delete_session_resource(self, session_id: str, resource_id: str) -> bool:
        deleted = await self._db.run(
            "DELETE FROM session_resources WHERE session_id = %s AND id = %s", (session_id, resource_id)
        )
        return deleted == 1

    # vaults and credentials ---------------------------------------------------------------------------------
    async def put_vault(self, row: VaultRow, *, webhooks: Sequence[OutboxEvent] = ()) -> None:
        await self._store_with_outbox(
            f"INSERT INTO vaults ({_VAULT_COLS}) VALUES (%s, %s, %s, %s, %s) ON CONFLICT (id) DO UPDATE SET"
            " workspace = EXCLUDED.workspace, created_at = EXCLUDED.created_at, archived_at = EXCLUDED.archived_at,"
            " body = EXCLUDED.body",
            (row.workspace, row.id, row.created_at, row.archived_at, row.body),
            webhooks,
        )

    async def get_vault(self, workspace: str, vault_id: str) -> VaultRow | None:
        r = await self._db.one(
            f"SELECT {_VAULT_COLS} FROM vaults WHERE id = %s AND workspace = %s", (vault_id, workspace)
        )
        return VaultRow(*r) if r else None

    async def list_vaults(self, workspace: str, query: ListQuery) -> list[VaultRow]:
        where, args = ["workspace = %s"], [workspace]
        tail = keyset(query, where, args, mark="%s")
        rows = await self._db.all(f"SELECT {_VAULT_COLS} FROM vaults WHERE " + " AND ".join(where) + tail, args)
        return [VaultRow(*r) for r in rows]

    async def delete_vault(self, workspace: str, vault_id: str, *, webhooks: Sequence[OutboxEvent] = ()) -> bool:
        if has_nul((workspace, vault_id)):
            return False
        async with self._db.connection() as conn, conn.transaction():
            cur = await conn.execute("DELETE FROM vaults WHERE id = %s AND workspace = %s", (vault_id, workspace))
            if cur.rowcount != 1:
                return False
            await conn.execute("DELETE FROM vault_credentials WHERE vault_id = %s", (vault_id,))
            if webhooks:
                await conn.execute(*outbox_part(webhooks, gate=None))
            return True

    async def insert_credential(
        self, row: CredentialRow, *, max_active: int, webhooks: Sequence[OutboxEvent] = ()
    ) -> None:
        values = _credential_values(row)
        async with self._db.connection() as conn, conn.transaction():
            # the vault's row lock makes count-then-insert atomic against inserts on other nodes
            with nul_is_invalid(values):
                await conn.execute("SELECT 1 FROM vaults WHERE id = %s FOR UPDATE", (row.vault_id,))
            cur = await conn.execute(
                "SELECT count(*) FROM vault_credentials WHERE vault_id = %s AND archived_at IS NULL", (row.vault_id,)
            )
            counted = await cur.fetchone()
            if counted is not None and counted[0] >= max_active:
                raise Conflict(f"a vault holds at most {max_active} active credentials", code="credential_limit")
            try:
                with nul_is_invalid(values):
                    placeholders = ", ".join(["%s"] * len(values))
                    await conn.execute(
                        f"INSERT INTO vault_credentials ({_CREDENTIAL_COLS}) VALUES ({placeholders})", values
                    )
            except errors.UniqueViolation as exc:
                raise Conflict(
                    "an active credential of this vault already has this MCP server URL or secret name",
                    code="duplicate_credential",
                ) from exc
            if webhooks:
                await conn.execute(*outbox_part(webhooks, gate=None))

    async def update_credential(
        self, row: CredentialRow, *, expected_revision: int, webhooks: Sequence[OutboxEvent] = ()
    ) -> bool:
        updated = await self._store_with_outbox(
            "UPDATE vault_credentials SET archived_at = %s, match_key = %s, revision = %s, body = %s, secret = %s"
            " WHERE id = %s AND workspace = %s AND vault_id = %s AND revision = %s",
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
            webhooks,
        )
        return updated == 1

    async def get_credential(self, workspace: str, vault_id: str, credential_id: str) -> CredentialRow | None:
        r = await self._db.one(
            f"SELECT {_CREDENTIAL_COLS} FROM vault_credentials WHERE id = %s AND workspace = %s AND vault_id = %s",
            (credential_id, workspace, vault_id),
        )
        return _credential(r) if r else None

    async def list_credentials(self, workspace: str, vault_id: str, query: ListQuery) -> list[CredentialRow]:
        where: list[str] = ["vault_id = %s", "workspace = %s"]
        args: list[Any] = [vault_id, workspace]
        tail = keyset(query, where, args, mark="%s")
        rows = await self._db.all(
            f"SELECT {_CREDENTIAL_COLS} FROM vault_credentials WHERE " + " AND ".join(where) + tail, args
        )
        return [_credential(r) for r in rows]

    async def delete_credential(
        self, workspace: str, vault_id: str, credential_id: str, *, webhooks: Sequence[OutboxEvent] = ()
    ) -> bool:
        deleted = await self._store_with_outbox(
            "DELETE FROM vault_credentials WHERE id = %s AND workspace = %s AND vault_id = %s",
            (credential_id, workspace, vault_id),
            webhooks,
            keyed=True,
        )
        return deleted == 1
