"""The PostgreSQL schema, versioned: each entry of MIGRATIONS moves the database one version up, on open.

Several nodes may start at once against one database, so a migration runs in one transaction that first takes a
transaction-scoped advisory lock: the second node waits, then finds the schema current and does nothing. DDL is
transactional in PostgreSQL, so a failed migration leaves the previous version whole.

The tables mirror the SQLite schema (`_sqlite_schema.py`) with two differences: `sessions.last_seq` holds the last
seq of the session's log (the row is locked by every commit that appends, which is what makes seqs gap-free
under writers on several nodes), and every column that is compared or sorted as text is `COLLATE "C"`, so keyset
pages order by bytes as they do on SQLite whatever the database's locale.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from psycopg import AsyncConnection

SCHEMA_LOCK = 0x6C6F6F70_00000001
"""The advisory lock key migrations hold (`pg_advisory_xact_lock`); per database."""

MIGRATIONS: list[str] = [
    # 1: the durable session substrate (the SQLite schema at its version 2)
    """
    CREATE TABLE agents (
        id text COLLATE "C" PRIMARY KEY,
        workspace text COLLATE "C" NOT NULL,
        version integer NOT NULL,
        created_at text COLLATE "C" NOT NULL,
        archived_at text,
        body text NOT NULL
    );
    CREATE INDEX agents_by_created ON agents (workspace, created_at, id);
    CREATE TABLE agent_versions (
        agent_id text COLLATE "C" NOT NULL,
        version integer NOT NULL,
        body text NOT NULL,
        PRIMARY KEY (agent_id, version)
    );
    CREATE TABLE environments (
        id text COLLATE "C" PRIMARY KEY,
        workspace text COLLATE "C" NOT NULL,
        name text COLLATE "C" NOT NULL,
        created_at text COLLATE "C" NOT NULL,
        archived_at text,
        body text NOT NULL,
        CONSTRAINT environments_name_key UNIQUE (workspace, name)
    );
    CREATE INDEX environments_by_created ON environments (workspace, created_at, id);
    CREATE TABLE sessions (
        id text COLLATE "C" PRIMARY KEY,
        workspace text COLLATE "C" NOT NULL,
        agent_id text COLLATE "C" NOT NULL,
        agent_version integer NOT NULL,
        environment_id text COLLATE "C" NOT NULL,
        status text COLLATE "C" NOT NULL,
        created_at text COLLATE "C" NOT NULL,
        archived_at text,
        revision bigint NOT NULL DEFAULT 1,
        last_seq bigint NOT NULL DEFAULT 0,
        body text NOT NULL,
        internal text NOT NULL DEFAULT '{}',
        wants_worker boolean NOT NULL DEFAULT false,
        updated_at text,
        input_tokens bigint NOT NULL DEFAULT 0,
        output_tokens bigint NOT NULL DEFAULT 0,
        cache_read_input_tokens bigint NOT NULL DEFAULT 0,
        cache_creation_input_tokens bigint NOT NULL DEFAULT 0
    );
    CREATE INDEX sessions_by_created ON sessions (workspace, created_at, id);
    CREATE INDEX sessions_wanting_work ON sessions (created_at, id) WHERE wants_worker;
    CREATE TABLE events (
        session_id text COLLATE "C" NOT NULL,
        seq bigint NOT NULL,
        id text COLLATE "C" NOT NULL,
        type text COLLATE "C" NOT NULL,
        processed_at text COLLATE "C",
        body text NOT NULL,
        CONSTRAINT events_pkey PRIMARY KEY (session_id, seq),
        CONSTRAINT events_id_key UNIQUE (id)
    );
    CREATE TABLE checkpoint_entries (
        session_id text COLLATE "C" NOT NULL,
        idx integer NOT NULL,
        body bytea NOT NULL,
        CONSTRAINT checkpoint_entries_pkey PRIMARY KEY (session_id, idx)
    );
    CREATE TABLE api_keys (
        key_hash text COLLATE "C" PRIMARY KEY,
        workspace text NOT NULL,
        created_at text NOT NULL
    );
    CREATE TABLE idempotency (
        session_id text COLLATE "C" NOT NULL,
        key text COLLATE "C" NOT NULL,
        response text NOT NULL,
        CONSTRAINT idempotency_pkey PRIMARY KEY (session_id, key)
    );
    CREATE TABLE files (
        id text COLLATE "C" PRIMARY KEY,
        workspace text COLLATE "C" NOT NULL,
        filename text NOT NULL,
        mime_type text NOT NULL,
        size_bytes bigint NOT NULL,
        created_at text COLLATE "C" NOT NULL,
        expires_at text,
        scope_type text,
        scope_id text COLLATE "C",
        downloadable boolean NOT NULL DEFAULT false,
        content bytea NOT NULL
    );
    CREATE INDEX files_by_created ON files (workspace, created_at, id);
    CREATE INDEX files_by_scope ON files (workspace, scope_id, created_at, id) WHERE scope_id IS NOT NULL;
    CREATE TABLE session_resources (
        session_id text COLLATE "C" NOT NULL,
        id text COLLATE "C" NOT NULL,
        type text NOT NULL,
        created_at text COLLATE "C" NOT NULL,
        body text NOT NULL,
        secret text,
        PRIMARY KEY (session_id, id)
    );
    """,
    # 2: vaults and credentials; a credential's secrets are one encrypted value (the runtime encrypts them)
    """
    CREATE TABLE vaults (
        id text COLLATE "C" PRIMARY KEY,
        workspace text COLLATE "C" NOT NULL,
        created_at text COLLATE "C" NOT NULL,
        archived_at text,
        body text NOT NULL
    );
    CREATE INDEX vaults_by_created ON vaults (workspace, created_at, id);
    CREATE TABLE vault_credentials (
        id text COLLATE "C" PRIMARY KEY,
        workspace text COLLATE "C" NOT NULL,
        vault_id text COLLATE "C" NOT NULL,
        created_at text COLLATE "C" NOT NULL,
        archived_at text,
        match_key text COLLATE "C",
        revision bigint NOT NULL,
        body text NOT NULL,
        secret bytea
    );
    CREATE INDEX vault_credentials_by_created ON vault_credentials (vault_id, created_at, id);
    CREATE UNIQUE INDEX vault_credentials_by_key ON vault_credentials (vault_id, match_key)
        WHERE match_key IS NOT NULL;
    """,
    # 3: session leases (several nodes): the owner node, the claim's epoch (the fence every write of a turn checks),
    # and when the lease expires unless renewed; sweeps look for sessions that want a worker and have no live owner
    """
    ALTER TABLE sessions
        ADD COLUMN lease_owner text COLLATE "C",
        ADD COLUMN lease_epoch bigint NOT NULL DEFAULT 0,
        ADD COLUMN lease_expires_at timestamptz;
    """,
    # 4: the work queue of self-hosted environments (runtime/_work.py): work items (at most one live per session),
    # environment keys (hashes only), and when each worker last polled (for the queue's stats)
    """
    CREATE TABLE work_items (
        workspace text COLLATE "C" NOT NULL,
        id text COLLATE "C" PRIMARY KEY,
        environment_id text COLLATE "C" NOT NULL,
        session_id text COLLATE "C" NOT NULL,
        data_type text NOT NULL,
        state text COLLATE "C" NOT NULL,
        metadata text NOT NULL,
        created_at text COLLATE "C" NOT NULL,
        acknowledged_at text,
        started_at text,
        latest_heartbeat_at text,
        stop_requested_at text,
        stopped_at text,
        polled_at text COLLATE "C",
        lease_expires_at text COLLATE "C",
        ttl_seconds integer NOT NULL,
        token_hash text COLLATE "C",
        revision bigint NOT NULL
    );
    CREATE INDEX work_items_by_created ON work_items (environment_id, created_at, id);
    CREATE INDEX work_items_queued ON work_items (environment_id, created_at, id) WHERE state = 'queued';
    CREATE UNIQUE INDEX work_items_live ON work_items (session_id) WHERE state <> 'stopped';
    CREATE UNIQUE INDEX work_items_by_token ON work_items (token_hash) WHERE token_hash IS NOT NULL;
    CREATE INDEX work_items_leased ON work_items (lease_expires_at)
        WHERE state IN ('starting', 'active', 'stopping');
    CREATE TABLE environment_keys (
        workspace text COLLATE "C" NOT NULL,
        id text COLLATE "C" PRIMARY KEY,
        environment_id text COLLATE "C" NOT NULL,
        key_hash text COLLATE "C" NOT NULL UNIQUE,
        created_at text COLLATE "C" NOT NULL
    );
    CREATE INDEX environment_keys_by_created ON environment_keys (environment_id, created_at, id);
    CREATE TABLE work_pollers (
        environment_id text COLLATE "C" NOT NULL,
        worker_id text COLLATE "C" NOT NULL,
        polled_at text COLLATE "C" NOT NULL,
        PRIMARY KEY (environment_id, worker_id)
    );
    """,
    # webhooks and deployments (issue 16): endpoints, the outbox (a delivery row per event and subscribed endpoint),
    # deployments (`next_run_at`: the schedule's next fire, null when none is due) and their runs
    """
    CREATE TABLE webhook_endpoints (
        workspace text COLLATE "C" NOT NULL,
        id text COLLATE "C" PRIMARY KEY,
        url text COLLATE "C" NOT NULL,
        enabled_events text COLLATE "C" NOT NULL,
        state text COLLATE "C" NOT NULL,
        disabled_reason text COLLATE "C" NOT NULL,
        name text COLLATE "C" NOT NULL,
        description text COLLATE "C" NOT NULL,
        created_at text COLLATE "C" NOT NULL,
        updated_at text COLLATE "C" NOT NULL,
        secret bytea NOT NULL,
        consecutive_failures integer NOT NULL DEFAULT 0
    );
    CREATE INDEX webhook_endpoints_by_workspace ON webhook_endpoints (workspace, created_at, id);
    CREATE TABLE webhook_deliveries (
        endpoint_id text COLLATE "C" NOT NULL,
        event_id text COLLATE "C" NOT NULL,
        workspace text COLLATE "C" NOT NULL,
        type text COLLATE "C" NOT NULL,
        created_at text COLLATE "C" NOT NULL,
        payload text COLLATE "C" NOT NULL,
        state text COLLATE "C" NOT NULL,
        attempts integer NOT NULL DEFAULT 0,
        next_attempt_at text COLLATE "C" NOT NULL,
        claimed_until text COLLATE "C",
        last_error text COLLATE "C",
        delivered_at text COLLATE "C",
        PRIMARY KEY (endpoint_id, event_id)
    );
    CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
    CREATE TABLE deployments (
        workspace text COLLATE "C" NOT NULL,
        id text COLLATE "C" PRIMARY KEY,
        created_at text COLLATE "C" NOT NULL,
        archived_at text COLLATE "C",
        status text COLLATE "C" NOT NULL,
        agent_id text COLLATE "C" NOT NULL,
        next_run_at text COLLATE "C",
        body text COLLATE "C" NOT NULL
    );
    CREATE INDEX deployments_by_workspace ON deployments (workspace, created_at, id);
    CREATE INDEX deployments_due ON deployments (next_run_at) WHERE next_run_at IS NOT NULL;
    CREATE TABLE deployment_runs (
        workspace text COLLATE "C" NOT NULL,
        id text COLLATE "C" PRIMARY KEY,
        deployment_id text COLLATE "C" NOT NULL,
        created_at text COLLATE "C" NOT NULL,
        trigger_type text COLLATE "C" NOT NULL,
        scheduled_at text COLLATE "C",
        state text COLLATE "C" NOT NULL,
        has_error integer NOT NULL DEFAULT 0,
        claimed_until text COLLATE "C",
        body text COLLATE "C" NOT NULL,
        UNIQUE (deployment_id, scheduled_at)
    );
    CREATE INDEX deployment_runs_by_workspace ON deployment_runs (workspace, created_at, id);
    CREATE INDEX deployment_runs_pending ON deployment_runs (claimed_until) WHERE state = 'pending'
    """,
    # memory stores and skills (issue 17): stores, live memories (one per path), immutable versions, which
    # sessions a store is attached to; skills and their versions (the uploaded files as one archive)
    """
    CREATE TABLE memory_stores (
        workspace text COLLATE "C" NOT NULL,
        id text COLLATE "C" PRIMARY KEY,
        created_at text COLLATE "C" NOT NULL,
        archived_at text COLLATE "C",
        body text COLLATE "C" NOT NULL
    );
    CREATE INDEX memory_stores_by_created ON memory_stores (workspace, created_at, id);
    CREATE TABLE memories (
        workspace text COLLATE "C" NOT NULL,
        id text COLLATE "C" PRIMARY KEY,
        store_id text COLLATE "C" NOT NULL,
        path text COLLATE "C" NOT NULL,
        content text COLLATE "C" NOT NULL,
        content_sha256 text COLLATE "C" NOT NULL,
        content_size_bytes integer NOT NULL,
        version_id text COLLATE "C" NOT NULL,
        created_at text COLLATE "C" NOT NULL,
        updated_at text COLLATE "C" NOT NULL
    );
    CREATE UNIQUE INDEX memories_by_path ON memories (store_id, path);
    CREATE TABLE memory_versions (
        workspace text COLLATE "C" NOT NULL,
        id text COLLATE "C" PRIMARY KEY,
        store_id text COLLATE "C" NOT NULL,
        memory_id text COLLATE "C" NOT NULL,
        operation text COLLATE "C" NOT NULL,
        created_at text COLLATE "C" NOT NULL,
        path text COLLATE "C",
        content text COLLATE "C",
        content_sha256 text COLLATE "C",
        content_size_bytes integer,
        created_by text COLLATE "C",
        session_id text COLLATE "C",
        api_key_id text COLLATE "C",
        redacted_at text COLLATE "C",
        redacted_by text COLLATE "C"
    );
    CREATE INDEX memory_versions_by_created ON memory_versions (store_id, created_at, id);
    CREATE INDEX memory_versions_by_memory ON memory_versions (memory_id, created_at, id);
    CREATE TABLE memory_attachments (
        store_id text COLLATE "C" NOT NULL,
        session_id text COLLATE "C" NOT NULL,
        PRIMARY KEY (store_id, session_id)
    );
    CREATE INDEX memory_attachments_by_session ON memory_attachments (session_id);
    CREATE TABLE skills (
        workspace text COLLATE "C" NOT NULL,
        id text COLLATE "C" PRIMARY KEY,
        created_at text COLLATE "C" NOT NULL,
        source text COLLATE "C" NOT NULL,
        body text COLLATE "C" NOT NULL
    );
    CREATE INDEX skills_by_created ON skills (workspace, created_at, id);
    CREATE TABLE skill_versions (
        workspace text COLLATE "C" NOT NULL,
        id text COLLATE "C" PRIMARY KEY,
        skill_id text COLLATE "C" NOT NULL,
        created_at text COLLATE "C" NOT NULL,
        body text COLLATE "C" NOT NULL,
        archive bytea NOT NULL
    );
    CREATE INDEX skill_versions_by_skill ON skill_versions (skill_id, created_at, id)
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)


async def migrate(conn: AsyncConnection[tuple[Any, ...]]) -> int:
    """Bring the database to SCHEMA_VERSION (refusing one written by a newer loophost); the version found."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS loophost_schema ("
            " singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton), version integer NOT NULL)"
        )
        cur = await conn.execute("SELECT version FROM loophost_schema")
        row = await cur.fetchone()
        current = int(row[0]) if row is not None else 0
        if current > SCHEMA_VERSION:
            raise RuntimeError(
                f"database schema version {current} is newer than this loophost understands ({SCHEMA_VERSION})"
            )
        for version in range(current, SCHEMA_VERSION):
            await conn.execute(MIGRATIONS[version])  # several statements: without parameters psycopg sends them at once
        if current != SCHEMA_VERSION:
            await conn.execute(
                "INSERT INTO loophost_schema (version) VALUES (%s)"
                " ON CONFLICT (singleton) DO UPDATE SET version = EXCLUDED.version",
                (SCHEMA_VERSION,),
            )
        return current
