"""The vault key ring and key rotation, on a real runtime and SQLite file."""

from __future__ import annotations

import asyncio
import os
import stat
import time
from dataclasses import replace
from pathlib import Path

import pytest

from loophost import wire
from loophost.runtime import Runtime, RuntimeConfig
from loophost.runtime._vault_keys import VaultKeyError, VaultKeyRing, new_vault_key
from loophost.runtime._vault_refresh import CLAIM
from loophost.runtime._vaults import Vaults
from tests.server._oauth_server import OAuthIssuer

from .conftest import WS


def test_ring_round_trip_binds_the_ciphertext_to_its_credential() -> None:
    ring = VaultKeyRing.load(configured=new_vault_key())
    sealed = ring.encrypt({"token": "tok-123456789"}, bound_to="vcrd_a")
    assert b"tok-123456789" not in sealed
    assert ring.decrypt(sealed, bound_to="vcrd_a") == {"token": "tok-123456789"}
    with pytest.raises(VaultKeyError):
        ring.decrypt(sealed, bound_to="vcrd_b")
    with pytest.raises(VaultKeyError):
        VaultKeyRing.load(configured=new_vault_key()).decrypt(sealed, bound_to="vcrd_a")


def test_rotation_ring_reads_old_ciphertexts_and_writes_new_ones() -> None:
    old, new = new_vault_key(), new_vault_key()
    sealed = VaultKeyRing.load(configured=old).encrypt({"token": "t"}, bound_to="c")
    ring = VaultKeyRing.load(configured=f"{new},{old}")
    assert ring.decrypt(sealed, bound_to="c") == {"token": "t"}
    assert not ring.is_current(sealed)
    assert ring.is_current(ring.encrypt({"token": "t"}, bound_to="c"))


def test_key_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOOPHOST_VAULT_KEY", raising=False)
    key_file = tmp_path / "db.vault-key"
    first = VaultKeyRing.load(key_file=key_file)
    assert first.source.kind == "file"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    sealed = first.encrypt({"a": "b"}, bound_to="x")
    assert VaultKeyRing.load(key_file=key_file).decrypt(sealed, bound_to="x") == {"a": "b"}  # read, not regenerated
    monkeypatch.setenv("LOOPHOST_VAULT_KEY", new_vault_key())
    assert VaultKeyRing.load(key_file=key_file).source.kind == "environment"
    assert VaultKeyRing.load(configured=new_vault_key(), key_file=key_file).source.kind == "config"
    with pytest.raises(VaultKeyError):
        VaultKeyRing.load(configured="not-a-key")


async def test_reencrypt_after_rotation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOOPHOST_VAULT_KEY", raising=False)
    old, new = new_vault_key(), new_vault_key()
    db = tmp_path / "rotate.db"
    async with Runtime.from_url(db, config=RuntimeConfig(vault_key=old)) as rt:
        vault = await rt.vaults.create_vault(WS, wire.VaultCreateParams(display_name="v"))
        params = wire.CredentialCreateParams.model_validate(
            {"auth": {"type": "static_bearer", "mcp_server_url": "https://m.example.com", "token": "rotate-me-123"}}
        )
        cred = await rt.vaults.create_credential(WS, vault.id, params)
    async with Runtime.from_url(db, config=RuntimeConfig(vault_key=f"{new},{old}")) as rt:
        assert await rt.vaults.reencrypt(WS) == 1
        assert await rt.vaults.reencrypt(WS) == 0
    async with Runtime.from_url(db, config=RuntimeConfig(vault_key=new)) as rt:  # the old key is gone
        found = await rt.vaults.mcp_credential(WS, [vault.id], "HTTPS://m.example.com/")
        assert found is not None and found.credential_id == cred.id
        assert found.token == "rotate-me-123"
        assert "rotate-me-123" not in repr(found)


