"""The Store contract: every backend must pass this suite (see conftest.STORE_BACKENDS)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import replace

import pytest

from loophost.runtime import Conflict
from loophost.runtime._errors import StaleWrite
from loophost.runtime.store import (
    AgentRow,
    CheckpointWrite,
    EnvironmentRow,
    EventQuery,
    IdempotencyRecord,
    ListQuery,
    SessionChange,
    Store,
    StoredEvent,
)
from loophost.runtime.store._records import CredentialRow, FileQuery, FileRow, SessionResourceRow, VaultRow

from ._rows import event, session_row
from .conftest import StoreFactory


async def test_seqs_start_at_one_and_have_no_holes_under_concurrency(store: Store) -> None:
    await store.insert_session(session_row())

    async def appender(worker: int) -> None:
        for i in range(25):
            await store.commit_session("sesn_1", expected_revision=None, events=[event(f"{worker}_{i}")])

    await asyncio.gather(*(appender(w) for w in range(20)))
    events = await store.list_events("sesn_1", EventQuery(limit=10_000))
    assert [e.seq for e in events] == list(range(1, 501))
    assert len({e.id for e in events}) == 500
    assert await store.last_seq("sesn_1") == 500


async def test_commit_listener_sees_every_event_once_in_commit_order(store: Store) -> None:
    seen: list[StoredEvent] = []
    store.add_commit_listener(seen.extend)
    await store.insert_session(session_row("sesn_a"))
    await store.insert_session(session_row("sesn_b"))
    await asyncio.gather(
        *(
            store.commit_session(sid, expected_revision=None, events=[event(f"{sid}_{i}_x"), event(f"{sid}_{i}_y")])
            for i in range(30)
            for sid in ("sesn_a", "sesn_b")
        )
    )
    for sid in ("sesn_a", "sesn_b"):
        seqs = [e.seq for e in seen if e.session_id == sid]
        assert seqs == list(range(1, 61))


async def test_a_failing_commit_fails_alone_within_its_batch(store: Store) -> None:
    await store.insert_session(session_row("sesn_a"))
    await store.insert_session(session_row("sesn_b"))
    results = await asyncio.gather(
        store.commit_session("sesn_a", expected_revision=None, events=[event("a1")]),
        store.commit_session("sesn_a", expected_revision=None, events=[event("a1")]),  # the same event id: rejected
        store.commit_session("sesn_gone", expected_revision=None, events=[event("g1")]),  # no such session
        store.commit_session("sesn_b", expected_revision=None, events=[event("b2"), event("b3")]),
        return_exceptions=True,
    )
    assert [e.seq for e in results[0][1]] == [1]  # type: ignore[index]
    assert isinstance(results[1], Exception)
    assert isinstance(results[2], StaleWrite)
    assert [e.seq for e in results[3][1]] == [1, 2]  # type: ignore[index]
    assert [e.id for e in await store.list_events("sesn_b", EventQuery())] == ["sevt_b2", "sevt_b3"]
    assert [e.id for e in await store.list_events("sesn_a", EventQuery())] == ["sevt_a1"]


async def test_concurrent_commits_keep_the_order_they_were_made_in(store: Store) -> None:
    await store.insert_session(session_row())
    ops = []
    for i in range(20):
        change = SessionChange(status="running") if i % 3 == 0 else None  # some change the row, all append
        ops.append(store.commit_session("sesn_1", expected_revision=None, change=change, events=[event(i)]))
    results = await asyncio.gather(*ops)
    assert [stored[0].seq for _, stored in results] == list(range(1, 21))
    assert [e.id for e in await store.list_events("sesn_1", EventQuery())] == [f"sevt_{i}" for i in range(20)]
    row = await store.get_session("ws", "sesn_1")
    assert row is not None and row.revision == 1 + 7


async def test_session_change_and_its_events_commit_together(store: Store) -> None:
    await store.insert_session(session_row())
    revision, stored = await store.commit_session(
        "sesn_1",
        expected_revision=1,
        change=SessionChange(body='{"status": "running"}', status="running", internal='{"queue": []}'),
        events=[event(1, "session.status_running")],
    )
    assert revision == 2
    assert [e.seq for e in stored] == [1]
    row = await store.get_session("ws", "sesn_1")
    assert row is not None
    assert (row.status, row.revision, row.last_seq, row.internal) == ("running", 2, 1, '{"queue": []}')


async def test_stale_revision_writes_nothing_and_spares_the_rest_of_the_batch(store: Store) -> None:
    await store.insert_session(session_row())
    stale = store.commit_session(
        "sesn_1", expected_revision=7, change=SessionChange(status="running"), events=[event("stale")]
    )
    fine = store.commit_session("sesn_1", expected_revision=None, events=[event("fine")])
    results = await asyncio.gather(stale, fine, return_exceptions=True)
    assert isinstance(results[0], StaleWrite)
    events = await store.list_events("sesn_1", EventQuery())
    assert [e.id for e in events] == ["sevt_fine"]
    assert [e.seq for e in events] == [1]
    row = await store.get_session("ws", "sesn_1")
    assert row is not None and row.status == "idle" and row.revision == 1


async def test_idempotency_key_is_recorded_once(store: Store) -> None:
    await store.insert_session(session_row())
    record = IdempotencyRecord("key-1", '[{"id": "sevt_1"}]')
    await store.commit_session("sesn_1", expected_revision=None, events=[event(1)], idempotency=record)
    with pytest.raises(Conflict) as info:
        await store.commit_session("sesn_1", expected_revision=None, events=[event(2)], idempotency=record)
    assert info.value.code == "idempotent_replay"
    assert [e.id for e in await store.list_events("sesn_1", EventQuery())] == ["sevt_1"]
    assert await store.get_idempotency("sesn_1", "key-1") == record.response
    assert await store.get_idempotency("sesn_1", "other") is None


async def test_marking_processed_rewrites_the_stored_json(store: Store) -> None:
    await store.insert_session(session_row(), [event(1, "user.message", processed_at=None)])
    await store.commit_session("sesn_1", expected_revision=None, processed=(["sevt_1"], "2026-02-02T00:00:00.000000Z"))
    (stored,) = await store.list_events("sesn_1", EventQuery())
    assert stored.processed_at == "2026-02-02T00:00:00.000000Z"
    assert json.loads(stored.body)["processed_at"] == "2026-02-02T00:00:00.000000Z"


async def test_event_queries_filter_order_and_page(store: Store) -> None:
    await store.insert_session(
        session_row(), [event(i, "agent.message" if i % 2 else "user.message") for i in range(1, 11)]
    )
    asc = await store.list_events("sesn_1", EventQuery(after_seq=3, limit=4))
    assert [e.seq for e in asc] == [4, 5, 6, 7]
    desc = await store.list_events("sesn_1", EventQuery(before_seq=8, descending=True, limit=3))
    assert [e.seq for e in desc] == [7, 6, 5]
    typed = await store.list_events("sesn_1", EventQuery(types=("user.message",)))
    assert [e.seq for e in typed] == [2, 4, 6, 8, 10]
    assert await store.get_event("sesn_1", "sevt_5") == asc[1]
    assert await store.get_event("sesn_1", "sevt_nope") is None


async def test_sessions_are_scoped_by_workspace(store: Store) -> None:
    await store.insert_session(session_row("sesn_1", workspace="ws_a"))
    assert await store.get_session("ws_b", "sesn_1") is None
    assert await store.get_session("ws_a", "sesn_1") is not None
    assert await store.get_session(None, "sesn_1") is not None
    assert await store.list_sessions("ws_b", ListQuery()) == []
    assert not await store.delete_session("ws_b", "sesn_1")


async def test_session_lists_filter_and_keyset_page(store: Store) -> None:
    for i in range(5):
        await store.insert_session(
            session_row(
                f"sesn_{i}",
                created_at=f"2026-01-0{i + 1}T00:00:00.000000Z",
                status="idle" if i % 2 else "running",
            )
        )
    first = await store.list_sessions("ws", ListQuery(limit=2, descending=True))
    assert [r.id for r in first] == ["sesn_4", "sesn_3"]
    rest = await store.list_sessions(
        "ws", ListQuery(limit=10, descending=True, after=(first[-1].created_at, first[-1].id))
    )
    assert [r.id for r in rest] == ["sesn_2", "sesn_1", "sesn_0"]
    idle = await store.list_sessions("ws", ListQuery(filters={"statuses": ["idle"]}))
    assert [r.id for r in idle] == ["sesn_1", "sesn_3"]
    await store.commit_session("sesn_2", expected_revision=None, change=SessionChange(wants_worker=True))
    assert [r.id for r in await store.sessions_wanting_work()] == ["sesn_2"]
    await store.commit_session("sesn_2", expected_revision=None, change=SessionChange(wants_worker=False))
    assert await store.sessions_wanting_work() == []


async def test_delete_session_removes_its_log(store: Store) -> None:
    await store.insert_session(session_row(), [event(1), event(2)])
    assert await store.delete_session("ws", "sesn_1")
    assert await store.get_session("ws", "sesn_1") is None
    assert await store.list_events("sesn_1", EventQuery()) == []
    assert await store.last_seq("sesn_1") is None
    with pytest.raises(StaleWrite):
        await store.commit_session("sesn_1", expected_revision=None, events=[event(3)])


async def test_agent_versions_are_immutable_and_cas_guarded(store: Store) -> None:
    await store.insert_agent(AgentRow("ws", "agent_1", 1, "2026-01-01", None, '{"v": 1}'))
    await store.add_agent_version(AgentRow("ws", "agent_1", 2, "2026-01-01", None, '{"v": 2}'))
    with pytest.raises(Conflict):
        await store.add_agent_version(AgentRow("ws", "agent_1", 2, "2026-01-01", None, '{"v": "again"}'))
    latest = await store.get_agent("ws", "agent_1")
    first = await store.get_agent("ws", "agent_1", 1)
    assert latest is not None and first is not None
    assert (latest.version, latest.body, first.body) == (2, '{"v": 2}', '{"v": 1}')
    assert await store.get_agent("other", "agent_1") is None
    versions = await store.list_agent_versions("ws", "agent_1", before_version=None, limit=10)
    assert [v.version for v in versions] == [2, 1]
    await store.archive_agent("ws", "agent_1", "2026-03-03")
    archived = await store.get_agent("ws", "agent_1", 1)
    assert archived is not None and archived.archived_at == "2026-03-03"
    assert await store.list_agents("ws", ListQuery()) == []
    assert len(await store.list_agents("ws", ListQuery(include_archived=True))) == 1


async def test_environment_names_are_unique_per_workspace(store: Store) -> None:
    await store.insert_environment(EnvironmentRow("ws", "env_1", "prod", "2026-01-01", None, "{}"))
    with pytest.raises(Conflict):
        await store.insert_environment(EnvironmentRow("ws", "env_2", "prod", "2026-01-01", None, "{}"))
    await store.insert_environment(EnvironmentRow("other", "env_3", "prod", "2026-01-01", None, "{}"))
    assert await store.delete_environment("ws", "env_1")
    assert await store.get_environment("ws", "env_1") is None


async def test_checkpoints_are_appended(store: Store) -> None:
    await store.insert_session(session_row())
    assert await store.get_checkpoint("sesn_1") == []

    async def write(keep: int, *entries: bytes) -> None:
        await store.commit_session(
            "sesn_1", expected_revision=None, change=SessionChange(checkpoint=CheckpointWrite(keep, entries))
        )

    await write(0, b"a", b"\x00b")
    await write(2, b"c")
    assert await store.get_checkpoint("sesn_1") == [b"a", b"\x00b", b"c"]
    with pytest.raises(StaleWrite):  # append-only: a taken position is another writer's, and nothing changes
        await write(1, b"B")
    assert await store.get_checkpoint("sesn_1") == [b"a", b"\x00b", b"c"]
    await store.delete_session("ws", "sesn_1")
    assert await store.get_checkpoint("sesn_1") == []


async def test_everything_survives_close_and_reopen(store_factory: StoreFactory) -> None:
    first = store_factory()
    await first.open()
    await first.insert_session(session_row(), [event(1)])
    await first.commit_session("sesn_1", expected_revision=1, change=SessionChange(status="running"), events=[event(2)])
    await first.close()
    second = store_factory()
    await second.open()
    try:
        row = await second.get_session("ws", "sesn_1")
        assert row is not None and row.status == "running" and row.last_seq == 2
        ids: Sequence[str] = [e.id for e in await second.list_events("sesn_1", EventQuery())]
        assert ids == ["sevt_1", "sevt_2"]
    finally:
        await second.close()


# files and session resources ---------------------------------------------------------------------------------
def _file_row(file_id: str, workspace: str = "ws", **over: object) -> FileRow:
    fields: dict[str, object] = dict(
        workspace=workspace,
        id=file_id,
        filename=f"{file_id}.txt",
        mime_type="text/plain",
        size_bytes=2,
        created_at="2026-01-01T00:00:00.000000Z",
    )
    fields.update(over)
    return FileRow(**fields)  # type: ignore[arg-type]


async def test_files_round_trip_metadata_and_content_separately(store: Store) -> None:
    row = _file_row("file_1", size_bytes=3, expires_at="2026-02-01T00:00:00.000000Z", downloadable=True)
    await store.insert_file(row, b"\x00hi")
    assert await store.get_file("ws", "file_1") == row
    assert await store.get_file_content("ws", "file_1") == b"\x00hi"
    scoped = _file_row("file_2", scope_type="session", scope_id="sesn_1")
    await store.insert_file(scoped, b"")
    assert await store.get_file("ws", "file_2") == scoped
    assert await store.get_file_content("ws", "file_2") == b""
    assert await store.delete_file("ws", "file_1")
    assert not await store.delete_file("ws", "file_1")
    assert await store.get_file("ws", "file_1") is None
    assert await store.get_file_content("ws", "file_1") is None


async def test_files_are_scoped_by_workspace(store: Store) -> None:
    await store.insert_file(_file_row("file_1", workspace="ws_a"), b"hi")
    assert await store.get_file("ws_b", "file_1") is None
    assert await store.get_file_content("ws_b", "file_1") is None
    assert await store.list_files("ws_b", FileQuery()) == []
    assert await store.list_files("ws_b", FileQuery(ids=("file_1",))) == []
    assert not await store.delete_file("ws_b", "file_1")
    assert await store.get_file("ws_a", "file_1") is not None


async def test_file_lists_are_newest_first_keyset_paged_and_filtered(store: Store) -> None:
    for i in range(5):
        await store.insert_file(
            _file_row(
                f"file_{i}",
                created_at=f"2026-01-0{i + 1}T00:00:00.000000Z",
                scope_type="session" if i % 2 else None,
                scope_id="sesn_x" if i % 2 else None,
            ),
            b"hi",
        )
    first = await store.list_files("ws", FileQuery(limit=2))
    assert [r.id for r in first] == ["file_4", "file_3"]
    rest = await store.list_files("ws", FileQuery(limit=10, before=(first[-1].created_at, first[-1].id)))
    assert [r.id for r in rest] == ["file_2", "file_1", "file_0"]
    scoped = await store.list_files("ws", FileQuery(scope_id="sesn_x"))
    assert [r.id for r in scoped] == ["file_3", "file_1"]
    picked = await store.list_files("ws", FileQuery(ids=("file_0", "file_nope", "file_2")))
    assert [r.id for r in picked] == ["file_2", "file_0"]
    assert await store.list_files("ws", FileQuery(ids=())) == []
    # same created_at: the id breaks the tie, so a page boundary inside a tie loses nothing
    for suffix in ("a", "b", "c"):
        await store.insert_file(_file_row(f"file_t{suffix}", created_at="2026-02-01T00:00:00.000000Z"), b"")
    page = await store.list_files("ws", FileQuery(limit=2))
    after = await store.list_files("ws", FileQuery(limit=2, before=(page[-1].created_at, page[-1].id)))
    assert [r.id for r in page + after] == ["file_tc", "file_tb", "file_ta", "file_4"]


async def test_session_resources_put_get_list_delete(store: Store) -> None:
    await store.insert_session(session_row())
    first = SessionResourceRow("sesn_1", "sesrsc_1", "file", "2026-01-01T00:00:00.000000Z", '{"id":"sesrsc_1"}')
    second = SessionResourceRow(
        "sesn_1", "sesrsc_2", "github_repository", "2026-01-02T00:00:00.000000Z", '{"id":"sesrsc_2"}', "ghp_x"
    )
    await store.put_session_resource(second)
    await store.put_session_resource(first)
    assert await store.list_session_resources("sesn_1") == [first, second]
    assert await store.get_session_resource("sesn_1", "sesrsc_2") == second
    assert await store.get_session_resource("sesn_other", "sesrsc_2") is None
    rotated = SessionResourceRow(
        "sesn_1", "sesrsc_2", "github_repository", second.created_at, '{"id":"sesrsc_2","v":2}', "ghp_y"
    )
    await store.put_session_resource(rotated)  # replaces, keeps one row
    assert await store.list_session_resources("sesn_1") == [first, rotated]
    assert await store.delete_session_resource("sesn_1", "sesrsc_1")
    assert not await store.delete_session_resource("sesn_1", "sesrsc_1")
    assert await store.list_session_resources("sesn_1") == [rotated]


async def test_delete_session_removes_its_resources_but_not_files(store: Store) -> None:
    await store.insert_session(session_row())
    await store.insert_file(_file_row("file_1", scope_type="session", scope_id="sesn_1"), b"hi")
    await store.put_session_resource(SessionResourceRow("sesn_1", "sesrsc_1", "file", "2026-01-01", "{}"))
    assert await store.delete_session("ws", "sesn_1")
    assert await store.list_session_resources("sesn_1") == []
    assert await store.get_file_content("ws", "file_1") == b"hi"


async def test_files_and_resources_survive_close_and_reopen(store_factory: StoreFactory) -> None:
    first = store_factory()
    await first.open()
    await first.insert_session(session_row())
    await first.insert_file(_file_row("file_1"), b"hi")
    resource = SessionResourceRow("sesn_1", "sesrsc_1", "github_repository", "2026-01-01", "{}", "ghp_x")
    await first.put_session_resource(resource)
    await first.close()
    second = store_factory()
    await second.open()
    try:
        assert await second.get_file_content("ws", "file_1") == b"hi"
        assert await second.get_session_resource("sesn_1", "sesrsc_1") == resource
    finally:
        await second.close()


# --- vaults and credentials --------------------------------------------------------------------------------


def _vault(vault_id: str, *, workspace: str = "ws", created_at: str = "2026-01-01T00:00:00.000000Z") -> VaultRow:
    return VaultRow(workspace, vault_id, created_at, None, json.dumps({"id": vault_id, "type": "vault"}))


def _credential(
    credential_id: str,
    *,
    vault_id: str = "vlt_1",
    match_key: str | None = None,
    created_at: str = "2026-01-01T00:00:00.000000Z",
    revision: int = 1,
    secret: bytes | None = b"\x01sealed\x00bytes\xff",
) -> CredentialRow:
    body = json.dumps({"id": credential_id, "type": "vault_credential", "vault_id": vault_id})
    key = match_key if match_key is not None else f"mcp:https://{credential_id}.example"
    return CredentialRow("ws", credential_id, vault_id, created_at, None, key, revision, body, secret)


async def test_vaults_put_get_list_delete(store: Store) -> None:
    for n in range(4):
        await store.put_vault(_vault(f"vlt_{n}", created_at=f"2026-01-0{n + 1}T00:00:00.000000Z"))
    await store.put_vault(_vault("vlt_other", workspace="ws_other"))
    assert await store.get_vault("ws", "vlt_2") == _vault("vlt_2", created_at="2026-01-03T00:00:00.000000Z")
    assert await store.get_vault("ws_other", "vlt_2") is None  # another workspace's vault is not found
    archived = replace(
        _vault("vlt_1", created_at="2026-01-02T00:00:00.000000Z"), archived_at="2026-02-01T00:00:00.000000Z"
    )
    await store.put_vault(archived)  # replaces the row with the same id
    assert await store.get_vault("ws", "vlt_1") == archived
    assert [v.id for v in await store.list_vaults("ws", ListQuery())] == ["vlt_0", "vlt_2", "vlt_3"]
    listed = await store.list_vaults("ws", ListQuery(include_archived=True, limit=2))
    assert [v.id for v in listed] == ["vlt_0", "vlt_1"]
    rest = await store.list_vaults("ws", ListQuery(include_archived=True, after=(listed[-1].created_at, listed[-1].id)))
    assert [v.id for v in rest] == ["vlt_2", "vlt_3"]
    await store.insert_credential(_credential("vcrd_a", vault_id="vlt_0"), max_active=20)
    assert not await store.delete_vault("ws_other", "vlt_0")
    assert await store.delete_vault("ws", "vlt_0")
    assert not await store.delete_vault("ws", "vlt_0")
    assert await store.get_vault("ws", "vlt_0") is None
    assert await store.get_credential("ws", "vlt_0", "vcrd_a") is None  # its credentials went with it


async def test_credentials_keep_their_sealed_secret_and_list_in_order(store: Store) -> None:
    await store.put_vault(_vault("vlt_1"))
    rows = [_credential(f"vcrd_{n}", created_at=f"2026-01-0{n + 1}T00:00:00.000000Z") for n in range(3)]
    for row in reversed(rows):
        await store.insert_credential(row, max_active=20)
    assert await store.get_credential("ws", "vlt_1", "vcrd_1") == rows[1]  # the secret's bytes exactly
    assert await store.get_credential("ws_other", "vlt_1", "vcrd_1") is None
    assert await store.get_credential("ws", "vlt_other", "vcrd_1") is None
    page = await store.list_credentials("ws", "vlt_1", ListQuery(limit=2))
    assert page == rows[:2]
    assert await store.list_credentials("ws", "vlt_1", ListQuery(after=(page[-1].created_at, page[-1].id))) == rows[2:]
    assert await store.list_credentials("ws_other", "vlt_1", ListQuery()) == []
    archived = replace(rows[0], archived_at="2026-02-01T00:00:00.000000Z", match_key=None, revision=2, secret=None)
    assert await store.update_credential(archived, expected_revision=1)
    assert [r.id for r in await store.list_credentials("ws", "vlt_1", ListQuery())] == ["vcrd_1", "vcrd_2"]
    everything = await store.list_credentials("ws", "vlt_1", ListQuery(include_archived=True))
    assert everything == [archived, rows[1], rows[2]]
    assert not await store.delete_credential("ws", "vlt_other", "vcrd_1")
    assert await store.delete_credential("ws", "vlt_1", "vcrd_1")
    assert not await store.delete_credential("ws", "vlt_1", "vcrd_1")
    assert await store.get_credential("ws", "vlt_1", "vcrd_1") is None


async def test_credential_match_keys_are_unique_among_active_ones(store: Store) -> None:
    await store.put_vault(_vault("vlt_1"))
    await store.put_vault(_vault("vlt_2"))
    first = _credential("vcrd_1", match_key="env:API_KEY")
    await store.insert_credential(first, max_active=20)
    with pytest.raises(Conflict) as duplicate:
        await store.insert_credential(_credential("vcrd_2", match_key="env:API_KEY"), max_active=20)
    assert duplicate.value.code == "duplicate_credential"
    await store.insert_credential(_credential("vcrd_3", vault_id="vlt_2", match_key="env:API_KEY"), max_active=20)
    # archiving frees the key
    assert await store.update_credential(replace(first, match_key=None, revision=2, secret=None), expected_revision=1)
    await store.insert_credential(_credential("vcrd_2", match_key="env:API_KEY"), max_active=20)


async def test_credential_limit_holds_under_concurrent_inserts(store: Store) -> None:
    await store.put_vault(_vault("vlt_1"))
    results = await asyncio.gather(
        *(store.insert_credential(_credential(f"vcrd_{n:02}"), max_active=5) for n in range(12)),
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, Conflict)]
    assert len(refused) == 7 and all(r.code == "credential_limit" for r in refused)
    assert [r for r in results if r is not None and not isinstance(r, Conflict)] == []
    assert len(await store.list_credentials("ws", "vlt_1", ListQuery(limit=100))) == 5


async def test_credential_update_is_compare_and_set(store: Store) -> None:
    await store.put_vault(_vault("vlt_1"))
    row = _credential("vcrd_1")
    await store.insert_credential(row, max_active=20)
    writers = [replace(row, revision=2, secret=f"writer {n}".encode()) for n in range(8)]
    won = await asyncio.gather(*(store.update_credential(w, expected_revision=1) for w in writers))
    assert sum(won) == 1
    stored = await store.get_credential("ws", "vlt_1", "vcrd_1")
    assert stored == writers[won.index(True)]
    assert not await store.update_credential(replace(row, revision=3), expected_revision=1)  # stale
    assert not await store.update_credential(replace(row, id="vcrd_gone", revision=2), expected_revision=1)
    assert not await store.update_credential(replace(row, workspace="ws_other", revision=3), expected_revision=2)
    assert await store.update_credential(replace(row, revision=3, body='{"v":3}'), expected_revision=2)
    assert (await store.get_credential("ws", "vlt_1", "vcrd_1")) == replace(row, revision=3, body='{"v":3}')


async def test_vaults_and_credentials_survive_close_and_reopen(store_factory: StoreFactory) -> None:
    first = store_factory()
    await first.open()
    await first.put_vault(_vault("vlt_1"))
    await first.insert_credential(_credential("vcrd_1"), max_active=20)
    await first.close()
    second = store_factory()
    await second.open()
    try:
        assert await second.get_vault("ws", "vlt_1") == _vault("vlt_1")
        assert await second.get_credential("ws", "vlt_1", "vcrd_1") == _credential("vcrd_1")
    finally:
        await second.close()
