"""The SQLite schema, versioned: each entry of MIGRATIONS moves the database one version up, on open.

The event log is an append-ordered rowid table with an index on (session_id, seq): a group commit that touches
many sessions then writes a few sequential data pages instead of one page per session, which is what bounds
commit cost in WAL mode.
"""

from __future__ import annotations

import sqlite3

MIGRATIONS: list[str] = [
    # 1: the durable session substrate
    """
    CREATE TABLE agents (
        id TEXT PRIMARY KEY,
        workspace TEXT NOT NULL,
        version INTEGER NOT NULL,
        created_at TEXT NOT NULL,
        archived_at TEXT,
        body TEXT NOT NULL
    );
    CREATE INDEX agents_by_created ON agents (workspace, created_at, id);
    CREATE TABLE agent_versions (
        agent_id TEXT NOT NULL,
        version INTEGER NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (agent_id, version)
    ) WITHOUT ROWID;
    CREATE TABLE environments (
        id TEXT PRIMARY KEY,
        workspace TEXT NOT NULL,
        name TEXT NOT NULL,
        created_at TEXT NOT NULL,
        archived_at TEXT,
        body TEXT NOT NULL,
        UNIQUE (workspace, name)
    );
    CREATE INDEX environments_by_created ON environments (workspace, created_at, id);
    CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        workspace TEXT NOT NULL,
        agent_id TEXT NOT NULL,
        agent_version INTEGER NOT NULL,
        environment_id TEXT NOT NULL,
        status TEXT NOT NULL,
        created_at TEXT NOT NULL,
        archived_at TEXT,
        revision INTEGER NOT NULL DEFAULT 1,
        body TEXT NOT NULL,
        internal TEXT NOT NULL DEFAULT '{}',
        wants_worker INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX sessions_by_created ON sessions (workspace, created_at, id);
    CREATE INDEX sessions_wanting_work ON sessions (wants_worker) WHERE wants_worker = 1;
    CREATE TABLE events (
        n INTEGER PRIMARY KEY,
        session_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        id TEXT NOT NULL,
        type TEXT NOT NULL,
        processed_at TEXT,
        body TEXT NOT NULL
    );
    CREATE UNIQUE INDEX events_by_seq ON events (session_id, seq);
    CREATE UNIQUE INDEX events_by_id ON events (id);
    CREATE TABLE checkpoint_entries (
        session_id TEXT NOT NULL,
        idx INTEGER NOT NULL,
        body BLOB NOT NULL,
        PRIMARY KEY (session_id, idx)
    ) WITHOUT ROWID;
    CREATE TABLE api_keys (
        key_hash TEXT PRIMARY KEY,
        workspace TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE idempotency (
        session_id TEXT NOT NULL,
        key TEXT NOT NULL,
        response TEXT NOT NULL,
        PRIMARY KEY (session_id, key)
    ) WITHOUT ROWID;
    CREATE TABLE files (
        id TEXT PRIMARY KEY,
        workspace TEXT NOT NULL,
        filename TEXT NOT NULL,
        mime_type TEXT NOT NULL,
        size_bytes INTEGER NOT NULL,
        created_at TEXT NOT NULL,
        expires_at TEXT,
        scope_type TEXT,
        scope_id TEXT,
        downloadable INTEGER NOT NULL DEFAULT 0,
        content BLOB NOT NULL
    );
    CREATE INDEX files_by_created ON files (workspace, created_at, id);
    CREATE INDEX files_by_scope ON files (workspace, scope_id, created_at, id) WHERE scope_id IS NOT NULL;
    CREATE TABLE session_resources (
        session_id TEXT NOT NULL,
        id TEXT NOT NULL,
        type TEXT NOT NULL,
        created_at TEXT NOT NULL,
        body TEXT NOT NULL,
        secret TEXT,
        PRIMARY KEY (session_id, id)
    ) WITHOUT ROWID;
    """,
    # 2: the session document is not rewritten per step: status, updated_at and usage counters are columns
    """
    ALTER TABLE sessions ADD COLUMN updated_at TEXT;
    ALTER TABLE sessions ADD COLUMN input_tokens INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE sessions ADD COLUMN output_tokens INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE sessions ADD COLUMN cache_read_input_tokens INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE sessions ADD COLUMN cache_creation_input_tokens INTEGER NOT NULL DEFAULT 0;
    UPDATE sessions SET
        updated_at = json_extract(body, '$.updated_at'),
        input_tokens = COALESCE(json_extract(body, '$.usage.input_tokens'), 0),
        output_tokens = COALESCE(json_extract(body, '$.usage.output_tokens'), 0),
        cache_read_input_tokens = COALESCE(json_extract(body, '$.usage.cache_read_input_tokens'), 0),
        cache_creation_input_tokens =
            COALESCE(json_extract(body, '$.usage.cache_creation.ephemeral_5m_input_tokens'), 0)
    """,
    # 3: vaults and credentials; a credential's secrets are one encrypted BLOB (the runtime encrypts them)
    """
    CREATE TABLE vaults (
        id TEXT PRIMARY KEY,
        workspace TEXT NOT NULL,
        created_at TEXT NOT NULL,
        archived_at TEXT,
        body TEXT NOT NULL
    );
    CREATE INDEX vaults_by_created ON vaults (workspace, created_at, id);
    CREATE TABLE vault_credentials (
        id TEXT PRIMARY KEY,
        workspace TEXT NOT NULL,
        vault_id TEXT NOT NULL,
        created_at TEXT NOT NULL,
        archived_at TEXT,
        match_key TEXT,
        revision INTEGER NOT NULL,
        body TEXT NOT NULL,
        secret BLOB
    );
    CREATE INDEX vault_credentials_by_created ON vault_credentials (vault_id, created_at, id);
    CREATE UNIQUE INDEX vault_credentials_by_key ON vault_credentials (vault_id, match_key)
        WHERE match_key IS NOT NULL
    """,
    # 4: the work queue of self-hosted environments (runtime/_work.py): work items (at most one live per session),
    # environment keys (hashes only), and when each worker last polled (for the queue's stats)
    """
    CREATE TABLE work_items (
        workspace TEXT NOT NULL,
        id TEXT PRIMARY KEY,
        environment_id TEXT NOT NULL,
        session_id TEXT NOT NULL,
        data_type TEXT NOT NULL,
        state TEXT NOT NULL,
        metadata TEXT NOT NULL,
        created_at TEXT NOT NULL,
        acknowledged_at TEXT,
        started_at TEXT,
        latest_heartbeat_at TEXT,
        stop_requested_at TEXT,
        stopped_at TEXT,
        polled_at TEXT,
        lease_expires_at TEXT,
        ttl_seconds INTEGER NOT NULL,
        token_hash TEXT,
        revision INTEGER NOT NULL
    );
    CREATE INDEX work_items_by_created ON work_items (environment_id, created_at, id);
    CREATE INDEX work_items_queued ON work_items (environment_id, created_at, id) WHERE state = 'queued';
    CREATE UNIQUE INDEX work_items_live ON work_items (session_id) WHERE state <> 'stopped';
    CREATE UNIQUE INDEX work_items_by_token ON work_items (token_hash) WHERE token_hash IS NOT NULL;
    CREATE INDEX work_items_leased ON work_items (lease_expires_at)
        WHERE state IN ('starting', 'active', 'stopping');
    CREATE TABLE environment_keys (
        workspace TEXT NOT NULL,
        id TEXT PRIMARY KEY,
        environment_id TEXT NOT NULL,
        key_hash TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL
    );
    CREATE INDEX environment_keys_by_created ON environment_keys (environment_id, created_at, id);
    CREATE TABLE work_pollers (
        environment_id TEXT NOT NULL,
        worker_id TEXT NOT NULL,
        polled_at TEXT NOT NULL,
        PRIMARY KEY (environment_id, worker_id)
    ) WITHOUT ROWID
    """,
    # webhooks and deployments (issue 16): endpoints, the outbox (a delivery row per event and subscribed endpoint),
    # deployments (`next_run_at`: the schedule's next fire, null when none is due) and their runs
    """
    CREATE TABLE webhook_endpoints (
        workspace TEXT NOT NULL,
        id TEXT PRIMARY KEY,
        url TEXT NOT NULL,
        enabled_events TEXT NOT NULL,
        state TEXT NOT NULL,
        disabled_reason TEXT NOT NULL,
        name TEXT NOT NULL,
        description TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        secret BLOB NOT NULL,
        consecutive_failures INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX webhook_endpoints_by_workspace ON webhook_endpoints (workspace, created_at, id);
    CREATE TABLE webhook_deliveries (
        endpoint_id TEXT NOT NULL,
        event_id TEXT NOT NULL,
        workspace TEXT NOT NULL,
        type TEXT NOT NULL,
        created_at TEXT NOT NULL,
        payload TEXT NOT NULL,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT NOT NULL,
        claimed_until TEXT,
        last_error TEXT,
        delivered_at TEXT,
        PRIMARY KEY (endpoint_id, event_id)
    );
    CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
    CREATE TABLE deployments (
        workspace TEXT NOT NULL,
        id TEXT PRIMARY KEY,
        created_at TEXT NOT NULL,
        archived_at TEXT,
        status TEXT NOT NULL,
        agent_id TEXT NOT NULL,
        next_run_at TEXT,
        body TEXT NOT NULL
    );
    CREATE INDEX deployments_by_workspace ON deployments (workspace, created_at, id);
    CREATE INDEX deployments_due ON deployments (next_run_at) WHERE next_run_at IS NOT NULL;
    CREATE TABLE deployment_runs (
        workspace TEXT NOT NULL,
        id TEXT PRIMARY KEY,
        deployment_id TEXT NOT NULL,
        created_at TEXT NOT NULL,
        trigger_type TEXT NOT NULL,
        scheduled_at TEXT,
        state TEXT NOT NULL,
        has_error INTEGER NOT NULL DEFAULT 0,
        claimed_until TEXT,
        body TEXT NOT NULL,
        UNIQUE (deployment_id, scheduled_at)
    );
    CREATE INDEX deployment_runs_by_workspace ON deployment_runs (workspace, created_at, id);
    CREATE INDEX deployment_runs_pending ON deployment_runs (claimed_until) WHERE state = 'pending'
    """,
    # memory stores and skills (issue 17): stores, live memories (one per path), immutable versions, which
    # sessions a store is attached to; skills and their versions (the uploaded files as one archive)
    """
    CREATE TABLE memory_stores (
        workspace TEXT NOT NULL,
        id TEXT PRIMARY KEY,
        created_at TEXT NOT NULL,
        archived_at TEXT,
        body TEXT NOT NULL
    );
    CREATE INDEX memory_stores_by_created ON memory_stores (workspace, created_at, id);
    CREATE TABLE memories (
        workspace TEXT NOT NULL,
        id TEXT PRIMARY KEY,
        store_id TEXT NOT NULL,
        path TEXT NOT NULL,
        content TEXT NOT NULL,
        content_sha256 TEXT NOT NULL,
        content_size_bytes INTEGER NOT NULL,
        version_id TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE UNIQUE INDEX memories_by_path ON memories (store_id, path);
    CREATE TABLE memory_versions (
        workspace TEXT NOT NULL,
        id TEXT PRIMARY KEY,
        store_id TEXT NOT NULL,
        memory_id TEXT NOT NULL,
        operation TEXT NOT NULL,
        created_at TEXT NOT NULL,
        path TEXT,
        content TEXT,
        content_sha256 TEXT,
        content_size_bytes INTEGER,
        created_by TEXT,
        session_id TEXT,
        api_key_id TEXT,
        redacted_at TEXT,
        redacted_by TEXT
    );
    CREATE INDEX memory_versions_by_created ON memory_versions (store_id, created_at, id);
    CREATE INDEX memory_versions_by_memory ON memory_versions (memory_id, created_at, id);
    CREATE TABLE memory_attachments (
        store_id TEXT NOT NULL,
        session_id TEXT NOT NULL,
        PRIMARY KEY (store_id, session_id)
    ) WITHOUT ROWID;
    CREATE INDEX memory_attachments_by_session ON memory_attachments (session_id);
    CREATE TABLE skills (
        workspace TEXT NOT NULL,
        id TEXT PRIMARY KEY,
        created_at TEXT NOT NULL,
        source TEXT NOT NULL,
        body TEXT NOT NULL
    );
    CREATE INDEX skills_by_created ON skills (workspace, created_at, id);
    CREATE TABLE skill_versions (
        workspace TEXT NOT NULL,
        id TEXT PRIMARY KEY,
        skill_id TEXT NOT NULL,
        created_at TEXT NOT NULL,
        body TEXT NOT NULL,
        archive BLOB NOT NULL
    );
    CREATE INDEX skill_versions_by_skill ON skill_versions (skill_id, created_at, id)
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection) -> None:
    """Bring the database to SCHEMA_VERSION; refuse one written by a newer loophost."""
    current = conn.execute("PRAGMA user_version").fetchone()[0]
    if current > SCHEMA_VERSION:
        raise RuntimeError(
            f"database schema version {current} is newer than this loophost understands ({SCHEMA_VERSION})"
        )
    for version in range(current, SCHEMA_VERSION):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in MIGRATIONS[version].split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version + 1}")
            conn.execute("COMMIT")
        except Exception:
            conn.execute("ROLLBACK")
            raise