async def test_two_nodes_refreshing_at_once_make_one_exchange(tmp_path: Path) -> None:
    """Two `Vaults` on one database, each with its own locks (as two nodes would be), refresh the same refused
    token at once: the claim lets one exchange the refresh token, the other waits and uses what it wrote."""
    oauth = OAuthIssuer("node-client", "node-client-secret", "client_secret_post", delay=0.3).start()
    try:
        async with Runtime.from_url(tmp_path / "nodes.db") as rt:
            vault = await rt.vaults.create_vault(WS, wire.VaultCreateParams(display_name="v"))
            access, refresh = oauth.issue()
            params = wire.CredentialCreateParams.model_validate(
                {"auth": oauth.credential("https://mcp.example.com/mcp", access, refresh)}
            )
            await rt.vaults.create_credential(WS, vault.id, params)
            other_node = Vaults(rt.store, rt.config, rt.vaults.keys)
            stale = await rt.vaults.mcp_credential(WS, [vault.id], "https://mcp.example.com/mcp")
            assert stale is not None and stale.refreshable
            first, second = await asyncio.gather(
                rt.vaults.refresh_mcp_credential(stale), other_node.refresh_mcp_credential(stale)
            )
            assert oauth.refresh_requests == 1
            assert first is not None and second is not None
            assert first.token == second.token != stale.token
            assert first.token in oauth
            current = await rt.vaults.mcp_credential(WS, [vault.id], "https://mcp.example.com/mcp")
            assert current is not None and current.token == first.token
            # a claim left by a node that died mid-exchange expires, and the next refresh takes over
            row = await rt.store.get_credential(WS, vault.id, current.credential_id)
            assert row is not None and row.secret is not None
            secrets = rt.vaults.keys.decrypt(row.secret, bound_to=row.id)
            assert CLAIM not in secrets
            dead = replace(
                row,
                revision=row.revision + 1,
                secret=rt.vaults.keys.encrypt({**secrets, CLAIM: f"dead {time.time() - 1}"}, bound_to=row.id),
            )
            assert await rt.store.update_credential(dead, expected_revision=row.revision)
            stale = await rt.vaults.mcp_credential(WS, [vault.id], "https://mcp.example.com/mcp")
            assert stale is not None
            fresh = await other_node.refresh_mcp_credential(stale)
            assert fresh is not None and fresh.token != stale.token and oauth.refresh_requests == 2
    finally:
        oauth.stop()


async def test_refresh_failure_is_recorded_and_not_retried_until_updated(tmp_path: Path) -> None:
    oauth = OAuthIssuer("c", None, "none").start()
    try:
        async with Runtime.from_url(tmp_path / "fail.db") as rt:
            vault = await rt.vaults.create_vault(WS, wire.VaultCreateParams(display_name="v"))
            access, refresh = oauth.issue()
            auth = oauth.credential("https://mcp.example.com/mcp", access, refresh)
            created = await rt.vaults.create_credential(
                WS, vault.id, wire.CredentialCreateParams.model_validate({"auth": auth})
            )
            oauth.revoke_refresh_tokens()
            stale = await rt.vaults.mcp_credential(WS, [vault.id], "https://mcp.example.com/mcp")
            assert stale is not None
            assert await rt.vaults.refresh_mcp_credential(stale) is None
            credential = await rt.vaults.get_credential(WS, vault.id, created.id)
            assert isinstance(credential.auth, wire.McpOAuthAuth) and credential.auth.refresh_failed is not None
            assert credential.auth.refresh_failed.status == "failed"
            again = await rt.vaults.mcp_credential(WS, [vault.id], "https://mcp.example.com/mcp")
            assert again is not None and again.refresh_failed and not again.refreshable
            # an unreachable token endpoint is a connect_error, which is tried again later
            oauth.stop()
            new_access, new_refresh = oauth.issue()
            update = {"type": "mcp_oauth", "access_token": new_access, "refresh": {"refresh_token": new_refresh}}
            await rt.vaults.update_credential(
                WS, vault.id, created.id, wire.CredentialUpdateParams.model_validate({"auth": update})
            )
            cleared = await rt.vaults.mcp_credential(WS, [vault.id], "https://mcp.example.com/mcp")
            assert cleared is not None and cleared.refreshable and not cleared.refresh_failed
            assert await rt.vaults.refresh_mcp_credential(cleared) is None
            credential = await rt.vaults.get_credential(WS, vault.id, created.id)
            assert isinstance(credential.auth, wire.McpOAuthAuth) and credential.auth.refresh_failed is not None
            assert credential.auth.refresh_failed.status == "connect_error"
            retried = await rt.vaults.mcp_credential(WS, [vault.id], "https://mcp.example.com/mcp")
            assert retried is not None and retried.refreshable
    finally:
        oauth.stop()


async def test_a_credential_updated_meanwhile_is_still_refreshed(tmp_path: Path) -> None:
    """A stale read whose credential changed in another field only (same token, no failure) still refreshes."""
    oauth = OAuthIssuer("c", "s3cret-client-value", "client_secret_basic").start()
    try:
        async with Runtime.from_url(tmp_path / "renamed.db") as rt:
            vault = await rt.vaults.create_vault(WS, wire.VaultCreateParams(display_name="v"))
            access, refresh = oauth.issue()
            auth = oauth.credential("https://mcp.example.com/mcp", access, refresh)
            created = await rt.vaults.create_credential(
                WS, vault.id, wire.CredentialCreateParams.model_validate({"auth": auth})
            )
            stale = await rt.vaults.mcp_credential(WS, [vault.id], "https://mcp.example.com/mcp")
            assert stale is not None
            await rt.vaults.update_credential(
                WS, vault.id, created.id, wire.CredentialUpdateParams.model_validate({"display_name": "renamed"})
            )
            fresh = await rt.vaults.refresh_mcp_credential(stale)
            assert fresh is not None and fresh.token != access and oauth.refresh_requests == 1
            assert (await rt.vaults.get_credential(WS, vault.id, created.id)).display_name == "renamed"
    finally:
        oauth.stop()
